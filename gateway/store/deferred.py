"""Rows a write job appends that nothing reads back before the job ends, inserted together then.

An RFI batch records two or three AuditEvents per message, and each one wrote four rows with
four statements (resource, version, search rows, ledger entry): a third of the batch's
statements, each a trip into SQLite and back for the GIL. Appended here instead, they go in
one multi-row INSERT per table when the job ends (`run_job`, which every write job runs
through: gateway.store.sqlite_writes, Database). A savepoint rolled back forgets what was
appended inside it (gateway.store.savepoint marks and truncates), so what is inserted is
exactly what the job kept.

Only for rows of new records that no statement of the job reads (the ledger's AuditEvents);
anything the job may read back is written at once, as before.
"""

import logging
from typing import Callable, TypeVar

from sqlalchemy import Connection

from gateway.store.prepared import PreparedRows

T = TypeVar("T")
log = logging.getLogger("gateway.store")
_PENDING = "gateway.deferred-rows"


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
    return len(_pending(conn))


def truncate(conn: Connection, at: int) -> None:
    """Forget what was appended since `mark` returned `at` (its savepoint was rolled back)."""
    del _pending(conn)[at:]


def flush(conn: Connection) -> None:
    """Insert what is pending: one multi-row INSERT per table (in the order the tables were
    first appended to), rows in the order appended."""
    pending = conn.info.pop(_PENDING, None)
    if not pending or not pending[1]:
        return
    by_target: dict[PreparedRows, list[tuple]] = {}
    for target, row in pending[1]:
        by_target.setdefault(target, []).append(row)
    for target, rows in by_target.items():
        target.insert(conn, rows)


def run_job(conn: Connection, job: Callable[[Connection], T]) -> T:
    """Run a write job and insert what it appended; what a failed job appended is dropped."""
    try:
        value = job(conn)
    except BaseException:
        conn.info.pop(_PENDING, None)
        raise
    flush(conn)
    return value


def _pending(conn: Connection) -> list:
    transaction = conn.get_transaction()
    held = conn.info.get(_PENDING)
    if held is None or held[0] is not transaction:
        if held is not None and held[1]:  # appended outside run_job, so never inserted: a bug to see at once
            log.error("%d appended rows of an earlier transaction were never inserted", len(held[1]))
        held = conn.info[_PENDING] = (transaction, [])
    return held[1]
