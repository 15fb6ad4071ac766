"""FHIR search: every parameter the gateway advertises, paging, sorting, on SQLite and PostgreSQL."""

import uuid

import orjson
import pytest

from gateway.fhir.indexing import index_entries
from gateway.fhir.search_parameters import RESOURCE_PARAMETERS
from tests.support.resources import FHIR_JSON, patient, rfi_task, risk_assessment


def post(client, resource):
    response = client.post(f"/fhir/{resource['resourceType']}", content=orjson.dumps(resource), headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return response.json()


def ids(bundle):
    return sorted(e["resource"]["id"] for e in bundle.get("entry", []))


def search(client, query):
    response = client.get(f"/fhir/{query}")
    assert response.status_code == 200, response.text
    return response.json()


class TestEveryAdvertisedParameter:
    def test_metadata_lists_exactly_the_parameters_search_accepts(self, client):
        statement = client.get("/fhir/metadata").json()
        listed = {r["type"]: {p["name"] for p in r["searchParam"]} for r in statement["rest"][0]["resource"]}
        assert set(listed) == set(RESOURCE_PARAMETERS)
        probe = {"token": "x", "string": "x", "reference": "Patient/x", "date": "2026", "uri": "urn:x"}
        for resource in statement["rest"][0]["resource"]:
            for p in resource["searchParam"]:
                response = client.get(f"/fhir/{resource['type']}", params={p["name"]: probe[p["type"]]})
                assert response.status_code == 200, (resource["type"], p["name"], response.text)
            assert client.get(f"/fhir/{resource['type']}", params={"not-a-param": "x"}).status_code == 400


# (resource, parameter query that must match it, query that must not)
CASES = [
    (patient(identifier="ID-7"), "identifier=urn:vic-police:person|ID-7", "identifier=urn:other|ID-7"),
    (patient(identifier="ID-8"), "identifier=ID-8", "identifier=ID-9"),
    (patient(family="Kovačević"), "name=kovacev", "name=kovacs"),
    (patient(family="Lee"), "family:exact=Lee", "family:exact=lee"),
    # longer than the index keeps (MAX_INDEXED_CHARS): the search is cut alike, so it still matches
    (patient(family="A" * 300 + "b" * 300), "family=" + "a" * 300 + "b" * 250, "family=" + "a" * 300 + "c" * 250),
    (patient(given="Anh"), "given=an", "given=bn"),
    (patient(birth_date="1980-06"), "birthdate=1980", "birthdate=1981"),
    (rfi_task(owner="Organization/health"), "owner=Organization/health", "owner=Organization/housing"),
    (rfi_task(owner="Organization/health"), "owner=health", "owner=housing"),
    (rfi_task(requester="Organization/police"), "requester=Organization/police", "requester=Organization/courts"),
    (rfi_task(status="accepted"), "status=accepted", "status=requested"),
    (rfi_task(focus="EpisodeOfCare/c9"), "focus=EpisodeOfCare/c9", "focus=EpisodeOfCare/c8"),
    (rfi_task(subject="Patient/v1"), "for=Patient/v1", "for=Patient/v2"),
    (rfi_task(subject="Patient/v1"), "patient=v1", "patient=v2"),
    (rfi_task(code="rfi"), "code=urn:gateway:task-type|rfi", "code=urn:gateway:task-type|safety-action"),
    (rfi_task(start="2026-11-20T09:00:00Z"), "period=ge2026-11-20", "period=lt2026-11-20"),
    (risk_assessment(subject="Patient/v3"), "subject=Patient/v3", "subject=Patient/v4"),
    (risk_assessment(date="2026-11-20"), "date=2026-11-20", "date=2026-11-21"),
    (risk_assessment(date="2026-11-20"), "date=gt2026-11-19", "date=gt2026-11-20"),
    (risk_assessment(date="2026-11-20"), "date=le2026-11-20", "date=le2026-11-19"),
    (risk_assessment(date="2026-11-20"), "date=ne2026-11-21", "date=ne2026-11-20"),
    (risk_assessment(date="2026-11-20"), "date=sa2026-11-19", "date=sa2026-11-20"),
    (risk_assessment(date="2026-11-20"), "date=eb2026-11-21", "date=eb2026-11-20"),
    (risk_assessment(date="2026-11-20"), "date=ap2026-11-20", "date=ap2025"),
    (risk_assessment(risk="imminent"), "risk=imminent", "risk=high"),
    (
        {"resourceType": "CareTeam", "status": "active", "subject": {"reference": "Patient/v5"},
         "participant": [{"member": {"reference": "Organization/police"}}]},
        "subject=Patient/v5&participant=Organization/police", "participant=Organization/health",
    ),
    (
        {"resourceType": "Consent", "status": "active",
         "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
         "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
         "patient": {"reference": "Patient/v6"}, "policyRule": {"text": "FVISS"}},
        "patient=Patient/v6&status=active", "status=inactive",
    ),
    (
        {"resourceType": "EpisodeOfCare", "status": "active", "patient": {"reference": "Patient/v7"},
         "managingOrganization": {"reference": "Organization/police"}, "team": [{"reference": "CareTeam/search-team"}]},
        "patient=Patient/v7&status=active&organization=Organization/police", "organization=Organization/health",
    ),
    (
        {"resourceType": "Flag", "status": "active", "subject": {"reference": "Patient/v8"},
         "code": {"text": "breach of intervention order"}},
        "subject=Patient/v8&status=active", "status=inactive",
    ),
    (
        {"resourceType": "AuditEvent", "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110106"},
         "recorded": "2026-11-21T10:00:00Z", "outcome": "0",
         "agent": [{"who": {"reference": "Organization/health"}, "requestor": True}],
         "source": {"observer": {"reference": "Device/gateway"}},
         "entity": [{"what": {"reference": "Patient/v9"}}]},
        "agent=Organization/health&entity=Patient/v9&date=2026-11-21&outcome=0", "outcome=8",
    ),
]


