"""The CapabilityStatement, generated from the same tables the server runs on.

Listing what the code actually supports (rather than a hand-kept JSON file) keeps /fhir/metadata
honest: a search parameter appears here only if the index and the parser know it.
"""

import orjson

from gateway.fhir.search_parameters import COMMON, RESOURCE_PARAMETERS

INTERACTIONS = ("read", "vread", "update", "delete", "history-instance", "history-type", "create", "search-type")


def capability_statement(base_url: str, software_version: str) -> bytes:
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
                "resource": [_resource(t, params) for t, params in sorted(RESOURCE_PARAMETERS.items())],
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
            }
        ],
    }
    return orjson.dumps(statement)


def _resource(resource_type: str, params) -> dict:
    return {
        "type": resource_type,
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
