"""What the gateway emits conforms to FHIR R4B and to its own profiles, as HAPI's validator sees it.

The HAPI FHIR instance validator (tests/support/hapi.py) loads every StructureDefinition,
CodeSystem, ValueSet and Questionnaire in profiles/. Every resource of the worked case
(gateway/demo/scenario.py, through gateway.mappings.case_resources), and a Patient with the
optional extensions the worked case leaves out, must validate with no errors and no undefined
extensions, and so must every file in profiles/. Resources broken on purpose show that the
profiles bite: the rules the domain depends on most (a safety action's owner, an RFI's due date,
a risk level from risk-level, a person's role), and then every cardinality of at least one, every
required binding and every fixed code or pattern of every profile, each broken alone in a resource
that conforms, must give an error that names it.
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict

import pytest

from gateway.demo import scenario
from gateway.domain.people import Person
from gateway.domain.rfi import WithheldItem
from gateway.domain.vocabulary import ExcludedInformation, IndigenousStatus, InformationCategory, SubjectRole, WithheldReason
from gateway.mappings import patient, rfi
from gateway.mappings.case_resources import case_resources
from gateway.mappings.common import extension_url, profile_url
from tests.support import cases
from tests.support.hapi import PROFILES

NOT_A_CODE = "not-a-code"


def _load_profiles() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(PROFILES.glob("*.json"))}


PROFILE_FILES = _load_profiles()
STRUCTURE_DEFINITIONS = {r["url"]: r for r in PROFILE_FILES.values() if r["resourceType"] == "StructureDefinition"}
RESOURCE_PROFILES = {url: sd for url, sd in STRUCTURE_DEFINITIONS.items() if sd["kind"] == "resource"}
EXTENSIONS = {url: sd for url, sd in STRUCTURE_DEFINITIONS.items() if sd["type"] == "Extension"}


def _beyond_the_worked_case() -> list[dict]:
    """What the mappings emit that the worked case does not have, so that every extension is used."""
    person = Person(
        "vs-aunty-june",
        SubjectRole.ADULT_VICTIM_SURVIVOR,
        "June Walker",
        age=58,
        indigenous_status=IndigenousStatus.ABORIGINAL,
        cultural_identity="Kamilaroi; speaks Gamilaraay at home",
    )
    asked = cases.request("rfi-answered")  # as the holder answers it, labelled, and as the gateway keeps it, one item withheld
    answer = cases.answered(asked, (InformationCategory.CRIMINAL_HISTORY, "Open investigation", frozenset({ExcludedInformation.PREJUDICE_INVESTIGATION})))
    kept = cases.request("rfi-withheld")
    kept.respond([], [WithheldItem(InformationCategory.CRIMINAL_HISTORY, "puv-dan", cases.NOW, WithheldReason.EXCLUDED_INFORMATION)])
    return [patient.to_fhir(person), rfi.to_fhir(answer, cases.CASE_ID), rfi.to_fhir(kept, cases.CASE_ID)]


@pytest.fixture(scope="module")
def resources() -> list[dict]:
    """Every resource of the worked case, in the order case_resources gives them, and one more."""
    return case_resources(scenario.run().case, scenario.AGENCIES) + _beyond_the_worked_case()


def _name(resource: dict) -> str:
    profiles = resource.get("meta", {}).get("profile", [])
    claimed = f" ({', '.join(p.rsplit('/', 1)[-1] for p in profiles)})" if profiles else ""
    return f"{resource.get('resourceType')}/{resource.get('id')}{claimed}"


def _report(failures: dict[str, list[dict]]) -> str:
    lines = [f"{len(failures)} resource(s) with errors:"]
    for name, issues in failures.items():
        lines.append(f"  {name}:")
        lines += [f"    [{i['severity']}] {i['location']}: {i['message']}" for i in issues]
    return "\n".join(lines)


def _claiming(resources: list[dict], url: str) -> list[dict]:
    return [r for r in resources if url in r.get("meta", {}).get("profile", [])]


# --- everything the gateway emits, and profiles/ itself, is valid ---------------------------------


def test_profiles_directory_loads_and_its_snapshots_generate(hapi_validator):
    """HAPI drops a differential it cannot use without failing validation, so this comes first."""
    assert hapi_validator.problems == []
    # the validator loads the definitions; the CapabilityStatement is validated, not loaded
    definitions = ("StructureDefinition", "CodeSystem", "ValueSet", "Questionnaire")
    assert hapi_validator.loaded == sum(r["resourceType"] in definitions for r in PROFILE_FILES.values())


def _profile_file_errors(hapi_validator, resource: dict) -> list[dict]:
    """HAPI's errors for a file of profiles/.

    An extension definition is validated with its contexts as `fhirpath` rather than `element`:
    for an `element` context HAPI 8.8 (core 6.7.9) checks the element in each FHIR version from the
    definition's to its own, takes "4.3" and "4.3.0" for different versions, and asks its package
    cache (~/.fhir/packages) and then the package servers for hl7.fhir.r4b.core; offline that fails
    as "Error generating Snapshot: Unable to resolve package id hl7.fhir.r4b.core#null", whatever
    the definition says, and ends its validation. With `fhirpath` contexts the rest is validated in
    full (with a warning that `element` would be the right type, which the file has); the
    generator checks that every context is an element of FHIR R4B.
    """
    if resource["resourceType"] == "StructureDefinition" and resource["type"] == "Extension":
        resource = copy.deepcopy(resource)
        for context in resource["context"]:
            context["type"] = "fhirpath"
    return hapi_validator.errors(resource)


def test_every_file_in_profiles_is_valid(hapi_validator):
    failures = {
        name: errors for name, resource in PROFILE_FILES.items() if (errors := _profile_file_errors(hapi_validator, resource))
    }
    assert not failures, _report(failures)


def test_a_broken_extension_definition_is_reported(hapi_validator):
    """Validated as above, an extension definition's mistakes are still found."""
    definition = copy.deepcopy(EXTENSIONS[extension_url("subject-role")])
    value = definition["differential"]["element"][-1]
    value["type"] = [{"code": "Codeing"}]
    errors = _profile_file_errors(hapi_validator, definition)
    assert any("Extension.value[x]" in e["message"] for e in errors), errors


