"""The store as one agency's systems may use it: case data of the cases the agency is on the team of.

Every request from an agency system reads and writes through an `AgencyStore` built for its
agency (FhirService.for_caller, CaseService.for_agency), so a route cannot forget the check:

- a read, vread or instance history of a resource that belongs to a case (gateway.store.case_links)
  is refused unless the agency is on the team of one of its cases;
- searches and type histories leave out what the agency may not see, in the page and in the
  total alike, so they never show that another agency's case exists;
- a write is checked before and after (medplum's way): the agency must see the current version,
  may name only cases it is on the team of, may add to a case only people and teams it can
  already see, may write about a person only if it can see that person, and must still see what
  it wrote (an agency cannot write a case, or change a team, that leaves it out).

`ResourceStore` itself is the unrestricted store: the gateway's own work (case commands after
their check, RFI brokering, the ledger, publishing conformance resources) uses it.
Refusals raise Forbidden and are reported to `refused(reason, detail)`, which the API records
as security events; a search that names a resource the agency may not see is filtered, and
reported the same way.
"""

from typing import Callable, Iterable

import orjson
from sqlalchemy import Connection

from gateway.errors import Forbidden
from gateway.fhir.indexing import IndexEntry
from gateway.fhir.search import ReferenceMatch, SearchQuery, TokenMatch
from gateway.store import case_links
from gateway.store.case_links import CASE, PERSON, TEAM
from gateway.store.resources import ResourceStore, StoredVersion, content_of

MAX_NAMED_CHECKED = 5  # references in one search whose visibility is checked for the record

Refused = Callable[[str, str], None]


class AgencyStore:
    def __init__(self, store: ResourceStore, agency_id: str, refused: Refused = lambda reason, detail: None):
        self.store = store
        self.agency_id = agency_id
        self.refused = refused

    @property
    def keyring(self):
        return self.store.keyring

    # -- reads --------------------------------------------------------------------------------

    def current(self, conn: Connection, resource_type: str, resource_id: str) -> StoredVersion | None:
        self._require_visible(conn, resource_type, resource_id, "read")
        return self.store.current(conn, resource_type, resource_id)

    def version(self, conn: Connection, resource_type: str, resource_id: str, version_id: int) -> StoredVersion | None:
        self._require_visible(conn, resource_type, resource_id, "read")
        return self.store.version(conn, resource_type, resource_id, version_id)

    def history(
        self, conn: Connection, resource_type: str, resource_id: str | None, since: int | None, offset: int, count: int
    ) -> tuple[list[StoredVersion], int]:
        if resource_id is not None:
            self._require_visible(conn, resource_type, resource_id, "read the history of")
            return self.store.history(conn, resource_type, resource_id, since, offset, count)
        return self.store.history(conn, resource_type, None, since, offset, count, visible_to=self.agency_id)

    def search(self, conn: Connection, query: SearchQuery) -> tuple[list[StoredVersion], int | None]:
        self._report_named(conn, query)
        return self.store.search(conn, query, visible_to=self.agency_id)

    # -- writes -------------------------------------------------------------------------------

    def write(
        self,
        conn: Connection,
        resource: dict | None,
        resource_type: str,
        resource_id: str,
        index: Iterable[IndexEntry] = (),
        if_match: int | None = None,
        method: str = "PUT",
        new_id: bool = False,
    ) -> StoredVersion:
        if not new_id:
            self._require_visible(conn, resource_type, resource_id, "change")
        links = None
        if resource is not None:
            links = case_links.links_of(resource_type, resource_id, resource)
            self._check_links(conn, resource_type, resource_id, links)
        written = self.store.write(
            conn, resource, resource_type, resource_id, index, if_match, method, new_id, links=links, holder=self.agency_id
        )
        if resource is not None and resource_type in (CASE, TEAM) and not self._may_see(conn, resource_type, resource_id):
            raise self._refuse(
                "not-on-team", f"write {resource_type}/{resource_id}: it would leave agency {self.agency_id} off the case's team",
                f"Agency {self.agency_id} cannot write {resource_type}/{resource_id} so that it is no longer on the case's team",
            )
        return written

    def write_if_changed(self, conn: Connection, resource: dict, index: Iterable[IndexEntry]) -> bool:
        resource_type, resource_id = resource["resourceType"], resource["id"]
        current = self.current(conn, resource_type, resource_id)
        if current is not None and not current.deleted and content_of(orjson.loads(current.body)) == content_of(resource):
            return False
        self.write(conn, dict(resource), resource_type, resource_id, index)
        return True

    # -- the checks ---------------------------------------------------------------------------

    def _check_links(self, conn: Connection, resource_type: str, resource_id: str, links: case_links.Links) -> None:
        for case in links.cases:
            if resource_type == CASE and case == resource_id:
                continue  # checked after the write: the agency must be on the team it wrote
            exists, member = case_links.case_standing(conn, case, self.agency_id)
            if exists and not member:
                raise self._refuse(
                    "not-on-team", f"write {resource_type}/{resource_id}: names EpisodeOfCare/{case}",
                    f"{resource_type}/{resource_id} names EpisodeOfCare/{case}, a case agency {self.agency_id} is not on the team of",
                )
        named = [(PERSON, p) for p in links.people] + [(TEAM, t) for t in links.teams]
        if links.person is not None:
            named.append((PERSON, links.person))
        for kind, named_id in named:
            if not self._may_see(conn, kind, named_id):
                raise self._refuse(
                    "not-on-team", f"write {resource_type}/{resource_id}: names {kind}/{named_id}",
                    f"{resource_type}/{resource_id} names {kind}/{named_id}, which belongs to a case agency {self.agency_id} "
                    "is not on the team of",
                )

    def _require_visible(self, conn: Connection, resource_type: str, resource_id: str, action: str) -> None:
        if not self._may_see(conn, resource_type, resource_id):
            raise self._refuse(
                "not-on-team", f"{action} {resource_type}/{resource_id}",
                f"Agency {self.agency_id} is not on the team of the case {resource_type}/{resource_id} belongs to",
            )

    def _may_see(self, conn: Connection, resource_type: str, resource_id: str) -> bool:
        return case_links.may_see(conn, resource_type, resource_id, self.agency_id)

    def _report_named(self, conn: Connection, query: SearchQuery) -> None:
        """A search that names another team's resource (by reference or _id) is filtered, and reported."""
        named: list[tuple[str, str]] = []
        for criterion in query.criteria:
            for match in criterion.alternatives:
                if isinstance(match, ReferenceMatch):
                    named += [tuple(ref.split("/", 1)) for ref in match.exact if "/" in ref]
                elif criterion.param.index_name == "_id" and isinstance(match, TokenMatch) and match.code:
                    named.append((query.resource_type, match.code))
        for kind, named_id in named[:MAX_NAMED_CHECKED]:
            if not self._may_see(conn, kind, named_id):
                self.refused("filtered", f"search {query.resource_type}: names {kind}/{named_id}; left out of the results")
                return

    def _refuse(self, reason: str, detail: str, message: str) -> Forbidden:
        self.refused(reason, detail)
        return Forbidden(message)

