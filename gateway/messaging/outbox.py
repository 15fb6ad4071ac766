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
from sqlalchemy import Connection, delete, insert, select, update

from gateway.connectors.embedded import DatabaseQueue
from gateway.connectors.transport import MESSAGE_ID, OutgoingMessage, Transport, TransportError
from gateway.store.database import Database
from gateway.store.encryption import DataKeyring
from gateway.store.prepared import Prepared
from gateway.store.schema import outbox

log = logging.getLogger("gateway.outbox")

LEASE_US = 30_000_000  # a claimed row is retried after this long if its relay died
BACKOFF_US = (500_000, 2_000_000, 10_000_000, 60_000_000, 300_000_000)  # then every 5 minutes, for ever


_INSERT = Prepared(insert(outbox), [c.name for c in outbox.columns if c.name != "id"])  # one per message sent: the hot path


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
        _INSERT.execute(conn, {
            "message_id": message_id, "topic": message.topic, "msg_key": message.key,
            "headers": orjson.dumps(dict(message.headers)).decode(), "key_id": kid, "payload": blob, "created_at": now,
            "attempts": 0, "next_attempt_at": now, "last_error": None,
        }).close()


@dataclass
class _Claimed:
    row_id: int
    attempts: int
    message: OutgoingMessage


class OutboxRelay:
    def __init__(
        self, db: Database, keyring: DataKeyring, transport: Transport, batch: int = 500, partitions: int = 1, replication: int = 1,
    ):
        self.db = db
        self.keyring = keyring
        self.transport = transport
        self.batch = batch
        self.topic_shape = (partitions, replication)  # for a topic the gateway creates on first use
        self._known_topics: set[str] = set()
        self._wake = threading.Event()

    def wake(self) -> None:
        """Something was added: relay now rather than at the next tick."""
        self._wake.set()

    def relay_once(self) -> int:
        """Relay one batch of due messages; return how many the transport accepted."""
        if isinstance(self.transport, DatabaseQueue):
            self._ensure_topics(self.db.run_read(_due_topics))
            return self.db.run_write(self._relay_in_transaction)
        claimed = self.db.run_write(lambda conn: self._claim(conn, LEASE_US))
        relayed = 0
        for topic, group in _by_topic(claimed).items():  # a topic that fails holds back only its own messages
            error = self._publish(topic, group)
            if error is None:
                self.db.run_write(lambda conn, group=group: _delete(conn, group))
                relayed += len(group)
            else:
                self.db.run_write(lambda conn, group=group, error=error: self._back_off(conn, group, error))
        return relayed

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

    def _publish(self, topic: str, group: list["_Claimed"]) -> TransportError | None:
        try:
            self._ensure_topics({topic})
            self.transport.publish([c.message for c in group])
        except TransportError as exc:
            return exc
        return None

    def _ensure_topics(self, topics: set[str]) -> None:
        """Agencies registered after start-up: their outbound topics are made on first use (the gateway owns them)."""
        missing = topics - self._known_topics
        if missing:
            self.transport.create_topics(sorted(missing), *self.topic_shape)
            self._known_topics |= missing

    def _relay_in_transaction(self, conn: Connection) -> int:
        claimed = self._claim(conn, 0)
        if claimed:
            self.transport.publish_in(conn, [c.message for c in claimed])
            _delete(conn, claimed)
        return len(claimed)

    def _claim(self, conn: Connection, lease_us: int) -> list["_Claimed"]:
        """Due rows, oldest first, but none behind an older row of its topic that is not due
        (backing off, or leased by another relay): each topic's messages leave in order."""
        self.db.advisory_lock(conn, "outbox-claim")  # claims take turns, so each sees the leases before it
        now = _now_us()
        earlier = outbox.alias("earlier")
        blocked = select(earlier.c.id).where(
            earlier.c.topic == outbox.c.topic, earlier.c.id < outbox.c.id, earlier.c.next_attempt_at > now
        ).exists()
        query = select(outbox).where(outbox.c.next_attempt_at <= now, ~blocked).order_by(outbox.c.id).limit(self.batch)
        if not self.db.is_sqlite:
            query = query.with_for_update(of=outbox, skip_locked=True)
        rows = conn.execute(query).all()
        if rows and lease_us:
            conn.execute(update(outbox).where(outbox.c.id.in_([r.id for r in rows])).values(next_attempt_at=now + lease_us))
        return [_Claimed(r.id, r.attempts, self._message(conn, r)) for r in rows]

    def _message(self, conn: Connection, row) -> OutgoingMessage:
        value = self.keyring.decrypt(conn, row.key_id, row.payload, _aad(row.message_id))
        return OutgoingMessage(row.topic, row.msg_key, value, orjson.loads(row.headers))

    def _back_off(self, conn: Connection, claimed: Sequence["_Claimed"], exc: Exception) -> None:
        now = _now_us()
        for c in claimed:
            delay = BACKOFF_US[min(c.attempts, len(BACKOFF_US) - 1)]
            conn.execute(
                update(outbox).where(outbox.c.id == c.row_id).values(
                    attempts=c.attempts + 1, next_attempt_at=now + delay, last_error=str(exc)[:500]
                )
            )
        log.warning("transport refused %d messages (%s); retrying with backoff", len(claimed), type(exc).__name__)


def _by_topic(claimed: list[_Claimed]) -> dict[str, list[_Claimed]]:
    groups: dict[str, list[_Claimed]] = {}
    for c in claimed:
        groups.setdefault(c.message.topic, []).append(c)
    return groups


def _delete(conn: Connection, claimed: Sequence[_Claimed]) -> None:
    conn.execute(delete(outbox).where(outbox.c.id.in_([c.row_id for c in claimed])))


def _due_topics(conn: Connection) -> set[str]:
    return set(conn.execute(select(outbox.c.topic).where(outbox.c.next_attempt_at <= _now_us()).distinct()).scalars())
