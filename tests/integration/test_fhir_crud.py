"""FHIR REST create, read, vread, update, delete and history, on SQLite and PostgreSQL."""

import orjson

from tests.support.resources import FHIR_JSON, patient


def create(client, resource, headers=None):
    response = client.post(f"/fhir/{resource['resourceType']}", content=orjson.dumps(resource), headers={**FHIR_JSON, **(headers or {})})
    return response


class TestCreateAndRead:
    def test_create_answers_201_with_location_etag_and_the_stored_resource(self, client):
        response = create(client, patient())
        assert response.status_code == 201
        body = response.json()
        assert body["meta"]["versionId"] == "1"
        assert response.headers["etag"] == 'W/"1"'
        assert response.headers["location"] == f"http://gateway.test/fhir/Patient/{body['id']}/_history/1"
        assert response.headers["content-type"].startswith("application/fhir+json")

    def test_read_returns_what_create_stored(self, client):
        created = create(client, patient(family="Okafor")).json()
        read = client.get(f"/fhir/Patient/{created['id']}")
        assert read.status_code == 200
        assert read.json() == created
        assert read.json()["name"][0]["family"] == "Okafor"
        assert read.headers["etag"] == 'W/"1"'
        assert "last-modified" in read.headers

    def test_prefer_return_minimal_sends_no_body(self, client):
        response = create(client, patient(), {"Prefer": "return=minimal"})
        assert response.status_code == 201 and response.content == b""
        assert client.get(response.headers["location"].split("/_history")[0].replace("http://gateway.test", "")).status_code == 200

    def test_client_supplied_meta_version_is_replaced(self, client):
        resource = patient()
        resource["meta"] = {"versionId": "99", "security": [{"system": "urn:gateway:category", "code": "health"}]}
        body = create(client, resource).json()
        assert body["meta"]["versionId"] == "1"
        assert body["meta"]["security"] == [{"system": "urn:gateway:category", "code": "health"}]


class TestUpdate:
    def test_update_with_matching_if_match_makes_version_2(self, client):
        created = create(client, patient()).json()
        created["gender"] = "other"
        response = client.put(f"/fhir/Patient/{created['id']}", content=orjson.dumps(created), headers={**FHIR_JSON, "If-Match": 'W/"1"'})
        assert response.status_code == 200
        assert response.json()["meta"]["versionId"] == "2"
        assert client.get(f"/fhir/Patient/{created['id']}").json()["gender"] == "other"

    def test_stale_if_match_is_412_and_changes_nothing(self, client):
        created = create(client, patient()).json()
        rid = created["id"]
        created["gender"] = "male"
        assert client.put(f"/fhir/Patient/{rid}", content=orjson.dumps(created), headers=FHIR_JSON).status_code == 200
        created["gender"] = "unknown"
        stale = client.put(f"/fhir/Patient/{rid}", content=orjson.dumps(created), headers={**FHIR_JSON, "If-Match": 'W/"1"'})
        assert stale.status_code == 412
        assert stale.json()["resourceType"] == "OperationOutcome"
        assert stale.json()["issue"][0]["expression"] == ["If-Match"]
        assert client.get(f"/fhir/Patient/{rid}").json()["gender"] == "male"

    def test_put_to_a_new_id_creates_it(self, client):
        resource = {**patient(), "id": "client-chosen-1"}
        response = client.put("/fhir/Patient/client-chosen-1", content=orjson.dumps(resource), headers=FHIR_JSON)
        assert response.status_code == 201
        assert client.get("/fhir/Patient/client-chosen-1").status_code == 200

    def test_body_id_must_match_url(self, client):
        resource = {**patient(), "id": "a"}
        response = client.put("/fhir/Patient/b", content=orjson.dumps(resource), headers=FHIR_JSON)
        assert response.status_code == 400
        assert response.json()["issue"][0]["expression"] == ["Patient.id"]


