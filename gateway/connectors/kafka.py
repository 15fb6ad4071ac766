"""Apache Kafka through kafka-python: the transport past one machine (DESIGN 5 and 10).

One idempotent producer (acks=all: a message counts as published once every in-sync replica has
it; idempotence keeps each partition's order through retries) and one admin client serve the
whole process; each group member and each topic's inbox reader is a consumer of its own. Keys,
values and header values travel as bytes with no kafka-python serializer (its serializers must be
objects, and bytes need none). Topics are never created implicitly: `create_topics` makes them,
and publishing to another raises UnknownTopic at once rather than after a metadata timeout.

`config` reaches every client that knows the setting (SASL or TLS settings, timeouts), so one
dictionary configures them all; `security_config` builds the gateway's own (SASL OAUTHBEARER with
a token it signs for itself, TLS). The clients connect on first use, not when the transport is
made: a gateway whose broker is not up yet (or, with OAUTHBEARER, a broker that waits for the
gateway's JWKS before it starts) still serves its API, and retries Kafka in the background.

With `agency_acls`, every topic the gateway makes sure of (`create_topics`) also gets the ACLs
that let its agency reach it and nothing else (`gateway.connectors.topics.access`): WRITE on its
inbound topic, READ on its outbound topic, READ on its consumer groups (`<agency>:` prefix). The
principal is `User:<agency id>`, the broker naming each connection after its token's `agency`
claim (gateway.auth.gateway_tokens).
"""

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import kafka.errors as errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourcePatternFilter, ResourceType,
)
from kafka.consumer.fetcher import ConsumerRecord
from kafka.net.sasl.oauth import AbstractTokenProvider

from gateway.connectors import topics as topic_names
from gateway.connectors.kafka_publishing import CLOSE_SECONDS, Failures, Groups, PublisherProcess, publish_groups
from gateway.connectors.transport import Consumer, DeliveredMessage, OutgoingMessage, Transport, TransportError, UnknownTopic

log = logging.getLogger("gateway.kafka")
READ_PATIENCE_SECONDS = 5.0  # how long `read` keeps fetching what the broker says is there

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


class TokenProvider(AbstractTokenProvider):
    """kafka-python's hook for SASL OAUTHBEARER: asked for a token at every (re-)authentication."""

    def __init__(self, token: Callable[[], str]):
        super().__init__()
        self._token = token

    def token(self) -> str:
        return self._token()


def security_config(security: str, tls: bool, ca_file: str = "", token: Callable[[], str] | None = None) -> dict:
    """kafka-python settings for GATEWAY_KAFKA_SECURITY, GATEWAY_KAFKA_TLS and GATEWAY_KAFKA_CA_FILE."""
    config: dict = {"security_protocol": "SSL" if tls else "PLAINTEXT"}
    if security == "oauthbearer":
        if token is None:
            raise ValueError("SASL OAUTHBEARER needs a token source")
        config.update(security_protocol="SASL_SSL" if tls else "SASL_PLAINTEXT", sasl_mechanism="OAUTHBEARER",
                      sasl_oauth_token_provider=TokenProvider(token))
    if tls and ca_file:
        config["ssl_cafile"] = ca_file
    return config


