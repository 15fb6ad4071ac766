"""The embedded transport: a durable, ordered queue in the gateway's own database, with Kafka's shape.

A message's offset is its row id: offsets grow within a partition but are not contiguous, so a
reader's next position is always its last offset + 1. On PostgreSQL publishers take one advisory
lock before inserting, so rows commit in offset order and a reader that has seen offset n never
later finds a committed row below n (SQLite's single writer gives that for free). Values carry
personal information, so they are encrypted like resource bodies; the associated data binds each
to its topic, partition, key and message id, so a value moved to another row fails to decrypt.

A consumer starts from its group's committed positions. There is no rebalancing: every member
reads every partition, so two live members of one group see the same messages (handling by
message id makes that harmless). The queue is meant for one process (DESIGN 10). Commits only
move a group's positions forward, so a slower member never takes the group back.

A waiting poll wakes when a publish of this process to one of its topics commits (a publish to
another agency's topic leaves it waiting, not reading), and reads again every RECHECK_SECONDS to
see what other processes publish.
"""

import threading
import time
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence

import orjson
from sqlalchemy import Connection, Integer, bindparam, delete, func, insert, select, union_all
from sqlalchemy.dialects import postgresql, sqlite

from gateway.connectors.transport import MESSAGE_ID, Consumer, DeliveredMessage, OutgoingMessage, Transport, UnknownTopic
from gateway.fhir.dates import now_micros
from gateway.store.database import Database
from gateway.store.encryption import DataKeyring
from gateway.store.key_rotation import SealedColumn
from gateway.store.prepared import PreparedPerCount
from gateway.store.schema import queue_messages as qm
from gateway.store.schema import queue_positions as qp
from gateway.store.schema import queue_topics as qt

RECHECK_SECONDS = 0.2
TRIM_BATCH = 1_000  # messages one trim deletes per partition at most: a short write, repeated each tick
MAX_UNION = 200  # partitions probed by one statement (SQLite allows 500 compound SELECT terms)
PUBLISHED = "gateway.queue.published"  # connection-info key: the topics this transaction published to

Position = tuple[str, int]  # (topic, partition)


def partition_of(key: str | None, partitions: int) -> int:
    """A key's partition: the same in every process (CRC-32, not Python's salted hash)."""
    if key is None:
        return 0  # nothing to keep in order with: any partition will do
    return zlib.crc32(key.encode()) % partitions


def value_aad(topic: str, partition: int, key: str | None, message_id: str | None) -> bytes:
    """Associated data that binds a stored value to its row (JSON, so no two rows share one)."""
    return orjson.dumps(["queue", topic, partition, key, message_id])


SEALED = SealedColumn(  # re-encrypted on key rotation
    "queued messages", qm, "value", lambda row: value_aad(row.topic, row.partition, row.msg_key, orjson.loads(row.headers).get(MESSAGE_ID))
)


