"""Apache Kafka through kafka-python: the transport past one machine (DESIGN 5 and 10).

One idempotent producer (acks=all: a message counts as published once every in-sync replica has
it; idempotence keeps each partition's order through retries) and one admin client serve the
whole process; each group member and each topic's inbox reader is a consumer of its own. Keys,
values and header values travel as bytes with no kafka-python serializer (its serializers must be
objects, and bytes need none). Topics are never created implicitly: `create_topics` makes them,
and publishing to another raises UnknownTopic at once rather than after a metadata timeout.

`config` reaches every client that knows the setting (SASL or TLS settings, timeouts), so one
dictionary configures them all.
"""

import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import kafka.errors as errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from gateway.connectors.transport import Consumer, DeliveredMessage, OutgoingMessage, Transport, TransportError, UnknownTopic

FLUSH_SECONDS = 30.0  # a publish waits this long for the broker's acknowledgements, then fails
READ_PATIENCE_SECONDS = 5.0  # how long `read` keeps fetching what the broker says is there
CLOSE_SECONDS = 5.0  # what close() gives the producer to deliver what it still holds

PRODUCER = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 5,
    "request_timeout_ms": 10000,
    "delivery_timeout_ms": 25000,  # gives up (and publish fails) within FLUSH_SECONDS
    "max_block_ms": 10000,
}
MEMBER = {
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
    "metadata_max_age_ms": 3000,  # a topic created later matches the pattern within seconds
}
READER = {"group_id": None, "enable_auto_commit": False, "auto_offset_reset": "earliest"}


class KafkaTransport(Transport):
    name = "kafka"

    def __init__(self, bootstrap: str, client_id: str = "fv-gateway", **config):
        self._config = {"bootstrap_servers": bootstrap, "client_id": client_id, "allow_auto_create_topics": False, **config}
        with _translated(f"cannot open Kafka at {bootstrap}"):
            self._producer = KafkaProducer(**_known_to(KafkaProducer, {**PRODUCER, **self._config}))
        # Told the broker's version, consumers skip their own bootstrap, which blocks and, when it
        # fails, leaves a thread behind (kafka-python 3.0.12).
        self._config.setdefault("api_version", self._producer.config["api_version"])
        try:
            with _translated(f"cannot open Kafka at {bootstrap}"):
                self._admin = KafkaAdminClient(**_known_to(KafkaAdminClient, self._config))
        except TransportError:
            self._producer.close(timeout=1)
            raise
        self._admin_lock = threading.Lock()
        self._known: set[str] = set()  # topics seen to exist; topics are never deleted here
        self._readers: dict[str, _Reader] = {}
        self._readers_lock = threading.Lock()

    # -- topics -----------------------------------------------------------------------------

    def create_topics(self, topics: Sequence[str], partitions: int = 1, replication: int = 1) -> list[str]:
        with self._admin_lock, _translated("creating topics failed"):
            existing = self._topic_names()
            wanted = [t for t in dict.fromkeys(topics) if t not in existing]
            if not wanted:
                return []
            spec = {"num_partitions": partitions, "replication_factor": replication}
            result = self._admin.create_topics({t: spec for t in wanted}, raise_errors=False)
            created = [t["name"] for t in result["topics"] if t["error_code"] == 0]
            _raise_unless_created_or_existing(result["topics"])
            self._admin.wait_for_topics(created)  # every partition has a leader: ready to publish
        self._known.update(wanted)
        return [t for t in wanted if t in created]

    def topics(self) -> set[str]:
        with self._admin_lock, _translated("listing topics failed"):
            return self._topic_names()

    def _topic_names(self) -> set[str]:
        return {t["name"] for t in self._admin.describe_topics() if not t.get("is_internal")}

    def _require_topics(self, topics: set[str]) -> None:
        missing = topics - self._known
        if not missing:
            return
        with self._admin_lock, _translated("looking up topics failed"):
            described = self._admin.describe_topics(sorted(missing))
        for topic in described:
            error = errors.for_code(topic["error_code"])
            if error is errors.UnknownTopicOrPartitionError:
                raise UnknownTopic(f"no such topic: {topic['name']}; create it first (gateway kafka init)")
            if topic["error_code"]:
                raise TransportError(f"topic {topic['name']}: {error.__name__}")
            self._known.add(topic["name"])

    # -- publishing -------------------------------------------------------------------------

    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        self._require_topics({m.topic for m in messages})
        with _translated("publishing failed"):
            futures = [self._send(m) for m in messages]
            self._producer.flush(timeout=FLUSH_SECONDS)
            for future in futures:
                future.get(timeout=FLUSH_SECONDS)  # done already; raises what the broker answered for it

    def _send(self, message: OutgoingMessage):
        headers = [(name, value.encode()) for name, value in message.headers.items()]
        key = message.key.encode() if message.key is not None else None
        return self._producer.send(message.topic, value=message.value, key=key, headers=headers)

    # -- reading ----------------------------------------------------------------------------

    def consumer(self, topic_prefix: str, group: str) -> Consumer:
        with _translated("joining the consumer group failed"):
            client = KafkaConsumer(**_known_to(KafkaConsumer, {**MEMBER, **self._config, "group_id": group}))
            client.subscribe(pattern=f"^{re.escape(topic_prefix)}.*")
        return _GroupMember(client)

    def read(
        self, topic: str, positions: Mapping[int, int], max_messages: int = 100, wait_seconds: float = 0.0
    ) -> list[DeliveredMessage]:
        reader = self._reader(topic)
        with reader.lock, _translated(f"reading {topic} failed"):
            return reader.read(positions, max_messages, wait_seconds)

    def _reader(self, topic: str) -> "_Reader":
        self._require_topics({topic})
        with self._readers_lock:
            reader = self._readers.get(topic)
            if reader is None:
                with _translated(f"reading {topic} failed"):
                    client = KafkaConsumer(**_known_to(KafkaConsumer, {**self._config, **READER}))
                    reader = self._readers[topic] = _Reader(client, topic)
            return reader

    def close(self) -> None:
        with self._readers_lock:
            readers, self._readers = list(self._readers.values()), {}
        for reader in readers:
            reader.client.close(autocommit=False)
        self._producer.close(timeout=CLOSE_SECONDS)
        self._admin.close()


