"""Consent at the FHIR read and search release points (issue 4, point 5).

The worked Queensland case is open, led by dfv-logan, with a high multi-agency risk (a serious
threat); Mai (adult victim survivor) consented to sharing, Dan's (person using violence) consent
was unsafe to seek; the courts observe the case. Each test reads as another agency's system
would, over HTTP with its own token, and checks what is served, what the response says was left
out, and the AuditEvent a privacy officer finds for it.
"""

import dataclasses
from datetime import date

import orjson
import pytest

from gateway.domain.agencies import Agency
from gateway.domain.consent import ConsentRecord
from gateway.domain.risk import RiskDetermination
from gateway.domain.vocabulary import (
    AgencyType,
    ConsentStatus,
    ExcludedInformation,
    InformationCategory,
    Jurisdiction,
    MessageEvent,
    PrescribedStatus,
    RiskDeterminedBy,
    RiskLevel,
)
from gateway.fhir.indexing import index_entries
from gateway.mappings import consent, risk_assessment
from gateway.mappings.common import coding
from tests.support import cases
from tests.support.agency_systems import agency_token, bearer, get_token, register_system
from tests.support.resources import FHIR_JSON

CASE = cases.CASE_ID
PUV_SERVICE = Agency("change-program", "Men's behaviour change program, Logan", AgencyType.SPECIALIST_FV_PERSON_USING_VIOLENCE,
                     Jurisdiction.QLD, frozenset({PrescribedStatus.QLD_SPECIALIST_DFV_SERVICE}))
