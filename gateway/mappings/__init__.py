"""Domain <-> FHIR R4B JSON, one module per concept, each a `to_fhir` / `from_fhir` pair.

Mappings produce and read plain JSON dicts (what the store keeps as bytes), not fhir.resources
models: the tests validate every emitted resource with fhir.resources and with HAPI's
validator against profiles/.
"""
