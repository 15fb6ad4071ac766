"""The native case API, as an agency without FHIR uses it: the Level 3 forms as JSON."""

import orjson
import pytest

from gateway.demo import scenario
from gateway.mappings import organization
from tests.support.resources import FHIR_JSON

TEAM = [
    {"agency": "dfv-logan", "representative": "Aroha Moore", "roles": ["lead-agency", "chair"], "confidentiality_acknowledged_on": "2026-11-02"},
    {"agency": "qps", "representative": "Sgt Priya Rao", "confidentiality_acknowledged_on": "2026-11-02"},
    {"agency": "qcs", "representative": "Tom Walsh", "confidentiality_acknowledged_on": "2026-11-02"},
    {"agency": "qh", "representative": "Dr Helen Ng"},
]
REFERRAL = {
    "jurisdiction": "QLD",
    "referral_date": "2026-11-01",
    "referring_agency": "qps",
    "referral_contact": "Sgt Priya Rao",
    "consent_status": "given",
    "victim_survivor_risk": "high",
    "practitioner_risk": "high",
    "key_risk_factors": [{"description": "Non-fatal strangulation", "risk_factor": "strangulation"}],
    "rationale": "Level 2: high risk",
    "people": [
        {"id": "vs-1", "role": "adult-victim-survivor", "name": "Mai Tran", "indigenous_status": "aboriginal"},
        {"id": "puv-1", "role": "person-using-violence", "name": "Daniel Reid"},
        {"id": "child-1", "role": "child-victim-survivor", "name": "Lily", "age": 6},
    ],
    "team": TEAM,
    "consents": [{"person": "puv-1", "status": "unsafe-to-seek", "recorded_on": "2026-11-01", "reason": "Would alert him"}],
}
PRESENT = [{"agency": "dfv-logan", "representative": "Aroha Moore"}, {"agency": "qps", "representative": "Sgt Priya Rao"}]
CLOSURE = {
    "closure_date": "2026-12-19", "multi_agency_risk": "at-risk", "victim_survivor_risk": "at-risk",
    "victim_survivor_agrees": "yes", "rationale": "Final order; PuV remanded", "closure_note": "Summary of the case",
    "author": {"name": "Aroha Moore", "signed_on": "2026-12-19"}, "reviewer": {"name": "Sgt Priya Rao", "signed_on": "2026-12-19"},
    "protective_factors": ["dvo-in-place", "puv-in-prison"],
}


@pytest.fixture
def api(client):
    for agency in scenario.AGENCIES:
        resource = organization.to_fhir(agency)
        assert client.put(f"/fhir/Organization/{agency.id}", content=orjson.dumps(resource), headers=FHIR_JSON).status_code in (200, 201)
    return client


def refer(api, body=REFERRAL):
    response = api.post("/api/v1/cases", json=body)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def meeting(form, on, risk, **more):
    return {"form": form, "meeting_date": on, "present": PRESENT, "multi_agency_risk": risk, **more}