REDACTED = ("http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "REDACTED")


@pytest.fixture
def case(services, client):
    return cases.open_case(services)


@pytest.fixture
def as_agency(services, client, case):
    tokens: dict[str, dict] = {}

    def headers(agency_id: str) -> dict:
        if agency_id == PUV_SERVICE.id and agency_id not in tokens:  # not one of the scenario's agencies
            system = register_system(services, f"test-{agency_id}", "system/*.rs", "ES256", PUV_SERVICE)
            tokens[agency_id] = bearer(get_token(client, system, "system/*.rs"))
        if agency_id not in tokens:
            tokens[agency_id] = bearer(agency_token(services, client, agency_id))
        return tokens[agency_id]

    return headers


def release_events(client, agency_id: str) -> list[dict]:
    """The read/search AuditEvents that name `agency_id` as requester, newest first."""
    found = client.get("/fhir/AuditEvent", params={"agent": f"Organization/{agency_id}", "_count": 100}).json()
    events = [e["resource"] for e in found.get("entry", []) if e["resource"].get("subtype")]
    return sorted(events, key=lambda e: e["recorded"], reverse=True)


def details(entity: dict) -> dict:
    return {d["type"]: d["valueString"] for d in entity.get("detail", [])}


def labels(resource: dict) -> set[tuple[str, str]]:
    return {(s["system"], s["code"]) for s in resource.get("meta", {}).get("security", [])}


def suppressed(response) -> str:
    assert response.status_code == 403, response.text
    [issue] = response.json()["issue"]
    assert issue["code"] == "suppressed"
    return issue["diagnostics"]


def write(services, *resources: dict, holder: str | None = None) -> None:
    services.db.run_write(lambda conn: [
        services.store.write(conn, r, r["resourceType"], r["id"], index_entries(r), holder=holder) for r in resources
    ])


def police_intelligence(excluded: ExcludedInformation | None = None) -> dict:
    """What the police hold about Dan, labelled as they would label it."""
    security = [coding(InformationCategory.CRIMINAL_HISTORY)] + ([coding(excluded)] if excluded else [])
    return {
        "resourceType": "Observation", "id": "qps-intel-1", "meta": {"security": security}, "status": "final",
        "code": {"text": "Police intelligence"}, "subject": {"reference": "Patient/puv-dan"},
        "valueString": "Known to associate with a person under investigation",
    }


def test_an_agency_reads_its_own_records_without_a_decision(client, as_agency):
    # the gateway saved the referred case: the lead agency holds it
    mai = client.get("/fhir/Patient/vs-mai")

    assert mai.status_code == 200 and mai.json()["address"]
    assert REDACTED not in labels(mai.json())
    assert release_events(client, "dfv-logan") == []


def test_another_team_member_is_released_what_the_engine_permits_and_it_is_recorded(client, as_agency):
    dan = client.get("/fhir/Patient/puv-dan", headers=as_agency("qps"))

    assert dan.status_code == 200 and dan.json()["address"]  # a serious threat: Part 5A permits
    [event] = release_events(client, "qps")
    assert event["subtype"][0]["code"] == "read" and event["outcome"] == "0"
    assert [a["who"]["reference"] for a in event["agent"]] == ["Organization/qps", "Organization/dfv-logan"]
    decided = [e for e in event["entity"] if e.get("detail")]
    assert [e["what"]["reference"] for e in decided] == ["Patient/puv-dan/_history/1"] * 2  # the record, and his whereabouts
    assert {details(e)["rule"] for e in decided} == {"QLD-serious-threat"}
    assert {tuple(c["code"] for c in e["securityLabel"]) for e in decided} == {
        ("case-participation", "person-using-violence"), ("whereabouts", "person-using-violence"),
    }


def test_an_observer_is_told_the_case_but_released_nothing_about_its_people(client, as_agency):
    courts = as_agency("courts")

    assert client.get(f"/fhir/EpisodeOfCare/{CASE}", headers=courts).status_code == 200
    assert "acknowledged confidentiality" in suppressed(client.get("/fhir/Patient/vs-mai", headers=courts))
    people = client.get("/fhir/Patient", params={"_count": 50}, headers=courts).json()
    assert [e["resource"]["resourceType"] for e in people["entry"]] == ["OperationOutcome"]
    assert len(people["entry"][0]["resource"]["issue"]) == 4 and people["entry"][0]["search"]["mode"] == "outcome"
    search, read = release_events(client, "courts")
    assert (search["subtype"][0]["code"], search["outcome"], read["outcome"]) == ("search-type", "4", "4")
    assert {details(e)["rule"] for e in read["entity"] if e.get("detail")} == {"confidentiality-not-acknowledged"}


def test_a_service_working_with_the_person_using_violence_never_learns_where_she_is(services, client, as_agency):
    program = as_agency(PUV_SERVICE.id)  # registers the agency
    team = client.get(f"/fhir/CareTeam/{CASE}-team").json()
    joined = {**team["participant"][1], "member": {"reference": f"Organization/{PUV_SERVICE.id}"}}  # a core member who signed
    put = client.put(f"/fhir/CareTeam/{CASE}-team", content=orjson.dumps({**team, "participant": team["participant"] + [joined]}),
                     headers=FHIR_JSON)
    assert put.status_code == 200, put.text

    mai = client.get("/fhir/Patient/vs-mai", headers=program).json()
    dan = client.get("/fhir/Patient/puv-dan", headers=program).json()

    assert "address" not in mai and "telecom" not in mai and REDACTED in labels(mai)
    assert mai["name"]  # that she is part of the case is released: a serious threat
    assert dan["address"] and REDACTED not in labels(dan)
    [event] = [e for e in release_events(client, PUV_SERVICE.id) if e["subtype"][0]["code"] == "read"][-1:]
    refused = [e for e in event["entity"] if e.get("detail") and details(e)["decision"] == "deny"]
    assert [details(e)["rule"] for e in refused] == ["victim-survivor-location-to-puv-service"]


def test_excluded_information_stays_with_its_holder_and_the_search_says_it_was_left_out(services, client, as_agency):
    created = client.post("/fhir/Observation", content=orjson.dumps(police_intelligence(ExcludedInformation.PREJUDICE_INVESTIGATION)),
                          headers={**FHIR_JSON, **as_agency("qps")})
    assert created.status_code == 201, created.text
    intel_id = created.json()["id"]
    health = as_agency("qh")

    found = client.get("/fhir/Observation", params={"subject": "Patient/puv-dan", "_count": 50}, headers=health).json()
    own = client.get("/fhir/Observation", params={"subject": "Patient/puv-dan", "_count": 50}, headers=as_agency("qps")).json()

    assert intel_id not in {e["resource"].get("id") for e in found["entry"]}
    [outcome] = [e["resource"] for e in found["entry"] if e["search"]["mode"] == "outcome"]
    assert [i["diagnostics"].split(" ")[0] for i in outcome["issue"]] == [f"Observation/{intel_id}"]
    assert "excluded-information" in outcome["issue"][0]["diagnostics"]
    assert intel_id in {e["resource"]["id"] for e in own["entry"]}  # its holder still sees it
    assert "excluded-information" in suppressed(client.get(f"/fhir/Observation/{intel_id}", headers=health))
    history = client.get(f"/fhir/Observation/{intel_id}/_history", headers=health).json()
    assert [(e.get("resource"), e["response"]["status"]) for e in history["entry"]] == [(None, "403")]
    search = next(e for e in release_events(client, "qh") if e["subtype"][0]["code"] == "search-type")
    assert search["outcome"] == "4"
    refused = [e for e in search["entity"] if e.get("detail") and details(e)["decision"] == "deny"]
    assert [e["what"]["reference"] for e in refused] == [f"Observation/{intel_id}/_history/1"]
    assert details(refused[0])["rule"] == "QLD-excluded-information"


def test_withdrawn_consent_narrows_what_is_released_from_that_moment(services, client, as_agency):
    # the team now assesses the risk as lower: no serious threat, so Mai's consent is what permits sharing
    lower = risk_assessment.to_fhir(RiskDetermination(RiskLevel.AT_RISK, RiskDeterminedBy.MULTI_AGENCY, date(2026, 11, 2)),
                                    f"{CASE}-risk-9", "vs-mai", CASE)
    write(services, *lower)
    police = as_agency("qps")
    assert client.get("/fhir/Patient/vs-mai", headers=police).status_code == 200

    withdrawn = consent.to_fhir(ConsentRecord("consent-mai-2", "vs-mai", ConsentStatus.WITHDRAWN, date(2026, 11, 3), Jurisdiction.QLD))
    write(services, withdrawn, holder="dfv-logan")

    assert "withdrawn" in suppressed(client.get("/fhir/Patient/vs-mai", headers=police)).lower()
    dan = client.get("/fhir/Patient/puv-dan", headers=police)
    assert dan.status_code == 403  # his consent was unsafe to seek, and there is no serious threat: professional judgement
    assert "professional-judgement" in suppressed(dan)


def test_an_rfi_is_read_whole_by_its_parties_and_without_its_answers_by_the_rest_of_the_team(services, client, as_agency):
    rfi = cases.request("rfi-1")
    services.inbound.process([cases.message(MessageEvent.RFI_REQUEST, "dfv-logan", "qps", rfi)])
    answer = cases.answered(rfi, (InformationCategory.CRIMINAL_HISTORY, "Two prior incidents", frozenset()))
    services.inbound.process([cases.message(MessageEvent.RFI_RESPONSE, "qps", "dfv-logan", answer)])

    for party in ("dfv-logan", "qps"):
        task = client.get("/fhir/Task/rfi-1", headers=as_agency(party)).json()
        assert task["output"][0]["valueCodeableConcept"]["text"] == "Two prior incidents"
    other = client.get("/fhir/Task/rfi-1", headers=as_agency("qh")).json()
    assert "output" not in other and REDACTED in labels(other) and other["status"] == "completed"


def test_nothing_is_released_when_its_decision_cannot_be_recorded(services, client, as_agency, monkeypatch):
    def broken(conn, event):
        raise RuntimeError("the ledger is unwritable")

    monkeypatch.setattr(services.ledger, "record", broken)
    answer = client.get("/fhir/Patient/puv-dan", headers=as_agency("qps"))

    assert answer.status_code == 500
    assert "Daniel" not in answer.text and answer.json()["resourceType"] == "OperationOutcome"


def test_exporting_a_persons_record_releases_what_each_read_would_and_says_what_it_left_out(services, client, as_agency):
    created = client.post("/fhir/Observation", content=orjson.dumps(police_intelligence(ExcludedInformation.CONFIDENTIAL_SOURCE)),
                          headers={**FHIR_JSON, **as_agency("qps")})
    intel = f"Observation/{created.json()['id']}"

    export = client.get("/fhir/Patient/puv-dan/$everything", headers=as_agency("qh"))

    assert export.status_code == 200, export.text
    bundle = export.json()
    released = [f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"] if e["search"]["mode"] == "match"]
    assert released == ["Patient/puv-dan", "Consent/consent-dan"]  # his record, less what the police hold back
    assert intel not in released and bundle["total"] == len(released)
    [outcome] = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert [i["diagnostics"].split(" ")[0] for i in outcome["issue"]] == [intel]
    [event] = [e for e in release_events(client, "qh") if e["subtype"][0]["code"] == "operation"]
    decided = {e["what"]["reference"].rsplit("/_history", 1)[0] for e in event["entity"] if e.get("detail")}
    assert "Patient/puv-dan" in decided and intel in decided and event["outcome"] == "4"
    own = client.get("/fhir/Patient/puv-dan/$everything", headers=as_agency("qps")).json()
    assert intel in {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in own["entry"]}


def test_an_agency_off_the_team_cannot_export_anyone_on_the_case(services, client, as_agency):
    from tests.support.agency_systems import VICPOL

    system = register_system(services, "vicpol-export", "system/*.rs", "ES256", VICPOL)
    answer = client.get("/fhir/Patient/vs-mai/$everything", headers=bearer(get_token(client, system, "system/*.rs")))

    assert answer.status_code == 403 and "not on the team" in answer.json()["issue"][0]["diagnostics"]


def test_the_native_case_summary_leaves_out_what_a_read_would_withhold_and_says_so(services, client, as_agency):
    # the lead agency marks its referral form (the 3A: risk at referral, the initial meeting) as
    # information that could prejudice an investigation
    form = client.get(f"/fhir/QuestionnaireResponse/{CASE}-3a").json()
    write(services, {**form, "meta": {"security": [coding(ExcludedInformation.PREJUDICE_INVESTIGATION)]}}, holder="dfv-logan")

    police = client.get(f"/api/v1/cases/{CASE}", headers=as_agency("qps"))
    own = client.get(f"/api/v1/cases/{CASE}")

    assert police.status_code == 200, police.text
    summary = police.json()
    assert summary["risk_history"] == [] and set(summary["current_risk"].values()) == {None}
    [withheld] = summary["withheld"]
    assert (withheld["record"], withheld["reason"]) == (f"QuestionnaireResponse/{CASE}-3a", "excluded-information")
    assert own.json()["risk_history"] and own.json()["withheld"] == []  # its holder still sees it
    [event] = release_events(client, "qps")
    assert (event["subtype"][0]["code"], event["outcome"]) == ("read", "4")
    [decided] = [e for e in event["entity"] if e.get("detail")]
    assert decided["what"]["reference"] == f"QuestionnaireResponse/{CASE}-3a/_history/2"
    assert details(decided)["rule"] == "QLD-excluded-information"


def test_an_observer_reads_the_case_summary_without_its_risk_history(client, as_agency):
    courts = client.get(f"/api/v1/cases/{CASE}", headers=as_agency("courts")).json()
    police = client.get(f"/api/v1/cases/{CASE}", headers=as_agency("qps")).json()

    assert courts["risk_history"] == [] and courts["status"] == police["status"]
    assert [(w["record"], w["reason"]) for w in courts["withheld"]] == [(f"QuestionnaireResponse/{CASE}-3a", "not-permitted")]
    assert "acknowledged confidentiality" in courts["withheld"][0]["explanation"]
    assert police["risk_history"] == client.get(f"/api/v1/cases/{CASE}").json()["risk_history"]  # a serious threat: released
    assert police["withheld"] == []


def test_a_record_nobody_holds_is_not_released_when_the_team_names_no_lead(client, as_agency):
    team = client.get(f"/fhir/CareTeam/{CASE}-team").json()
    for participant in team["participant"]:  # the gateway wrote the case: its lead agency held it
        participant["role"] = [r for r in participant["role"] if r["coding"][0]["code"] != "lead-agency"]
    assert client.put(f"/fhir/CareTeam/{CASE}-team", content=orjson.dumps(team), headers=FHIR_JSON).status_code == 200

    assert "no lead agency" in suppressed(client.get("/fhir/Patient/vs-mai", headers=as_agency("qps")))
    assert "acknowledged confidentiality" in suppressed(client.get("/fhir/Patient/vs-mai", headers=as_agency("courts")))
    [event] = release_events(client, "qps")
    assert [details(e)["rule"] for e in event["entity"] if e.get("detail")] == ["holder-unknown"]


def test_a_conditional_create_answers_a_withheld_match_as_a_read_would(client, as_agency):
    created = client.post("/fhir/Observation", content=orjson.dumps(police_intelligence(ExcludedInformation.PREJUDICE_INVESTIGATION)),
                          headers={**FHIR_JSON, **as_agency("qps")})
    intel_id = created.json()["id"]
    probe = {**police_intelligence(), "valueString": "anything"}

    answer = client.post("/fhir/Observation", content=orjson.dumps(probe),
                         headers={**FHIR_JSON, **as_agency("qh"), "If-None-Exist": f"_id={intel_id}"})

    assert "excluded-information" in suppressed(answer) and "under investigation" not in answer.text
    [event] = release_events(client, "qh")
    assert (event["subtype"][0]["code"], event["outcome"]) == ("create", "4")


def test_a_case_command_keeps_the_labels_its_holder_put_on_a_form(services, client, as_agency):
    form = client.get(f"/fhir/QuestionnaireResponse/{CASE}-3a").json()
    write(services, {**form, "meta": {"security": [coding(ExcludedInformation.PREJUDICE_INVESTIGATION)]}}, holder="dfv-logan")
    case = services.db.run_read(lambda conn: services.cases.repository.load(conn, CASE))
    case.referral = dataclasses.replace(case.referral, referral_contact="Coordinator on 07 3000 0000")  # the 3A changes

    assert services.db.run_write(lambda conn: services.cases.repository.save(conn, case)) >= 1

    stored = client.get(f"/fhir/QuestionnaireResponse/{CASE}-3a").json()
    assert stored["meta"]["versionId"] == "3" and coding(ExcludedInformation.PREJUDICE_INVESTIGATION)["code"] in {
        s["code"] for s in stored["meta"]["security"]}
    assert "excluded-information" in suppressed(client.get(f"/fhir/QuestionnaireResponse/{CASE}-3a", headers=as_agency("qps")))


def test_a_person_recorded_without_a_role_counts_as_a_third_party_and_breaks_nothing(services, client, as_agency):
    dan = client.get("/fhir/Patient/puv-dan").json()
    bare = {k: v for k, v in dan.items() if k not in ("extension", "meta")} | {"name": [{"family": "Nguyen", "given": ["Dan"]}]}
    assert client.put("/fhir/Patient/puv-dan", content=orjson.dumps(bare), headers=FHIR_JSON).status_code == 200

    answer = client.get("/fhir/Patient/vs-mai", headers=as_agency("qps"))

    assert answer.status_code == 200, answer.text  # her record is decided as before; his unstated role is no fault
    read = client.get("/fhir/Patient/puv-dan", headers=as_agency("qps"))
    assert read.status_code == 200  # a serious threat: QLD Part 5A permits for a third party too
    [event] = [e for e in release_events(client, "qps") if "Patient/puv-dan/_history/2" in str(e["entity"])]
    roles = {tuple(c["code"] for c in e["securityLabel"])[1] for e in event["entity"] if e.get("detail")}
    assert roles == {"third-party"}
