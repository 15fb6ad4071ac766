"""The transactional outbox: messages are written in the same transaction as the state change
that causes them, then relayed to the transport. Nothing accepted is lost: a row leaves the
outbox only once the transport holds its message durably.

The relay claims due rows by pushing their next attempt a lease ahead (with SKIP LOCKED on
PostgreSQL, so several processes relay side by side without taking the same rows), publishes
outside any transaction, then deletes them, or on failure sets a backoff. A process killed
between publishing and deleting publishes those rows again when the lease ends; receivers
drop the duplicate by message id. On the embedded transport the publish and the delete are one
transaction, so nothing is ever published twice.
"""

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import Connection, delete, func, insert, select, update

from gateway.connectors.embedded import DatabaseQueue
from gateway.connectors.transport import MESSAGE_ID, OutgoingMessage, Transport, TransportError
from gateway.store.database import Database
from gateway.store.encryption import DataKeyring
from gateway.store.schema import outbox

log = logging.getLogger("gateway.outbox")

LEASE_US = 30_000_000  # a claimed row is retried after this long if its relay died
BACKOFF_US = (500_000, 2_000_000, 10_000_000, 60_000_000, 300_000_000)  # then every 5 minutes, for ever


def _now_us() -> int:
    return time.time_ns() // 1000


def _aad(message_id: str) -> bytes:
    return b"outbox:" + message_id.encode()


class Outbox:
    def __init__(self, keyring: DataKeyring):
        self.keyring = keyring

    def add(self, conn: Connection, message: OutgoingMessage) -> None:
        """Queue a message in the caller's transaction; it carries a message id header."""
        message_id = message.headers[MESSAGE_ID]
        kid, blob = self.keyring.encrypt(conn, message.value, _aad(message_id))
        now = _now_us()
        conn.execute(
            insert(outbox).values(
                message_id=message_id, topic=message.topic, msg_key=message.key, headers=orjson.dumps(dict(message.headers)).decode(),
                key_id=kid, payload=blob, created_at=now, attempts=0, next_attempt_at=now,
            )
        )

    def pending(self, conn: Connection) -> int:
        return conn.execute(select(func.count()).select_from(outbox)).scalar_one()


@dataclass
class _Claimed:
    row_id: int
    attempts: int
    message: OutgoingMessage


class OutboxRelay:
    def __init__(self, db: Database, keyring: DataKeyring, transport: Transport, batch: int = 500):
        self.db = db
        self.keyring = keyring
        self.transport = transport
        self.batch = batch
        self._wake = threading.Event()

    def wake(self) -> None:
        """Something was added: relay now rather than at the next tick."""
        self._wake.set()

    def relay_once(self) -> int:
        """Relay one batch of due messages; return how many the transport accepted."""
        if isinstance(self.transport, DatabaseQueue):
            return self.db.run_write(self._relay_in_transaction)
        claimed = self.db.run_write(lambda conn: self._claim(conn, LEASE_US))
        if not claimed:
            return 0
        try:
            self.transport.publish([c.message for c in claimed])
        except TransportError as exc:
            error = exc
        else:
            error = None
        if error is not None:
            self.db.run_write(lambda conn: self._back_off(conn, claimed, error))
            return 0
        self.db.run_write(lambda conn: conn.execute(delete(outbox).where(outbox.c.id.in_([c.row_id for c in claimed]))))
        return len(claimed)

    def run(self, stop: threading.Event, idle_seconds: float = 0.05) -> None:
        """Relay until `stop` is set; a failing database or transport is retried, never fatal."""
        while not stop.is_set():
            try:
                relayed = self.relay_once()
            except Exception as exc:  # the loop must survive a database restart
                log.warning("outbox relay failed: %s", type(exc).__name__)
                relayed = 0
            if relayed < self.batch:
                self._wake.wait(idle_seconds)
                self._wake.clear()

    # -- steps --------------------------------------------------------------------------------

    def _relay_in_transaction(self, conn: Connection) -> int:
        claimed = self._claim(conn, 0)
        if claimed:
            self.transport.publish_in(conn, [c.message for c in claimed])
            conn.execute(delete(outbox).where(outbox.c.id.in_([c.row_id for c in claimed])))
        return len(claimed)

    def _claim(self, conn: Connection, lease_us: int) -> list[_Claimed]:
        now = _now_us()
        query = select(outbox).where(outbox.c.next_attempt_at <= now).order_by(outbox.c.id).limit(self.batch)
        if not self.db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).all()
        if rows and lease_us:
            conn.execute(update(outbox).where(outbox.c.id.in_([r.id for r in rows])).values(next_attempt_at=now + lease_us))
        return [_Claimed(r.id, r.attempts, self._message(conn, r)) for r in rows]

    def _message(self, conn: Connection, row) -> OutgoingMessage:
        value = self.keyring.decrypt(conn, row.key_id, row.payload, _aad(row.message_id))
        return OutgoingMessage(row.topic, row.msg_key, value, orjson.loads(row.headers))

    def _back_off(self, conn: Connection, claimed: Sequence[_Claimed], exc: Exception) -> None:
        now = _now_us()
        for c in claimed:
            delay = BACKOFF_US[min(c.attempts, len(BACKOFF_US) - 1)]
            conn.execute(
                update(outbox).where(outbox.c.id == c.row_id).values(
                    attempts=c.attempts + 1, next_attempt_at=now + delay, last_error=str(exc)[:500]
                )
            )
        log.warning("transport refused %d messages (%s); retrying with backoff", len(claimed), type(exc).__name__)
