"""Publish the conformance resources of profiles/ (StructureDefinitions, CodeSystems, ValueSets,
Questionnaires) into the store at start-up, so /fhir serves and searches them like any resource.

A resource is written only when its content differs from the stored version, and processes
starting together take turns, so restarts and replicas leave one version per real change.
"""

import logging
from pathlib import Path

import orjson

from gateway.fhir.indexing import index_entries
from gateway.fhir.search_parameters import SUPPORTED_TYPES
from gateway.fhir.validation import validate_resource
from gateway.store.database import Database
from gateway.store.resources import ResourceStore

log = logging.getLogger("gateway.conformance")
CONFORMANCE_TYPES = ("StructureDefinition", "CodeSystem", "ValueSet", "Questionnaire")


def load_profiles(directory: Path) -> list[dict]:
    found = []
    for path in sorted(directory.rglob("*.json")):
        resource = orjson.loads(path.read_bytes())
        if resource.get("resourceType") in CONFORMANCE_TYPES and resource["resourceType"] in SUPPORTED_TYPES:
            found.append(validate_resource(resource))
    return found


def publish(db: Database, store: ResourceStore, resources: list[dict]) -> int:
    """Write the resources whose content changed; return how many were written."""

    def job(conn) -> int:
        db.advisory_lock(conn, "publish-conformance-resources")  # processes starting together take turns
        return sum(store.write_if_changed(conn, r, index_entries(r)) for r in resources)

    written = db.run_write(job)
    if written:
        log.info("published %d conformance resources", written)
    return written