class DatabaseQueue(Transport):
    name = "embedded"

    def __init__(self, db: Database, keyring: DataKeyring):
        self.db = db
        self.keyring = keyring
        self._partitions: dict[str, int] = {}  # topics are never deleted, so this cache never lies
        self._wakeup = db.shared(_Wakeup)  # one per database: a publish through any queue on it wakes them all

    # -- topics -----------------------------------------------------------------------------

    def create_topics(self, topics: Sequence[str], partitions: int = 1, replication: int = 1) -> list[str]:
        """`replication` has no meaning in one database; it is accepted for the interface's sake."""
        if partitions < 1:
            raise ValueError("a topic needs at least one partition")
        return self.db.run_write(lambda conn: [t for t in dict.fromkeys(topics) if self._create(conn, t, partitions)])

    def _create(self, conn: Connection, topic: str, partitions: int) -> bool:
        stmt = self._insert(qt).values(topic=topic, partitions=partitions, created_at=now_micros())
        return conn.execute(stmt.on_conflict_do_nothing().returning(qt.c.topic)).first() is not None

    def topics(self) -> set[str]:
        return set(self.db.run_read(lambda conn: conn.execute(select(qt.c.topic)).scalars().all()))

    def _topic_partitions(self, conn: Connection, topics: Iterable[str]) -> dict[str, int]:
        wanted = set(topics)
        missing = wanted - self._partitions.keys()
        if missing:
            rows = conn.execute(select(qt.c.topic, qt.c.partitions).where(qt.c.topic.in_(missing)))
            self._partitions.update({row.topic: row.partitions for row in rows})
        unknown = wanted - self._partitions.keys()
        if unknown:
            raise UnknownTopic(f"no such topic: {', '.join(sorted(unknown))}; create it first (gateway kafka init)")
        return {t: self._partitions[t] for t in wanted}

    # -- publishing -------------------------------------------------------------------------

    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        if messages:
            self.db.run_write(lambda conn: self.publish_in(conn, messages))

    def publish_in(self, conn: Connection, messages: Sequence[OutgoingMessage]) -> None:
        """Publish in the caller's transaction: the messages exist if and only if it commits."""
        if not messages:
            return
        self.db.advisory_lock(conn, "queue")  # offsets commit in order; see the module docstring
        partitions = self._topic_partitions(conn, {m.topic for m in messages})
        now = now_micros()
        conn.execute(insert(qm), [self._row(conn, m, partitions[m.topic], now) for m in messages])
        conn.info.setdefault(PUBLISHED, set()).update(partitions)

    def _row(self, conn: Connection, message: OutgoingMessage, partitions: int, now: int) -> dict:
        partition = partition_of(message.key, partitions)
        aad = value_aad(message.topic, partition, message.key, message.headers.get(MESSAGE_ID))
        kid, blob = self.keyring.encrypt(conn, message.value, aad)
        return {
            "topic": message.topic, "partition": partition, "msg_key": message.key,
            "headers": orjson.dumps(dict(message.headers)).decode(), "key_id": kid, "value": blob, "published_at": now,
        }

    # -- reading ----------------------------------------------------------------------------

    def consumer(self, topic_prefix: str, group: str) -> Consumer:
        return _GroupMember(self, topic_prefix, group)

    def read(
        self, topic: str, positions: Mapping[int, int], max_messages: int = 100, wait_seconds: float = 0.0
    ) -> list[DeliveredMessage]:
        partitions = self.db.run_read(lambda conn: self._topic_partitions(conn, [topic]))[topic]
        start = {(topic, p): positions.get(p, 0) for p in range(partitions)}

        def read() -> list[DeliveredMessage]:
            return self.db.run_read(lambda conn: self.fetch(conn, start, max_messages))

        return self.wait_for(read, wait_seconds, lambda published: published == topic)

    def wait_for(
        self, read: Callable[[], list[DeliveredMessage]], wait_seconds: float, reads: Callable[[str], bool],
    ) -> list[DeliveredMessage]:
        """`read()` until it finds messages or `wait_seconds` have passed; `reads`: whether a
        topic is one `read` reads (only a publish to one of those wakes it)."""
        deadline = time.monotonic() + wait_seconds
        while True:
            seen = self._wakeup.mark(reads)
            found = read()
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                return found
            self._wakeup.wait(reads, seen, min(remaining, RECHECK_SECONDS))

    def fetch(self, conn: Connection, positions: Mapping[Position, int], limit: int) -> list[DeliveredMessage]:
        """The first `limit` messages at or after each partition's next offset, in offset order."""
        offsets = sorted(o for chunk in _chunks(list(positions.items()), MAX_UNION) for o in _next_offsets(conn, chunk, limit))
        if not offsets:
            return []
        rows = conn.execute(select(qm).where(qm.c.offset.in_(offsets[:limit])).order_by(qm.c.offset))
        return [self._delivered(conn, row) for row in rows]

    def _delivered(self, conn: Connection, row) -> DeliveredMessage:
        headers = orjson.loads(row.headers)
        aad = value_aad(row.topic, row.partition, row.msg_key, headers.get(MESSAGE_ID))
        value = self.keyring.decrypt(conn, row.key_id, row.value, aad)
        return DeliveredMessage(row.topic, row.partition, row.offset, row.msg_key, value, headers)

    # -- group positions --------------------------------------------------------------------

    def committed(self, conn: Connection, group: str, topics: Iterable[str]) -> dict[Position, int]:
        rows = conn.execute(select(qp).where(qp.c.consumer_group == group, qp.c.topic.in_(list(topics))))
        return {(row.topic, row.partition): row.next_offset for row in rows}

    def commit_positions(self, group: str, positions: Mapping[Position, int]) -> None:
        stmt = self._insert(qp)
        stmt = stmt.on_conflict_do_update(
            index_elements=[qp.c.consumer_group, qp.c.topic, qp.c.partition],
            set_={"next_offset": stmt.excluded.next_offset},
            where=qp.c.next_offset < stmt.excluded.next_offset,  # forward only
        )
        rows = [{"consumer_group": group, "topic": t, "partition": p, "next_offset": o} for (t, p), o in positions.items()]
        self.db.run_write(lambda conn: conn.execute(stmt, rows))

    def group_positions(self, conn: Connection) -> dict[Position, int]:
        """Each partition's lowest committed position over every consumer group that reads it."""
        rows = conn.execute(select(qp.c.topic, qp.c.partition, func.min(qp.c.next_offset)).group_by(qp.c.topic, qp.c.partition))
        return {(topic, partition): offset for topic, partition, offset in rows}

    # -- retention ----------------------------------------------------------------------------

    def trim(self, conn: Connection, passed: Mapping[Position, int], published_before_us: int, limit: int | None = None) -> int:
        """Delete messages that every reader has passed (`passed`: each partition's lowest next
        offset over its readers) and that were published before `published_before_us`; at most
        `limit` (TRIM_BATCH) per partition, oldest first. A partition no reader has a position on keeps
        everything: nobody has read it, so nothing in it may be dropped."""
        trimmed, limit = 0, limit or TRIM_BATCH
        for (topic, partition), next_offset in passed.items():
            oldest = conn.execute(
                select(qm.c.offset, qm.c.published_at)
                .where(qm.c.topic == topic, qm.c.partition == partition, qm.c.offset < next_offset)
                .order_by(qm.c.offset).limit(limit)
            ).all()
            # offsets grow with publication time, so the expired ones are the head of this list
            expired = [row.offset for row in oldest if row.published_at < published_before_us]
            if expired:
                trimmed += conn.execute(delete(qm).where(qm.c.offset.in_(expired))).rowcount
        return trimmed

    def topics_with_prefix(self, conn: Connection, prefix: str) -> dict[str, int]:
        rows = conn.execute(select(qt.c.topic, qt.c.partitions).where(qt.c.topic.startswith(prefix, autoescape=True)))
        found = {row.topic: row.partitions for row in rows}
        self._partitions.update(found)
        return found

    def _insert(self, table):
        return (sqlite.insert if self.db.is_sqlite else postgresql.insert)(table)

    def close(self) -> None:
        """Nothing to release: the database belongs to the caller."""


