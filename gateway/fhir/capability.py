"""The CapabilityStatement, generated from the same tables the server runs on.

Listing what the code actually supports (rather than a hand-kept JSON file) keeps /fhir/metadata
honest: a search parameter appears here only if the index and the parser know it.
"""

import orjson

from gateway.fhir.search_parameters import COMMON, RESOURCE_PARAMETERS

INTERACTIONS = ("read", "vread", "update", "delete", "history-instance", "history-type", "create", "search-type")


def supported_profiles(structure_definitions: list[dict]) -> dict[str, list[str]]:
    """Resource type -> the profile URLs the gateway publishes and enforces for it."""
    found: dict[str, list[str]] = {}
    for definition in structure_definitions:
        if definition.get("kind") == "resource" and definition.get("derivation") == "constraint":
            found.setdefault(definition["type"], []).append(definition["url"])
    return {t: sorted(urls) for t, urls in found.items()}


def capability_statement(base_url: str, software_version: str, profiles: dict[str, list[str]] | None = None) -> bytes:
    statement = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-24",
        "kind": "instance",
        "software": {"name": "family-violence interoperability gateway", "version": software_version},
        "implementation": {"description": "FHIR R4B gateway for multi-agency family-violence risk management", "url": base_url},
        "fhirVersion": "4.3.0",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "resource": [_resource(t, params, (profiles or {}).get(t, [])) for t, params in sorted(RESOURCE_PARAMETERS.items())],
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
            }
        ],
    }
    return orjson.dumps(statement)


def _resource(resource_type: str, params, profiles: list[str]) -> dict:
    found = {"type": resource_type}
    if profiles:
        found["supportedProfile"] = profiles
    if resource_type == "Patient":  # the export of one person's record, consent-checked like every read
        found["operation"] = [{"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"}]
    return found | {
        "interaction": [{"code": code} for code in INTERACTIONS],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": True,
        "conditionalRead": "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
        "searchParam": [
            {"name": p.name, "type": p.type, **({"documentation": p.documentation} if p.documentation else {})}
            for p in COMMON + params
        ],
    }
