"""The FHIR interactions: create, read, vread, update, delete, history, search.

Each public (async) method is one database job, i.e. one transaction (and a read whose records
were decided by the release check writes that decision's AuditEvent before it answers: see
`recorded`). Validation runs before
the job is handed to the database, so the writer spends its time on database work only. The
`*_in` methods take an open connection so that a transaction Bundle can run many interactions
in one all-or-nothing job.

`services.fhir` is the gateway's own, unrestricted service. A request works through
`for_caller(policy)`: the caller's scopes are checked on every interaction before any I/O
(`policy.require`), and its store is the agency's view of the data (gateway.store.agency_store),
so every read, search, history and write of a request is limited to what its agency may see.
"""

import re
from contextlib import nullcontext
from dataclasses import dataclass, field
from email.utils import format_datetime
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import Connection

from gateway.errors import BusinessRuleViolation, Gone, InvalidRequest, NotFound, PreconditionFailed
from gateway.fhir import bundles, dates
from gateway.fhir.ids import new_id
from gateway.fhir.indexing import IndexEntry, index_entries
from gateway.fhir.profiles import ProfileRegistry
from gateway.fhir.search import SearchQuery, parse_search
from gateway.fhir.validation import parse_json, require_supported_type, require_valid_id, validate_resource
from gateway.fhir.withheld import Screened, Withheld
from gateway.store.agency_store import AgencyStore
from gateway.store.database import Database
from gateway.store.resources import ResourceStore, StoredVersion, every_match

_ETAG = re.compile(r'^(W/)?"?(\d+)"?$')
# Patient/$everything: the types about a person the gateway stores, and the parameter naming the person
COMPARTMENT = (
    ("EpisodeOfCare", "patient"), ("CareTeam", "subject"), ("Consent", "patient"), ("RiskAssessment", "subject"),
    ("Observation", "subject"), ("Flag", "subject"), ("CarePlan", "subject"), ("Task", "for"), ("QuestionnaireResponse", "subject"),
)
EXPORT_PAGE = 500


@dataclass
class FhirResponse:
    status: int
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