class _GroupMember(Consumer):
    def __init__(self, client: KafkaConsumer):
        self._client = client

    def poll(self, max_messages: int = 500, wait_seconds: float = 1.0) -> list[DeliveredMessage]:
        with _translated("polling failed"):
            batches = self._client.poll(timeout_ms=int(wait_seconds * 1000), max_records=max_messages)
        return [_delivered(record) for records in batches.values() for record in records]

    def commit(self) -> None:
        with _translated("committing positions failed"):
            self._client.commit()

    def close(self) -> None:
        self._client.close(autocommit=False)


class _Reader:
    """A consumer with no group, assigned every partition of one topic, moved to each read's positions."""

    def __init__(self, client: KafkaConsumer, topic: str):
        self.client = client
        self.lock = threading.Lock()  # one read at a time moves this consumer
        self.partitions = [TopicPartition(topic, p) for p in sorted(client.partitions_for_topic(topic))]
        client.assign(self.partitions)

    def read(self, positions: Mapping[int, int], limit: int, wait_seconds: float) -> list[DeliveredMessage]:
        # A position past the end would count as out of range and restart at the beginning.
        ends = self.client.end_offsets(self.partitions)
        for tp in self.partitions:
            if tp.partition in positions:
                self.client.seek(tp, min(positions[tp.partition], ends[tp]))
            else:
                self.client.seek_to_beginning(tp)
        deadline = time.monotonic() + wait_seconds
        patience = time.monotonic() + max(wait_seconds, READ_PATIENCE_SECONDS)
        while True:
            timeout_ms = max(int((deadline - time.monotonic()) * 1000), 100)
            batches = self.client.poll(timeout_ms=timeout_ms, max_records=limit)
            if batches:
                return [_delivered(record) for records in batches.values() for record in records]
            # The wait is over, but a fetch can lag behind what is there: keep fetching that.
            if time.monotonic() >= deadline and (time.monotonic() >= patience or not self._behind()):
                return []

    def _behind(self) -> bool:
        ends = self.client.end_offsets(self.partitions)
        return any(self.client.position(tp) < ends[tp] for tp in self.partitions)


def _delivered(record: ConsumerRecord) -> DeliveredMessage:
    key = record.key.decode() if record.key is not None else None
    headers = {name: (value or b"").decode() for name, value in record.headers}
    return DeliveredMessage(record.topic, record.partition, record.offset, key, record.value, headers)


def _known_to(client: type, config: dict) -> dict:
    """The settings this kind of client accepts (each refuses settings it does not know)."""
    return {name: value for name, value in config.items() if name in client.DEFAULT_CONFIG}


def _raise_unless_created_or_existing(results: list[dict]) -> None:
    for topic in results:
        error = errors.for_code(topic["error_code"])
        if topic["error_code"] and error is not errors.TopicAlreadyExistsError:
            raise TransportError(f"topic {topic['name']} was not created: {error.__name__} {topic.get('error_message') or ''}".strip())


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except errors.KafkaError as exc:
        raise TransportError(f"{what}: {exc}") from exc
