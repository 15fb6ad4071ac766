"""Transaction Bundles are all or nothing; batch entries succeed or fail one by one."""

import orjson

from tests.support.resources import FHIR_JSON, patient, rfi_task


def post_bundle(client, bundle):
    return client.post("/fhir", content=orjson.dumps(bundle), headers=FHIR_JSON)


def entry(resource, method="POST", url=None, full_url=None, **request):
    item = {"resource": resource, "request": {"method": method, "url": url or resource["resourceType"], **request}}
    if full_url:
        item["fullUrl"] = full_url
    return item


class TestTransaction:
    def test_creates_everything_and_resolves_urn_uuid_references(self, client):
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                entry(rfi_task(subject="urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"), full_url="urn:uuid:task-1"),
                entry(patient(identifier="TX-1"), full_url="urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"),
            ],
        }
        response = post_bundle(client, bundle)
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["type"] == "transaction-response"
        statuses = [e["response"]["status"] for e in result["entry"]]
        assert statuses == ["201", "201"]
        task_id = result["entry"][0]["response"]["location"].split("/Task/")[1].split("/")[0]
        patient_id = result["entry"][1]["response"]["location"].split("/Patient/")[1].split("/")[0]
        task = client.get(f"/fhir/Task/{task_id}").json()
        assert task["for"]["reference"] == f"Patient/{patient_id}"
        assert client.get(f"/fhir/Task?patient={patient_id}").json()["total"] == 1

    def test_one_bad_entry_rolls_back_every_entry(self, client):
        bad = rfi_task()
        bad["status"] = "not-a-status-code-but-a-number"
        bad["priority"] = 7
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [entry(patient(identifier="TX-2")), entry(bad)]}
        response = post_bundle(client, bundle)
        assert response.status_code == 400
        paths = [e for issue in response.json()["issue"] for e in issue["expression"]]
        assert any(p.startswith("Bundle.entry[1].resource") for p in paths)
        assert client.get("/fhir/Patient?identifier=TX-2").json()["total"] == 0

    def test_a_failing_update_rolls_back_earlier_creates(self, client):
        existing = client.post("/fhir/Patient", content=orjson.dumps(patient()), headers=FHIR_JSON).json()
        stale = {**existing, "gender": "male"}
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                entry(patient(identifier="TX-3")),
                entry(stale, method="PUT", url=f"Patient/{existing['id']}", ifMatch='W/"7"'),
            ],
        }
        response = post_bundle(client, bundle)
        assert response.status_code == 412
        assert response.json()["issue"][0]["expression"] == ["Bundle.entry[1].If-Match"]
        assert client.get("/fhir/Patient?identifier=TX-3").json()["total"] == 0
        assert client.get(f"/fhir/Patient/{existing['id']}").json()["gender"] == "female"

    def test_delete_and_read_entries(self, client):
        doomed = client.post("/fhir/Patient", content=orjson.dumps(patient(identifier="TX-4")), headers=FHIR_JSON).json()
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"request": {"method": "GET", "url": "Patient?identifier=TX-4"}},
                {"request": {"method": "DELETE", "url": f"Patient/{doomed['id']}"}},
            ],
        }
        result = post_bundle(client, bundle).json()
        # FHIR order: DELETE runs before GET, so the search no longer finds it
        assert result["entry"][1]["response"]["status"] == "204"
        assert result["entry"][0]["resource"]["total"] == 0


class TestBatch:
    def test_entries_fail_alone(self, client):
        bad = rfi_task()
        del bad["status"]
        bundle = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [entry(patient(identifier="B-1")), entry(bad), {"request": {"method": "GET", "url": "Patient/missing"}}],
        }
        response = post_bundle(client, bundle)
        assert response.status_code == 200
        result = response.json()
        assert result["type"] == "batch-response"
        assert [e["response"]["status"] for e in result["entry"]] == ["201", "400", "404"]
        assert result["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
        assert client.get("/fhir/Patient?identifier=B-1").json()["total"] == 1
