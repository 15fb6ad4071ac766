"""The compiled check (gateway.fhir.acceptance) never accepts what fhir.resources refuses.

It is validation's fast path: what it accepts is stored without fhir.resources seeing it, so a
resource it wrongly accepted would be invalid data in the store. Each test compares the two on
the same input. The whole test suite compares them too (tests/conftest.py checks every resource
an in-process test validates).
"""

import copy
import json
import random
from pathlib import Path

import pytest

from gateway.errors import InvalidResource
from gateway.fhir import acceptance
from gateway.fhir.search_parameters import SUPPORTED_TYPES
from gateway.fhir.validation import validate_resource
from tests.support import resources
from tests.support.resources import fhir_resources_accepts

PROFILES = Path(__file__).resolve().parents[2] / "profiles"
MUTATIONS_PER_RESOURCE = 60


def corpus() -> list[dict]:
    """Valid resources of every kind the tests and the gateway's own conformance files have."""
    found = [json.loads(p.read_text()) for p in sorted(PROFILES.glob("*.json"))]
    found += [
        resources.patient(), resources.rfi_task(), resources.risk_assessment(),
        {
            "resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": "Patient/p1"}, "dateTime": "2026-11-20T10:00:00+10:00",
            "policyRule": {"coding": [{"system": "urn:gateway:legal-scheme", "code": "FVISS"}]},
            "provision": {"type": "permit", "period": {"start": "2026-11-20"},
                          "actor": [{"role": {"text": "recipient"}, "reference": {"reference": "Organization/health"}}]},
        },
        {
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "urn:gateway:factor", "code": "strangulation"}]},
            "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-19",
            "valueCodeableConcept": {"text": "present"},
            "extension": [{"url": "urn:gateway:ext:case", "valueReference": {"reference": "EpisodeOfCare/c1"}},
                          {"url": "urn:gateway:ext:weight", "valueDecimal": 1.25},
                          {"url": "urn:gateway:ext:count", "valueInteger": 3}],
        },
        {
            "resourceType": "CareTeam", "status": "active", "subject": {"reference": "Patient/p1"},
            "participant": [{"role": [{"text": "lead"}], "member": {"reference": "Organization/police"},
                             "period": {"start": "2026-11-01"}}],
        },
        {
            "resourceType": "Flag", "status": "active", "code": {"text": "high risk"},
            "subject": {"reference": "Patient/p1"}, "period": {"start": "2026-11-20T00:00:00Z"},
        },
    ]
    return found


CORPUS = corpus()


@pytest.mark.parametrize("resource", CORPUS, ids=lambda r: r["resourceType"] + "/" + str(r.get("id", "")))
def test_valid_resources_take_the_fast_path(resource):
    assert fhir_resources_accepts(resource)
    assert acceptance.accepts(resource), "a valid, ordinary resource should not need fhir.resources"


