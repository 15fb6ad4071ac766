"""What agencies send: each message handled once, in order per case, or dead-lettered with the reason.

A batch from the transport is handled in one database transaction, each message in its own
savepoint: the message's effects (Task, AuditEvents, outbox rows) and its processed-message
record commit together, so a redelivery after a crash finds the id and has no second effect.
Only then are the transport's positions committed. A message that can never be handled as sent
(malformed, not the sender's to send, unknown agency or case, against the rules) is
dead-lettered in the same savepoint; a database that is unreachable fails the whole batch,
which is read again from the last committed position.

The worker's loop (`run`) hands the outbox rows a batch adds straight to the relay
(gateway.messaging.outbox, "Hand-over"), and commits positions without waiting for the
broker's answer: they are sent only after the batch's transaction committed, a later commit
covers one that failed, and what a lost commit leaves uncommitted is delivered again and
found already handled.
"""

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select

from gateway.connectors import topics
from gateway.connectors.transport import Consumer, DeliveredMessage, Transport
from gateway.errors import Forbidden, GatewayError, InvalidRequest, NotFound, ServiceUnavailable
from gateway.fhir.dates import now_micros
from gateway.messaging import bundles
from gateway.messaging.bundles import Message
from gateway.messaging.dead_letters import DeadLetters
from gateway.messaging.outbox import COLLECTING, OutboxRelay
from gateway.store import deferred
from gateway.store.database import Database
from gateway.store.savepoint import Savepoint
from gateway.store.prepared import Prepared, PreparedRows
from gateway.store.schema import processed_messages

log = logging.getLogger("gateway.inbound")
# statements run per message: compiled once (gateway.store.prepared)
_SEEN = Prepared(select(processed_messages.c.message_id).where(processed_messages.c.message_id == bindparam("m")))
# Each message's record is inserted with the rest of its batch's when the write job ends
# (gateway.store.deferred): within the batch, `seen` answers for it.
_RECORDS = PreparedRows(processed_messages, ["message_id", "topic", "outcome", "processed_at"])

Handler = Callable[[Connection, str, Message, dict], str]  # (conn, sender, message, memo of this transaction)
Check = Callable[[Message], Message]  # a message's content checked (raises GatewayError), before its transaction
GROUP = "fv-gateway"
POLL_SECONDS = 0.2  # a poll returns as soon as messages arrive; this only bounds how late `stop` is seen
# Messages per transaction at most. A batch holds the one SQLite writer (API writes wait behind it)
# and its answers leave only when it commits: 500 took about a second under full load, and the
# RFI benchmark's p99 at half load was 260-440 ms; at 100 it was 190-270 ms, for about a tenth
# less at full load (fewer messages per publish and per fetch).
BATCH = 100


@dataclass(frozen=True)
class Outcome:
    message_id: str | None
    outcome: str  # what the handler said, "duplicate", or "dead-letter: <code>"