class FhirService:
    def __init__(
        self, db: Database, store: ResourceStore | AgencyStore, profiles: ProfileRegistry | None = None, policy=None,
        release=None, screen=None,
    ):
        self.db = db
        self.store = store
        self.profiles = profiles
        self.policy = policy  # None: the gateway itself; else has require(resource_type, interaction)
        self.release = release  # gateway.cases.record_release.RecordRelease, which makes each caller's `screen`
        self.screen = screen  # None: the gateway itself; else screen(conn, versions) and record(conn, interaction)

    def for_caller(self, policy) -> "FhirService":
        """This service as one request's caller may use it (`policy`: gateway.auth.policy.AccessPolicy)."""
        store = AgencyStore(self.store, policy.agency_id, policy.refused)
        screen = self.release.for_agency(policy.agency_id) if self.release is not None else None
        return FhirService(self.db, store, self.profiles, policy, self.release, screen)

    def _allow(self, resource_type: str, interaction: str) -> None:
        if self.policy is not None:
            self.policy.require(resource_type, interaction)

    def accept(self, data: dict, resource_type: str | None, path: str = "") -> dict:
        """Valid R4B, and true to every profile it claims (422 naming the rule if not)."""
        validate_resource(data, resource_type, path)
        if self.profiles is not None and data.get("meta", {}).get("profile"):
            issues = self.profiles.check(data, path)
            if issues:
                raise BusinessRuleViolation(f"{data['resourceType']} does not meet the profile it claims", issues)
        return data

    # -- one transaction each (awaited by the API) ---------------------------------------------

    async def create(self, resource_type: str, body: bytes, base: str, if_none_exist: str | None = None) -> FhirResponse:
        require_supported_type(resource_type)
        self._allow(resource_type, "create")
        data = self.accept(parse_json(body), resource_type)
        index = index_entries(data)  # computed here, so the single SQLite writer does SQL only
        if not if_none_exist:
            return await self.db.write(lambda conn: self.create_in(conn, data, base, index=index))
        async with self.recorded("create"):  # a match is answered as a read of it would be
            return await self.db.write(lambda conn: self.create_in(conn, data, base, if_none_exist, index=index))

    async def update(self, resource_type: str, resource_id: str, body: bytes, base: str, if_match: str | None) -> FhirResponse:
        require_supported_type(resource_type)
        self._allow(resource_type, "update")
        data = self.accept(parse_json(body), resource_type)
        expected = parse_etag(if_match)
        index = index_entries(data)
        return await self.db.write(lambda conn: self.update_in(conn, resource_id, data, base, expected, index))

    async def delete(self, resource_type: str, resource_id: str) -> FhirResponse:
        require_supported_type(resource_type)
        self._allow(resource_type, "delete")
        return await self.db.write(lambda conn: self.delete_in(conn, resource_type, resource_id))

    async def read(self, resource_type: str, resource_id: str, base: str) -> FhirResponse:
        require_supported_type(resource_type)
        self._allow(resource_type, "read")
        async with self.recorded("read"):
            return await self.db.read(lambda conn: self.read_in(conn, resource_type, resource_id, base))

    async def vread(self, resource_type: str, resource_id: str, version: str, base: str) -> FhirResponse:
        require_supported_type(resource_type)
        self._allow(resource_type, "read")
        if not version.isdigit():
            raise NotFound(f"{resource_type}/{resource_id} has no version '{version}'")
        async with self.recorded("vread"):
            return await self.db.read(lambda conn: self.vread_in(conn, resource_type, resource_id, int(version), base))

    async def search(self, resource_type: str, params: list[tuple[str, str]], base: str) -> FhirResponse:
        require_supported_type(resource_type)
        self._allow(resource_type, "search")
        query = parse_search(resource_type, params)
        async with self.recorded("search-type"):
            return await self.db.read(lambda conn: self.search_in(conn, query, params, base))

    async def history(
        self, resource_type: str, resource_id: str | None, params: list[tuple[str, str]], base: str
    ) -> FhirResponse:
        require_supported_type(resource_type)
        self._allow(resource_type, "read" if resource_id is not None else "search")
        count, offset, since = _history_params(params)

        def job(conn: Connection) -> tuple[Screened, int]:
            found, total = self.store.history(conn, resource_type, resource_id, since, offset, count)
            return self._screened(conn, found), total

        async with self.recorded("history-instance" if resource_id is not None else "history-type"):
            screened, total = await self.db.read(job)
        if resource_id is not None and total == 0:
            raise NotFound(f"{resource_type}/{resource_id} does not exist")
        path = f"{base}/{resource_type}" + (f"/{resource_id}" if resource_id else "") + "/_history"
        links = _page_links(path, params, offset, count, total, len(screened.released) + len(screened.withheld))
        return FhirResponse(200, bundles.history(base, screened.released, total, links, screened.withheld))

    async def everything(self, patient_id: str, base: str) -> FhirResponse:
        """Patient/$everything: the person and every record about them the caller may be released.

        The export of one person's record: the types the caller's scopes let it search, each read
        whole (paged internally, never cut short) and screened like any read, in one AuditEvent."""
        require_valid_id("Patient", patient_id)
        self._allow("Patient", "read")
        kinds = [(kind, param) for kind, param in COMPARTMENT if self._may(kind, "search")]

        def job(conn: Connection) -> Screened:
            found = self.store.current(conn, "Patient", patient_id)
            if found is None or found.deleted:
                raise NotFound(f"Patient/{patient_id} does not exist")
            versions = [found]
            for kind, param in kinds:
                query = parse_search(kind, [(param, f"Patient/{patient_id}"), ("_sort", "_lastUpdated")])
                versions += every_match(self.store, conn, query, EXPORT_PAGE)
            return self._screened(conn, versions)

        async with self.recorded("operation"):
            screened = await self.db.read(job)
        return FhirResponse(200, bundles.searchset(base, screened.released, len(screened.released), {}, screened.withheld))

    def _may(self, resource_type: str, interaction: str) -> bool:
        return self.policy is None or self.policy.caller.scopes.allows(resource_type, interaction)

    # -- what a caller is released (gateway.cases.record_release) ---------------------------------

    def _screened(self, conn: Connection, found: list[StoredVersion]) -> Screened:
        return self.screen.screen(conn, found) if self.screen is not None else Screened(found, [])

    def _released(self, conn: Connection, found: StoredVersion) -> StoredVersion:
        screened = self._screened(conn, [found])
        if screened.withheld:
            raise Withheld.of(screened.withheld[0])
        return screened.released[0]

    def recorded(self, interaction: str):
        """Record what the body decided before its response leaves (AgencyRelease.recorded)."""
        return self.screen.recorded(self.db, interaction) if self.screen is not None else nullcontext()

    # -- inside a caller's transaction -------------------------------------------------------

    def create_in(
        self,
        conn: Connection,
        data: dict,
        base: str,
        if_none_exist: str | None = None,
        resource_id: str | None = None,
        index: list[IndexEntry] | None = None,
    ) -> FhirResponse:
        resource_type = data["resourceType"]
        self._allow(resource_type, "create")
        if if_none_exist:
            existing = self._conditional_match(conn, resource_type, if_none_exist)
            if existing is not None:  # released as a read of it would be (403 if withheld)
                return _resource_response(200, self._released(conn, existing), base)
        written = self.store.write(
            conn, data, resource_type, resource_id or new_id(), index if index is not None else index_entries(data),
            method="POST", new_id=resource_id is None,
        )
        return _resource_response(201, written, base, location=True)

    def update_in(
        self, conn: Connection, resource_id: str, data: dict, base: str, if_match: int | None, index: list[IndexEntry] | None = None
    ) -> FhirResponse:
        resource_type = data["resourceType"]
        self._allow(resource_type, "update")
        require_valid_id(resource_type, resource_id)
        if data.get("id") != resource_id:
            raise InvalidRequest.at(
                f"{resource_type}.id", f"The resource id ({data.get('id')!r}) must match the id in the URL ({resource_id!r})"
            )
        entries = index if index is not None else index_entries(data)
        written = self.store.write(conn, data, resource_type, resource_id, entries, if_match, method="PUT")
        return _resource_response(201 if written.version_id == 1 else 200, written, base, location=True)

    def delete_in(self, conn: Connection, resource_type: str, resource_id: str) -> FhirResponse:
        self._allow(resource_type, "delete")
        current = self.store.current(conn, resource_type, resource_id)
        if current is None:
            raise NotFound(f"{resource_type}/{resource_id} does not exist")
        if not current.deleted:  # deleting twice is harmless: no second version
            current = self.store.write(conn, None, resource_type, resource_id, method="DELETE")
        return FhirResponse(204, None, {"ETag": current.etag})

    def read_in(self, conn: Connection, resource_type: str, resource_id: str, base: str) -> FhirResponse:
        self._allow(resource_type, "read")
        found = self.store.current(conn, resource_type, resource_id)
        if found is None:
            raise NotFound(f"{resource_type}/{resource_id} does not exist")
        if found.deleted:
            raise Gone(f"{resource_type}/{resource_id} was deleted")
        return _resource_response(200, self._released(conn, found), base)

    def vread_in(self, conn: Connection, resource_type: str, resource_id: str, version: int, base: str) -> FhirResponse:
        found = self.store.version(conn, resource_type, resource_id, version)
        if found is None:
            raise NotFound(f"{resource_type}/{resource_id} has no version {version}")
        if found.deleted:
            raise Gone(f"Version {version} of {resource_type}/{resource_id} is a deletion")
        return _resource_response(200, self._released(conn, found), base)

    def search_in(self, conn: Connection, query: SearchQuery, params: list[tuple[str, str]], base: str) -> FhirResponse:
        self._allow(query.resource_type, "search")
        found, total = self.store.search(conn, query)
        screened = self._screened(conn, found)
        links = _page_links(f"{base}/{query.resource_type}", params, query.offset, query.count, total, len(found))
        return FhirResponse(200, bundles.searchset(base, screened.released, total, links, screened.withheld))

    def _conditional_match(self, conn: Connection, resource_type: str, criteria: str) -> StoredVersion | None:
        # Two identical retries racing must not both create: hold a lock named by the criteria.
        self.db.advisory_lock(conn, f"{resource_type}?{criteria}")
        query = parse_search(resource_type, parse_qsl(criteria, keep_blank_values=True))
        query.count, query.offset, query.with_total = 2, 0, False
        found, _ = self.store.search(conn, query)
        if len(found) > 1:
            raise PreconditionFailed.at("If-None-Exist", f"If-None-Exist matched more than one {resource_type}")
        return found[0] if found else None