REFUSED_HERE_ACCEPTED_THERE = {
    "a required code given only as an extension": lambda r: r.pop("status") and r.update(
        _status={"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}),
    "a contained resource": lambda r: r.update(contained=[{"resourceType": "Organization", "id": "o1", "name": "Police"}]),
    "an element by its Python name": lambda r: r.update(for_fhir=r.pop("for")),
    "a comment element": lambda r: r.update(fhir_comments=["note"]),
}


@pytest.mark.parametrize("change", REFUSED_HERE_ACCEPTED_THERE, ids=list(REFUSED_HERE_ACCEPTED_THERE))
def test_what_the_check_does_not_restate_is_left_to_fhir_resources(change):
    task = resources.rfi_task()
    REFUSED_HERE_ACCEPTED_THERE[change](task)
    assert not acceptance.accepts(task)
    assert fhir_resources_accepts(task)
    assert validate_resource(task, "Task") is task  # accepted all the same, by the slow path


REFUSED_BY_BOTH = {
    "an unknown element": lambda r: r.update(bogus=1),
    "a null in a list of elements": lambda r: r["code"].update(coding=[None]),
    "two elements of one choice": lambda r: r.update(
        input=[{"type": {"text": "t"}, "valueString": "a", "valueBoolean": True}]),
    "a required choice left out": lambda r: r.update(input=[{"type": {"text": "t"}}]),
    "a required code left out": lambda r: r.pop("intent"),
    "a code with a space at its end": lambda r: r.update(status="requested "),
    "an impossible date": lambda r: r.update(authoredOn="2026-02-30T09:00:00Z"),
    "a list where one value belongs": lambda r: r.update(code=[r["code"]]),
    "one value where a list belongs": lambda r: r.update(identifier={"value": "x"}),
    "a number for a string": lambda r: r["for"].update(reference=12),
}


@pytest.mark.parametrize("change", REFUSED_BY_BOTH, ids=list(REFUSED_BY_BOTH))
def test_broken_resources_are_refused_by_both(change):
    task = resources.rfi_task()
    REFUSED_BY_BOTH[change](task)
    assert not fhir_resources_accepts(task), "the case must be invalid for the test to mean anything"
    assert not acceptance.accepts(task)
    with pytest.raises(InvalidResource):
        validate_resource(task, "Task")


def test_a_required_complex_element_is_required():
    consent = next(r for r in CORPUS if r["resourceType"] == "Consent")
    broken = {k: v for k, v in consent.items() if k != "scope"}
    assert not fhir_resources_accepts(broken)
    assert not acceptance.accepts(broken)


# -- mutations: random damage to every corpus resource, compared ------------------------------

ODD_VALUES = ("", " ", "x  y", " x", 0, -1, 2**40, 1.5, True, False, None, [], {}, [None], {"bogus": 1},
              "2026-02-30", "2026-13-01", "2026-11-20T25:00:00Z", "2026-11-20T10:00:00", "not a date",
              "urn:uuid:0c0d", "Patient/", "a\u0000b", "+1", "01", "1e3", [1, 2], [{}], {"extension": []})


def _paths(node, path=()):
    """Every (container, key) in a JSON tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield node, key
            yield from _paths(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield node, index
            yield from _paths(value, path + (index,))


def _mutate(resource: dict, rng: random.Random) -> dict:
    out = copy.deepcopy(resource)
    places = [p for p in _paths(out) if p[1] != "resourceType"]
    container, key = rng.choice(places)
    kind = rng.randrange(7)
    if kind == 0 and isinstance(container, dict):
        del container[key]
    elif kind == 1 and isinstance(container, dict):
        container[rng.choice(("bogus", "_" + str(key), str(key) + "X", "value", "valueString", "extension"))] = (
            rng.choice(ODD_VALUES + ("text",)))
    elif kind == 2:
        container[key] = [container[key]]
    elif kind == 3 and isinstance(container[key], list) and container[key]:
        container[key] = container[key][0]
    elif kind == 4 and isinstance(container, dict) and str(key).startswith("value"):
        container[rng.choice(("valueString", "valueBoolean", "valueCode", "valueInteger"))] = rng.choice(("x", True, 1))
    else:
        container[key] = rng.choice(ODD_VALUES)
    return out


def test_random_damage_is_never_accepted_where_fhir_resources_refuses():
    rng = random.Random(20261124)
    outcomes = {"both accept": 0, "both refuse": 0, "left to fhir.resources": 0}
    for resource in CORPUS:
        for _ in range(MUTATIONS_PER_RESOURCE):
            mutated = _mutate(resource, rng)
            fast, full = acceptance.accepts(mutated), fhir_resources_accepts(mutated)
            assert not (fast and not full), f"accepted what fhir.resources refuses: {json.dumps(mutated)[:2000]}"
            outcomes["both accept" if fast else "left to fhir.resources" if full else "both refuse"] += 1
    # the damage was varied enough to exercise both answers (else the test proves little)
    assert outcomes["both accept"] > 100 and outcomes["both refuse"] > 1000, outcomes


def test_every_supported_type_compiles():
    for resource_type in sorted(SUPPORTED_TYPES):
        acceptance.prepare(resource_type)
        assert not acceptance.accepts({"resourceType": resource_type, "bogus": True})


def test_a_shape_fhir_resources_trips_over_is_an_invalid_resource_not_a_crash():
    task = resources.rfi_task()
    task["_status"] = "1e3"  # fhir.resources parses the string as JSON, then fails on the number
    with pytest.raises(InvalidResource) as caught:
        validate_resource(task, "Task")
    assert caught.value.issues[0].expression == ("Task",)


def _nested_extensions(levels: int) -> dict:
    extension = {"url": "urn:x", "valueString": "leaf"}
    for _ in range(levels):
        extension = {"url": "urn:x", "extension": [extension]}
    return {"resourceType": "Patient", "extension": [extension]}


def test_deep_nesting_is_left_to_fhir_resources_which_gives_up_on_it():
    # fhir.resources spends Python frames on every level and runs out of them (RecursionError)
    # where pydantic-core would not: the check must not accept what it cannot
    deep = _nested_extensions(130)
    assert not acceptance.accepts(deep)
    assert not fhir_resources_accepts(deep)
    with pytest.raises(InvalidResource):
        validate_resource(deep, "Patient")
    ordinary = _nested_extensions(20)
    assert acceptance.accepts(ordinary) and fhir_resources_accepts(ordinary)
