"""Versioned FHIR resources: write a version with its search index, read, history, search.

Every version's body is the canonical JSON bytes (with id and meta filled in) encrypted at rest;
reads decrypt those bytes and serve them as they are, never re-serialising a model.
"""

from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Iterator, NamedTuple

import orjson
from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from gateway.errors import Conflict, PreconditionFailed
from gateway.fhir import dates
from gateway.fhir.indexing import MAX_INDEXED_CHARS, IndexEntry
from gateway.fhir.search import SearchQuery
from gateway.fhir.validation import require_valid_id
from gateway.store import case_links, change_marks, deferred, search_sql
from gateway.store.encryption import DataKeyring, version_aad
from gateway.store.prepared import Prepared, PreparedIn, PreparedRows
from gateway.store.schema import resource_versions as rv
from gateway.store.schema import resources as r
from gateway.store.schema import search_index as si

@dataclass(frozen=True)
class StoredVersion:
    resource_type: str
    resource_id: str
    version_id: int
    last_updated: int  # UTC microseconds
    deleted: bool
    method: str
    body: bytes | None  # None for a delete marker
    holder: str | None = None  # the agency whose system wrote this version; None: the gateway

    @property
    def etag(self) -> str:
        return f'W/"{self.version_id}"'


class ResourceStore:
    def __init__(self, keyring: DataKeyring):
        self.keyring = keyring

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
        links: "case_links.Links | None" = None,
        holder: str | None = None,
        base: StoredVersion | None = None,
        keeps_links: bool = False,
    ) -> StoredVersion:
        """Write the next version (or a delete marker when `resource` is None), its search index
        its case links (gateway.store.case_links; a delete keeps them) and, for the types that
        make up a case's release context, its change marks (gateway.store.change_marks).

        `new_id` says the caller just minted the id (a create), so there is no current version
        to look up or index rows to remove. `links`: already derived from `resource`. `holder`:
        the agency whose system writes it (None: the gateway's own write). `base`: the current
        version as the caller read it in this transaction, so it is not looked up again (a
        concurrent change still fails the write) and, when the new content names the same case
        and person, the case links are left as they are. `keeps_links`: the caller knows the new
        content names the cases and person `base` names (an RFI stays on its case), so neither
        is read for links.
        """
        require_valid_id(resource_type, resource_id)
        if base is not None:
            current = (base.version_id, base.last_updated)
        else:
            current = None if new_id else _SELECT_CURRENT.first(conn, {"t": resource_type, "i": resource_id})
        current_version, current_updated = current if current else (0, 0)
        if if_match is not None and (current is None or current_version != if_match):
            found = "it does not exist" if current is None else f"the current version is {current_version}"
            raise PreconditionFailed.at("If-Match", f"If-Match asked for version {if_match} but {found}")
        version = current_version + 1
        # lastUpdated never goes backwards for one resource, even if the clock does
        now = max(dates.now_micros(), current_updated + 1)
        body = key_id = ciphertext = None
        if resource is not None:
            body, key_id, ciphertext = self._sealed(conn, resource, resource_type, resource_id, version, now)
        self._advance(conn, resource_type, resource_id, current_version, version, now, resource is None)
        _INSERT_VERSION.execute(
            conn,
            {
                "resource_type": resource_type,
                "resource_id": resource_id,
                "version_id": version,
                "last_updated": now,
                "method": method,
                "key_id": key_id,
                "body": ciphertext,
                "holder": holder,
            },
        )
        if resource_type in change_marks.WATCHED:
            index = tuple(index) if resource is not None else ()
            change_marks.mark_write(conn, resource_type, resource_id, index, existed=current is not None)
        self._reindex(conn, resource_type, resource_id, index if resource is not None else (), clear=current is not None)
        if resource is not None and not (keeps_links and base is not None):
            previous = orjson.loads(base.body) if base is not None and base.body is not None else None
            case_links.relink(conn, resource_type, resource_id, resource, fresh=current is None, links=links, previous=previous)
        return StoredVersion(resource_type, resource_id, version, now, resource is None, method, body, holder)

    def create_at_job_end(self, conn: Connection, resource: dict, resource_type: str, index: Iterable[IndexEntry]) -> StoredVersion:
        """Create `resource` (its id just minted) as `write` would, but insert its rows when the
        write job ends (gateway.store.deferred): for records the job never reads back and that no
        case links or change marks follow (the ledger's AuditEvents)."""
        if resource_type in change_marks.WATCHED or resource_type not in case_links.NEVER_CASE_DATA:
            raise ValueError(f"{resource_type} is read back within write jobs; it is written at once")
        resource_id = resource["id"]
        require_valid_id(resource_type, resource_id)
        now = dates.now_micros()
        body, key_id, ciphertext = self._sealed(conn, resource, resource_type, resource_id, 1, now)
        deferred.append(conn, _INSERT_RESOURCES, [(resource_type, resource_id, 1, now, False)])
        deferred.append(conn, _INSERT_VERSIONS, [(resource_type, resource_id, 1, now, "POST", key_id, ciphertext, None)])
        deferred.append(conn, _INSERT_INDEX, [(resource_type, resource_id, *e) for e in _index_rows(index)])
        return StoredVersion(resource_type, resource_id, 1, now, False, "POST", body)

    def _sealed(self, conn, resource: dict, resource_type: str, resource_id: str, version: int, now: int) -> tuple[bytes, str, bytes]:
        """Fill in the version's id and meta; return its canonical bytes, key id and ciphertext."""
        resource["id"] = resource_id
        resource["meta"] = {**resource.get("meta", {}), "versionId": str(version), "lastUpdated": dates.instant_text(now)}
        body = orjson.dumps(resource)
        return (body, *self.keyring.encrypt(conn, body, version_aad(resource_type, resource_id, version)))

    def write_if_changed(self, conn: Connection, resource: dict, index: Iterable[IndexEntry]) -> bool:
        """Write `resource` as a new version unless the current one already says the same.

        For publishers that rewrite whole records (profiles at start-up, a case after each form):
        one version per real change, not one per save.
        """
        resource_type, resource_id = resource["resourceType"], resource["id"]
        current = self.current(conn, resource_type, resource_id)
        if current is not None and not current.deleted and content_of(orjson.loads(current.body)) == content_of(resource):
            return False
        self.write(conn, dict(resource), resource_type, resource_id, index)
        return True

    def _advance(self, conn, resource_type, resource_id, current_version, version, now, deleted) -> None:
        if current_version == 0:
            row = dict(resource_type=resource_type, resource_id=resource_id, version_id=version, last_updated=now, deleted=deleted)
            try:
                _INSERT_RESOURCE.execute(conn, row).close()
            except conn.dialect.dbapi.IntegrityError:  # the job that raised is rolled back
                raise Conflict(f"{resource_type}/{resource_id} was created concurrently; retry") from None
            return
        moved = _ADVANCE_RESOURCE.rowcount(
            conn, {"t": resource_type, "i": resource_id, "old": current_version, "v": version, "lu": now, "d": deleted}
        )
        if moved != 1:
            raise Conflict(f"{resource_type}/{resource_id} was changed concurrently; read it again and retry")

    def _reindex(self, conn, resource_type, resource_id, index: Iterable[IndexEntry], clear: bool) -> None:
        """`clear`: the resource has index rows already; only those the new entries no longer
        have are deleted, and only entries not there yet inserted (a Task's status change is one
        row each way, not its eleven out and in again)."""
        entries = _index_rows(index)
        if clear:
            entries = self._drop_stale_rows(conn, resource_type, resource_id, entries)
        if entries:
            _INSERT_INDEX.insert(conn, [(resource_type, resource_id, *e) for e in entries])

    def _drop_stale_rows(self, conn, resource_type, resource_id, entries: list[tuple]) -> list[tuple]:
        """Delete the stored rows `entries` does not hold; return the entries still to insert."""
        wanted = Counter(entries)
        stale = []
        for row_id, *entry in _INDEX_ROWS.all(conn, {"t": resource_type, "i": resource_id}):
            entry = tuple(entry)
            if wanted[entry] > 0:
                wanted[entry] -= 1
            else:
                stale.append(row_id)
        for start in range(0, len(stale), _DELETE_CHUNK):
            _DELETE_ROWS.execute(conn, stale[start : start + _DELETE_CHUNK]).close()
        missing = []
        for entry in entries:
            if wanted[entry] > 0:
                wanted[entry] -= 1
                missing.append(entry)
        return missing

    # -- reads --------------------------------------------------------------------------------

    def exists(self, conn: Connection, resource_type: str, resource_id: str) -> bool:
        """Whether the id was ever written (a deleted resource too): its row, without reading its body."""
        return _SELECT_CURRENT.first(conn, {"t": resource_type, "i": resource_id}) is not None

    def current(self, conn: Connection, resource_type: str, resource_id: str) -> StoredVersion | None:
        row = _SELECT_CURRENT_BODY.first(conn, {"t": resource_type, "i": resource_id})
        return self._stored(conn, _VersionRow(*row)) if row else None

    def version(self, conn: Connection, resource_type: str, resource_id: str, version_id: int) -> StoredVersion | None:
        row = conn.execute(
            _versions().where(
                rv.c.resource_type == resource_type, rv.c.resource_id == resource_id, rv.c.version_id == version_id
            )
        ).first()
        return self._stored(conn, row) if row else None

    def history(
        self, conn: Connection, resource_type: str, resource_id: str | None, since: int | None, offset: int, count: int,
        visible_to: str | None = None,
    ) -> tuple[list[StoredVersion], int]:
        """`visible_to`: only versions of resources that agency may see (gateway.store.agency_store)."""
        where = [rv.c.resource_type == resource_type]
        if visible_to is not None and resource_type not in case_links.NEVER_CASE_DATA:
            where.append(case_links.visible_clause(rv.c.resource_type, rv.c.resource_id, visible_to))
        if resource_id is not None:
            where.append(rv.c.resource_id == resource_id)
        if since is not None:
            where.append(rv.c.last_updated >= since)
        total = conn.execute(select(func.count()).select_from(rv).where(*where)).scalar_one()
        rows = conn.execute(
            _versions().where(*where).order_by(rv.c.last_updated.desc(), rv.c.version_id.desc()).offset(offset).limit(count)
        ).all()
        return [self._stored(conn, row) for row in rows], total

    def search(self, conn: Connection, query: SearchQuery, visible_to: str | None = None) -> tuple[list[StoredVersion], int | None]:
        """`visible_to`: only resources that agency may see, in the page and in the total alike."""
        if query.resource_type in case_links.NEVER_CASE_DATA:
            visible_to = None
        rows, total = search_sql.run(conn, query, visible_to)
        return [self._stored(conn, _VersionRow(*row)) for row in rows], total

    def _stored(self, conn: Connection, row) -> StoredVersion:
        body = None
        if row.body is not None:
            body = self.keyring.decrypt(conn, row.key_id, row.body, version_aad(row.resource_type, row.resource_id, row.version_id))
        return StoredVersion(
            row.resource_type, row.resource_id, row.version_id, row.last_updated, body is None, row.method, body, row.holder
        )


