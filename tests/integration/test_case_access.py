"""Access enforcement on case data (issue 6, point 3) and the attacks of point 6 that need it.

The worked Queensland case is open; its team is the scenario's eight agencies, led by
dfv-logan. Victoria Police (vicpol) is a registered agency on no team of it. Every refusal is a
401/403 OperationOutcome and a security event; searches leave out what the caller may not see,
and a search that names another team's case is recorded.
"""

import time

import orjson
import pytest

from gateway.bootstrap import build_services
from gateway.fhir.indexing import index_entries
from tests.support import cases
from tests.support.agency_systems import VICPOL, bearer, get_token, register_system
from tests.support.resources import FHIR_JSON, patient, rfi_task

CASE = cases.CASE_ID
TEAM = f"{CASE}-team"


@pytest.fixture
def settings(settings):
    """Processes see a revoked client within 0.2 s here, so the tests need not wait 5 s."""
    return settings.model_copy(update={"identity_cache_seconds": 0.2})


@pytest.fixture
def case(services, client):
    """The worked case, referred; `client` is dfv-logan's (the lead agency's) test system."""
    return cases.open_case(services)


def system_of(services, client, client_id: str, scopes: str, agency=VICPOL) -> dict:
    system = register_system(services, client_id=client_id, scopes=scopes, alg="ES256", agency=agency)
    return bearer(get_token(client, system, scopes))


@pytest.fixture
def outsider(services, client, case) -> dict:
    """Headers of a vicpol system with every case scope: a valid token of an agency on no team of the case."""
    return system_of(services, client, "vicpol-cad", "system/*.cruds")


def last_event(services):
    return services.identity.security_events.recent(1)[0]


def refused(response, status: int = 403) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["code"] in ("forbidden", "login")
    return body["issue"][0]["diagnostics"]


def with_member(team: dict, agency_id: str) -> dict:
    """The CareTeam with one more participant, as its profile wants it (with a representative)."""
    added = {**team["participant"][0], "member": {"reference": f"Organization/{agency_id}"}}
    return {**team, "participant": team["participant"] + [added]}


def put(client, resource: dict, headers: dict):
    path = f"/fhir/{resource['resourceType']}/{resource['id']}"
    return client.put(path, content=orjson.dumps(resource), headers={**FHIR_JSON, **headers})


CASE_RESOURCES = [
    f"EpisodeOfCare/{CASE}", f"CareTeam/{TEAM}", "Patient/vs-mai", "Patient/puv-dan", "Consent/consent-dan",
    f"RiskAssessment/{CASE}-risk-0", f"Observation/{CASE}-risk-1-f0", f"QuestionnaireResponse/{CASE}-3a", f"CarePlan/{CASE}-safety-plan",
]