class _Wakeup:
    """Wakes the readers waiting on one database when a transaction of this process that published
    to one of their topics ends. Every agency's inbox and the inbound worker wait on the one
    database: woken by every publish, each read again for what was almost always someone else's."""

    def __init__(self, db: Database):
        self._changed = threading.Condition()
        self._generations: dict[str, int] = {}  # topic -> publishes to it, so a waiter never misses one
        db.on_transaction_end(self._on_end)

    def mark(self, reads: Callable[[str], bool]) -> int:
        """How many publishes there have been to the topics `reads` picks."""
        with self._changed:
            return self._mark(reads)

    def wait(self, reads: Callable[[str], bool], seen: int, seconds: float) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._mark(reads) != seen, seconds)

    def _mark(self, reads: Callable[[str], bool]) -> int:
        return sum(count for topic, count in self._generations.items() if reads(topic))

    def _on_end(self, info: dict) -> None:
        # A publish is now visible (or was rolled back, and waking its readers for nothing costs each one read).
        published = info.pop(PUBLISHED, None)
        if published:
            with self._changed:
                for topic in published:
                    self._generations[topic] = self._generations.get(topic, 0) + 1
                self._changed.notify_all()


class _GroupMember(Consumer):
    def __init__(self, queue: DatabaseQueue, prefix: str, group: str):
        self._queue = queue
        self._prefix = prefix
        self._group = group
        self._next: dict[Position, int] = {}  # what the next poll starts from
        self._committed: dict[Position, int] = {}

    def poll(self, max_messages: int = 500, wait_seconds: float = 1.0) -> list[DeliveredMessage]:
        def read() -> list[DeliveredMessage]:
            return self._queue.db.run_read(lambda conn: self._fetch(conn, max_messages))

        messages = self._queue.wait_for(read, wait_seconds, lambda topic: topic.startswith(self._prefix))
        for m in messages:
            self._next[(m.topic, m.partition)] = m.offset + 1
        return messages

    def _fetch(self, conn: Connection, limit: int) -> list[DeliveredMessage]:
        topics = self._queue.topics_with_prefix(conn, self._prefix)
        new = [t for t in topics if (t, 0) not in self._next]
        if new:  # a topic created since the last poll, or the first poll: start where the group is
            committed = self._queue.committed(conn, self._group, new)
            self._committed.update(committed)
            self._next.update({(t, p): committed.get((t, p), 0) for t in new for p in range(topics[t])})
        return self._queue.fetch(conn, self._next, limit)

    def commit(self, wait: bool = True) -> None:
        """Always waits: the positions are a write to the database (`wait` is for Kafka's sake)."""
        moved = {position: offset for position, offset in self._next.items() if self._committed.get(position, 0) < offset}
        if moved:
            self._queue.commit_positions(self._group, moved)
            self._committed.update(moved)

    def close(self) -> None:
        """Nothing to release: a member holds no connection or lock between polls."""


def _next_offsets(conn: Connection, positions: Sequence[tuple[Position, int]], limit: int) -> list[int]:
    params: dict = {"limit": limit}
    for i, ((topic, partition), offset) in enumerate(positions):
        params.update({f"t{i}": topic, f"p{i}": partition, f"o{i}": offset})
    return [offset for (offset,) in _HEADS.of(len(positions)).all(conn, params)]


def _heads(count: int):
    """One index range scan per partition, each stopping after `limit` rows, in one statement
    (compiled once per number of partitions: building it anew took a fifth of an idle poll)."""
    heads = [
        select(qm.c.offset)
        .where(qm.c.topic == bindparam(f"t{i}"), qm.c.partition == bindparam(f"p{i}"), qm.c.offset >= bindparam(f"o{i}"))
        .order_by(qm.c.offset)
        .limit(bindparam("limit", type_=Integer))
        .subquery()
        for i in range(count)
    ]
    return union_all(*(select(head.c.offset) for head in heads))


_HEADS = PreparedPerCount(_heads)


def _chunks(items: list, size: int) -> Iterable[list]:
    return (items[i:i + size] for i in range(0, len(items), size))