# The hot path's statements, compiled once (see gateway.store.prepared).
_SELECT_CURRENT = Prepared(
    select(r.c.version_id, r.c.last_updated).where(r.c.resource_type == bindparam("t"), r.c.resource_id == bindparam("i"))
)
_INSERT_RESOURCE = Prepared(insert(r), [c.name for c in r.columns])
_ADVANCE_RESOURCE = Prepared(
    update(r)
    .where(r.c.resource_type == bindparam("t"), r.c.resource_id == bindparam("i"), r.c.version_id == bindparam("old"))
    .values(version_id=bindparam("v"), last_updated=bindparam("lu"), deleted=bindparam("d"))
)
_INSERT_VERSION = Prepared(insert(rv), [c.name for c in rv.columns])
_INDEX_ROWS = Prepared(
    select(si.c.row_id, si.c.param, si.c.system, si.c.value, si.c.raw, si.c.lo, si.c.hi)
    .where(si.c.resource_type == bindparam("t"), si.c.resource_id == bindparam("i"))
)
_DELETE_ROWS = PreparedIn(lambda binds: delete(si).where(si.c.row_id.in_(binds)))
_DELETE_CHUNK = 64  # row ids deleted per statement at most (one compiled statement per count up to it)
_INSERT_INDEX = PreparedRows(si, [c.name for c in si.columns if c.name != "row_id"])