def test_every_resource_the_mappings_emit_conforms(hapi_validator, resources):
    failures: dict[str, list[dict]] = defaultdict(list)
    for resource in resources:
        for issue in hapi_validator.validate(resource):
            # an undefined extension is only "information" to HAPI; here it is a mistake
            if issue["severity"] in ("error", "fatal") or "Unknown extension" in issue["message"]:
                failures[_name(resource)].append(issue)
    assert not failures, _report(failures)


def test_every_profile_and_extension_is_used(resources):
    """So that the test above covers them all, and nothing in profiles/ is dead."""
    claimed = {url for r in resources for url in r.get("meta", {}).get("profile", [])}
    assert set(RESOURCE_PROFILES) - claimed == set()
    assert claimed - set(RESOURCE_PROFILES) == set(), "a resource claims a profile that is not in profiles/"

    def urls(node):
        if isinstance(node, dict):
            yield from (e["url"] for e in node.get("extension", ()))
            for value in node.values():
                yield from urls(value)
        elif isinstance(node, list):
            for value in node:
                yield from urls(value)

    used = {url for r in resources for url in urls(r)}
    assert set(EXTENSIONS) - used == set()


# --- the rules the brief names, broken one at a time ---------------------------------------------


def _first(resources: list[dict], profile: str) -> dict:
    return copy.deepcopy(_claiming(resources, profile_url(profile))[0])


def _assert_rejected(errors: list[dict], location: str, *words: str) -> None:
    assert any(
        e["location"].startswith(location) and all(w in e["message"] for w in words) for e in errors
    ), f"expected an error at {location} naming {words}; got:\n" + "\n".join(
        f"  {e['location']}: {e['message']}" for e in errors
    )


def test_a_safety_action_needs_an_owner(hapi_validator, resources):
    task = _first(resources, "fv-safety-action")
    assert hapi_validator.errors(task) == []
    del task["owner"]
    _assert_rejected(hapi_validator.errors(task), "Task.owner", "minimum required = 1", "fv-safety-action")


def test_an_rfi_needs_a_due_date(hapi_validator, resources):
    task = _first(resources, "fv-rfi")
    assert hapi_validator.errors(task) == []
    task["restriction"]["period"] = {"start": task["authoredOn"]}  # a period, but no end
    _assert_rejected(hapi_validator.errors(task), "Task.restriction.period.end", "minimum required = 1", "fv-rfi")


def test_a_risk_level_must_be_in_risk_level(hapi_validator, resources):
    assessment = _first(resources, "fv-risk-assessment")
    assert hapi_validator.errors(assessment) == []
    assessment["prediction"][0]["qualitativeRisk"]["coding"][0]["code"] = "extreme"
    _assert_rejected(
        hapi_validator.errors(assessment),
        "RiskAssessment.prediction[0].qualitativeRisk",
        "extreme",
        "ValueSet/risk-level",
    )


def test_a_person_needs_a_subject_role(hapi_validator, resources):
    person = _first(resources, "fv-person")
    assert hapi_validator.errors(person) == []
    person["extension"] = [e for e in person["extension"] if e["url"] != extension_url("subject-role")]
    if not person["extension"]:
        del person["extension"]
    _assert_rejected(hapi_validator.errors(person), "Patient", "subjectRole", "fv-person")


# --- every rule of every profile, broken one at a time -------------------------------------------


def _steps(path: str) -> list[str]:
    return path.split(".")[1:]


def _key(node: dict, step: str) -> str | None:
    """The JSON property of `step` in `node` (value[x] -> valueCodeableConcept), if present."""
    if step.endswith("[x]"):
        stem = step[:-3]
        return next((k for k in node if k.startswith(stem) and k[len(stem):][:1].isupper()), None)
    return step if step in node else None


