"""Publishing to Kafka: several topics' messages with one flush, each topic succeeding or failing
on its own (`publish_groups`), on a producer in the gateway's process or in a process of its own
(`PublisherProcess`, what `gateway serve` uses).

Why a process of its own: kafka-python builds each record batch in Python on the producer's
network thread. In `gateway serve` that thread used 0.11 cores at 450 RFI round trips/s, and
the one SQLite writer, which every message waits on, lost more than that waiting for the GIL
behind it. With the producer in a child, interleaved runs of the RFI benchmark
(bench/rfi_roundtrip.py, 6,000 RFIs) gave 472-541 round trips/s against 418-508 without.

The child is a fresh interpreter (`python -m gateway.connectors.kafka_publishing`): not forked,
as the parent runs threads, and not multiprocessing's spawn, which imports the parent's
`__main__` (the CLI, 57 MB of imports) again; it imports kafka-python and little else (31 MB).
It knows nothing of the gateway: over a socket pair it gets the producer's settings, then
batches, and answers each with what failed. With SASL OAUTHBEARER, each batch carries the
gateway's current token (the parent signs it; the child holds no key) and the child's producer
authenticates with the latest one. If the child dies or stops answering, the batch fails like
a broker outage (its outbox rows stay and are retried), and the next batch starts a new child.
"""

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from pathlib import Path

import kafka.errors as errors
from kafka import KafkaProducer

from gateway.connectors.transport import OutgoingMessage, TransportError

FLUSH_SECONDS = 30.0  # a publish waits this long for the broker's acknowledgements, then fails
CLOSE_SECONDS = 5.0  # what close() gives the producer to deliver what it still holds
# How long the parent waits for the child's answer: its flush, then each future, can take
# FLUSH_SECONDS; past that the child is taken to be stuck and is replaced.
ANSWER_SECONDS = 2 * FLUSH_SECONDS + 10.0
Groups = Mapping[str, Sequence[OutgoingMessage]]  # topic -> its messages, in order
Failures = dict[str, TransportError | None]  # topic -> why it failed (None: all stored)


def publish_groups(producer: KafkaProducer, groups: Groups) -> Failures:
    """Send every topic's messages, flush once, and say for each topic whether all were stored."""
    failed: dict[str, TransportError] = {}
    sent: dict[str, list] = {}
    for topic, messages in groups.items():
        try:
            sent[topic] = [_send(producer, m) for m in messages]
        except errors.KafkaError as exc:
            failed[topic] = TransportError(f"publishing failed: {exc}")
    if sent:
        try:
            producer.flush(timeout=FLUSH_SECONDS)
        except errors.KafkaError as exc:  # what the broker has not acknowledged by now counts as failed
            for topic, futures in sent.items():
                if not all(f.is_done for f in futures):
                    failed[topic] = TransportError(f"publishing failed: {exc}")
    for topic, futures in sent.items():
        if topic not in failed:
            try:
                for future in futures:
                    future.get(timeout=FLUSH_SECONDS)  # done already; raises what the broker answered for it
            except errors.KafkaError as exc:
                failed[topic] = TransportError(f"publishing failed: {exc}")
    return {topic: failed.get(topic) for topic in groups}


def _send(producer: KafkaProducer, message: OutgoingMessage):
    headers = [(name, value.encode()) for name, value in message.headers.items()]
    key = message.key.encode() if message.key is not None else None
    return producer.send(message.topic, value=message.value, key=key, headers=headers)