# the same rows, many at once, for records created at a job's end (create_at_job_end)
_INSERT_RESOURCES = PreparedRows(r, [c.name for c in r.columns])
_INSERT_VERSIONS = PreparedRows(rv, [c.name for c in rv.columns])


def _index_rows(index: Iterable[IndexEntry]) -> list[tuple]:
    """Search index entries as row values after the resource's type and id (values cut to what is indexed)."""
    cut = MAX_INDEXED_CHARS
    return [(e.param, e.system, e.value[:cut] if e.value is not None else None, e.raw, e.lo, e.hi) for e in index]


class _VersionRow(NamedTuple):
    resource_type: str
    resource_id: str
    version_id: int
    last_updated: int
    method: str
    key_id: str | None
    body: bytes | None
    holder: str | None


def every_match(store: "ResourceStore", conn: Connection, query: SearchQuery, page: int = 500) -> Iterator[StoredVersion]:
    """Every match of `query` (on a ResourceStore or an AgencyStore), read `page` at a time: for
    jobs that must see them all, never a first page only. Sort the query by something the job does
    not change (`_id`) if it writes between pages."""
    query.count, query.with_total = page, False
    while True:
        found, _ = store.search(conn, query)
        yield from found
        if len(found) < page:
            return
        query.offset += page


def content_of(resource: dict) -> dict:
    """A resource without what every write sets anew (id, meta.versionId, meta.lastUpdated)."""
    found = {k: v for k, v in resource.items() if k not in ("meta", "id")}
    found["meta"] = {k: v for k, v in resource.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    return found


def _versions():
    return select(*search_sql.VERSION_COLUMNS)


_SELECT_CURRENT_BODY = Prepared(
    search_sql.current_versions().where(rv.c.resource_type == bindparam("t"), rv.c.resource_id == bindparam("i"))
)