def written_by_the_ledger(services, resource):
    """AuditEvents are written by the gateway's disclosure ledger only, never over the API."""
    resource = {**resource, "id": str(uuid.uuid4())}
    services.db.run_write(
        lambda conn: services.store.write(conn, dict(resource), "AuditEvent", resource["id"], index_entries(resource), new_id=True)
    )
    return resource


@pytest.mark.parametrize("resource,hit,miss", CASES, ids=[c[1] for c in CASES])
def test_parameter_matches_and_excludes(services, client, resource, hit, miss):
    rtype = resource["resourceType"]
    if rtype == "EpisodeOfCare":  # a case names its team, and the test agency must be on it to see the case
        team = {"resourceType": "CareTeam", "id": "search-team", "status": "active",
                "participant": [{"member": {"reference": "Organization/dfv-logan"}}]}
        assert client.put("/fhir/CareTeam/search-team", content=orjson.dumps(team), headers=FHIR_JSON).status_code == 201
    store = (lambda r: written_by_the_ledger(services, r)) if rtype == "AuditEvent" else (lambda r: post(client, r))
    created = store(resource)
    other = store({**resource})  # a second resource that also matches `hit`
    assert created["id"] in ids(search(client, f"{rtype}?{hit}"))
    assert created["id"] not in ids(search(client, f"{rtype}?{miss}"))
    assert other["id"] in ids(search(client, f"{rtype}?{hit}"))


