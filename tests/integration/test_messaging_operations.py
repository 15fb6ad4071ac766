"""What an operator relies on: failed relays retried with backoff and nothing lost, dead letters
listed and replayed from the command line, topics created by `gateway kafka init`."""

import random
import threading
import time

import pytest
from sqlalchemy import insert, select, update

from gateway.bootstrap import build_services
from gateway.connectors import embedded, topics
from gateway.connectors.transport import MESSAGE_ID, OutgoingMessage, TransportError
from gateway.domain.vocabulary import MessageEvent
from gateway.messaging import outbox as outbox_module
from gateway.messaging.inbound import BATCH, GROUP
from gateway.messaging.outbox import OutboxRelay
from gateway.messaging.retention import QueueRetention
from gateway.settings import Settings
from gateway.store.encryption import generate_kek
from gateway.store.schema import outbox, processed_messages, queue_messages
from tests.support import cases
from tests.support.server import gateway_env, run_gateway


class FlakyTransport:
    """Refuses the first `failures` publishes, like a broker that is down (a fake: a unit of the relay)."""

    name = "flaky"

    def __init__(self, failures: int):
        self.failures = failures
        self.published: list[OutgoingMessage] = []

    def create_topics(self, names, partitions=1, replication=1):
        return []

    def publish(self, messages):
        if self.failures:
            self.failures -= 1
            raise TransportError("broker unavailable")
        self.published += messages


def queue(services, n: int) -> None:
    def job(conn):
        for i in range(n):
            services.outbox.add(conn, OutgoingMessage("fv.outbound.qps", "case-1", f"message {i}".encode(), {MESSAGE_ID: f"m-{i}"}))

    services.db.run_write(job)


def rows(services) -> list:
    return services.db.run_read(lambda conn: conn.execute(select(outbox).order_by(outbox.c.id)).all())


def test_a_refused_relay_is_retried_with_backoff_and_nothing_is_lost(services):
    queue(services, 3)
    transport = FlakyTransport(failures=2)
    relay = OutboxRelay(services.db, services.keyring, transport)

    assert relay.relay_once() == 0
    [first, *_] = rows(services)
    assert first.attempts == 1 and "broker unavailable" in first.last_error
    assert relay.relay_once() == 0, "not due again before its backoff"
    due_now = update(outbox).values(next_attempt_at=0)
    services.db.run_write(lambda conn: conn.execute(due_now))
    assert relay.relay_once() == 0 and rows(services)[0].attempts == 2  # the second failure backs off longer
    assert rows(services)[0].next_attempt_at - first.next_attempt_at > 1_000_000
    services.db.run_write(lambda conn: conn.execute(due_now))

    assert relay.relay_once() == 3
    assert [m.value for m in transport.published] == [b"message 0", b"message 1", b"message 2"]  # in order
    assert rows(services) == []


def test_the_embedded_relay_publishes_each_message_once(services):
    services.transport.create_topics(["fv.outbound.qps"])
    queue(services, 5)
    assert services.relay.relay_once() == 5
    assert services.relay.relay_once() == 0
    read = services.transport.read("fv.outbound.qps", {}, 100)
    assert [m.message_id for m in read] == [f"m-{i}" for i in range(5)]


@pytest.fixture
def operator(tmp_path):
    """A configured data directory with the worked case's agencies and a dead letter in it."""
    key = generate_kek()
    services = build_services(Settings(data_dir=tmp_path, data_key=key))
    cases.open_case(services)
    bad = cases.message(MessageEvent.RFI_REQUEST, "dfv-logan", "newcomer", cases.request("rfi-1", target="newcomer"))
    [outcome] = services.inbound.process([bad])
    services.close()
    return gateway_env(tmp_path, key, GATEWAY_AUDIT_SIGNING_KEY=(tmp_path / "audit-signing-key").read_text().strip()), outcome


def test_dead_letters_are_listed_and_replayed_from_the_command_line(operator):
    env, outcome = operator
    listed = run_gateway(["dlq", "list"], env)
    assert listed.returncode == 0, listed.stderr
    [line] = listed.stdout.splitlines()
    assert line.startswith("1\t") and outcome.message_id in line and "unknown-agency-or-case" in line

    replayed = run_gateway(["dlq", "replay", "1"], env)
    assert replayed.returncode == 0 and "sent back" in replayed.stdout
    again = run_gateway(["dlq", "replay", "1", "7"], env)
    assert again.returncode == 1 and "replayed already" in again.stdout
    assert run_gateway(["dlq", "list"], env).stdout.strip() == "no dead letters"
    assert "(replayed)" in run_gateway(["dlq", "list", "--all"], env).stdout
    assert run_gateway(["dlq", "replay", "x"], env).returncode == 2  # a usage error, one line