def parse_etag(value: str | None) -> int | None:
    if value is None:
        return None
    match = _ETAG.match(value.strip())
    if not match:
        raise InvalidRequest.at("If-Match", f"If-Match must be an ETag like W/\"3\", not {value!r}")
    return int(match.group(2))


def _resource_response(status: int, version: StoredVersion, base: str, location: bool = False) -> FhirResponse:
    headers = {
        "ETag": version.etag,
        "Last-Modified": format_datetime(dates.from_micros(version.last_updated), usegmt=True),
    }
    if location:
        headers["Location"] = f"{base}/{version.resource_type}/{version.resource_id}/_history/{version.version_id}"
    return FhirResponse(status, version.body, headers)


def _history_params(params: list[tuple[str, str]]) -> tuple[int, int, int | None]:
    count, offset, since = 50, 0, None
    for key, value in params:
        if key in ("_count", "_offset"):
            if not value.isdigit():
                raise InvalidRequest.at(key, f"{key} must be a non-negative whole number")
            count, offset = (min(int(value), 1000), offset) if key == "_count" else (count, int(value))
        elif key == "_since":
            try:
                since = dates.date_range(value)[0]
            except ValueError as exc:
                raise InvalidRequest.at("_since", str(exc)) from None
        else:
            raise InvalidRequest.at(key, f"'{key}' is not a history parameter (use _count, _offset, _since)")
    return count, offset, since


def _page_links(path: str, params, offset: int, count: int, total: int | None, returned: int) -> dict[str, str]:
    kept = [(k, v) for k, v in params if k not in ("_offset", "_count")]

    def url(at: int) -> str:
        return f"{path}?{urlencode(kept + [('_count', str(count)), ('_offset', str(at))])}"

    links = {"self": url(offset)}
    more = (offset + count < total) if total is not None else returned == count
    if more and count:
        links["next"] = url(offset + count)
    if offset > 0:
        links["previous"] = url(max(offset - count, 0))
    return links
