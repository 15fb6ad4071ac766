"""Persistence: versioned FHIR resources, their search index and data keys (SQLAlchemy Core),
and which case each resource belongs to (case_links), which an agency's view of the store
(agency_store) uses to show each agency only its cases."""