class KafkaTransport(Transport):
    name = "kafka"

    def __init__(
        self, bootstrap: str, client_id: str = "fv-gateway", *, agency_acls: bool = False, publisher_process: bool = False, **config,
    ):
        """`publisher_process`: the producer runs in a child process (gateway.connectors.kafka_publishing)."""
        self._config = {"bootstrap_servers": bootstrap, "client_id": client_id, "allow_auto_create_topics": False, **config}
        self.agency_acls = agency_acls
        self.publisher_process = publisher_process
        self._clients: tuple[KafkaProducer | PublisherProcess, KafkaAdminClient] | None = None
        self._clients_lock = threading.Lock()
        self._admin_lock = threading.Lock()
        self._known: set[str] = set()  # topics seen to exist; topics are never deleted here
        self._readers: dict[str, _Reader] = {}
        self._readers_lock = threading.Lock()

    # -- connecting -------------------------------------------------------------------------

    def _connected(self) -> tuple[KafkaProducer | PublisherProcess, KafkaAdminClient]:
        """The producer (or its process) and admin client, connected on first use (and again after a failed try)."""
        with self._clients_lock:
            if self._clients is None:
                with _translated(f"cannot open Kafka at {self._config['bootstrap_servers']}"):
                    admin = KafkaAdminClient(**_known_to(KafkaAdminClient, self._config))
                # Told the broker's version, consumers (and the producer) skip their own bootstrap,
                # which blocks and, when it fails, leaves a thread behind (kafka-python 3.0.12).
                # (The admin client keeps its connections' client in `_client`; no public way to ask.)
                self._config.setdefault("api_version", admin._client.get_broker_version())
                try:
                    self._clients = (self._new_producer(), admin)
                except TransportError:
                    admin.close()
                    raise
            return self._clients

    def _new_producer(self) -> KafkaProducer | PublisherProcess:
        config = _known_to(KafkaProducer, {**PRODUCER, **self._config})
        if not self.publisher_process:
            with _translated(f"cannot open Kafka at {self._config['bootstrap_servers']}"):
                return KafkaProducer(**config)
        provider = config.pop("sasl_oauth_token_provider", None)  # the child is sent tokens, not the means to sign them
        return PublisherProcess(config, provider.token if provider is not None else None)

    @property
    def _admin(self) -> KafkaAdminClient:
        return self._connected()[1]

    # -- topics -----------------------------------------------------------------------------

    def create_topics(self, topics: Sequence[str], partitions: int = 1, replication: int = 1) -> list[str]:
        wanted = list(dict.fromkeys(topics))
        with self._admin_lock, _translated("creating topics failed"):
            existing = self._topic_names()
            missing = [t for t in wanted if t not in existing]
            created: list[str] = []
            if missing:
                spec = {"num_partitions": partitions, "replication_factor": replication}
                result = self._admin.create_topics({t: spec for t in missing}, raise_errors=False)
                created = [t["name"] for t in result["topics"] if t["error_code"] == 0]
                _raise_unless_created_or_existing(result["topics"])
                self._admin.wait_for_topics(created)  # every partition has a leader: ready to publish
            if self.agency_acls:
                self._grant_agency_access(wanted)
        self._known.update(wanted)
        return [t for t in missing if t in created]

    def granted(self) -> list[ACL]:
        """Every ACL on the broker that allows something (the agencies' among them)."""
        with self._admin_lock, _translated("listing ACLs failed"):
            return self._admin.describe_acls(ALL_GRANTS)[0]

    def _grant_agency_access(self, topics: Sequence[str]) -> list[ACL]:
        """Create the ACLs these topics' agencies lack (idempotent); return those created."""
        wanted = [acl for topic in topics for acl in acls_for(topic)]
        if not wanted:
            return []
        existing = set(self._admin.describe_acls(ALL_GRANTS)[0])
        missing = [acl for acl in dict.fromkeys(wanted) if acl not in existing]
        if missing:
            result = self._admin.create_acls(missing)
            if result["failed"]:
                raise TransportError(f"granting agencies their topics failed: {result['failed'][0]}")
        return missing

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
        groups: dict[str, list[OutgoingMessage]] = {}
        for message in messages:
            groups.setdefault(message.topic, []).append(message)
        failure = next((f for f in self._publish_groups(groups).values() if f is not None), None)
        if failure is not None:
            raise failure

    def publish_each(self, groups: Groups) -> Failures:
        """Publish several topics' messages with one flush; each topic succeeds or fails on its own.

        The outbox relay's batches hold several agencies' topics: one `publish` per topic waited
        for the broker once per topic, so the last topic's messages waited for all the others'."""
        failed: Failures = {}
        for topic in groups:
            try:
                self._require_topics({topic})
            except TransportError as exc:
                failed[topic] = exc
        ready = {topic: messages for topic, messages in groups.items() if topic not in failed}
        if ready:
            failed.update(self._publish_groups(ready))
        return {topic: failed.get(topic) for topic in groups}

    def _publish_groups(self, groups: Groups) -> Failures:
        producer = self._connected()[0]
        if not isinstance(producer, PublisherProcess):
            return publish_groups(producer, groups)
        try:
            return producer.publish(groups)
        except TransportError as exc:  # no producer, or the child stopped: each topic failed, to be retried after its back-off
            return dict.fromkeys(groups, exc)

    # -- reading ----------------------------------------------------------------------------

    def consumer(self, topic_prefix: str, group: str) -> Consumer:
        self._connected()  # learns the broker's version first (see _connected)
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
        with self._clients_lock:
            clients, self._clients = self._clients, None
        if clients is not None:
            producer, admin = clients
            if isinstance(producer, PublisherProcess):
                producer.close()
            else:
                producer.close(timeout=CLOSE_SECONDS)
            admin.close()


class _GroupMember(Consumer):
    def __init__(self, client: KafkaConsumer):
        self._client = client

    def poll(self, max_messages: int = 500, wait_seconds: float = 1.0) -> list[DeliveredMessage]:
        with _translated("polling failed"):
            batches = self._client.poll(timeout_ms=int(wait_seconds * 1000), max_records=max_messages)
        return [_delivered(record) for records in batches.values() for record in records]

    def commit(self, wait: bool = True) -> None:
        """`wait=False`: send the positions and return; the broker's answer is not awaited. The
        inbound worker commits so after each batch's transaction: commits to one coordinator
        are applied in order, a failed one is covered by the next, and whatever a lost one
        leaves uncommitted is delivered again and found already handled (by message id)."""
        with _translated("committing positions failed"):
            if wait:
                self._client.commit()
            else:
                self._client.commit_async(callback=_log_failed_commit)

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


ALL_GRANTS = ACLFilter(
    principal=None, host=None, operation=ACLOperation.ANY, permission_type=ACLPermissionType.ALLOW,
    resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
)


def acls_for(topic: str) -> list[ACL]:
    """What the agency of this topic may do with it (nothing for the gateway's own topics)."""
    found = topic_names.access(topic)
    if found is None:
        return []
    agency, mode = found
    principal = f"User:{agency}"
    operation = ACLOperation.WRITE if mode == "write" else ACLOperation.READ
    grants = [_allow(principal, operation, ResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL)]
    if mode == "read":
        grants.append(_allow(principal, ACLOperation.READ, ResourceType.GROUP, topic_names.group_prefix(agency), ACLResourcePatternType.PREFIXED))
    return grants


def _allow(principal: str, operation: ACLOperation, kind: ResourceType, name: str, pattern: ACLResourcePatternType) -> ACL:
    return ACL(principal=principal, host="*", operation=operation, permission_type=ACLPermissionType.ALLOW,
               resource_pattern=ResourcePattern(kind, name, pattern))


def _log_failed_commit(_offsets, response) -> None:
    if isinstance(response, Exception):
        log.info("committing positions failed (the next commit covers them): %s", type(response).__name__)


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