def outcome(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"]


def test_a_case_from_referral_to_closure(api):
    case_id = refer(api)
    summary = api.get(f"/api/v1/cases/{case_id}").json()
    assert summary["status"] == "waitlist" and summary["lead_agency"] == "dfv-logan"
    assert summary["current_risk"]["practitioner"]["level"] == "high" and summary["current_risk"]["multi-agency"] is None
    assert any("Aboriginal community-controlled" in w for w in summary["warnings"])
    assert any("Confidentiality not yet acknowledged by: qh" in w for w in summary["warnings"])

    rfis = {"requests": [
        {"requester": "dfv-logan", "target": target, "subjects": ["puv-1"], "purpose": "risk-assessment", "categories": ["criminal-history"]}
        for target in ("qps", "qcs")
    ] + [{"requester": "dfv-logan", "target": "qh", "subjects": ["vs-1"], "purpose": "risk-management", "categories": ["health"], "urgent": True}]}
    summary = api.post(f"/api/v1/cases/{case_id}/rfis", json=rfis).json()
    assert len(summary["outstanding_rfis"]) == 3 and sum(r["urgent"] for r in summary["outstanding_rfis"]) == 1

    initial = meeting("3A", "2026-11-04", "high", rationale="Strangulation; separation", next_meeting="2026-11-18",
                      actions=[{"description": "Notify any release", "responsible_agency": "qcs", "due": "2026-11-18", "area": "puv-visibility"}],
                      informed=[{"person": "vs-1", "informed": True, "on": "2026-11-04"},
                                {"person": "puv-1", "informed": False, "on": "2026-11-04", "reason": "Unsafe"}])
    summary = api.post(f"/api/v1/cases/{case_id}/meetings", json=initial).json()
    assert summary["status"] == "active" and summary["current_risk"]["multi-agency"]["level"] == "high"
    assert [a["responsible_agency"] for a in summary["open_actions"]] == ["qcs"]

    escalation = meeting("3B", "2026-11-20", "imminent", victim_survivor_risk="imminent",
                         puv_change={"changed": "yes", "details": "Released on bail; breached the order"},
                         new_risk_factors=[{"description": "Breach 19 Nov", "risk_factor": "breach-of-order", "severity": "high"}])
    summary = api.post(f"/api/v1/cases/{case_id}/meetings", json=escalation).json()
    assert summary["current_risk"]["multi-agency"]["level"] == "imminent"
    assert [r["level"] for r in summary["risk_history"] if r["determined_by"] == "multi-agency"] == ["high", "imminent"]

    issues = outcome(api.post(f"/api/v1/cases/{case_id}/closure", json=CLOSURE), 422)
    assert "imminent" in issues[0]["diagnostics"] and issues[0]["expression"] == ["closure"]

    api.post(f"/api/v1/cases/{case_id}/meetings", json=meeting("3B", "2026-12-18", "at-risk", can_close=True))
    summary = api.post(f"/api/v1/cases/{case_id}/closure", json=CLOSURE).json()
    assert summary["status"] == "finished"

    # the shared FHIR view: the forms and what was extracted from them
    for form in ("3a", "3b-1", "3b-2", "3c"):
        assert api.get(f"/fhir/QuestionnaireResponse/{case_id}-{form}").json()["status"] == "completed"
    assert api.get("/fhir/RiskAssessment", params={"risk": "imminent", "_count": 0}).json()["total"] >= 2
    flags = api.get("/fhir/Flag", params={"subject": "Patient/vs-1"}).json()
    assert flags["total"] == 1 and flags["entry"][0]["resource"]["code"]["coding"][0]["code"] == "risk-escalation"
    assert api.get(f"/fhir/EpisodeOfCare/{case_id}").json()["period"]["end"] == "2026-12-19"


def test_rules_and_vocabulary_errors_name_the_field(api):
    bad_code = {**REFERRAL, "victim_survivor_risk": "very-high"}
    issues = outcome(api.post("/api/v1/cases", json=bad_code), 422)
    assert any("victim_survivor_risk" in e for i in issues for e in i["expression"])

    two_leads = {**REFERRAL, "team": TEAM[:1] + [{**TEAM[1], "roles": ["lead-agency"]}] + TEAM[2:]}
    assert "exactly one lead agency" in outcome(api.post("/api/v1/cases", json=two_leads), 422)[0]["diagnostics"]

    unknown_agency = {**REFERRAL, "team": TEAM + [{"agency": "nowhere", "representative": "X"}]}
    assert "not registered" in outcome(api.post("/api/v1/cases", json=unknown_agency), 404)[0]["diagnostics"]

    case_id = refer(api)
    review_first = outcome(api.post(f"/api/v1/cases/{case_id}/meetings", json=meeting("3B", "2026-11-04", "high")), 422)
    assert "follows an earlier meeting" in review_first[0]["diagnostics"]
    no_owner = meeting("3A", "2026-11-04", "high", actions=[{"description": "Safety audit", "due": "2026-11-10"}])
    issue = outcome(api.post(f"/api/v1/cases/{case_id}/meetings", json=no_owner), 422)[0]
    assert issue["expression"] == ["responsible_agency"] and "who" in issue["diagnostics"]
    # nothing of the refused meeting was kept
    assert api.get(f"/api/v1/cases/{case_id}").json()["status"] == "waitlist"
    assert outcome(api.get("/api/v1/cases/no-such-case"), 404)


def test_openapi_documents_the_native_api_and_its_codes(api):
    spec = api.get("/openapi.json").json()
    for path in ("/api/v1/cases", "/api/v1/cases/{case_id}", "/api/v1/cases/{case_id}/rfis",
                 "/api/v1/cases/{case_id}/meetings", "/api/v1/cases/{case_id}/closure"):
        assert path in spec["paths"]
    assert spec["components"]["schemas"]["RiskLevel"]["enum"] == ["imminent", "high", "at-risk", "no-low", "unknown"]
