"""The transactional outbox: messages are written in the same transaction as the state change
that causes them, then relayed to the transport. Nothing accepted is lost: a row leaves the
outbox only once the transport holds its message durably.

The relay claims due rows by pushing their next attempt a lease ahead (with SKIP LOCKED on
PostgreSQL, so several processes relay side by side without taking the same rows), publishes
outside any transaction, then deletes them, or on failure sets a backoff. A process killed
between publishing and deleting publishes those rows again when the lease ends; receivers
drop the duplicate by message id. On the embedded transport the publish and the delete are one
transaction, so nothing is ever published twice.

Hand-over (Kafka): the rows that handling a batch of inbound messages adds are leased in that
batch's own transaction and handed to this process's relay in memory (`adopt`, `hand_over`),
so a message leaves as soon as the batch commits instead of waiting for a claim of its own
behind the next batch in the single SQLite writer. The relay deletes what it published in a
write it does not wait for. Order per topic is kept as the claim keeps it: a topic's new rows
are adopted only when every older row of that topic still in the outbox is one this relay
holds and will publish first; otherwise they stay due for the claim, behind the older rows.
"""

import logging
import threading
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

import orjson
from sqlalchemy import Connection, bindparam, delete, insert, select, update

from gateway.connectors.embedded import DatabaseQueue
from gateway.connectors.transport import MESSAGE_ID, OutgoingMessage, Transport, TransportError
from gateway.fhir.dates import now_micros
from gateway.store.database import Database
from gateway.store.encryption import DataKeyring
from gateway.store.key_rotation import SealedColumn
from gateway.store.prepared import Prepared
from gateway.store.schema import outbox

log = logging.getLogger("gateway.outbox")

LEASE_US = 30_000_000  # a claimed row is retried after this long if its relay died
BACKOFF_US = (500_000, 2_000_000, 10_000_000, 60_000_000, 300_000_000)  # then every 5 minutes, for ever
COLLECTING = "gateway.outbox.collecting"  # connection-info key: the rows this transaction adds, for hand-over
ADDED = "gateway.outbox.added"  # connection-info key: this transaction added rows; its end wakes this process's relay
# An idle relay looks again this often for rows it was not woken for: their backoff or another
# process's lease has run out, or another process added them (its own relay is woken for them).
IDLE_SECONDS = 0.5

_COLUMNS = [c.name for c in outbox.columns if c.name != "id"]
_INSERT = Prepared(insert(outbox), _COLUMNS)  # one per message sent: the hot path
_INSERT_RETURNING = Prepared(insert(outbox).returning(outbox.c.id), _COLUMNS)  # the same, when its row id is handed over
# Is an older row of this topic in the outbox that the relay does not hold? Then newer rows wait behind it.
_OLDER = select(outbox.c.id).where(
    outbox.c.topic == bindparam("topic"), outbox.c.id < bindparam("below"), outbox.c.id.not_in(bindparam("mine", expanding=True)),
).limit(1)


def _aad(message_id: str) -> bytes:
    return b"outbox:" + message_id.encode()


SEALED = SealedColumn("outbox messages", outbox, "payload", lambda row: _aad(row.message_id))  # re-encrypted on key rotation


class Outbox:
    def __init__(self, keyring: DataKeyring):
        self.keyring = keyring

    def add(self, conn: Connection, message: OutgoingMessage) -> None:
        """Queue a message in the caller's transaction; it carries a message id header."""
        message_id = message.headers[MESSAGE_ID]
        kid, blob = self.keyring.encrypt(conn, message.value, _aad(message_id))
        now = now_micros()
        row = {
            "message_id": message_id, "topic": message.topic, "msg_key": message.key,
            "headers": orjson.dumps(dict(message.headers)).decode(), "key_id": kid, "payload": blob, "created_at": now,
            "attempts": 0, "next_attempt_at": now, "last_error": None,
        }
        collected = conn.info.get(COLLECTING)
        if collected is None:
            _INSERT.execute(conn, row).close()
            conn.info[ADDED] = True
        else:  # the inbound worker's transaction: the relay may take this row from memory (see `adopt`)
            collected.append(_Claimed(_INSERT_RETURNING.first(conn, row)[0], 0, message))


@dataclass
class _Claimed:
    row_id: int
    attempts: int
    message: OutgoingMessage


@dataclass
class Handoff:
    """Rows adopted in an inbound transaction, with each topic's failure count when they were."""

    rows: list[_Claimed]
    epochs: dict[str, int] = field(default_factory=dict)


