"""A resource that claims one of the gateway's profiles must keep its rules, or be refused (422)."""

import copy

import orjson
import pytest

from gateway.demo import scenario
from gateway.mappings import patient, risk_assessment, safety_action
from tests.support.resources import FHIR_JSON


@pytest.fixture(scope="module")
def worked():
    return scenario.run().case


def post(client, resource):
    body = {k: v for k, v in resource.items() if k != "id"}
    return client.post(f"/fhir/{resource['resourceType']}", content=orjson.dumps(body), headers=FHIR_JSON)


def refused(response, *fragments):
    assert response.status_code == 422, response.text
    issues = response.json()["issue"]
    text = " ".join(i["diagnostics"] for i in issues)
    for fragment in fragments:
        assert fragment in text, text
    return issues


def test_what_the_mappings_emit_is_accepted(client, worked):
    assert post(client, safety_action.to_fhir(worked.actions[0], worked.id, "vs-mai")).status_code == 201
    assert post(client, patient.to_fhir(worked.people[0])).status_code == 201


def test_an_action_without_its_owner_is_refused_naming_the_rule(client, worked):
    task = safety_action.to_fhir(worked.actions[0], worked.id, "vs-mai")
    del task["owner"]
    issues = refused(post(client, task), "FvSafetyAction", "Task.owner", "required")
    assert issues[0]["expression"] == ["Task.owner"] and issues[0]["code"] == "processing"


def test_an_action_without_a_due_date_is_refused(client, worked):
    task = safety_action.to_fhir(worked.actions[0], worked.id, "vs-mai")
    del task["restriction"]["period"]["end"]
    refused(post(client, task), "Task.restriction.period.end")


def test_a_fixed_code_and_a_pattern_are_enforced(client, worked):
    task = safety_action.to_fhir(worked.actions[0], worked.id, "vs-mai")
    task["intent"] = "order"
    task["code"]["coding"][0]["code"] = "rfi"
    refused(post(client, task), "must be 'plan'", "safety-action")


def test_a_code_outside_a_required_binding_is_refused(client, worked):
    resources = risk_assessment.to_fhir(worked.risk_history()[0], "ra-x", "vs-mai", worked.id)
    assessment = copy.deepcopy(resources[0])
    assessment["basis"] = assessment["basis"][:1]
    assessment["prediction"][0]["qualitativeRisk"]["coding"][0]["code"] = "very-high"
    refused(post(client, assessment), "RiskAssessment.prediction.qualitativeRisk", "not in the required value set")


def test_a_missing_required_extension_is_refused(client, worked):
    person = patient.to_fhir(worked.people[0])
    person["extension"] = [e for e in person["extension"] if not e["url"].endswith("/subject-role")]
    refused(post(client, person), "subject-role")


def test_an_extension_value_outside_its_binding_is_refused(client, worked):
    person = patient.to_fhir(worked.people[0])
    person["extension"][0]["valueCoding"]["code"] = "bystander"
    refused(post(client, person), "bystander")


def test_an_unknown_profile_is_refused(client):
    resource = {"resourceType": "Patient", "meta": {"profile": ["https://example.org/StructureDefinition/nope"]}}
    refused(post(client, resource), "does not know")


def test_a_transaction_entry_breaking_a_profile_rolls_back_and_names_the_entry(client, worked):
    good = patient.to_fhir(worked.people[1])
    bad = safety_action.to_fhir(worked.actions[0], worked.id, "vs-mai")
    del bad["owner"]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": good, "request": {"method": "PUT", "url": f"Patient/{good['id']}"}},
        {"resource": bad, "request": {"method": "PUT", "url": f"Task/{bad['id']}"}},
    ]}
    response = client.post("/fhir", content=orjson.dumps(bundle), headers=FHIR_JSON)
    issues = refused(response, "Task.owner")
    assert issues[0]["expression"] == ["Bundle.entry[1].resource.owner"]
    assert client.get(f"/fhir/Patient/{good['id']}").status_code == 404
