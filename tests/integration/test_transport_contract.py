"""One contract for every message transport: the embedded queue on SQLite and on PostgreSQL, and
Kafka on a real broker (tests/support/kafka.py) run the same tests.

The broker lives for the whole session, so every test uses topics of its own (a uuid prefix).
Offsets are compared only within a partition and positions are always "last offset + 1": the
embedded queue's offsets grow but are not contiguous.
"""

import threading
import time
import uuid
from collections import defaultdict

import pytest
from sqlalchemy import select, update

# tests.support.kafka before gateway.connectors.kafka: it works around kafka-python's socket leak
from tests.support import kafka as kafka_support

from gateway.connectors import embedded, open_transport
from gateway.connectors.embedded import DatabaseQueue
from gateway.connectors.kafka import KafkaTransport
from gateway.connectors.transport import AGENCY, EVENT, MESSAGE_ID, Consumer, OutgoingMessage, Transport, UnknownTopic
from gateway.errors import GatewayError
from gateway.settings import Settings
from gateway.store.encryption import DataKeyError
from gateway.store.schema import queue_messages


BACKENDS = [
    pytest.param("embedded", "sqlite", id="embedded-sqlite"),
    pytest.param("embedded", "postgresql", id="embedded-postgresql", marks=pytest.mark.postgres),
    pytest.param("kafka", "sqlite", id="kafka"),  # the database is never opened
    pytest.param("kafka-publisher-process", "sqlite", id="kafka-publisher-process"),  # the producer in a child process
]
contract = pytest.mark.parametrize(("backend", "database_url"), BACKENDS, indirect=["database_url"])

KEYS = [f"case-{n}" for n in range(7)]


@pytest.fixture
def transport(request, backend, database_url):  # database_url: so `contract` can parametrise it
    if backend.startswith("kafka"):
        built: Transport = KafkaTransport(request.getfixturevalue("kafka_broker").bootstrap, client_id="contract-tests",
                                          publisher_process=backend == "kafka-publisher-process")
    else:
        services = request.getfixturevalue("services")
        built = DatabaseQueue(services.db, services.keyring)
    yield built
    built.close()


@pytest.fixture
def join(transport):
    """`join(prefix, group)`: a new group member, closed after the test."""
    members: list[Consumer] = []

    def member(prefix: str, group: str) -> Consumer:
        members.append(transport.consumer(prefix, group))
        return members[-1]

    yield member
    for m in members:
        m.close()


def prefix() -> str:
    # "_" is a LIKE wildcard and "." a regex one: both must be taken literally
    return f"ct_{uuid.uuid4().hex[:10]}."


