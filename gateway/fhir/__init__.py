"""FHIR R4B semantics: validation, search parameters, interactions, Bundles, capability."""
