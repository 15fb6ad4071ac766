"""The CapabilityStatement is valid R4B and generated from the server's own tables."""

import orjson
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from gateway.fhir.capability import capability_statement
from gateway.fhir.search_parameters import COMMON, RESOURCE_PARAMETERS


def test_capability_statement_is_valid_r4b():
    statement = CapabilityStatement.model_validate(orjson.loads(capability_statement("http://x/fhir", "1.0")))
    assert statement.fhirVersion == "4.3.0"


def test_every_type_lists_common_and_own_parameters():
    statement = orjson.loads(capability_statement("http://x/fhir", "1.0"))
    for resource in statement["rest"][0]["resource"]:
        names = [p["name"] for p in resource["searchParam"]]
        assert names == [p.name for p in COMMON + RESOURCE_PARAMETERS[resource["type"]]]
        assert len(names) == len(set(names)), f"duplicate search parameter on {resource['type']}"


def test_the_published_capability_statement_is_what_the_server_serves():
    from pathlib import Path

    from gateway.fhir.conformance import load_profiles
    from gateway.fhir.profiles import ProfileRegistry

    profiles_dir = Path(__file__).resolve().parents[2] / "profiles"
    published = orjson.loads((profiles_dir / "CapabilityStatement-gateway.json").read_bytes())
    registry = ProfileRegistry(load_profiles(profiles_dir))
    served = orjson.loads(capability_statement("http://x/fhir", "1.0", registry.supported))
    assert served["rest"] == published["rest"]
    task = next(r for r in served["rest"][0]["resource"] if r["type"] == "Task")
    assert task["supportedProfile"] == sorted(
        ["https://fv-gateway.example.org/fhir/StructureDefinition/fv-rfi", "https://fv-gateway.example.org/fhir/StructureDefinition/fv-safety-action"]
    )