class TestAnotherAgencysCase:
    @pytest.mark.parametrize("reference", CASE_RESOURCES)
    def test_a_fhir_read_is_refused_and_recorded(self, services, client, outsider, reference):
        assert client.get(f"/fhir/{reference}").status_code == 200  # the lead agency reads it
        assert "not on the team" in refused(client.get(f"/fhir/{reference}", headers=outsider))
        event = last_event(services)
        assert (event.kind, event.reason, event.agency_id, event.client_id) == ("access-refused", "not-on-team", "vicpol", "vicpol-cad")
        assert event.detail == f"GET /fhir/{{resource_type}}/{{resource_id}}: read {reference}"
        refused(client.get(f"/fhir/{reference}/_history/1", headers=outsider))
        refused(client.get(f"/fhir/{reference}/_history", headers=outsider))

    def test_searches_leave_the_case_out_and_totals_count_only_what_is_visible(self, client, outsider):
        own = client.post("/fhir/Patient", content=orjson.dumps(patient(family="Own", given="Ada")), headers={**FHIR_JSON, **outsider}).json()
        for kind in ("EpisodeOfCare", "CareTeam", "Patient", "Consent", "RiskAssessment", "Observation", "QuestionnaireResponse", "CarePlan"):
            seen = client.get(f"/fhir/{kind}").json()
            assert seen["total"] >= 1, kind
            theirs = client.get(f"/fhir/{kind}", headers=outsider).json()
            assert [e["resource"]["id"] for e in theirs.get("entry", [])] == ([own["id"]] if kind == "Patient" else []), kind
            assert theirs["total"] == (1 if kind == "Patient" else 0)
            assert client.get(f"/fhir/{kind}", params={"_count": 0}, headers=outsider).json()["total"] == theirs["total"]
            assert client.get(f"/fhir/{kind}/_history", headers=outsider).json()["total"] == theirs["total"]
        form = client.post("/fhir/Patient/_search", data={"name": "Mai"}, headers=outsider)
        assert form.status_code == 200 and form.json()["total"] == 0
        assert client.get("/fhir/Patient", params={"_id": "vs-mai,puv-dan"}, headers=outsider).json()["total"] == 0

    def test_a_search_that_names_the_case_is_filtered_and_recorded(self, services, client, outsider):
        found = client.get("/fhir/Consent", params={"patient": "Patient/puv-dan"}, headers=outsider)
        assert found.status_code == 200 and found.json()["total"] == 0
        event = last_event(services)
        assert (event.reason, event.agency_id) == ("filtered", "vicpol")
        assert event.detail == "GET /fhir/{resource_type}: search Consent: names Patient/puv-dan; left out of the results"
        assert client.get("/fhir/RiskAssessment", params={"subject": "Patient/vs-mai"}).json()["total"] >= 1  # the team sees it

    def test_bundles_are_checked_entry_by_entry(self, services, client, outsider):
        read = {"request": {"method": "GET", "url": "Patient/vs-mai"}}
        search = {"request": {"method": "GET", "url": "Patient?name=Mai"}}
        transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [search, read]}
        assert "not on the team" in refused(client.post("/fhir", content=orjson.dumps(transaction), headers={**FHIR_JSON, **outsider}))
        batch = client.post("/fhir", content=orjson.dumps({**transaction, "type": "batch"}), headers={**FHIR_JSON, **outsider}).json()
        assert [e["response"]["status"] for e in batch["entry"]] == ["200", "403"]
        assert batch["entry"][0]["resource"]["total"] == 0
        assert last_event(services).reason == "not-on-team"

    def test_the_native_case_api_is_refused_and_recorded(self, services, client, outsider):
        assert client.get(f"/api/v1/cases/{CASE}").status_code == 200
        assert "not on the team" in refused(client.get(f"/api/v1/cases/{CASE}", headers=outsider))
        event = last_event(services)
        assert (event.reason, event.agency_id, event.detail) == ("not-on-team", "vicpol", f"GET /api/v1/cases/{{case_id}}: read EpisodeOfCare/{CASE}")
        rfis = {"requests": [{"requester": "dfv-logan", "target": "qps", "subjects": ["puv-dan"], "purpose": "risk-assessment",
                              "categories": ["criminal-history"]}]}
        refused(client.post(f"/api/v1/cases/{CASE}/rfis", json=rfis, headers=outsider))
        assert client.get(f"/api/v1/cases/{CASE}").json()["outstanding_rfis"] == []


