"""The Kafka broker the integration tests start (tests/support/kafka.py), and the kafka-python
client the gateway uses, checked end to end.

Keyed records keep their per-key order through an idempotent producer (acks=all) and a
consumer group; a broker restart in the middle of a stream loses and duplicates nothing; and
stopping the broker leaves no JVM behind.
"""

from __future__ import annotations

import threading
import time
import uuid
import warnings
from collections import defaultdict

import pytest

# kafka-python's classes come through tests.support.kafka, which imports them without the
# DeprecationWarning kafka-python 3.0.12 raises at import under filterwarnings = "error".
from tests.support.kafka import (
    KafkaBroker,
    KafkaConsumer,
    KafkaProducer,
    broker_processes,
    external_bootstrap,
    require_local_broker,
)

with warnings.catch_warnings():  # see tests/support/kafka.py (kafka-python 3.0.12 import)
    warnings.filterwarnings("ignore", r"(read|open)_text is deprecated", DeprecationWarning)
    from kafka.serializer import DefaultSerializer, JsonSerializer

KEYS = [f"agency-{n}" for n in range(7)]


def _topic(purpose: str) -> str:
    return f"test-{purpose}-{uuid.uuid4().hex[:8]}"


def _producer(bootstrap: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="test-producer",
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        # quick to notice a restarted broker, but never give up on a record within the test
        request_timeout_ms=10000,
        reconnect_backoff_max_ms=1000,
        delivery_timeout_ms=90000,
        # kafka-python 3 wants Serializer objects; plain callables raise a DeprecationWarning
        key_serializer=DefaultSerializer(),
        value_serializer=JsonSerializer(),
    )


def _consumer(bootstrap: str, topic: str) -> KafkaConsumer:
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        client_id="test-consumer",
        group_id=f"group-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        reconnect_backoff_max_ms=1000,
        key_deserializer=DefaultSerializer(),
        value_deserializer=JsonSerializer(),
    )


def _send(producer: KafkaProducer, topic: str, ids: range, pause: float = 0.0) -> list:
    futures = []
    for n in ids:
        key = KEYS[n % len(KEYS)]
        futures.append(producer.send(topic, key=key, value={"id": n, "key": key}))
        if pause:
            time.sleep(pause)
    return futures


def _consume(consumer: KafkaConsumer, count: int, timeout: float = 60.0) -> list:
    """At least ``count`` records (fewer only if ``timeout`` runs out), then commit."""
    records: list = []
    deadline = time.monotonic() + timeout
    while len(records) < count and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    consumer.commit()
    return records


def test_keyed_records_keep_their_per_key_order(kafka_broker):
    topic = _topic("order")
    kafka_broker.create_topics([topic], partitions=3)

    producer = _producer(kafka_broker.bootstrap)
    try:
        futures = _send(producer, topic, range(100))
        producer.flush(timeout=60)
        sent = [future.get(timeout=60) for future in futures]
    finally:
        producer.close(timeout=10)
    partition_of_key = defaultdict(set)
    for n, metadata in enumerate(sent):
        partition_of_key[KEYS[n % len(KEYS)]].add(metadata.partition)
    assert all(len(parts) == 1 for parts in partition_of_key.values()), partition_of_key
    assert len({metadata.partition for metadata in sent}) > 1, "the keys should spread"

    consumer = _consumer(kafka_broker.bootstrap, topic)
    try:
        records = _consume(consumer, 100)
        assert _consume(consumer, 1, timeout=1.0) == []  # nothing more than was sent
    finally:
        consumer.close()

    assert sorted(record.value["id"] for record in records) == list(range(100))
    by_key = defaultdict(list)
    for record in records:
        assert record.key == record.value["key"]
        by_key[record.key].append(record.value["id"])
    for key, ids in by_key.items():
        assert ids == [n for n in range(100) if KEYS[n % len(KEYS)] == key], key


def test_restart_mid_stream_loses_and_duplicates_nothing(kafka_broker):
    if not isinstance(kafka_broker, KafkaBroker):
        pytest.skip(f"an existing broker ({kafka_broker.bootstrap}) cannot be restarted")
    topic = _topic("restart")
    kafka_broker.create_topics([topic], partitions=3)
    old_pid, old_bootstrap = kafka_broker.pid, kafka_broker.bootstrap

    producer = _producer(kafka_broker.bootstrap)
    consumer = _consumer(kafka_broker.bootstrap, topic)
    try:
        first = _send(producer, topic, range(50))
        producer.flush(timeout=60)
        for future in first:
            future.get(timeout=60)
        records = _consume(consumer, 50)
        assert len(records) == 50

        # Restart while the producer goes on sending: some of the last 50 records are sent
        # while the broker is shutting down or down, and go through on the restarted one.
        failure: list[BaseException] = []

        def restart() -> None:
            try:
                kafka_broker.restart()
            except BaseException as exc:  # re-raised in the test's thread
                failure.append(exc)

        restarter = threading.Thread(target=restart, name="kafka-restart")
        restarter.start()
        second = _send(producer, topic, range(50, 100), pause=0.02)
        sent_during_restart = restarter.is_alive()
        restarter.join(timeout=kafka_broker.start_timeout + kafka_broker.stop_timeout + 10)
        assert not restarter.is_alive(), "restart() did not return"
        if failure:
            raise failure[0]
        producer.flush(timeout=90)
        for future in second:
            future.get(timeout=90)

        records += _consume(consumer, 50)
        assert _consume(consumer, 1, timeout=2.0) == []
    finally:
        consumer.close()
        producer.close(timeout=10)

    assert sent_during_restart, "the restart ended before the last records were sent"
    assert kafka_broker.pid != old_pid and broker_processes(kafka_broker.tmpdir) == [kafka_broker.pid]
    assert kafka_broker.bootstrap == old_bootstrap
    assert kafka_broker.last_exit_code == 143  # SIGTERM: the controlled shutdown
    ids = [record.value["id"] for record in records]
    assert len(ids) == 100 and sorted(ids) == list(range(100)), sorted(ids)
    by_key = defaultdict(list)
    for record in records:
        by_key[record.key].append(record.value["id"])
    for key, key_ids in by_key.items():
        assert key_ids == sorted(key_ids), key


def test_stop_leaves_no_broker_process():
    if external_bootstrap():
        pytest.skip("the tests use an existing broker; not starting one of our own")
    broker = KafkaBroker(require_local_broker())
    try:
        broker.start()
        directory, pid = broker.tmpdir, broker.pid
        assert broker_processes(directory) == [pid]
        broker.create_topics([_topic("stop")])
    finally:
        broker.stop()
    assert broker_processes(directory) == []
    assert not directory.exists()
    assert broker.last_exit_code == 143
    assert not broker.running
    broker.stop()  # idempotent