class _Relays:
    """The relays on one database: the end of a transaction that added rows wakes them all (the
    rows are visible once it committed; after a rollback a relay looks once for nothing)."""

    def __init__(self, db: Database):
        self._relays: "weakref.WeakSet[OutboxRelay]" = weakref.WeakSet()
        self._lock = threading.Lock()  # a relay made while a transaction ends must not break the wake-up
        db.on_transaction_end(self._on_end)

    def add(self, relay: "OutboxRelay") -> None:
        with self._lock:
            self._relays.add(relay)

    def _on_end(self, info: dict) -> None:
        if info.pop(ADDED, False):
            with self._lock:
                relays = list(self._relays)
            for relay in relays:
                relay.wake()


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
        db.shared(_Relays).add(self)
        # Hand-over state, shared by the inbound worker (adopt, hand_over) and the relay thread:
        self._lock = threading.Lock()
        self._handed: list[Handoff] = []  # adopted rows waiting to be published, oldest first
        self._held: dict[int, str] = {}  # row id -> topic: rows this relay holds (leased) and publishes before any adopted later
        self._failures: dict[str, int] = {}  # topic -> publishes that failed; a hand-over adopted before one is not published

    @property
    def adopts(self) -> bool:
        """Whether inbound batches should hand their rows over (not on the embedded queue, where
        the relay publishes and deletes in one transaction of its own)."""
        return not isinstance(self.transport, DatabaseQueue)

    def wake(self) -> None:
        """Something was added: relay now rather than at the next tick."""
        self._wake.set()

    # -- hand-over from the inbound worker ------------------------------------------------------

    def adopt(self, conn: Connection, added: Sequence[_Claimed]) -> Handoff | None:
        """In the transaction that added these rows: lease those the relay may publish first.

        A topic's rows are adopted only when no older row of the topic is in the outbox but
        those this relay holds, which it publishes before anything adopted now. The rest stay
        due, for the claim, behind whatever is older."""
        if not added:
            return None
        with self._lock:
            held = dict(self._held)
            epochs = {t: self._failures.get(t, 0) for t in {c.message.topic for c in added}}
        adopted: list[_Claimed] = []
        for topic, group in _by_topic(list(added)).items():
            mine = [c.row_id for c in group] + [i for i, t in held.items() if t == topic]
            if conn.execute(_OLDER, {"topic": topic, "below": max(c.row_id for c in group), "mine": mine}).first() is None:
                adopted += group
        if not adopted:
            return None
        lease = now_micros() + LEASE_US  # if this process dies before publishing, another relays them after the lease
        conn.execute(update(outbox).where(outbox.c.id.in_([c.row_id for c in adopted])).values(next_attempt_at=lease))
        return Handoff(adopted, epochs)

    def hand_over(self, handoff: Handoff | None) -> None:
        """After the adopting transaction committed: queue its rows for publishing."""
        if handoff is not None:
            with self._lock:
                self._handed.append(handoff)
                for c in handoff.rows:
                    # Adopted before a failure of its topic: it will be released, not published, so
                    # it must not let later rows of the topic be adopted ahead of it.
                    if self._failures.get(c.message.topic, 0) == handoff.epochs[c.message.topic]:
                        self._held[c.row_id] = c.message.topic
        self._wake.set()

    # -- relaying -------------------------------------------------------------------------------

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

    def run(self, stop: threading.Event, idle_seconds: float = IDLE_SECONDS) -> None:
        """Relay until `stop` is set; a failing database or transport is retried, never fatal."""
        while not stop.is_set():
            self._wake.clear()  # before the work: a wake during it makes the wait below return at once
            try:
                busy = self._relay_some() if self.adopts else self._relay_due_in_transaction()
            except Exception as exc:  # the loop must survive a database restart
                log.warning("outbox relay failed: %s", type(exc).__name__)
                busy = False
            if not busy:
                self._wake.wait(idle_seconds)
        self.release_handed()

    def release_handed(self) -> None:
        """On stopping: rows handed over but not published are made due again, for the next relay
        to take at once rather than after their lease."""
        with self._lock:
            handed, self._handed = self._handed, []
            rows = [c for h in handed for c in h.rows]
            for c in rows:
                self._held.pop(c.row_id, None)
        if rows:
            try:
                self.db.run_write(lambda conn: _release(conn, rows))
            except Exception as exc:  # still leased: relayed when the lease ends
                log.warning("releasing %d handed-over messages failed: %s", len(rows), type(exc).__name__)

    def _relay_due_in_transaction(self) -> bool:
        # A read first: an idle relay must not take the single writer every tick for nothing.
        return self.db.run_read(self._anything_due) and self.relay_once() >= self.batch

    def _relay_some(self) -> bool:
        """Publish what was handed over, then what is due in the outbox; True if there may be more now."""
        with self._lock:
            handed, self._handed = self._handed, []
        if handed:
            with self._abandoning_on_error([c for h in handed for c in h.rows]):
                self._publish_handed(handed)
        if not self.db.run_read(self._anything_due):  # a read: claims take the single writer
            return bool(handed)
        claimed = self.db.run_write(lambda conn: self._claim(conn, LEASE_US))
        with self._lock:
            claimed = [c for c in claimed if c.row_id not in self._held]  # a hand-over whose lease ran out: ours already
            self._held.update((c.row_id, c.message.topic) for c in claimed)
        with self._abandoning_on_error(claimed):
            self._publish_and_settle(_by_topic(claimed))
        return bool(handed) or len(claimed) >= self.batch

    @contextmanager
    def _abandoning_on_error(self, rows: list[_Claimed]) -> Iterator[None]:
        """If relaying these rows breaks off (the database gone mid-way), stop holding them and
        their topics as after a failed publish: those not published stay leased and the claim
        takes them, in order, when the lease ends; nothing adopted later overtakes them."""
        try:
            yield
        except BaseException:
            self._drop_topics({c.message.topic for c in rows}, [c.row_id for c in rows])
            raise

    def _drop_topics(self, topics: set[str], ids: list[int]) -> None:
        with self._lock:
            # Rows adopted from now on see these rows as not held and wait behind them; rows
            # adopted before, still queued, carry the old count and are released, not published.
            for topic in topics:
                self._failures[topic] = self._failures.get(topic, 0) + 1
            queued = [c.row_id for h in self._handed for c in h.rows if c.message.topic in topics]
            for row_id in ids + queued:
                self._held.pop(row_id, None)

    def _publish_and_settle(self, groups: dict[str, list[_Claimed]]) -> None:
        publish_each = getattr(self.transport, "publish_each", None)
        if publish_each is None or len(groups) < 2:
            for topic, group in groups.items():
                self._settle(topic, group, self._publish(topic, group))
            return
        errors: dict[str, TransportError | None] = {}
        for topic in groups:
            try:
                self._ensure_topics({topic})
            except TransportError as exc:
                errors[topic] = exc
        ready = {topic: [c.message for c in group] for topic, group in groups.items() if topic not in errors}
        errors.update(publish_each(ready) if ready else {})  # one flush for every topic, each failing on its own
        for topic, group in groups.items():
            self._settle(topic, group, errors.get(topic))

    def _publish_handed(self, handed: list[Handoff]) -> None:
        stale: list[_Claimed] = []  # adopted before a failure of their topic: back to the claim, behind the failed rows
        groups: dict[str, list[_Claimed]] = {}
        with self._lock:
            for handoff in handed:
                for c in handoff.rows:
                    topic = c.message.topic
                    if self._failures.get(topic, 0) != handoff.epochs[topic]:
                        stale.append(c)
                        self._held.pop(c.row_id, None)
                    else:
                        groups.setdefault(topic, []).append(c)
        if stale:
            self.db.run_write(lambda conn: _release(conn, stale))
        self._publish_and_settle(groups)

    def _settle(self, topic: str, group: list[_Claimed], error: TransportError | None) -> None:
        """After a publish: delete the rows (without waiting), or back them off and stop holding the topic."""
        ids = [c.row_id for c in group]
        if error is None:
            self.db.submit_write(lambda conn: _delete(conn, group)).add_done_callback(lambda done: self._deleted(ids, done))
            return
        self._drop_topics({topic}, ids)
        self.db.run_write(lambda conn: self._back_off(conn, group, error))

    def _deleted(self, ids: list[int], done: "Future") -> None:
        with self._lock:
            for row_id in ids:
                self._held.pop(row_id, None)
        if done.exception() is not None:  # still leased: published again when the lease ends (a duplicate, dropped by id)
            log.warning("deleting %d relayed messages failed: %s", len(ids), type(done.exception()).__name__)

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

    def _anything_due(self, conn: Connection) -> bool:
        # asked on every poll of the relay: compiled once (built each time, it cost a tenth of
        # the embedded gateway's GIL time)
        return _ANYTHING_DUE.first(conn, {"now": now_micros()}) is not None

    def _claim(self, conn: Connection, lease_us: int) -> list["_Claimed"]:
        self.db.advisory_lock(conn, "outbox-claim")  # claims take turns, so each sees the leases before it
        now = now_micros()
        query = _claimable(now).limit(self.batch)
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
        now = now_micros()
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


def _release(conn: Connection, claimed: Sequence[_Claimed]) -> None:
    """Due now: the claim takes them in order, once the older rows of their topic have left."""
    conn.execute(update(outbox).where(outbox.c.id.in_([c.row_id for c in claimed])).values(next_attempt_at=now_micros()))


def _due_topics(conn: Connection) -> set[str]:
    return set(conn.execute(select(outbox.c.topic).where(outbox.c.next_attempt_at <= now_micros()).distinct()).scalars())


def _claimable(now):
    """Due rows at `now` (a value or a bind parameter), oldest first, but none behind an older row
    of its topic that is not due (backing off, or leased by a relay): each topic's messages leave in order."""
    earlier = outbox.alias("earlier")
    blocked = select(earlier.c.id).where(
        earlier.c.topic == outbox.c.topic, earlier.c.id < outbox.c.id, earlier.c.next_attempt_at > now
    ).exists()
    return select(outbox).where(outbox.c.next_attempt_at <= now, ~blocked).order_by(outbox.c.id)


_ANYTHING_DUE = Prepared(_claimable(bindparam("now")).with_only_columns(outbox.c.id).limit(1))