class TestWritesIntoAnotherAgencysCase:
    def test_changing_or_deleting_the_case_is_refused(self, services, client, outsider):
        person = client.get("/fhir/Patient/puv-dan").json()
        refused(put(client, {**person, "name": [{"text": "Someone else"}]}, outsider))
        refused(client.delete("/fhir/Patient/puv-dan", headers=outsider))
        assert client.get("/fhir/Patient/puv-dan").json() == person

    def test_a_task_on_the_case_or_a_consent_about_its_people_is_refused(self, client, outsider):
        task = rfi_task(subject="Patient/puv-dan", focus=f"EpisodeOfCare/{CASE}", requester="Organization/vicpol")
        assert f"names EpisodeOfCare/{CASE}" in refused(client.post("/fhir/Task", content=orjson.dumps(task), headers={**FHIR_JSON, **outsider}))
        consent = client.get("/fhir/Consent/consent-dan").json()
        mine = {**consent, "id": "consent-by-vicpol", "status": "active"}
        assert "names Patient/puv-dan" in refused(put(client, mine, outsider))

    def test_joining_the_team_or_claiming_its_people_is_refused(self, client, outsider):
        refused(put(client, with_member(client.get(f"/fhir/CareTeam/{TEAM}").json(), "vicpol"), outsider))
        own_team = {"resourceType": "CareTeam", "id": "vicpol-team", "status": "active", "participant": [{"member": {"reference": "Organization/vicpol"}}]}
        assert put(client, own_team, outsider).status_code == 201
        claim = {"resourceType": "EpisodeOfCare", "id": "vicpol-case", "status": "active", "patient": {"reference": "Patient/vs-mai"},
                 "team": [{"reference": "CareTeam/vicpol-team"}]}
        assert "names Patient/vs-mai" in refused(put(client, claim, outsider))
        with_their_team = {**claim, "patient": {"reference": "Patient/someone-new"}, "team": [{"reference": f"CareTeam/{TEAM}"}]}
        assert f"names CareTeam/{TEAM}" in refused(put(client, with_their_team, outsider))

    def test_a_referral_naming_a_person_of_the_case_is_refused_and_writes_nothing(self, services, client, outsider):
        services.identity.agencies.add(VICPOL)
        referral = {
            "jurisdiction": "VIC", "referral_date": "2026-11-01", "referring_agency": "vicpol", "referral_contact": "Sgt X",
            "consent_status": "given", "victim_survivor_risk": "high", "practitioner_risk": "high",
            "people": [{"id": "puv-dan", "role": "adult-victim-survivor", "name": "Not Dan"}],
            "team": [{"agency": "vicpol", "representative": "Sgt X", "roles": ["lead-agency"]}], "consents": [],
        }
        assert "Patient/puv-dan" in refused(client.post("/api/v1/cases", json=referral, headers=outsider))
        assert client.get("/fhir/Patient/puv-dan").json()["name"][0]["text"] != "Not Dan"
        assert client.get("/fhir/EpisodeOfCare", params={"_count": 0}, headers=outsider).json()["total"] == 0
        referral["people"][0]["id"] = "vic-person-1"
        assert client.post("/api/v1/cases", json=referral, headers=outsider).status_code == 201  # its own case, its own people

    def test_a_referral_must_put_the_caller_on_the_team(self, services, client, outsider):
        referral = {
            "jurisdiction": "QLD", "referral_date": "2026-11-01", "referring_agency": "qps", "referral_contact": "Sgt X",
            "consent_status": "given", "victim_survivor_risk": "high", "practitioner_risk": "high",
            "people": [{"id": "p-new", "role": "adult-victim-survivor", "name": "N"}],
            "team": [{"agency": "qps", "representative": "Sgt X", "roles": ["lead-agency"]}], "consents": [],
        }
        assert "no longer on the case's team" in refused(client.post("/api/v1/cases", json=referral, headers=outsider))


class TestOwnCasesAndTeamChanges:
    def test_an_agency_builds_its_own_case_over_fhir_that_others_cannot_see(self, client, outsider):
        team = {"resourceType": "CareTeam", "id": "vicpol-team", "status": "active", "participant": [{"member": {"reference": "Organization/vicpol"}}]}
        person = {**patient(family="Vic"), "id": "vic-1"}
        own = {"resourceType": "EpisodeOfCare", "id": "vicpol-case", "status": "active", "patient": {"reference": "Patient/vic-1"},
               "team": [{"reference": "CareTeam/vicpol-team"}]}
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in (person, team, own)
        ]}
        assert client.post("/fhir", content=orjson.dumps(bundle), headers={**FHIR_JSON, **outsider}).status_code == 200
        task = rfi_task(subject="Patient/vic-1", focus="EpisodeOfCare/vicpol-case", requester="Organization/vicpol")
        assert client.post("/fhir/Task", content=orjson.dumps(task), headers={**FHIR_JSON, **outsider}).status_code == 201
        assert client.get("/fhir/EpisodeOfCare/vicpol-case", headers=outsider).status_code == 200
        for reference in ("EpisodeOfCare/vicpol-case", "Patient/vic-1", "CareTeam/vicpol-team"):
            refused(client.get(f"/fhir/{reference}"))  # dfv-logan is not on vicpol's team
        assert client.get("/fhir/Task", params={"focus": "EpisodeOfCare/vicpol-case"}).json()["total"] == 0

    def test_joining_and_leaving_the_team_takes_effect_at_once_in_every_process(self, services, settings, client, outsider):
        # the case record itself: what a team member may read of the people on it is the consent engine's
        # (tests/integration/test_record_release.py)
        other_process = build_services(settings)  # a second gateway process on the same database
        try:
            refused(client.get(f"/fhir/EpisodeOfCare/{CASE}", headers=outsider))
            team = client.get(f"/fhir/CareTeam/{TEAM}").json()
            assert put(client, with_member(team, "vicpol"), {}).status_code == 200  # the lead agency adds vicpol
            assert client.get(f"/fhir/EpisodeOfCare/{CASE}", headers=outsider).status_code == 200
            assert other_process.db.run_read(lambda conn: other_process.fhir.for_caller(_Policy("vicpol")).read_in(
                conn, "EpisodeOfCare", CASE, "http://x/fhir")).status == 200
            assert put(client, team, {}).status_code == 200  # and removes it again
            refused(client.get(f"/fhir/EpisodeOfCare/{CASE}", headers=outsider))
            with pytest.raises(Exception, match="not on the team"):
                other_process.db.run_read(lambda conn: other_process.fhir.for_caller(_Policy("vicpol")).read_in(
                    conn, "EpisodeOfCare", CASE, "http://x/fhir"))
        finally:
            other_process.close()

    def test_an_agency_cannot_take_itself_off_a_team_over_fhir_by_accident(self, client, case):
        team = client.get(f"/fhir/CareTeam/{TEAM}").json()
        without_me = {**team, "participant": [p for p in team["participant"] if p["member"]["reference"] != "Organization/dfv-logan"]}
        assert "no longer on the case's team" in refused(put(client, without_me, {}))