def test_kafka_init_creates_every_agencys_topics_once(operator, kafka_broker):
    from gateway.connectors.kafka import KafkaTransport

    env, _ = operator
    env = {**env, "GATEWAY_TRANSPORT": "kafka", "GATEWAY_KAFKA_BOOTSTRAP": kafka_broker.bootstrap}
    first = run_gateway(["kafka", "init", "--partitions", "2"], env)
    assert first.returncode == 0, first.stderr
    broker = KafkaTransport(kafka_broker.bootstrap, client_id="operations-test")
    try:
        expected = {topics.inbound(a) for a in ("qps", "dfv-logan", "courts")} | {topics.outbound("qps"), topics.DEAD_LETTER}
        assert expected <= broker.topics()  # the session's broker may have them from earlier tests already
    finally:
        broker.close()
    again = run_gateway(["kafka", "init"], env)
    assert again.returncode == 0 and again.stdout.startswith("0 topics created on the kafka transport")


def test_kafka_init_without_a_broker_is_one_readable_line(operator):
    env, _ = operator
    env = {**env, "GATEWAY_TRANSPORT": "kafka"}
    result = run_gateway(["kafka", "init"], env)
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0
    assert "GATEWAY_KAFKA_BOOTSTRAP" in result.stderr and "Traceback" not in result.stderr


def test_a_message_to_a_dead_letter_is_also_on_the_dead_letter_topic(services):
    cases.open_case(services)
    services.transport.create_topics([topics.DEAD_LETTER])
    broken = cases.delivered(topics.inbound("qps"), b"{not json", {MESSAGE_ID: "m-broken"})
    services.inbound.process([broken])
    services.relay.relay_once()
    [copy] = services.transport.read(topics.DEAD_LETTER, {}, 10)
    assert copy.value == b"{not json"
    assert copy.headers["dead-letter-reason-code"] == "malformed" and copy.headers["dead-letter-topic"] == topics.inbound("qps")
    assert copy.headers[MESSAGE_ID].startswith("dead-letter-1-m-broken")


def test_one_topic_that_fails_holds_back_only_its_own_messages_and_keeps_their_order(services):
    class OneTopicDown(FlakyTransport):
        def publish(self, messages):
            if messages[0].topic == "fv.outbound.down":
                raise TransportError("no leader for fv.outbound.down")
            self.published += messages

    def job(conn):
        for i, topic in enumerate(["fv.outbound.down", "fv.outbound.qps", "fv.outbound.down", "fv.outbound.qps"]):
            services.outbox.add(conn, OutgoingMessage(topic, "case-1", f"{topic} {i}".encode(), {MESSAGE_ID: f"m-{i}"}))

    services.db.run_write(job)
    transport = OneTopicDown(failures=0)
    relay = OutboxRelay(services.db, services.keyring, transport)
    assert relay.relay_once() == 2
    assert [m.value for m in transport.published] == [b"fv.outbound.qps 1", b"fv.outbound.qps 3"]
    assert [(r.topic, r.attempts) for r in rows(services)] == [("fv.outbound.down", 1), ("fv.outbound.down", 1)]
    # a new message for the topic that is down waits behind the older ones, never overtakes them
    services.db.run_write(lambda conn: services.outbox.add(conn, OutgoingMessage("fv.outbound.down", "case-1", b"later", {MESSAGE_ID: "m-9"})))
    transport.publish = lambda messages: transport.published.extend(messages)
    assert relay.relay_once() == 0
    services.db.run_write(lambda conn: conn.execute(update(outbox).where(outbox.c.attempts > 0).values(next_attempt_at=0)))
    assert relay.relay_once() == 3
    assert [m.value for m in transport.published][2:] == [b"fv.outbound.down 0", b"fv.outbound.down 2", b"later"]