class PublisherProcess:
    """A KafkaProducer in a child process; `publish` answers as `publish_groups` would."""

    def __init__(self, config: dict, token: Callable[[], str] | None = None):
        self._config = config  # the producer's settings, with no token provider (tokens go with each batch)
        self._token = token
        self._lock = threading.Lock()  # one batch at a time on the pipe
        self._child: tuple[subprocess.Popen, Connection] | None = None

    def publish(self, groups: Groups) -> Failures:
        with self._lock:
            _, conn = self._started()
            try:
                conn.send((self._token() if self._token else None, dict(groups)))
                if not conn.poll(ANSWER_SECONDS):
                    raise TimeoutError(f"no answer in {ANSWER_SECONDS:.0f} s")
                answer = conn.recv()
            except (OSError, EOFError, TimeoutError) as exc:
                self._stop(wait=0)
                raise TransportError(f"the publishing process stopped ({type(exc).__name__}); the next batch starts another") from None
        if isinstance(answer, TransportError):  # the child could not make its producer
            raise answer
        return answer

    def close(self) -> None:
        """Let the child deliver what it holds and leave; a batch still waiting on a broker that is
        down is not waited out (that could take ANSWER_SECONDS): its rows stay in the outbox."""
        if self._lock.acquire(timeout=CLOSE_SECONDS):
            try:
                self._stop(wait=CLOSE_SECONDS + 5)
            finally:
                self._lock.release()
            return
        child = self._child
        if child is not None:
            child[0].kill()  # the batch's publish then fails as if the child had died, and tidies up

    def _started(self) -> tuple[subprocess.Popen, Connection]:
        if self._child is None or self._child[0].poll() is not None:
            self._stop(wait=0)
            ours, theirs = socket.socketpair()  # neither end inheritable but as passed below
            with ours, theirs:
                process = subprocess.Popen(
                    [sys.executable, "-m", __name__, str(theirs.fileno())], pass_fds=[theirs.fileno()],
                    stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": _import_path()},
                )
                conn = Connection(ours.detach())  # their end is closed here: the child's death is EOF
            level = logging.getLevelName(logging.getLogger().getEffectiveLevel())  # the child logs as the gateway does
            conn.send((self._config, level))
            self._child = (process, conn)
        return self._child

    def _stop(self, wait: float) -> None:
        if self._child is None:
            return
        process, conn = self._child
        self._child = None
        if wait and process.poll() is None:
            try:
                conn.send(None)  # deliver what it holds, then leave
                process.wait(wait)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if process.poll() is None:
            process.kill()
            process.wait(5)
        conn.close()


def _import_path() -> str:
    """PYTHONPATH for the child: where this `gateway` package was imported from, first."""
    here = str(Path(__file__).resolve().parents[2])
    return os.pathsep.join([here, *filter(None, [os.environ.get("PYTHONPATH")])])


class _LatestToken:
    """The token the parent sent last, for kafka-python's SASL OAUTHBEARER hook in the child."""

    def __init__(self):
        self.value = ""

    def __call__(self) -> str:
        return self.value


def _serve(conn: Connection) -> None:
    """The child: its settings first, then a producer made on the first batch (again after a
    failed try), one answer per batch, until the parent says stop or is gone."""
    from gateway import operations_log
    from gateway.connectors.kafka import TokenProvider

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent says when to stop
    if (first := _next(conn)) is None:
        return
    config, log_level = first
    operations_log.configure(log_level)
    token = _LatestToken()
    if config.get("sasl_mechanism") == "OAUTHBEARER":
        config = {**config, "sasl_oauth_token_provider": TokenProvider(token)}
    producer: KafkaProducer | None = None
    try:
        while (request := _next(conn)) is not None:
            token.value, groups = request
            if producer is None:
                try:
                    producer = KafkaProducer(**config)
                except errors.KafkaError as exc:
                    conn.send(TransportError(f"cannot open Kafka at {config.get('bootstrap_servers')}: {exc}"))
                    continue
            conn.send(publish_groups(producer, groups))
    finally:
        if producer is not None:
            producer.close(timeout=CLOSE_SECONDS)


def _next(conn):
    try:
        return conn.recv()
    except (EOFError, OSError):  # the parent is gone
        return None


if __name__ == "__main__":  # started by PublisherProcess: python -m gateway.connectors.kafka_publishing FD
    from gateway.connectors.kafka_publishing import _serve as serve  # the module proper, not this __main__ copy

    serve(Connection(int(sys.argv[1])))