class _Policy:
    """What FhirService.for_caller needs of a policy, for a second process's service."""

    def __init__(self, agency_id: str):
        self.agency_id = agency_id

    def require(self, resource_type, interaction):
        pass

    def refused(self, reason, detail):
        pass


class TestTokens:
    def test_a_revoked_clients_token_stops_working_within_the_cache_time(self, services, client, case):
        headers = system_of(services, client, "dfv-old-crm", "system/*.rs", agency=_agency("dfv-logan"))
        assert client.get(f"/fhir/EpisodeOfCare/{CASE}", headers=headers).status_code == 200
        assert client.get(f"/api/v1/cases/{CASE}", headers=headers).status_code == 200  # both now cached
        services.identity.clients.revoke("dfv-old-crm")
        time.sleep(services.settings.identity_cache_seconds)  # GATEWAY_IDENTITY_CACHE_SECONDS: every process sees it by then
        for path in (f"/fhir/EpisodeOfCare/{CASE}", f"/api/v1/cases/{CASE}", "/fhir/Patient"):
            refused(client.get(path, headers=headers), 401)
            assert last_event(services).reason == "revoked-client"

    @pytest.mark.parametrize(
        "scopes,allowed,denied",
        [
            ("system/Patient.r", [("GET", "/fhir/Patient/vs-mai")], [("GET", "/fhir/Patient"), ("POST", "/fhir/Patient"), ("GET", "/fhir/Task"),
                                                                    ("GET", f"/api/v1/cases/{CASE}")]),
            ("system/Patient.read", [("GET", "/fhir/Patient/vs-mai"), ("GET", "/fhir/Patient")],
             [("POST", "/fhir/Patient"), ("PUT", "/fhir/Patient/vs-mai"), ("DELETE", "/fhir/Patient/vs-mai")]),
            ("system/*.rs", [("GET", f"/api/v1/cases/{CASE}"), ("GET", "/fhir/Consent")],
             [("POST", "/fhir/Patient"), ("GET", "/fhir/AuditEvent"), ("GET", "/admin/clients"), ("POST", f"/api/v1/cases/{CASE}/closure")]),
            ("system/*.cruds", [("POST", "/fhir/Patient")], [("PUT", "/fhir/Organization/dfv-logan"), ("POST", "/fhir/StructureDefinition"),
                                                              ("GET", "/fhir/AuditEvent")]),
            ("audit", [("GET", "/fhir/AuditEvent")], [("GET", "/fhir/Patient/vs-mai"), ("POST", "/fhir/AuditEvent"), ("GET", "/api/v1/inbox?wait=0")]),
        ],
    )
    def test_a_token_whose_scopes_do_not_cover_the_interaction_is_refused(self, services, client, case, scopes, allowed, denied):
        headers = system_of(services, client, "dfv-narrow", scopes, agency=_agency("dfv-logan"))
        for method, path in allowed:
            answer = client.request(method, path, headers={**FHIR_JSON, **headers}, content=_body_for(client, path))
            assert answer.status_code < 400, (method, path, answer.text)
        for method, path in denied:
            answer = client.request(method, path, headers={**FHIR_JSON, **headers}, content=_body_for(client, path))
            refused(answer)
            if last_event(services).reason == "insufficient-scope":  # the challenge names the scope it lacks
                assert 'error="insufficient_scope"' in answer.headers["www-authenticate"]
            assert last_event(services).reason in ("insufficient-scope", "ledger-read-only")

    def test_the_ledger_is_read_with_the_audit_scope_only_and_never_written_over_the_api(self, services, client, case):
        event = {"resourceType": "AuditEvent", "id": "e-1", "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110106"},
                 "recorded": "2026-11-21T10:00:00Z", "agent": [{"who": {"reference": "Organization/qps"}, "requestor": True}],
                 "source": {"observer": {"reference": "Device/gateway"}}}
        services.db.run_write(lambda conn: services.store.write(conn, dict(event), "AuditEvent", "e-1", index_entries(event)))
        officer = system_of(services, client, "privacy-office", "audit", agency=_agency("dfv-logan"))
        assert client.get("/fhir/AuditEvent/e-1", headers=officer).status_code == 200
        assert client.get("/fhir/AuditEvent", headers=officer).json()["total"] == 1
        assert "ledger" in refused(client.delete("/fhir/AuditEvent/e-1"))  # not even with every scope
        assert last_event(services).reason == "ledger-read-only"
        assert "audit" in refused(client.get("/fhir/AuditEvent/e-1", headers=system_of(services, client, "crm", "system/*.cruds")))


