"""Rotate the data key: a new active key, then re-encrypt stored versions in small batches.

Runs beside a serving API (from `gateway keys rotate`). Each batch is its own short transaction,
so API writes interleave with it. Other processes keep using their cached active key for up to
`key_cache_seconds`, so rows they write with the old key meanwhile are picked up by later
passes: the loop ends only when no row uses another key and that grace period has passed.
"""

import time
from dataclasses import dataclass
from typing import Callable

from sqlalchemy import func, select, update

from gateway.store.database import Database
from gateway.store.encryption import DataKeyring, version_aad
from gateway.store.schema import data_keys
from gateway.store.schema import resource_versions as rv


@dataclass
class RotationReport:
    new_kid: str
    reencrypted: int


@dataclass
class KeyUse:
    kid: str
    active: bool
    retired_at: int | None
    versions: int


def rotate_data_key(
    db: Database, keyring: DataKeyring, cache_seconds: float, batch: int = 500, progress: Callable[[str], None] = lambda _: None
) -> RotationReport:
    new_kid = db.run_write(lambda conn: keyring.create_key(conn, activate=True))
    activated = time.monotonic()
    done = 0
    while True:
        moved = _reencrypt_batch(db, keyring, new_kid, batch)
        done += moved
        if moved:
            progress(f"re-encrypted {done} versions")
        elif time.monotonic() - activated > cache_seconds:
            break
        else:
            time.sleep(min(0.5, cache_seconds))
    db.run_write(
        lambda conn: conn.execute(
            update(data_keys)
            .where(data_keys.c.kid != new_kid, data_keys.c.retired_at.is_(None))
            .values(retired_at=time.time_ns() // 1000)
        )
    )
    return RotationReport(new_kid, done)


def _reencrypt_batch(db: Database, keyring: DataKeyring, new_kid: str, batch: int) -> int:
    return db.run_write(lambda conn: _reencrypt_rows(conn, db, keyring, new_kid, batch))


def _reencrypt_rows(conn, db: Database, keyring: DataKeyring, new_kid: str, batch: int) -> int:
    stmt = (
        select(rv.c.resource_type, rv.c.resource_id, rv.c.version_id, rv.c.key_id, rv.c.body)
        .where(rv.c.key_id.is_not(None), rv.c.key_id != new_kid)
        .limit(batch)
    )
    if not db.is_sqlite:
        stmt = stmt.with_for_update(skip_locked=True)  # several rotators never fight over a row
    rows = conn.execute(stmt).all()
    for row in rows:
        aad = version_aad(row.resource_type, row.resource_id, row.version_id)
        plaintext = keyring.decrypt(conn, row.key_id, row.body, aad)
        kid, blob = keyring.encrypt_with(conn, new_kid, plaintext, aad)
        conn.execute(
            update(rv)
            .where(
                rv.c.resource_type == row.resource_type,
                rv.c.resource_id == row.resource_id,
                rv.c.version_id == row.version_id,
                rv.c.key_id == row.key_id,
            )
            .values(key_id=kid, body=blob)
        )
    return len(rows)


def key_status(db: Database) -> list[KeyUse]:
    def read(conn):
        counts = dict(conn.execute(select(rv.c.key_id, func.count()).group_by(rv.c.key_id)).all())
        return counts, conn.execute(select(data_keys).order_by(data_keys.c.created_at)).all()

    counts, keys = db.run_read(read)
    return [KeyUse(k.kid, k.active, k.retired_at, counts.get(k.kid, 0)) for k in keys]