class TestDeleteAndHistory:
    def test_delete_keeps_history_and_read_is_gone(self, client):
        created = create(client, patient(family="First")).json()
        rid = created["id"]
        created["name"][0]["family"] = "Second"
        client.put(f"/fhir/Patient/{rid}", content=orjson.dumps(created), headers=FHIR_JSON)
        assert client.delete(f"/fhir/Patient/{rid}").status_code == 204
        assert client.get(f"/fhir/Patient/{rid}").status_code == 410
        assert client.delete(f"/fhir/Patient/{rid}").status_code == 204  # idempotent

        history = client.get(f"/fhir/Patient/{rid}/_history").json()
        assert history["type"] == "history" and history["total"] == 3
        methods = [e["request"]["method"] for e in history["entry"]]
        assert methods == ["DELETE", "PUT", "POST"]
        assert "resource" not in history["entry"][0]
        assert history["entry"][1]["resource"]["name"][0]["family"] == "Second"

        first = client.get(f"/fhir/Patient/{rid}/_history/1")
        assert first.status_code == 200 and first.json()["name"][0]["family"] == "First"
        assert client.get(f"/fhir/Patient/{rid}/_history/3").status_code == 410
        assert client.get(f"/fhir/Patient/{rid}/_history/9").status_code == 404

    def test_deleted_resources_leave_search_results(self, client):
        rid = create(client, patient(identifier="DEL-1")).json()["id"]
        assert client.get("/fhir/Patient?identifier=DEL-1").json()["total"] == 1
        client.delete(f"/fhir/Patient/{rid}")
        assert client.get("/fhir/Patient?identifier=DEL-1").json()["total"] == 0

    def test_type_history_pages_newest_first(self, client):
        for i in range(3):
            create(client, patient(identifier=f"H-{i}"))
        page = client.get("/fhir/Patient/_history?_count=2").json()
        assert page["total"] == 3 and len(page["entry"]) == 2
        assert page["entry"][0]["resource"]["identifier"][0]["value"] == "H-2"
        next_url = next(link["url"] for link in page["link"] if link["relation"] == "next")
        rest = client.get(next_url).json()
        assert [e["resource"]["identifier"][0]["value"] for e in rest["entry"]] == ["H-0"]

    def test_history_of_unknown_resource_is_404(self, client):
        assert client.get("/fhir/Patient/nope/_history").status_code == 404


class TestConditionalCreate:
    def test_retry_with_if_none_exist_does_not_duplicate(self, client):
        headers = {"If-None-Exist": "identifier=urn:vic-police:person|RETRY-1"}
        first = create(client, patient(identifier="RETRY-1"), headers)
        second = create(client, patient(identifier="RETRY-1"), headers)
        assert first.status_code == 201 and second.status_code == 200
        assert first.json()["id"] == second.json()["id"]
        assert client.get("/fhir/Patient?identifier=RETRY-1").json()["total"] == 1

    def test_if_none_exist_matching_two_is_412(self, client):
        create(client, patient(family="Twin"))
        create(client, patient(family="Twin"))
        response = create(client, patient(family="Twin"), {"If-None-Exist": "family=Twin"})
        assert response.status_code == 412


class TestConcurrentWrites:
    def test_a_write_that_lost_a_race_is_409_and_changes_nothing(self, client, monkeypatch):
        from gateway.store import resources

        created = create(client, patient()).json()
        rid = created["id"]
        created["gender"] = "male"
        client.put(f"/fhir/Patient/{rid}", content=orjson.dumps(created), headers=FHIR_JSON)
        real_first = resources._SELECT_CURRENT.first

        def stale_view(conn, params):  # as if another writer committed version 2 after we looked
            version, updated = real_first(conn, params)
            return (version - 1, updated)

        monkeypatch.setattr(resources._SELECT_CURRENT, "first", stale_view)
        created["gender"] = "other"
        response = client.put(f"/fhir/Patient/{rid}", content=orjson.dumps(created), headers=FHIR_JSON)
        assert response.status_code == 409
        assert response.json()["issue"][0]["code"] == "conflict"
        monkeypatch.undo()
        current = client.get(f"/fhir/Patient/{rid}")
        assert current.json()["gender"] == "male" and current.headers["etag"] == 'W/"2"'


class TestConformanceResources:
    def test_profiles_are_served_and_searchable(self, client):
        questionnaire = client.get("/fhir/Questionnaire/level-3c")
        assert questionnaire.status_code == 200
        assert questionnaire.json()["url"].endswith("/Questionnaire/level-3c")
        found = client.get("/fhir/CodeSystem", params={"url": "https://fv-gateway.example.org/fhir/CodeSystem/risk-level"}).json()
        assert found["total"] == 1 and found["entry"][0]["resource"]["concept"][0]["code"] == "imminent"
        assert client.get("/fhir/ValueSet/practitioner-risk-level").status_code == 200

    def test_publishing_again_writes_nothing_new(self, services):
        from gateway.fhir import conformance

        resources = conformance.load_profiles(services.settings.profiles_dir)
        assert conformance.publish(services.db, services.store, resources) == 0
