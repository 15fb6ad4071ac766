"""The HAPI FHIR validator the tests use to check what the gateway emits (tests/support/hapi.py).

These check the validator itself: that it accepts a valid R4B resource, reports the kinds of
mistakes the gateway could make, loads the project's conformance resources, and that the
files in profiles/ load and validate cleanly.
"""

import json
from pathlib import Path

import pytest

from tests.support.hapi import HapiValidator

VALID_PATIENT = {
    "resourceType": "Patient",
    "id": "example",
    "meta": {"lastUpdated": "2024-05-01T10:00:00Z"},
    "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "12345"}],
    "active": True,
    "name": [{"use": "official", "family": "Chalmers", "given": ["Peter", "James"]}],
    "telecom": [{"system": "phone", "value": "(03) 5555 6473", "use": "work"}],
    "gender": "male",
    "birthDate": "1974-12-25",
    "address": [{"use": "home", "line": ["534 Erewhon St"], "city": "PleasantVille"}],
}


def _locations(issues):
    return [issue["location"] for issue in issues]


def test_valid_patient_has_no_errors(hapi_validator):
    assert hapi_validator.errors(VALID_PATIENT) == []


def test_task_without_status_and_intent_is_invalid(hapi_validator):
    errors = hapi_validator.errors({"resourceType": "Task", "id": "t1"})
    locations = _locations(errors)
    assert any("Task.status" in location for location in locations), errors
    assert any("Task.intent" in location for location in locations), errors


def test_unknown_profile_is_an_error(hapi_validator):
    patient = {
        **VALID_PATIENT,
        "meta": {"profile": ["http://example.org/fhir/StructureDefinition/no-such-profile"]},
    }
    errors = hapi_validator.errors(patient)
    assert errors, "an unknown meta.profile must be an error"
    assert any("no-such-profile" in error["message"] for error in errors), errors


def test_unknown_element_is_an_error(hapi_validator):
    errors = hapi_validator.errors({**VALID_PATIENT, "favouriteColour": "blue"})
    assert any("favouriteColour" in error["message"] for error in errors), errors


def test_bad_input_gets_a_fatal_issue_and_the_validator_carries_on(hapi_validator):
    issues = hapi_validator.validate({"id": "no-resource-type"})
    assert [issue["severity"] for issue in issues] == ["fatal"], issues
    assert hapi_validator.errors(VALID_PATIENT) == []


def test_profiles_directory_loads_without_problems(hapi_validator):
    """Every conformance resource in profiles/ parsed, has a url, is not a duplicate, and its
    snapshot generates without errors (HAPI would otherwise ignore a bad differential)."""
    assert hapi_validator.problems == []


# Every file of profiles/ validating is checked in test_hapi_conformance.py.


# -- the loading of conformance resources, with a profiles directory of its own ---------------

CODE_SYSTEM = {
    "resourceType": "CodeSystem",
    "id": "risk-level",
    "url": "http://example.org/test/CodeSystem/risk-level",
    "name": "RiskLevel",
    "status": "draft",
    "caseSensitive": True,
    "content": "complete",
    "concept": [{"code": "low", "display": "Low"}, {"code": "high", "display": "High"}],
}
VALUE_SET = {
    "resourceType": "ValueSet",
    "id": "risk-level",
    "url": "http://example.org/test/ValueSet/risk-level",
    "name": "RiskLevel",
    "status": "draft",
    "compose": {"include": [{"system": CODE_SYSTEM["url"]}]},
}
TASK_PROFILE = {
    "resourceType": "StructureDefinition",
    "id": "test-task",
    "url": "http://example.org/test/StructureDefinition/test-task",
    "name": "TestTask",
    "status": "draft",
    "fhirVersion": "4.3.0",
    "kind": "resource",
    "abstract": False,
    "type": "Task",
    "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Task",
    "derivation": "constraint",
    "differential": {
        "element": [  # in the order of the base definition, or HAPI drops them
            {
                "id": "Task.businessStatus",
                "path": "Task.businessStatus",
                "min": 1,
                "binding": {"strength": "required", "valueSet": VALUE_SET["url"]},
            },
            {"id": "Task.description", "path": "Task.description", "min": 1},
        ]
    },
}
MISORDERED_PROFILE = {
    **TASK_PROFILE,
    "id": "misordered",
    "url": "http://example.org/test/StructureDefinition/misordered",
    "name": "Misordered",
    "differential": {"element": list(reversed(TASK_PROFILE["differential"]["element"]))},
}
QUESTIONNAIRE = {
    "resourceType": "Questionnaire",
    "id": "intake",
    "url": "http://example.org/test/Questionnaire/intake",
    "status": "draft",
    "item": [{"linkId": "safe", "text": "Do you feel safe?", "type": "boolean", "required": True}],
}
CAPABILITY_STATEMENT = {"resourceType": "CapabilityStatement", "status": "draft"}  # not loaded


@pytest.fixture(scope="module")
def own_profiles_validator(tmp_path_factory, hapi_validator):
    # hapi_validator first: skip/fail when Java or the jars are missing, as it does
    directory = tmp_path_factory.mktemp("profiles")
    files = {
        "CodeSystem-risk-level.json": CODE_SYSTEM,
        "ValueSet-risk-level.json": VALUE_SET,
        "nested/StructureDefinition-test-task.json": TASK_PROFILE,
        "nested/StructureDefinition-misordered.json": MISORDERED_PROFILE,
        "Questionnaire-intake.json": QUESTIONNAIRE,
        "CapabilityStatement.json": CAPABILITY_STATEMENT,
    }
    for name, resource in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(resource), encoding="utf-8")
    (directory / "broken.json").write_text("{not json", encoding="utf-8")
    validator = HapiValidator(hapi_validator.jar_dir, directory).start()
    yield validator
    validator.stop()


def _profiled_task(**fields):
    return {
        "resourceType": "Task",
        "meta": {"profile": [TASK_PROFILE["url"]]},
        "status": "requested",
        "intent": "order",
        **fields,
    }


def test_conformance_resources_are_loaded_and_problems_reported(own_profiles_validator):
    validator = own_profiles_validator
    assert validator.loaded == 5  # not the CapabilityStatement, not broken.json
    problems = {}
    for problem in validator.problems:
        problems.setdefault(Path(problem["file"]).name, []).append(problem["message"])
    assert set(problems) == {"broken.json", "StructureDefinition-misordered.json"}, problems
    assert any(
        "No match found for Task.description" in message
        for message in problems["StructureDefinition-misordered.json"]
    ), problems


def test_project_profile_and_terminology_are_enforced(own_profiles_validator):
    validator = own_profiles_validator
    status = {"coding": [{"system": CODE_SYSTEM["url"], "code": "high"}]}
    assert validator.errors(_profiled_task(businessStatus=status, description="x")) == []

    errors = validator.errors(_profiled_task())
    assert {"Task.businessStatus", "Task.description"} <= set(_locations(errors)), errors

    unknown = {"coding": [{"system": CODE_SYSTEM["url"], "code": "extreme"}]}
    errors = validator.errors(_profiled_task(businessStatus=unknown, description="x"))
    assert any("extreme" in error["message"] for error in errors), errors


def test_project_questionnaire_is_used_for_responses(own_profiles_validator):
    response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": QUESTIONNAIRE["url"],
        "status": "completed",
        "item": [{"linkId": "safe", "answer": [{"valueBoolean": True}]}],
    }
    assert own_profiles_validator.errors(response) == []
    errors = own_profiles_validator.errors({**response, "item": [{"linkId": "nope"}]})
    assert any("nope" in error["message"] for error in errors), errors
