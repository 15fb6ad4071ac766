"""The Kafka producer in a child process (gateway.connectors.kafka_publishing), on the real broker:
a child that dies or hangs fails at most its batch, the next batch starts another child, and the
child never outlives the transport, nor the gateway process that made it.

The transport contract (test_transport_contract.py) runs in full against this publisher too.
"""

import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.support import kafka as kafka_support  # noqa: F401  (before kafka-python: its socket-leak workaround)

from gateway.connectors import kafka_publishing
from gateway.connectors.kafka import KafkaTransport
from gateway.connectors.transport import OutgoingMessage, TransportError



@pytest.fixture
def transport(kafka_broker):
    built = KafkaTransport(kafka_broker.bootstrap, client_id="publisher-tests", publisher_process=True)
    yield built
    built.close()


@pytest.fixture
def topic(transport):
    name = f"publisher-{uuid.uuid4().hex[:8]}"
    transport.create_topics([name])
    return name


def message(topic: str, n: int) -> OutgoingMessage:
    return OutgoingMessage(topic, f"case-{n % 3}", f"payload {n}".encode(), {"message-id": f"m-{n}"})


def stored(transport: KafkaTransport, topic: str) -> list[bytes]:
    return sorted(m.value for m in transport.read(topic, {}, max_messages=1000, wait_seconds=2))


def child_of(transport: KafkaTransport):
    process = transport._connected()[0]._child[0]
    assert process.poll() is None and process.pid != os.getpid()
    return process


def gone(process, within: float = 5.0) -> bool:
    try:
        process.wait(within)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_publishing_happens_in_a_child_process_of_kafka_python_alone(transport, topic):
    transport.publish([message(topic, 1)])
    child = child_of(transport)
    assert "gateway.connectors.kafka_publishing" in Path(f"/proc/{child.pid}/cmdline").read_bytes().decode()
    modules = Path(f"/proc/{child.pid}/maps").read_text()
    assert "sqlalchemy" not in modules and "cryptography" not in modules, "none of the gateway's database or crypto stack"
    assert stored(transport, topic) == [b"payload 1"]


def test_a_child_that_died_between_batches_is_replaced_and_nothing_is_lost(transport, topic):
    transport.publish([message(topic, 1)])
    first = child_of(transport)
    first.kill()
    assert gone(first)
    transport.publish([message(topic, 2), message(topic, 3)])
    assert child_of(transport).pid != first.pid
    assert stored(transport, topic) == [b"payload 1", b"payload 2", b"payload 3"]


def test_a_child_that_stops_answering_fails_its_batch_and_the_next_batch_starts_another(transport, topic, monkeypatch):
    transport.publish([message(topic, 1)])
    stuck = child_of(transport)
    os.kill(stuck.pid, signal.SIGSTOP)
    monkeypatch.setattr(kafka_publishing, "ANSWER_SECONDS", 1.0)
    with pytest.raises(TransportError, match="publishing process stopped"):
        transport.publish([message(topic, 2)])  # the relay keeps the rows and retries them
    assert gone(stuck), "the stuck child is killed, not left behind"
    transport.publish([message(topic, 2)])
    assert stored(transport, topic) == [b"payload 1", b"payload 2"]


def test_closing_the_transport_stops_the_child_after_it_delivered_what_it_held(kafka_broker, topic):
    transport = KafkaTransport(kafka_broker.bootstrap, client_id="publisher-tests", publisher_process=True)
    transport.publish([message(topic, n) for n in range(50)])
    child = child_of(transport)
    transport.close()
    assert gone(child, 0) and child.returncode == 0
    reader = KafkaTransport(kafka_broker.bootstrap, client_id="publisher-tests")
    try:
        assert len(stored(reader, topic)) == 50
    finally:
        reader.close()


def test_an_unreachable_broker_fails_the_batch_with_a_readable_reason(kafka_broker):
    transport = KafkaTransport(kafka_broker.bootstrap, client_id="publisher-tests", publisher_process=True)
    name = f"publisher-{uuid.uuid4().hex[:8]}"
    transport.create_topics([name])
    try:
        producer = transport._connected()[0]
        producer._config = {**producer._config, "bootstrap_servers": "127.0.0.1:9", "max_block_ms": 1000}
        started = time.monotonic()
        failures = transport.publish_each({name: [message(name, 1)]})
        assert isinstance(failures[name], TransportError) and "publishing failed" in str(failures[name])
        assert time.monotonic() - started < 30
    finally:
        transport.close()


def test_closing_does_not_wait_out_a_batch_the_child_is_stuck_on(kafka_broker, topic, monkeypatch):
    transport = KafkaTransport(kafka_broker.bootstrap, client_id="publisher-tests", publisher_process=True)
    transport.publish([message(topic, 1)])
    stuck = child_of(transport)
    os.kill(stuck.pid, signal.SIGSTOP)  # as if its flush waited on a broker that is down
    monkeypatch.setattr(kafka_publishing, "CLOSE_SECONDS", 0.5)
    outcome: list = []
    publishing = threading.Thread(target=lambda: outcome.append(transport.publish_each({topic: [message(topic, 2)]})))
    publishing.start()
    time.sleep(0.3)  # the batch is sent and waiting for its answer
    started = time.monotonic()
    transport.close()
    publishing.join(10)
    assert time.monotonic() - started < 10, "close gave up on the stuck batch instead of waiting its 70 s"
    assert gone(stuck)
    assert isinstance(outcome[0][topic], TransportError), "the batch failed: its rows stay in the outbox"