class InboundProcessor:
    def __init__(
        self, db: Database, dead_letters: DeadLetters, handle: Handler, on_handled: Callable[[], None] = lambda: None,
        check: Check = lambda message: message,
    ):
        self.db = db
        self.dead_letters = dead_letters
        self.handle = handle
        self.check = check  # what `handle` would check of a message without the database (its content)
        self.on_handled = on_handled  # wakes the outbox relay

    def process(self, messages: Sequence[DeliveredMessage], relay: OutboxRelay | None = None) -> list[Outcome]:
        """Handle a batch in one transaction; raises ServiceUnavailable if the database is gone.

        With `relay`, the outbox rows the batch adds are leased to it in the same transaction and
        handed over once it commits (see gateway.messaging.outbox)."""
        collect = relay is not None and relay.adopts
        opened = _Opened(messages)

        def job(conn: Connection):
            memo: dict = {}
            seen = _handled_already(conn, messages)
            if not collect:
                return [self._one(conn, m, opened.get(i), memo, None, seen) for i, m in enumerate(messages)], None
            added = conn.info[COLLECTING] = []  # Outbox.add appends to it while this job runs
            try:
                outcomes = [self._one(conn, m, opened.get(i), memo, added, seen) for i, m in enumerate(messages)]
            finally:
                conn.info.pop(COLLECTING, None)
            return outcomes, relay.adopt(conn, added)

        written = self.db.submit_write(job)
        # Meanwhile, on this thread: each message parsed and its content checked, a step ahead of
        # the writer, which takes them in order (it runs while the writer waits on SQLite).
        opened.open_all(self._open)
        outcomes, handoff = written.result()
        if relay is not None:
            relay.hand_over(handoff)
        self.on_handled()
        return outcomes

    def accept(self, sender: str, raw: bytes) -> str:
        """A message posted over REST by `sender`: handled at once; a refusal is the caller's error, not a dead letter."""
        message = bundles.parse(raw)
        if message.source != sender:
            raise Forbidden.at("MessageHeader.sender", f"The access token is agency {sender}'s; it sends in its own name only")

        def job(conn: Connection) -> str:
            if self._seen(conn, message.id):
                return "duplicate"
            outcome = self.handle(conn, sender, message, {})
            self._record(conn, message.id, topics.inbound(sender), outcome)
            return outcome

        outcome = self.db.run_write(job)
        self.on_handled()
        return outcome

    def run(self, transport: Transport, stop: threading.Event, batch: int = BATCH, relay: OutboxRelay | None = None) -> None:
        """Consume every agency's inbound topic until `stop` is set (handing outbox rows to `relay`)."""
        consumer: Consumer | None = None
        while not stop.is_set():
            try:
                consumer = consumer or transport.consumer(topics.INBOUND_PREFIX, GROUP)
                polled = consumer.poll(batch, POLL_SECONDS)
                if polled:
                    self.process(polled, relay)
                    # After the batch's transaction, not waiting for the broker: the next batch is
                    # handled meanwhile (a synchronous commit stalled every batch by a round trip).
                    consumer.commit(wait=False)
            except Exception as exc:  # a broker or database outage: start again from the committed positions
                log.warning("inbound processing paused: %s", type(exc).__name__)
                if consumer is not None:
                    _close_quietly(consumer)
                consumer = None
                stop.wait(1.0)
        if consumer is not None:
            try:
                consumer.commit()  # on a clean stop, the last positions reach the broker before leaving the group
            except Exception:  # delivered again on restart, and found already handled
                pass
            _close_quietly(consumer)

    # -- one message ----------------------------------------------------------------------------

    def _one(
        self, conn: Connection, delivered: DeliveredMessage, opened: "Opened", memo: dict, added: list | None, seen: set[str],
    ) -> Outcome:
        """`opened`: the message as `_open` found it (or why not); `seen`: the ids of the batch
        handled before it, in an earlier transaction or earlier in this one."""
        message_id = delivered.message_id if bundles.is_message_id(delivered.message_id) else None
        if message_id and message_id in seen:
            return Outcome(message_id, "duplicate")
        savepoint = _MessageSavepoint(conn, added)
        try:
            if isinstance(opened, BaseException):
                raise opened
            sender, message = opened
            outcome = self.handle(conn, sender, message, memo)
        except ServiceUnavailable:
            savepoint.rollback(quietly=True)  # the whole batch fails: the connection may be gone already
            raise
        except GatewayError as exc:
            savepoint.rollback()
            outcome = self._dead_letter(conn, delivered, _reason_code(exc), exc.message)
        except Exception as exc:  # a fault of ours: keep the message for replay, do not block the case
            savepoint.rollback()
            log.exception("message %s could not be handled", message_id)
            outcome = self._dead_letter(conn, delivered, "processing-error", f"The gateway failed handling it ({type(exc).__name__})")
        else:
            savepoint.release()
        if message_id:
            self._record(conn, message_id, delivered.topic, outcome)
            seen.add(message_id)
        return Outcome(message_id, outcome)

    def _seen(self, conn: Connection, message_id: str) -> bool:
        return _SEEN.first(conn, {"m": message_id}) is not None

    def _record(self, conn: Connection, message_id: str, topic: str, outcome: str) -> None:
        deferred.append(conn, _RECORDS, [(message_id, topic, outcome[:32], now_micros())])

    def _open(self, delivered: DeliveredMessage) -> tuple[str, Message]:
        """The sender and the message, its envelope and content checked: all that needs no database."""
        if not bundles.is_message_id(delivered.message_id):
            raise InvalidRequest.at("headers.message-id", "Every message carries a message-id header (its Bundle.id)")
        sender = topics.agency_of_inbound(delivered.topic)
        message = bundles.parse(delivered.value)
        if message.id != delivered.message_id:
            raise InvalidRequest.at("Bundle.id", "The Bundle's id is the message-id header")
        if sender is None or message.source != sender:
            raise Forbidden.at("MessageHeader.sender", f"A message on {delivered.topic} comes from that topic's agency only")
        return sender, self.check(message)

    def _dead_letter(self, conn: Connection, delivered: DeliveredMessage, code: str, reason: str) -> str:
        self.dead_letters.add(conn, delivered, code, reason)
        log.info("message %s dead-lettered: %s", delivered.message_id, code)
        return f"dead-letter: {code}"