@pytest.mark.parametrize(
    "method,path",
    [("GET", "/fhir/Patient"), ("GET", "/fhir/Patient/x"), ("POST", "/fhir/Patient"), ("PUT", "/fhir/Patient/x"), ("DELETE", "/fhir/Patient/x"),
     ("GET", "/fhir/Patient/x/_history"), ("GET", "/fhir/Patient/x/_history/1"), ("GET", "/fhir/Patient/_history"),
     ("POST", "/fhir/Patient/_search"), ("POST", "/fhir"), ("POST", "/api/v1/cases"), ("GET", "/api/v1/cases/x"),
     ("POST", "/api/v1/cases/x/rfis"), ("POST", "/api/v1/cases/x/meetings"), ("POST", "/api/v1/cases/x/closure"),
     ("POST", "/api/v1/consent/decisions"), ("GET", "/api/v1/inbox"), ("POST", "/fhir/$process-message"), ("GET", "/admin/agencies")],
)
def test_every_endpoint_but_the_open_ones_needs_a_token(services, anonymous_client, method, path):
    answer = anonymous_client.request(method, path, content=b"{}", headers=FHIR_JSON)
    assert refused(answer, 401).startswith("This request needs an access token")
    assert answer.headers["www-authenticate"].startswith('Bearer realm="gateway"')
    assert last_event(services).reason == "no-token"


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/fhir/metadata", "/.well-known/smart-configuration", "/.well-known/jwks.json",
                                  "/fhir/.well-known/smart-configuration", "/openapi.json"])
def test_the_open_endpoints_answer_without_a_token(anonymous_client, path):
    assert anonymous_client.get(path).status_code == 200


def _agency(agency_id: str):
    from gateway.demo import scenario

    return next(a for a in scenario.AGENCIES if a.id == agency_id)


def _body_for(client, path: str) -> bytes:
    if path == "/fhir/Patient":
        return orjson.dumps(patient())
    if path.startswith("/fhir/Patient/"):
        return orjson.dumps({**patient(), "id": path.rsplit("/", 1)[1]})
    if path == "/fhir/StructureDefinition":
        return orjson.dumps({"resourceType": "StructureDefinition"})
    if path.startswith("/fhir/Organization/"):
        return orjson.dumps({"resourceType": "Organization", "id": path.rsplit("/", 1)[1], "name": "Renamed"})
    if path == "/fhir/AuditEvent":
        return orjson.dumps({"resourceType": "AuditEvent"})
    return b"{}"
