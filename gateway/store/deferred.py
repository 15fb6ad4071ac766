"""Rows a write job appends that nothing reads back before the job ends, inserted together then.

An RFI batch records two or three AuditEvents per message, and each one wrote four rows with
four statements (resource, version, search rows, ledger entry): a third of the batch's
statements, each a trip into SQLite and back for the GIL. Appended here instead, they go in
one multi-row INSERT per table when the job ends (`run_job`, which every write job runs
through: gateway.store.sqlite_writes, Database). A savepoint rolled back forgets what was
appended inside it (gateway.store.savepoint marks and truncates), so what is inserted is
exactly what the job kept.

Only for rows of new records that no statement of the job reads (the ledger's AuditEvents, the
inbound worker's handled-message records); anything the job may read back is written at once.
"""

from typing import Callable, TypeVar

from sqlalchemy import Connection

from gateway.store.prepared import PreparedRows

T = TypeVar("T")
_PENDING = "gateway.deferred-rows"  # in conn.info while run_job runs a job: [(target, row), ...]


def append(conn: Connection, target: PreparedRows, rows: list[tuple]) -> None:
    """Insert `rows` (in `target`'s column order) when this job ends, after those appended before."""
    _pending(conn).extend((target, row) for row in rows)


def last(conn: Connection, target: PreparedRows) -> tuple | None:
    """The last row still pending for `target`, if any."""
    for held, row in reversed(_pending(conn)):
        if held is target:
            return row
    return None


def mark(conn: Connection) -> int:
    """Where a savepoint begins in what is pending (none pending: outside a job, or nothing yet)."""
    return len(conn.info.get(_PENDING, ()))


def truncate(conn: Connection, at: int) -> None:
    """Forget what was appended since `mark` returned `at` (its savepoint was rolled back)."""
    if (pending := conn.info.get(_PENDING)) is not None:
        del pending[at:]


def run_job(conn: Connection, job: Callable[[Connection], T]) -> T:
    """Run a write job and insert what it appended; what a failed job appended is dropped."""
    conn.info[_PENDING] = []
    try:
        value = job(conn)
        _insert(conn, conn.info[_PENDING])
        return value
    finally:
        conn.info.pop(_PENDING, None)


def _insert(conn: Connection, pending: list) -> None:
    """One multi-row INSERT per table (in the order the tables were first appended to), rows in
    the order appended."""
    by_target: dict[PreparedRows, list[tuple]] = {}
    for target, row in pending:
        by_target.setdefault(target, []).append(row)
    for target, rows in by_target.items():
        target.insert(conn, rows)


def _pending(conn: Connection) -> list:
    pending = conn.info.get(_PENDING)
    if pending is None:  # rows appended here would never be inserted: refuse at once
        raise RuntimeError("rows can be deferred only within a write job (gateway.store.deferred.run_job)")
    return pending
