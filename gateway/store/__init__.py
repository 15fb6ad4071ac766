"""Persistence: versioned FHIR resources, their search index and data keys (SQLAlchemy Core)."""