def message(topic: str, n: int, key: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(topic, key if key is not None else KEYS[n % len(KEYS)], str(n).encode(), {MESSAGE_ID: f"m-{n}"})


def numbers(delivered) -> list[int]:
    return [int(m.value) for m in delivered]


def drain(consumer: Consumer, count: int, timeout: float = 30.0) -> list:
    """Poll until at least `count` messages came (a Kafka member first has to join its group)."""
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += consumer.poll(500, 0.5)
    return got


# -- the contract ------------------------------------------------------------------------------


@contract
def test_each_key_keeps_its_order_within_one_partition(transport, join):
    topic = prefix() + "cases"
    transport.create_topics([topic], partitions=3)
    for start in range(0, 300, 50):
        transport.publish([message(topic, n) for n in range(start, start + 50)])

    member = join(topic, "order")
    received = drain(member, 300)
    assert member.poll(500, 0.5) == []

    assert sorted(numbers(received)) == list(range(300))
    by_key, partitions_of_key, offsets = defaultdict(list), defaultdict(set), defaultdict(list)
    for m in received:
        by_key[m.key].append(int(m.value))
        partitions_of_key[m.key].add(m.partition)
        offsets[m.partition].append(m.offset)
    for key, sent in by_key.items():
        assert sent == [n for n in range(300) if KEYS[n % len(KEYS)] == key], key
    assert all(len(p) == 1 for p in partitions_of_key.values()), partitions_of_key
    assert len(offsets) > 1, "seven keys should spread over three partitions"
    assert all(o == sorted(set(o)) for o in offsets.values())


@contract
def test_publishers_in_parallel_lose_and_duplicate_nothing(transport, join):
    topic = prefix() + "parallel"
    transport.create_topics([topic], partitions=2)
    member = join(topic, "parallel")
    received = member.poll(500, 0.1)  # polling while the publishers publish

    def publish(thread: int) -> None:
        for batch in range(20):
            transport.publish([message(topic, thread * 1000 + batch * 5 + i, f"thread-{thread}") for i in range(5)])

    threads = [threading.Thread(target=publish, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        received += member.poll(500, 0.05)
        member.commit()
    received += drain(member, 400 - len(received))

    assert sorted(numbers(received)) == sorted(t * 1000 + n for t in range(4) for n in range(100))
    for thread in range(4):
        assert [n for n in numbers(received) if n // 1000 == thread] == [thread * 1000 + n for n in range(100)]


@contract
def test_headers_values_and_a_missing_key_round_trip(transport):
    topic = prefix() + "headers"
    transport.create_topics([topic], partitions=2)
    sent = [
        OutgoingMessage(topic, None, b"\x00\xff binary", {MESSAGE_ID: "m-1", EVENT: "rfi-requested", AGENCY: "police.vic"}),
        OutgoingMessage(topic, "case-1", "Ngā mihi — ü".encode(), {MESSAGE_ID: "m-2", "note": "Ngā mihi — ü"}),
        OutgoingMessage(topic, "case-2", b"", {}),
    ]
    transport.publish(sent)

    received = transport.read(topic, {})
    assert sorted((m.key or "", m.value, dict(m.headers)) for m in received) == sorted(
        (m.key or "", m.value, dict(m.headers)) for m in sent
    )
    assert {m.key for m in received} == {None, "case-1", "case-2"}
    assert {m.message_id for m in received} == {"m-1", "m-2", None}
    assert all(m.topic == topic for m in received)


@contract
def test_a_new_member_resumes_after_the_committed_position(transport, join):
    topic = prefix() + "resume"
    transport.create_topics([topic], partitions=3)
    transport.publish([message(topic, n) for n in range(10)])

    first = join(topic, "resume")
    assert sorted(numbers(drain(first, 10))) == list(range(10))
    first.commit()
    transport.publish([message(topic, n) for n in range(10, 15)])
    assert sorted(numbers(drain(first, 5))) == list(range(10, 15))
    first.close()  # without committing: the next member gets those five again

    second = join(topic, "resume")
    assert sorted(numbers(drain(second, 5))) == list(range(10, 15))
    assert second.poll(500, 0.5) == []
    second.commit()
    second.close()

    transport.publish([message(topic, 15)])
    third = join(topic, "resume")
    assert numbers(drain(third, 1)) == [15]
    assert third.poll(500, 0.5) == []


@contract
def test_two_groups_read_independently(transport, join):
    topic = prefix() + "groups"
    transport.create_topics([topic], partitions=2)
    transport.publish([message(topic, n) for n in range(6)])

    audit = join(topic, "audit")
    assert sorted(numbers(drain(audit, 6))) == list(range(6))
    audit.commit()
    inbound = join(topic, "inbound")
    assert sorted(numbers(drain(inbound, 6))) == list(range(6))
    assert audit.poll(500, 0.2) == []


@contract
def test_a_topic_created_later_is_picked_up_by_prefix(transport, join):
    p = prefix()
    transport.create_topics([p + "police"])
    transport.publish([message(p + "police", 1)])
    member = join(p, "later")
    assert numbers(drain(member, 1)) == [1]

    # Two topics that an unescaped LIKE ("_" any character) or regex ("." any character) would match
    lookalikes = ["ctx" + p[3:] + "other", p[:-1] + "x"]
    transport.create_topics([p + "health", *lookalikes])
    transport.publish([message(p + "health", 2), *(message(t, 3) for t in lookalikes)])
    assert numbers(drain(member, 1)) == [2]
    assert member.poll(500, 1.0) == []


@contract
def test_an_unknown_topic_is_refused_and_nothing_of_the_batch_is_published(transport):
    topic = prefix() + "known"
    transport.create_topics([topic])
    with pytest.raises(UnknownTopic, match="never-created"):
        transport.publish([message(topic, 1), message(prefix() + "never-created", 2)])
    assert transport.read(topic, {}) == []
    with pytest.raises(UnknownTopic):
        transport.read(prefix() + "never-created", {})


@contract
def test_read_starts_at_the_given_positions_and_waits_for_more(transport):
    topic = prefix() + "inbox"
    transport.create_topics([topic], partitions=2)
    transport.publish([message(topic, n) for n in range(6)])

    everything = transport.read(topic, {})
    assert sorted(numbers(everything)) == list(range(6))
    assert len(transport.read(topic, {}, max_messages=2)) == 2
    ends = {m.partition: m.offset + 1 for m in everything}
    assert transport.read(topic, ends) == []

    busiest = max(ends, key=lambda p: sum(m.partition == p for m in everything))
    in_busiest = [m for m in everything if m.partition == busiest]
    from_second = transport.read(topic, {**ends, busiest: in_busiest[1].offset})
    assert numbers(from_second) == numbers(in_busiest[1:])

    began = time.monotonic()
    assert transport.read(topic, ends, wait_seconds=0.5) == []
    assert time.monotonic() - began >= 0.45

    publisher = threading.Timer(0.3, lambda: transport.publish([message(topic, 6)]))
    publisher.start()
    began = time.monotonic()
    arrived = transport.read(topic, ends, wait_seconds=10)
    publisher.join()
    assert numbers(arrived) == [6]
    assert time.monotonic() - began < 5


@contract
def test_create_topics_is_idempotent_and_topics_lists_them(transport):
    p = prefix()
    a, b, c = p + "a", p + "b", p + "c"
    assert transport.create_topics([a, b], partitions=2) == [a, b]
    assert transport.create_topics([b, c, c], partitions=2) == [c]
    assert transport.create_topics([a, b, c]) == []
    assert {a, b, c} <= transport.topics()
    assert not any(t.startswith(p) for t in transport.topics() - {a, b, c})

    transport.publish([message(a, n, f"case-{n}") for n in range(40)])
    assert {m.partition for m in transport.read(a, {})} == {0, 1}


# -- the embedded queue only -------------------------------------------------------------------


def test_values_are_encrypted_and_a_value_moved_to_another_row_is_refused(services):
    queue = DatabaseQueue(services.db, services.keyring)
    queue.create_topics(["fv.outbound.police"])
    queue.publish([
        OutgoingMessage("fv.outbound.police", "case-1", b"Wiradjuri-Smith", {MESSAGE_ID: "m-1"}),
        OutgoingMessage("fv.outbound.police", "case-1", b"Alpha", {MESSAGE_ID: "m-2"}),
    ])
    rows = services.db.run_read(lambda conn: conn.execute(select(queue_messages).order_by(queue_messages.c.offset)).all())
    assert b"Wiradjuri" not in rows[0].value and b"Alpha" not in rows[1].value

    services.db.run_write(
        lambda conn: conn.execute(update(queue_messages).where(queue_messages.c.offset == rows[1].offset).values(value=rows[0].value))
    )
    with pytest.raises(DataKeyError):
        queue.read("fv.outbound.police", {})
    queue.close()


def test_publish_in_belongs_to_the_callers_transaction(services):
    queue = DatabaseQueue(services.db, services.keyring)
    queue.create_topics(["fv.outbound.police"])

    def publish_then_fail(conn):
        queue.publish_in(conn, [message("fv.outbound.police", 1)])
        raise RuntimeError("the state change failed")

    with pytest.raises(RuntimeError):
        services.db.run_write(publish_then_fail)
    assert queue.read("fv.outbound.police", {}) == []
    services.db.run_write(lambda conn: queue.publish_in(conn, [message("fv.outbound.police", 2)]))
    assert numbers(queue.read("fv.outbound.police", {})) == [2]
    queue.close()


def test_a_waiting_read_wakes_as_soon_as_this_process_publishes(services, monkeypatch):
    monkeypatch.setattr(embedded, "RECHECK_SECONDS", 60.0)  # only the wake-up can end the wait early
    queue = DatabaseQueue(services.db, services.keyring)
    queue.create_topics(["fv.outbound.police"])
    publishes = [
        lambda: queue.publish([message("fv.outbound.police", 1)]),
        lambda: services.db.run_write(lambda conn: queue.publish_in(conn, [message("fv.outbound.police", 2)])),
    ]
    positions: dict[int, int] = {}
    for n, publish in enumerate(publishes, start=1):
        publisher = threading.Timer(0.2, publish)
        publisher.start()
        began = time.monotonic()
        arrived = queue.read("fv.outbound.police", positions, wait_seconds=30)
        publisher.join()
        assert numbers(arrived) == [n] and time.monotonic() - began < 5
        positions = {arrived[0].partition: arrived[0].offset + 1}
    queue.close()


def test_a_publish_to_another_topic_leaves_waiting_readers_waiting(services, monkeypatch):
    """An agency's inbox and the inbound worker wait on one database: each reads again only for
    its own topics, not for every other agency's message."""
    monkeypatch.setattr(embedded, "RECHECK_SECONDS", 60.0)  # only a wake-up makes a waiting reader read
    queue = DatabaseQueue(services.db, services.keyring)
    queue.create_topics(["fv.outbound.police", "fv.outbound.health", "fv.inbound.police"])
    reads = defaultdict(int)
    fetch = queue.fetch

    def counted(conn, positions, limit):
        reads[next(iter(positions))[0].split(".")[1]] += 1
        return fetch(conn, positions, limit)

    monkeypatch.setattr(queue, "fetch", counted)
    arrived: dict[str, list] = {}
    inbound = queue.consumer("fv.inbound.", "gateway")
    readers = [
        threading.Thread(target=lambda: arrived.update(inbox=queue.read("fv.outbound.police", {}, wait_seconds=30))),
        threading.Thread(target=lambda: arrived.update(inbound=inbound.poll(10, wait_seconds=30))),
    ]
    for reader in readers:
        reader.start()
    while reads["outbound"] < 1 or reads["inbound"] < 1:  # each has read once and is waiting
        time.sleep(0.01)

    for n in range(5):
        queue.publish([message("fv.outbound.health", n)])  # another agency's inbox
    time.sleep(0.3)
    assert dict(reads) == {"outbound": 1, "inbound": 1}

    queue.publish([message("fv.outbound.police", 7)])
    queue.publish([message("fv.inbound.police", 8)])
    for reader in readers:
        reader.join(timeout=10)
    assert numbers(arrived["inbox"]) == [7] and numbers(arrived["inbound"]) == [8]
    queue.close()


def test_a_slower_member_never_moves_the_group_back(services):
    queue = DatabaseQueue(services.db, services.keyring)
    queue.create_topics(["fv.inbound.police"])
    queue.publish([message("fv.inbound.police", n) for n in range(4)])
    ahead, behind = queue.consumer("fv.inbound.", "gateway"), queue.consumer("fv.inbound.", "gateway")
    assert numbers(behind.poll(2, 0)) == [0, 1]
    assert numbers(ahead.poll(10, 0)) == [0, 1, 2, 3]
    ahead.commit()
    behind.commit()
    assert queue.consumer("fv.inbound.", "gateway").poll(10, 0) == []
    queue.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_open_transport_chooses_by_setting(services, settings):
    assert isinstance(services.transport, DatabaseQueue)
    kafka_without_bootstrap = Settings(**{**settings.model_dump(), "transport": "kafka"})
    with pytest.raises(GatewayError, match="GATEWAY_TRANSPORT=kafka needs GATEWAY_KAFKA_BOOTSTRAP"):
        open_transport(kafka_without_bootstrap, services.db, services.keyring)