Opened = tuple[str, Message] | BaseException  # a message as _open found it, or why it could not be handled


class _Opened:
    """The batch's messages as `_open` finds them, one at a time in order, for the writer to take
    each as soon as it is ready."""

    def __init__(self, messages: Sequence[DeliveredMessage]):
        self._messages = messages
        self._opened: list[Opened] = []
        self._ready = threading.Condition()

    def open_all(self, open_one: Callable[[DeliveredMessage], tuple[str, Message]]) -> None:
        try:
            for delivered in self._messages:
                try:
                    opened: Opened = open_one(delivered)
                except Exception as exc:  # the writer handles it as it would have raised there
                    opened = exc
                self._put(opened)
        finally:  # interrupted: the writer must not wait for what will never come
            while len(self._opened) < len(self._messages):
                self._put(ServiceUnavailable("The gateway stopped while reading the batch"))

    def get(self, index: int) -> Opened:
        with self._ready:
            self._ready.wait_for(lambda: len(self._opened) > index)
            return self._opened[index]

    def _put(self, opened: Opened) -> None:
        with self._ready:
            self._opened.append(opened)
            self._ready.notify()


def _handled_already(conn: Connection, messages: Sequence[DeliveredMessage]) -> set[str]:
    """The batch's message ids that were handled before: one query for the batch, not one per message."""
    ids = [m.message_id for m in messages if bundles.is_message_id(m.message_id)]
    if not ids:
        return set()
    return set(conn.execute(select(processed_messages.c.message_id).where(processed_messages.c.message_id.in_(ids))).scalars())


class _MessageSavepoint(Savepoint):
    """One message's savepoint. Rolling back also forgets the outbox rows the message had added
    (`added`, collected for the relay's hand-over), which the rollback removed from the database."""

    def __init__(self, conn: Connection, added: list | None):
        super().__init__(conn, "inbound_message")
        self._added, self._mark = added, len(added) if added is not None else 0

    def rollback(self, quietly: bool = False) -> None:
        if self._added is not None:
            del self._added[self._mark:]
        super().rollback(quietly)


def _reason_code(exc: GatewayError) -> str:
    if isinstance(exc, Forbidden):
        return "unauthorised"
    if isinstance(exc, NotFound):
        return "unknown-agency-or-case"
    if isinstance(exc, InvalidRequest):
        return "malformed"
    return "rejected"


def _close_quietly(consumer: Consumer) -> None:
    try:
        consumer.close()
    except Exception:  # already broken; nothing more to release
        pass