def _parents(node, steps: list[str]) -> list[dict]:
    """The objects that hold the last step of `steps`, going through lists."""
    if isinstance(node, list):
        return [p for item in node for p in _parents(item, steps)]
    if len(steps) == 1:
        return [node]
    key = _key(node, steps[0])
    return _parents(node[key], steps[1:]) if key else []


def _values(resource: dict, path: str) -> list:
    found = []
    for parent in _parents(resource, _steps(path)):
        key = _key(parent, _steps(path)[-1])
        if key is not None:
            value = parent[key]
            found += value if isinstance(value, list) else [value]
    return found


def _remove(resource: dict, path: str) -> None:
    for parent in _parents(resource, _steps(path)):
        key = _key(parent, _steps(path)[-1])
        if key is not None:
            del parent[key]


def _rules(kind: str):
    """(profile, element) for each differential element of `kind`, as pytest params."""
    for url, sd in RESOURCE_PROFILES.items():
        for element in sd["differential"]["element"]:
            if kind == "required" and element.get("min", 0) >= 1:
                yield pytest.param(url, element, id=element["id"])
            elif kind == "bound" and "binding" in element:
                yield pytest.param(url, element, id=element["id"])
            elif kind == "fixed" and ({"fixedCode", "patternCodeableConcept"} & set(element)):
                yield pytest.param(url, element, id=element["id"])


def _subject(resources: list[dict], url: str, path: str) -> dict:
    """A conforming resource of the profile that has something at `path`."""
    candidates = [r for r in _claiming(resources, url) if _values(r, path)]
    assert candidates, f"the worked case has no {url.rsplit('/', 1)[-1]} resource with {path}"
    return copy.deepcopy(candidates[0])


@pytest.mark.parametrize(("url", "element"), list(_rules("required")))
def test_each_required_element_is_enforced(hapi_validator, resources, url, element):
    if "sliceName" in element:
        extension = element["type"][0]["profile"][0]
        resource = next(
            copy.deepcopy(r)
            for r in _claiming(resources, url)
            if any(e["url"] == extension for e in _values(r, element["path"]))
        )
        for parent in _parents(resource, _steps(element["path"])):
            parent["extension"] = [e for e in parent.get("extension", []) if e["url"] != extension]
        expected = (f"Slice '{element['id']}'", "a matching slice is required")
    else:
        resource = _subject(resources, url, element["path"])
        _remove(resource, element["path"])
        expected = (f"{element['path']}: minimum required = 1",)
    errors = hapi_validator.errors(resource)
    assert any(all(w in e["message"] for w in expected) for e in errors), (expected, errors)


def _break_codes(node) -> int:
    """Sets every code under a Coding or CodeableConcept to NOT_A_CODE; how many were set."""
    codings = node.get("coding", [node] if "code" in node else [])
    for coding in codings:
        coding["code"] = NOT_A_CODE
    return len(codings)


@pytest.mark.parametrize(("url", "element"), list(_rules("bound")))
def test_each_required_binding_is_enforced(hapi_validator, resources, url, element):
    resource = _subject(resources, url, element["path"])
    assert sum(_break_codes(value) for value in _values(resource, element["path"])) > 0
    errors = hapi_validator.errors(resource)
    value_set = element["binding"]["valueSet"]
    assert any(NOT_A_CODE in e["message"] and value_set in e["message"] for e in errors), errors


@pytest.mark.parametrize("url", sorted(u for u, sd in EXTENSIONS.items() if "binding" in sd["differential"]["element"][-1]))
def test_each_extension_binding_is_enforced(hapi_validator, resources, url):
    def extensions(node):
        if isinstance(node, dict):
            yield from (e for e in node.get("extension", ()) if e["url"] == url)
            for value in node.values():
                yield from extensions(value)
        elif isinstance(node, list):
            for value in node:
                yield from extensions(value)

    resource = copy.deepcopy(next(r for r in resources if any(extensions(r))))
    for extension in extensions(resource):
        _break_codes(extension["valueCoding"])
    value_set = EXTENSIONS[url]["differential"]["element"][-1]["binding"]["valueSet"]
    errors = hapi_validator.errors(resource)
    assert any(NOT_A_CODE in e["message"] and value_set in e["message"] for e in errors), errors


@pytest.mark.parametrize(("url", "element"), list(_rules("fixed")))
def test_each_fixed_value_and_pattern_is_enforced(hapi_validator, resources, url, element):
    resource = _subject(resources, url, element["path"])
    (parent,) = _parents(resource, _steps(element["path"]))
    key = _steps(element["path"])[-1]
    if "fixedCode" in element:
        parent[key] = "proposal"  # a valid Task and CarePlan intent, but not the profile's
        expected = f"fixed to '{element['fixedCode']}'"
    else:
        _break_codes(parent[key])
        expected = element["patternCodeableConcept"]["coding"][0]["code"]
    errors = hapi_validator.errors(resource)
    assert any(e["location"].startswith(element["path"]) and expected in e["message"] for e in errors), errors