class RandomlyFailingTransport:
    """A broker whose topics go down and come back, and that refuses one publish in ten (a fake:
    a unit of the relay's hand-over). Publishes each topic on its own, as Kafka's `publish_each`."""

    name = "randomly-failing"

    def __init__(self, chance: random.Random):
        self.chance = chance
        self.down: set[str] = set()
        self.published: list[OutgoingMessage] = []
        self._lock = threading.Lock()

    def create_topics(self, names, partitions=1, replication=1):
        return []

    def publish(self, messages):
        time.sleep(0.001)
        if {m.topic for m in messages} & self.down or self.chance.random() < 0.1:
            raise TransportError("broker unavailable")
        with self._lock:
            self.published += messages

    def publish_each(self, groups):
        failed = {}
        for topic, messages in groups.items():
            try:
                self.publish(messages)
            except TransportError as exc:
                failed[topic] = exc
        return {topic: failed.get(topic) for topic in groups}


@pytest.mark.parametrize("seed", [1, 2])
def test_rows_handed_over_by_inbound_batches_leave_once_each_and_in_order_through_failures(services, monkeypatch, seed):
    """The inbound worker hands each batch's outbox rows to the relay in memory; rows added
    outside a batch, failed publishes and topics going down must not reorder or lose any."""
    monkeypatch.setattr(outbox_module, "BACKOFF_US", (10_000, 20_000, 50_000))
    chance = random.Random(seed)
    transport = RandomlyFailingTransport(chance)
    relay = OutboxRelay(services.db, services.keyring, transport)
    stop = threading.Event()
    relaying = threading.Thread(target=relay.run, args=(stop, 0.01))
    relaying.start()
    names, sent = ["fv.outbound.a", "fv.outbound.b", "fv.outbound.c"], []
    try:
        for _ in range(120):
            handing_over = chance.random() < 0.85  # else added as the native API adds: left for the claim

            def batch(conn):
                added = conn.info[outbox_module.COLLECTING] = [] if handing_over else None
                try:
                    for _ in range(chance.randint(1, 6)):
                        topic, number = chance.choice(names), len(sent)
                        sent.append(topic)
                        services.outbox.add(conn, OutgoingMessage(topic, "case-1", str(number).encode(), {MESSAGE_ID: f"m-{number}"}))
                finally:
                    conn.info.pop(outbox_module.COLLECTING)
                return relay.adopt(conn, added) if handing_over else None

            relay.hand_over(services.db.run_write(batch))  # None: only wakes the relay, which claims
            if chance.random() < 0.05:
                transport.down = {chance.choice(names)}  # one topic refused until it comes back
            elif chance.random() < 0.2:
                transport.down = set()
            time.sleep(chance.random() * 0.003)
        transport.down = set()
        deadline = time.monotonic() + 60
        while rows(services) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        relay.wake()
        relaying.join()

    assert rows(services) == []
    first_seen = list(dict.fromkeys(int(m.value) for m in transport.published))  # a redelivery is dropped by id downstream
    assert sorted(first_seen) == list(range(len(sent)))  # every message, none lost
    for topic in names:
        mine = [n for n in first_seen if sent[n] == topic]
        assert mine == sorted(mine), f"{topic} left out of order"


def test_the_embedded_queue_forgets_only_what_every_reader_has_passed_and_the_retention_has_expired(services):
    queue = services.transport
    queue.create_topics([topics.inbound("qps"), topics.outbound("qps"), topics.outbound("vicpol")], partitions=1)

    def send(topic: str, n: int) -> None:
        queue.publish([OutgoingMessage(topic, "case-1", f"{topic} {i}".encode(), {MESSAGE_ID: f"{topic}-{i}"}) for i in range(n)])

    send(topics.inbound("qps"), 3)
    send(topics.outbound("qps"), 5)
    send(topics.outbound("vicpol"), 2)  # vicpol's system has never polled its inbox
    services.db.run_write(lambda conn: conn.execute(update(queue_messages).values(published_at=0)))  # all long expired
    send(topics.inbound("qps"), 1)  # read, but recent
    gateway = queue.consumer(topics.INBOUND_PREFIX, GROUP)
    assert len(gateway.poll(100, 0.5)) == 4
    gateway.commit()
    gateway.close()
    third = services.inbox.poll("qps", 10, 0)[2]
    services.inbox.ack("qps", third.id)  # qps has handled its first three messages

    trimmed = services.db.run_write(QueueRetention(queue, retention_hours=24).trim)

    assert trimmed == 3 + 3
    left = services.db.run_read(lambda conn: conn.execute(select(queue_messages.c.topic)).scalars().all())
    assert sorted(left) == [topics.inbound("qps")] + [topics.outbound("qps")] * 2 + [topics.outbound("vicpol")] * 2
    unread = services.inbox.poll("qps", 10, 0)
    assert [e.message.value for e in unread] == [b"fv.outbound.qps 3", b"fv.outbound.qps 4"]  # nothing qps still needs is gone
    assert services.db.run_write(QueueRetention(queue, retention_hours=24).trim) == 0


