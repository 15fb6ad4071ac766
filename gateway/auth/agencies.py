"""The agency registry: agencies are FHIR Organizations (type, jurisdiction, prescribed status).

They are written to the FHIR store like any other resource, so the case API, the consent
engine and FHIR clients all read the same record.
"""

import re

import orjson
from sqlalchemy import Connection

from gateway.domain.agencies import Agency
from gateway.domain.vocabulary import Jurisdiction, PrescribedStatus
from gateway.errors import InvalidRequest
from gateway.fhir.indexing import index_entries
from gateway.fhir.search import MAX_COUNT, parse_search
from gateway.mappings import organization
from gateway.store.database import Database
from gateway.store.resources import ResourceStore

AGENCY_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # a FHIR id

# Each information-sharing scheme prescribes the entities of its own jurisdiction only.
SCHEME_OF_STATUS = {
    PrescribedStatus.INFORMATION_SHARING_ENTITY: Jurisdiction.VIC,
    PrescribedStatus.RISK_ASSESSMENT_ENTITY: Jurisdiction.VIC,
    PrescribedStatus.CHILD_INFORMATION_SHARING_ENTITY: Jurisdiction.VIC,
    PrescribedStatus.QLD_PRESCRIBED_ENTITY: Jurisdiction.QLD,
    PrescribedStatus.QLD_SPECIALIST_DFV_SERVICE: Jurisdiction.QLD,
}


def check_agency(agency: Agency) -> None:
    if not AGENCY_ID.match(agency.id):
        raise InvalidRequest.at("id", f"'{agency.id}' is not a valid agency id (letters, digits, '-' and '.', at most 64)")
    if not agency.name.strip():
        raise InvalidRequest.at("name", "the agency needs a name")
    for status in sorted(agency.prescribed):
        if SCHEME_OF_STATUS.get(status, agency.jurisdiction) != agency.jurisdiction:
            raise InvalidRequest.at(
                "prescribed",
                f"'{status.value}' is a status under {SCHEME_OF_STATUS[status].value} law; agency {agency.id} is in {agency.jurisdiction.value}",
            )


class AgencyRegistry:
    def __init__(self, db: Database, store: ResourceStore):
        self.db = db
        self.store = store

    def add(self, agency: Agency) -> bool:
        """Register or update the agency; False when it was already registered as it is."""
        check_agency(agency)
        resource = organization.to_fhir(agency)
        return self.db.run_write(lambda conn: self.store.write_if_changed(conn, resource, index_entries(resource)))

    def get(self, conn: Connection, agency_id: str) -> Agency | None:
        if not AGENCY_ID.match(agency_id):
            return None
        found = self.store.current(conn, "Organization", agency_id)
        if found is None or found.deleted:
            return None
        return _agency_or_none(orjson.loads(found.body))

    def find(self, agency_id: str) -> Agency | None:
        return self.db.run_read(lambda conn: self.get(conn, agency_id))

    def all(self) -> list[Agency]:
        return self.db.run_read(self._list)

    def _list(self, conn: Connection) -> list[Agency]:
        found, offset = [], 0
        while True:
            query = parse_search("Organization", [("_count", str(MAX_COUNT)), ("_offset", str(offset))])
            query.with_total = False
            page, _ = self.store.search(conn, query)
            found += [a for v in page if (a := _agency_or_none(orjson.loads(v.body))) is not None]
            if len(page) < MAX_COUNT:
                return sorted(found, key=lambda a: a.id)
            offset += MAX_COUNT


def _agency_or_none(resource: dict) -> Agency | None:
    """Organizations that are not agencies (no agency profile) are not in the registry."""
    if organization.PROFILE not in resource.get("meta", {}).get("profile", []):
        return None
    return organization.from_fhir(resource)
