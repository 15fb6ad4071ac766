"""Rotate the data key: a new active key, then re-encrypt everything sealed with another key, in
small batches: stored versions, and whatever else registers a `SealedColumn` (the outbox, the
embedded queue, dead letters, signing keys; gateway.bootstrap.sealed_columns lists them).

Runs beside a serving API (from `gateway keys rotate`). Each batch is its own short transaction,
so API writes interleave with it. Other processes keep using their cached active key for up to
`key_cache_seconds`, so rows they write with the old key meanwhile are picked up by later
passes: the loop ends only when no row uses another key and that grace period has passed.
"""

import time
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy import Row, Table, func, select, update

from gateway.fhir.dates import now_micros
from gateway.store.database import Database
from gateway.store.encryption import DataKeyring, version_aad
from gateway.store.schema import data_keys
from gateway.store.schema import resource_versions as rv


@dataclass(frozen=True)
class SealedColumn:
    """A column of ciphertext sealed with its row's data key (`key_id`) and with associated data
    that binds it to its row (`aad` rebuilds that from the row): what a rotation re-encrypts."""

    name: str  # what its rows are, for people: "stored versions", "dead letters"...
    table: Table
    blob: str
    aad: Callable[[Row], bytes]


VERSIONS = SealedColumn(
    "stored versions", rv, "body", lambda row: version_aad(row.resource_type, row.resource_id, row.version_id)
)


@dataclass
class RotationReport:
    new_kid: str
    reencrypted: int


@dataclass
class KeyUse:
    kid: str
    active: bool
    retired_at: int | None
    rows: dict[str, int] = field(default_factory=dict)  # by SealedColumn name

    @property
    def versions(self) -> int:
        return self.rows.get(VERSIONS.name, 0)


def rotate_data_key(
    db: Database, keyring: DataKeyring, cache_seconds: float, batch: int = 500, progress: Callable[[str], None] = lambda _: None,
    columns: tuple[SealedColumn, ...] = (VERSIONS,),
) -> RotationReport:
    new_kid = db.run_write(lambda conn: keyring.create_key(conn, activate=True))
    activated = time.monotonic()
    done = 0
    while True:
        moved = sum(_reencrypt_batch(db, keyring, new_kid, batch, column) for column in columns)
        done += moved
        if moved:
            progress(f"re-encrypted {done} rows")
        elif time.monotonic() - activated > cache_seconds:
            break
        else:
            time.sleep(min(0.5, cache_seconds))
    db.run_write(
        lambda conn: conn.execute(
            update(data_keys)
            .where(data_keys.c.kid != new_kid, data_keys.c.retired_at.is_(None))
            .values(retired_at=now_micros())
        )
    )
    return RotationReport(new_kid, done)


def _reencrypt_batch(db: Database, keyring: DataKeyring, new_kid: str, batch: int, column: SealedColumn) -> int:
    return db.run_write(lambda conn: _reencrypt_rows(conn, db, keyring, new_kid, batch, column))


def _reencrypt_rows(conn, db: Database, keyring: DataKeyring, new_kid: str, batch: int, column: SealedColumn) -> int:
    table = column.table
    stmt = select(table).where(table.c.key_id.is_not(None), table.c.key_id != new_kid).limit(batch)
    if not db.is_sqlite:
        stmt = stmt.with_for_update(skip_locked=True)  # several rotators never fight over a row
    rows = conn.execute(stmt).all()
    for row in rows:
        aad = column.aad(row)
        plaintext = keyring.decrypt(conn, row.key_id, getattr(row, column.blob), aad)
        kid, blob = keyring.encrypt_with(conn, new_kid, plaintext, aad)
        same_row = [c == getattr(row, c.name) for c in table.primary_key.columns]
        conn.execute(update(table).where(*same_row, table.c.key_id == row.key_id).values({"key_id": kid, column.blob: blob}))
    return len(rows)


def key_status(db: Database, columns: tuple[SealedColumn, ...] = (VERSIONS,)) -> list[KeyUse]:
    def read(conn):
        counts = {
            column.name: dict(conn.execute(select(column.table.c.key_id, func.count()).group_by(column.table.c.key_id)).all())
            for column in columns
        }
        return counts, conn.execute(select(data_keys).order_by(data_keys.c.created_at)).all()

    counts, keys = db.run_read(read)
    return [KeyUse(k.kid, k.active, k.retired_at, {name: used.get(k.kid, 0) for name, used in counts.items()}) for k in keys]
