"""Bad input is answered with an OperationOutcome naming the element, never a stack trace."""

import orjson
import pytest

from gateway.fhir.service import FhirService
from tests.support.resources import FHIR_JSON, patient


def outcome(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"] and all(i["diagnostics"] for i in body["issue"])
    return body


def test_malformed_json_is_400(client):
    body = outcome(client.post("/fhir/Patient", content=b'{"resourceType": "Patient",', headers=FHIR_JSON), 400)
    assert "not valid JSON" in body["issue"][0]["diagnostics"]


def test_json_that_is_not_an_object_is_400(client):
    outcome(client.post("/fhir/Patient", content=b"[1, 2]", headers=FHIR_JSON), 400)


def test_wrong_resource_type_for_the_url_is_400(client):
    body = outcome(client.post("/fhir/Task", content=orjson.dumps(patient()), headers=FHIR_JSON), 400)
    assert body["issue"][0]["expression"] == ["resourceType"]
    assert "Patient" in body["issue"][0]["diagnostics"] and "Task" in body["issue"][0]["diagnostics"]


def test_unknown_and_mistyped_elements_name_their_paths(client):
    bad = {**patient(), "favouriteColour": "blue"}
    bad["name"][0]["given"] = "not-a-list-of-strings-but-a-number"
    bad["birthDate"] = "1987-13-45"
    body = outcome(client.post("/fhir/Patient", content=orjson.dumps(bad), headers=FHIR_JSON), 400)
    paths = {e for issue in body["issue"] for e in issue["expression"]}
    assert "Patient.favouriteColour" in paths
    assert "Patient.birthDate" in paths
    assert any(p.startswith("Patient.name[0].given") for p in paths)


def test_missing_required_element_is_named(client):
    task = {"resourceType": "Task", "intent": "order"}
    body = outcome(client.post("/fhir/Task", content=orjson.dumps(task), headers=FHIR_JSON), 400)
    assert any("Task.status" in e for issue in body["issue"] for e in issue.get("expression", []))


def test_unknown_resource_type_is_404(client):
    outcome(client.get("/fhir/Spaceship"), 404)
    outcome(client.post("/fhir/Spaceship", content=b'{"resourceType":"Spaceship"}', headers=FHIR_JSON), 404)
    outcome(client.get("/fhir/Medication/1"), 404)  # real FHIR, not served here


def test_unknown_id_is_404(client):
    outcome(client.get("/fhir/Patient/does-not-exist"), 404)


def test_unsupported_search_parameter_and_modifier_are_400(client):
    outcome(client.get("/fhir/Patient?hairColour=red"), 400)
    outcome(client.get("/fhir/Patient?identifier:text=x"), 400)
    outcome(client.get("/fhir/Patient?general-practitioner.name=x"), 400)
    outcome(client.get("/fhir/Patient?_count=lots"), 400)
    body = outcome(client.get("/fhir/RiskAssessment?date=yesterday"), 400)
    assert body["issue"][0]["expression"] == ["date"]


def test_method_not_allowed_is_405(client):
    outcome(client.patch("/fhir/Patient/1", content=b"[]", headers=FHIR_JSON), 405)
    outcome(client.delete("/fhir/metadata"), 405)


def test_wrong_content_type_is_415(client):
    response = client.post("/fhir/Patient", content=orjson.dumps(patient()), headers={"Content-Type": "application/xml"})
    body = outcome(response, 415)
    assert body["issue"][0]["expression"] == ["Content-Type"]


def test_bundle_that_is_not_transaction_or_batch_is_422(client):
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": []}
    body = outcome(client.post("/fhir", content=orjson.dumps(bundle), headers=FHIR_JSON), 422)
    assert body["issue"][0]["expression"] == ["Bundle.type"]


def test_unknown_endpoint_is_an_outcome_too(client):
    outcome(client.get("/nowhere"), 404)


def test_a_trailing_slash_is_redirected_to_the_interaction_without_it(client):
    response = client.get("/fhir/Patient/", follow_redirects=False)
    assert response.status_code == 307 and response.headers["location"].endswith("/fhir/Patient")


def test_another_method_on_a_fhir_path_is_405_naming_the_allowed_ones(client):
    response = client.patch("/fhir/Patient/p1", content=b"{}", headers=FHIR_JSON)
    outcome(response, 405)
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD", "PUT", "DELETE"}


@pytest.fixture
def small_limit_client(services, client):
    services.settings.max_body_bytes = 1000  # read on each request
    return client


def test_body_over_the_limit_is_413_and_nothing_is_stored(small_limit_client):
    big = patient()
    big["name"][0]["text"] = "x" * 2000
    outcome(small_limit_client.post("/fhir/Patient", content=orjson.dumps(big), headers=FHIR_JSON), 413)
    assert small_limit_client.get("/fhir/Patient?_count=0").json()["total"] == 0


def test_chunked_body_over_the_limit_is_413(small_limit_client):
    chunks = (b'{"resourceType":"Patient","name":[{"text":"' + b"x" * 600, b"y" * 600 + b'"}]}')
    response = small_limit_client.post("/fhir/Patient", content=iter(chunks), headers=FHIR_JSON)
    outcome(response, 413)


def test_unexpected_failure_is_500_with_correlation_id_and_no_trace(client, monkeypatch, caplog):
    def explode(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(FhirService, "read", explode)  # each request's service is made for its caller
    response = client.get("/fhir/Patient/x", headers={"X-Request-ID": "abc-123"})
    body = outcome(response, 500)
    assert "abc-123" in body["issue"][0]["diagnostics"]
    assert "disk on fire" not in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"] == "abc-123"
    assert any("abc-123" in r.getMessage() for r in caplog.records if r.name == "gateway.errors")
