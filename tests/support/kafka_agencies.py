"""Agencies' systems on Kafka, as the fault tests and the round-trip benchmark drive them.

An `AgencyOnKafka` writes its own inbound topic and reads its outbound topic (manually assigned,
from its end when created, no group), as the topic ACLs allow an agency. `RfiExchange` plays a
requester and a target through the gateway: the requester asks, the target answers each request
it receives (one item it may release and, for every other RFI, one labelled excluded), and the
requester collects the answers. Redeliveries are counted, not hidden: a message id seen twice
is a duplicate delivery, a second rfi-response for one RFI under another message id is a second
effect (a fault).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import orjson

import tests.support.kafka  # noqa: F401  (kafka-python's import warning and socket leak, handled there)
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from gateway.connectors import topics
from gateway.connectors.transport import CORRELATION_ID, EVENT, MESSAGE_ID
from gateway.domain.vocabulary import ExcludedInformation, InformationCategory, MessageEvent
from gateway.mappings import rfi as rfi_mapping
from gateway.mappings.common import reference_id
from gateway.messaging import bundles
from tests.support import cases

SECRET = "Suspect in an open investigation"  # never released: labelled excluded


class AgencyOnKafka:
    def __init__(self, bootstrap: str, agency_id: str, **client_config):
        """`client_config`: more kafka-python settings for both clients (SASL: tests/integration/test_kafka_identity.py)."""
        self.agency_id = agency_id
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5, retries=50, **client_config)
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest", **client_config)
        outbound = topics.outbound(agency_id)
        partitions = [TopicPartition(outbound, p) for p in sorted(self.consumer.partitions_for_topic(outbound))]
        self.consumer.assign(partitions)
        self.consumer.seek_to_end()  # the session's broker is shared: only what is sent from now on
        for tp in partitions:
            self.consumer.position(tp)  # resolve the lazy seek now, before anything new arrives

    def send(self, bundle: dict, case_id: str) -> None:
        headers = [(MESSAGE_ID, bundle["id"].encode()), (EVENT, bundle["entry"][0]["resource"]["eventCoding"]["code"].encode())]
        self.producer.send(topics.inbound(self.agency_id), value=orjson.dumps(bundle), key=case_id.encode(), headers=headers)

    def flush(self) -> None:
        self.producer.flush()

    def received(self, wait_seconds: float = 0.2) -> list[tuple[dict, dict]]:
        """(headers, Bundle) of what arrived since the last call."""
        batches = self.consumer.poll(timeout_ms=int(wait_seconds * 1000), max_records=2000)
        return [
            ({k: v.decode() for k, v in r.headers}, orjson.loads(r.value)) for records in batches.values() for r in records
        ]

    def close(self) -> None:
        self.producer.close(timeout=5)
        self.consumer.close()


@dataclass
class RfiExchange:
    """`requester` and `target`: agency systems with send(bundle, case_id), flush(), received(wait) and close()."""

    requester: AgencyOnKafka
    target: AgencyOnKafka
    case_ids: list[str]
    asked: dict[str, str] = field(default_factory=dict)  # rfi id -> case id
    requests_seen: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # rfi id -> message ids
    answers_seen: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    answered_at: dict[str, float] = field(default_factory=dict)
    asked_at: dict[str, float] = field(default_factory=dict)
    released_text: list[str] = field(default_factory=list)
    duplicates: int = 0
    _seen: set[str] = field(default_factory=set)

    def ask(self, n: int) -> None:
        for i in range(n):
            rfi_id = f"rfi-{uuid.uuid4().hex[:16]}"
            case_id = self.case_ids[len(self.asked) % len(self.case_ids)]
            rfi = cases.request(rfi_id, requester=self.requester.agency_id, target=self.target.agency_id)
            bundle = bundles.build(MessageEvent.RFI_REQUEST, self.requester.agency_id, self.target.agency_id,
                                   [rfi_mapping.to_fhir(rfi, case_id)], cases.NOW)
            self.asked[rfi_id], self.asked_at[rfi_id] = case_id, time.monotonic()
            self.requester.send(bundle, case_id)
        self.requester.flush()

    def latencies(self) -> list[float]:
        """Seconds from asking to the answer's arrival, for every answered RFI."""
        return [self.answered_at[r] - self.asked_at[r] for r in self.answered_at if r in self.asked_at]

    def pump(self, wait_seconds: float = 0.2) -> None:
        """The target answers what it received; the requester collects answers."""
        self.answer(wait_seconds)
        self.collect(min(wait_seconds, 0.005))

    @contextmanager
    def pumping(self, wait_seconds: float = 0.1) -> Iterator[None]:
        """The target answering and the requester collecting, each on a thread of its own blocked
        in its own poll, while the caller asks (`ask`, then `wait_until_answered`). One thread
        taking turns with short polls (`pump`) burned half a core spinning on a two-core machine
        that the gateway and the broker share, and stamped an answer only after the target's
        poll was over. For agencies whose clients may be used from two threads at once (Kafka's)."""
        stop = threading.Event()
        failures: list[BaseException] = []

        def loop(step: Callable[[float], None]) -> None:
            try:
                while not stop.is_set():
                    step(wait_seconds)
            except BaseException as exc:  # raised in the caller's thread when pumping ends
                failures.append(exc)

        threads = [threading.Thread(target=loop, args=(step,), daemon=True) for step in (self.answer, self.collect)]
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        if failures:
            raise failures[0]

    def wait_until_answered(self, timeout: float) -> None:
        """While `pumping`: until every RFI asked is answered, or the timeout."""
        deadline = time.monotonic() + timeout
        while len(self.answered_at) < len(self.asked) and time.monotonic() < deadline:
            time.sleep(0.005)

    def answer(self, wait_seconds: float = 0.2) -> None:
        """The target answers the requests that arrived (waiting up to `wait_seconds` for some)."""
        for headers, bundle in self.target.received(wait_seconds):
            if self._duplicate(headers) or headers[EVENT] != "rfi-request":
                continue
            task = bundles.parse(orjson.dumps(bundle)).focus_of("Task")
            self.requests_seen[task["id"]].add(headers[MESSAGE_ID])
            self.target.send(self._answer(task, bundle), reference_id(task["focus"], "EpisodeOfCare"))
        self.target.flush()

    def collect(self, wait_seconds: float = 0.005) -> None:
        """The requester takes the answers that arrived (waiting up to `wait_seconds` for some)."""
        for headers, bundle in self.requester.received(wait_seconds):
            if self._duplicate(headers) or headers[EVENT] != "rfi-response":
                continue
            task = bundles.parse(orjson.dumps(bundle)).focus_of("Task")
            self.answers_seen[task["id"]].add(headers[MESSAGE_ID])
            self.answered_at.setdefault(task["id"], time.monotonic())
            self.released_text += [o["valueCodeableConcept"].get("text", "") for o in task.get("output", [])]
            assert headers[CORRELATION_ID]

    def run_until_answered(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.answered_at) < len(self.asked) and time.monotonic() < deadline:
            # Short waits: the requester's answers are collected only between the target's polls,
            # and a 0.2 s target poll with no request to answer held them back (and added up to
            # 0.2 s to the latency measured for the RFIs still in flight when pacing stops).
            self.pump(0.01)

    def _duplicate(self, headers: dict) -> bool:
        if headers[MESSAGE_ID] in self._seen:
            self.duplicates += 1
            return True
        self._seen.add(headers[MESSAGE_ID])
        return False

    def _answer(self, task: dict, request: dict) -> dict:
        rfi = rfi_mapping.from_fhir(task)
        items = [(InformationCategory.CRIMINAL_HISTORY, f"Prior incidents on file for {rfi.id}", frozenset())]
        if int(rfi.id[-1], 16) % 2:
            items.append((InformationCategory.CRIMINAL_HISTORY, SECRET, frozenset({ExcludedInformation.PREJUDICE_INVESTIGATION})))
        answered = cases.answered(rfi, *items)
        focus = [rfi_mapping.to_fhir(answered, reference_id(task["focus"], "EpisodeOfCare"))]
        return bundles.build(MessageEvent.RFI_RESPONSE, self.target.agency_id, self.requester.agency_id, focus, cases.NOW)
