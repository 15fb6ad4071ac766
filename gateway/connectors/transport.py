"""The one interface every message transport offers: Kafka's shape, so both transports fit it.

Topics hold ordered messages in partitions; a message's key picks its partition, so all of one
case's messages (keyed by case id) stay in order. Consumers in one group share a topic's
partitions and commit how far they have handled. `read` is a positioned read with no group,
for the inbox API, whose positions live in the gateway's database.

Implementations: `gateway.connectors.kafka.KafkaTransport` (Apache Kafka through kafka-python)
and `gateway.connectors.embedded.DatabaseQueue` (a durable queue in the gateway's database).
Both pass `tests/integration/test_transport_contract.py`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# Header names carried by every gateway message (values are UTF-8 strings).
MESSAGE_ID = "message-id"
CORRELATION_ID = "correlation-id"
EVENT = "event"
AGENCY = "agency"


class TransportError(Exception):
    """The transport could not do what was asked (broker down, topic missing); retry later."""


class UnknownTopic(TransportError):
    """Publishing or reading a topic that was never created."""


@dataclass(frozen=True)
class OutgoingMessage:
    topic: str
    key: str | None
    value: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeliveredMessage:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def message_id(self) -> str | None:
        return self.headers.get(MESSAGE_ID)


class Consumer(ABC):
    """One member of a consumer group. Not thread-safe: one thread polls and commits."""

    @abstractmethod
    def poll(self, max_messages: int = 500, wait_seconds: float = 1.0) -> list[DeliveredMessage]:
        """The next messages of the subscribed topics (in order within a partition); [] after the wait."""

    @abstractmethod
    def commit(self) -> None:
        """Record that everything the last polls returned is handled (the group resumes after it)."""

    @abstractmethod
    def close(self) -> None: ...


class Transport(ABC):
    name: str

    @abstractmethod
    def create_topics(self, topics: Sequence[str], partitions: int = 1, replication: int = 1) -> list[str]:
        """Create the topics that do not exist yet; return those created. Idempotent. A transport that
        checks identities (Kafka with OAUTHBEARER) also lets each topic's agency reach it, and only it."""

    @abstractmethod
    def topics(self) -> set[str]: ...

    @abstractmethod
    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        """Return only when every message is stored durably, in order per key; raise TransportError otherwise."""

    @abstractmethod
    def consumer(self, topic_prefix: str, group: str) -> Consumer:
        """A group member reading every topic whose name starts with the prefix, including topics created later."""

    @abstractmethod
    def read(
        self, topic: str, positions: Mapping[int, int], max_messages: int = 100, wait_seconds: float = 0.0
    ) -> list[DeliveredMessage]:
        """Messages of one topic from the given next offset per partition (missing: from the start), waiting up to wait_seconds for any."""

    @abstractmethod
    def close(self) -> None: ...