class TestCombinations:
    def test_repeated_parameters_are_and_and_commas_are_or(self, client):
        a = post(client, rfi_task(owner="Organization/health", status="requested"))
        b = post(client, rfi_task(owner="Organization/housing", status="requested"))
        c = post(client, rfi_task(owner="Organization/health", status="completed"))
        assert ids(search(client, "Task?owner=Organization/health&status=requested")) == sorted([a["id"]])
        assert ids(search(client, "Task?owner=Organization/health,Organization/housing&status=requested")) == sorted([a["id"], b["id"]])
        assert ids(search(client, "Task?status=requested,completed")) == sorted([a["id"], b["id"], c["id"]])

    def test_id_and_last_updated(self, client):
        a = post(client, patient(identifier="LU-1"))
        post(client, patient(identifier="LU-2"))
        assert ids(search(client, f"Patient?_id={a['id']}")) == [a["id"]]
        stamp = a["meta"]["lastUpdated"]
        assert a["id"] in ids(search(client, f"Patient?_lastUpdated=eq{stamp}"))
        assert a["id"] not in ids(search(client, f"Patient?_lastUpdated=gt{stamp}"))
        assert len(ids(search(client, f"Patient?_lastUpdated=ge{stamp}"))) == 2

    def test_security_labels_are_searchable(self, client):
        labelled = patient()
        labelled["meta"] = {"security": [{"system": "urn:gateway:information-category", "code": "health"}]}
        a = post(client, labelled)
        post(client, patient())
        assert ids(search(client, "Patient?_security=urn:gateway:information-category|health")) == [a["id"]]

    def test_every_index_row_of_a_resource_with_many_is_written_and_replaced(self, client):
        # 150 identifiers: more rows than one multi-row INSERT takes (64), and a remainder
        many = patient()
        many["identifier"] = [{"system": "urn:many", "value": f"M-{n}"} for n in range(150)]
        a = post(client, many)
        for n in (0, 63, 64, 127, 128, 149):
            assert ids(search(client, f"Patient?identifier=urn:many|M-{n}")) == [a["id"]]
        a["identifier"] = [{"system": "urn:many", "value": f"N-{n}"} for n in range(70)]
        assert client.put(f"/fhir/Patient/{a['id']}", content=orjson.dumps(a), headers=FHIR_JSON).status_code == 200
        assert ids(search(client, "Patient?identifier=urn:many|M-5")) == []
        assert ids(search(client, "Patient?identifier=urn:many|N-69")) == [a["id"]]

    def test_a_period_open_to_the_end_of_9999_is_stored_and_found(self, client):
        task = rfi_task(start="2026-11-20T09:00:00Z")
        task["executionPeriod"]["end"] = "9999-12-31"  # how many systems say "no end"
        a = post(client, task)
        assert a["id"] in ids(search(client, "Task?period=ge2026-11-20"))
        assert a["id"] in ids(search(client, "Task?period=gt9999-12-30"))  # it runs past that day

    def test_string_contains_and_escaping(self, client):
        a = post(client, patient(family="O'Brien-Smith"))
        post(client, patient(family="Smithers"))
        assert ids(search(client, "Patient?family:contains=brien")) == [a["id"]]
        assert search(client, "Patient?family=%25")["total"] == 0  # a literal %, not a wildcard


class TestPagingAndSorting:
    def test_next_links_walk_every_result_once(self, client):
        created = {post(client, risk_assessment(date=f"2026-11-{d:02d}"))["id"] for d in range(1, 8)}
        seen, url = [], "/fhir/RiskAssessment?_count=3"
        while url:
            page = client.get(url).json()
            assert page["total"] == 7
            seen += [e["resource"]["id"] for e in page.get("entry", [])]
            url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
        assert sorted(seen) == sorted(created) and len(seen) == 7

    def test_previous_link_goes_back(self, client):
        for d in range(1, 5):
            post(client, risk_assessment(date=f"2026-11-{d:02d}"))
        page = client.get("/fhir/RiskAssessment?_count=2&_offset=2").json()
        previous = next(link["url"] for link in page["link"] if link["relation"] == "previous")
        assert "_offset=0" in previous

    def test_sort_by_date_descending(self, client):
        for d in (3, 1, 2):
            post(client, risk_assessment(date=f"2026-11-0{d}"))
        page = search(client, "RiskAssessment?_sort=-date")
        assert [e["resource"]["occurrenceDateTime"] for e in page["entry"]] == ["2026-11-03", "2026-11-02", "2026-11-01"]

    def test_sort_by_last_updated(self, client):
        first = post(client, patient(identifier="S-1"))
        second = post(client, patient(identifier="S-2"))
        assert ids(search(client, "Patient?_sort=-_lastUpdated&_count=1")) == [second["id"]]
        assert ids(search(client, "Patient?_sort=_lastUpdated&_count=1")) == [first["id"]]

    def test_count_zero_gives_total_only_and_total_none_skips_it(self, client):
        post(client, patient())
        post(client, patient())
        counted = search(client, "Patient?_count=0")
        assert counted["total"] == 2 and counted["entry"] == []
        uncounted = search(client, "Patient?_total=none")
        assert "total" not in uncounted and len(uncounted["entry"]) == 2

    def test_post_search_with_form_parameters(self, client):
        a = post(client, patient(identifier="FORM-1"))
        response = client.post("/fhir/Patient/_search", data={"identifier": "FORM-1"})
        assert response.status_code == 200 and ids(response.json()) == [a["id"]]