def test_a_running_gateway_trims_its_queue_on_each_housekeeping_tick(services, monkeypatch):
    monkeypatch.setattr(embedded, "TRIM_BATCH", 2)  # a backlog of five: three short transactions in one tick
    queue = services.transport
    queue.create_topics([topics.inbound("qps")], partitions=1)
    queue.publish([OutgoingMessage(topics.inbound("qps"), "case-1", b"not a Bundle", {MESSAGE_ID: f"m-old-{i}"}) for i in range(5)])
    services.db.run_write(lambda conn: conn.execute(update(queue_messages).values(published_at=0)))
    worker = services.worker(overdue_every=0.05)  # the inbound loop reads and commits it; housekeeping trims it
    inbound = select(queue_messages).where(queue_messages.c.topic == topics.inbound("qps"))

    worker.start()
    try:
        deadline = time.monotonic() + 10
        while services.db.run_read(lambda conn: conn.execute(inbound).first()) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()

    assert services.db.run_read(lambda conn: conn.execute(inbound).first()) is None
    # its dead-letter copy stays: on the embedded queue nobody reads fv.dead-letter (the table is what operators use)
    assert services.db.run_read(lambda conn: conn.execute(select(queue_messages.c.topic)).scalars().all()) == [topics.DEAD_LETTER] * 5


def test_a_running_gateway_forgets_handled_ids_past_their_retention(services):
    """On either transport: housekeeping deletes what processed_messages holds past its retention."""
    now_us = int(time.time() * 1_000_000)
    rows = [{"message_id": f"m-{age}", "topic": topics.inbound("qps"), "outcome": "answered",
             "processed_at": now_us - age * 86_400_000_000} for age in (45, 1)]  # days; the retention is 30
    services.db.run_write(lambda conn: conn.execute(insert(processed_messages), rows))
    worker = services.worker(overdue_every=0.05)

    worker.start()
    try:
        deadline = time.monotonic() + 10
        while len(handled_ids(services)) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()

    assert handled_ids(services) == ["m-1"]


def handled_ids(services) -> list[str]:
    return services.db.run_read(lambda conn: conn.execute(select(processed_messages.c.message_id)).scalars().all())


def test_a_backlog_is_handled_in_transactions_of_at_most_one_batch(services, monkeypatch):
    """Each transaction holds the one SQLite writer (API writes wait behind it) and its answers
    leave only when it commits: a backlog is worked off a bounded batch at a time."""
    topic = topics.inbound("qps")
    services.transport.create_topics([topic])
    backlog = 2 * BATCH + 50
    malformed = [OutgoingMessage(topic, "case-1", b"not a message", {MESSAGE_ID: f"m-{i}"}) for i in range(backlog)]
    services.transport.publish(malformed)
    sizes: list[int] = []
    handle = services.inbound.process
    monkeypatch.setattr(services.inbound, "process", lambda messages, relay=None: sizes.append(len(messages)) or handle(messages, relay))
    stop = threading.Event()
    worker = threading.Thread(target=services.inbound.run, args=(services.transport, stop))
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while sum(sizes) < backlog and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        worker.join()
    assert sum(sizes) == backlog  # every message handled (here: dead-lettered as malformed), none twice
    assert max(sizes) == BATCH and len(sizes) >= 3


def test_a_message_added_by_any_write_is_relayed_when_that_write_commits_not_at_the_next_look(services):
    """The relay sleeps between looks for rows nobody told it of; a commit that added some wakes it."""
    transport = FlakyTransport(failures=0)
    relay = OutboxRelay(services.db, services.keyring, transport)
    stop = threading.Event()
    relaying = threading.Thread(target=relay.run, args=(stop, 60.0))
    relaying.start()
    try:
        time.sleep(0.2)  # the relay has looked once, found nothing, and sleeps for a minute
        queue(services, 2)
        deadline = time.monotonic() + 5
        while len(transport.published) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        relay.wake()
        relaying.join(10)
    assert [m.value for m in transport.published] == [b"message 0", b"message 1"]
    assert rows(services) == []
