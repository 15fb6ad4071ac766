"""A throwaway Apache Kafka broker for one test session.

``KafkaBroker`` runs a single KRaft node (broker and controller in one JVM) from the jars that
``./scripts/ensure-kafka.sh`` gathers (versions in ``tools/kafka-broker/pom.xml``; run by
``./scripts/test.sh``). ``start()`` picks two free ports on 127.0.0.1 (client and controller
listeners), writes ``server.properties`` into a fresh temporary directory, formats the log
directory (``kafka.tools.StorageTool``) and starts the JVM, then waits until a kafka-python
``KafkaAdminClient`` can describe the cluster. ``stop()`` sends SIGTERM (a controlled
shutdown, 1–2 s; SIGKILL after 20 s) and removes the directory. ``restart()`` stops the JVM and
starts it again on the same log directory and ports: records, committed group offsets and the
idempotent producers' state survive it, so a producer or consumer that was connected carries on.

Tests use the ``kafka_broker`` session fixture (import it into the test module:
``from tests.support.kafka import kafka_broker  # noqa: F401``)::

    def test_something(kafka_broker):
        kafka_broker.create_topics(["cases"], partitions=3)
        producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, ...)

* ``GATEWAY_TEST_KAFKA_BOOTSTRAP`` set (``host:port[,host:port]``): use that existing broker
  (``ExternalKafka``: no ``restart()``/``stop()``; use unique topic names);
* else, if Java 17+ and the jars are there: start a ``KafkaBroker``;
* else fail under CI (``CI=true``), skip otherwise.

``KafkaBroker(jars, security=OAuthSecurity(...))`` is a broker whose clients must authenticate
with SASL OAUTHBEARER (JWTs checked against a JWKS URL) and are held to ACLs; its ``admin()``
is a super user on a listener of its own. The session's ``kafka_broker`` stays PLAINTEXT:
a test module that needs the secured one starts its own (tests/integration/test_kafka_identity.py).
``client_port`` fixes the client port before start, for a client configured before the broker runs.

Start-up takes about 3–4 s (restart 2.5–5 s), the JVM (-Xms256m -Xmx512m, serial GC) about
220–240 MB of RSS. Topics
are not created automatically (``auto.create.topics.enable=false``): call ``create_topics``.
The broker's own log is ``<tmpdir>/server.log`` (INFO), its stdout/stderr ``console.log``.

kafka-python 3.0.12 needs two things under this project's ``filterwarnings = "error"``, both
done here, so import its classes from this module (or import this module first): its import
raises a DeprecationWarning (``importlib.resources.read_text``), and it leaks the socket of
every refused connection (a ResourceWarning later), which ``_close_sockets_of_failed_connects``
works around. Its serializers must be ``kafka.serializer.Serializer`` objects
(``DefaultSerializer``, ``JsonSerializer``); plain callables raise a DeprecationWarning.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

import pytest
from tests.support.services import java_problem, maven_jar_dir, unavailable

with warnings.catch_warnings():
    # kafka-python 3.0.12 reads its protocol schemas with importlib.resources.read_text (which
    # calls open_text) when its modules are imported, both deprecated since Python 3.11: under
    # pyproject's filterwarnings = "error" that import would fail. Tests import the client
    # classes from here (or import this module before kafka).
    warnings.filterwarnings("ignore", r"(read|open)_text is deprecated", DeprecationWarning)
    import kafka
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient
    from kafka.net.inet import KafkaNetSocket


def _close_sockets_of_failed_connects() -> None:
    """Work around a socket leak of kafka-python 3.0.12, for the test process.

    ``KafkaNetSocket.sock_connect`` (``kafka/net/inet.py``) raises when a connection is
    refused or times out without closing the socket it made, so every reconnect attempt while
    a broker is down leaves a socket to the garbage collector. Its ``ResourceWarning`` is an
    error under ``filterwarnings = "error"``, and it comes late (pytest's log capture keeps the
    exception, hence the socket, alive until the test is over), often at the end of the
    session. The socket is abandoned either way; this closes it at once. Only for 3.0.12:
    check again (and drop this) when upgrading.
    """
    if kafka.__version__ != "3.0.12":
        return
    original = KafkaNetSocket.sock_connect
    if getattr(original, "_closes_on_failure", False):
        return

    @functools.wraps(original)
    async def sock_connect(self, net, sock, sockaddr, timeout_at=None):  # type: ignore[no-untyped-def]
        try:
            return await original(self, net, sock, sockaddr, timeout_at=timeout_at)
        except BaseException:
            sock.close()
            raise

    sock_connect._closes_on_failure = True  # type: ignore[attr-defined]
    KafkaNetSocket.sock_connect = sock_connect  # type: ignore[method-assign]


_close_sockets_of_failed_connects()

__all__ = [
    "ExternalKafka",
    "KafkaAdminClient",
    "KafkaBroker",
    "KafkaBrokerError",
    "KafkaConsumer",
    "KafkaProducer",
    "OAuthSecurity",
    "broker_processes",
    "external_bootstrap",
    "jar_dir",
    "kafka_broker",
    "missing_reason",
    "require_local_broker",
]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ensure-kafka.sh"
LOG4J_CONFIG = ROOT / "tools" / "kafka-broker" / "log4j2.properties"
ENV_BOOTSTRAP = "GATEWAY_TEST_KAFKA_BOOTSTRAP"
# Read at import too: tests/conftest.py's autouse fixture removes GATEWAY_* variables for
# each test, and this one must still reach the session fixture.
_ENV_BOOTSTRAP_AT_IMPORT = os.environ.get(ENV_BOOTSTRAP)

HOST = "127.0.0.1"
NODE_ID = 1

# A single combined node with every replication factor at 1 (the defaults of 3 would make the
# internal topics impossible to create), small thread pools (2 shared cores) and a small cleaner
# buffer (the default takes 128 MB of heap).
BROKER_SETTINGS = {
    "process.roles": "broker,controller",
    "node.id": str(NODE_ID),
    "controller.listener.names": "CONTROLLER",
    "inter.broker.listener.name": "PLAINTEXT",
    "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    "num.partitions": "1",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.num.partitions": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    "auto.create.topics.enable": "false",
    "log.cleaner.dedupe.buffer.size": "2097152",
    "num.network.threads": "2",
    "num.io.threads": "4",
    "background.threads": "4",
    "num.recovery.threads.per.data.dir": "1",
}


class KafkaBrokerError(RuntimeError):
    """The broker could not be formatted, started or stopped."""


OAUTH_VALIDATOR = "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
OAUTH_LOGIN = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"
PLAIN_LOGIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
BROKER_JWT_VALIDATOR = "org.apache.kafka.common.security.oauthbearer.BrokerJwtValidator"
ADMIN = "admin"


@dataclass
class OAuthSecurity:
    """A broker whose clients authenticate with SASL OAUTHBEARER and are held to topic ACLs.

    Three listeners: CLIENT (SASL_PLAINTEXT, OAUTHBEARER only: what ``bootstrap`` names) for the
    gateway and the agencies, whose JWTs Kafka's own ``OAuthBearerValidatorCallbackHandler``
    checks against ``jwks_url`` (signature, ``exp``, ``iss``, ``aud``); the principal is
    ``User:<principal_claim>``. INTERNAL (SASL PLAIN, one static user ``admin``, a super user)
    carries the broker's own inter-broker traffic and the tests' admin client; CONTROLLER (SASL
    PLAIN, the same user) the KRaft quorum, so that ``super.users`` needs no ``User:ANONYMOUS``.
    The StandardAuthorizer allows nothing without an ACL. Kafka 4.1 reads no OAuth URL or file
    unless the JVM allows it (``org.apache.kafka.sasl.oauthbearer.allowed.urls``/``.files``).
    ``reauth_ms`` bounds every session (KIP-368): a connection must present a fresh token at
    least that often, and never outlives the token it authenticated with.
    """

    jwks_url: str
    issuer: str
    audiences: list[str]
    principal_claim: str = "sub"
    super_users: list[str] = field(default_factory=list)
    reauth_ms: int = 3_600_000
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    def properties(self, client_port: int, internal_port: int, controller_port: int) -> dict[str, str]:
        plain = (
            f'{PLAIN_LOGIN} required username="{ADMIN}" password="{self.admin_password}" '
            f'user_{ADMIN}="{self.admin_password}";'
        )
        return {
            "listeners": f"CLIENT://{HOST}:{client_port},INTERNAL://{HOST}:{internal_port},CONTROLLER://{HOST}:{controller_port}",
            "advertised.listeners": f"CLIENT://{HOST}:{client_port},INTERNAL://{HOST}:{internal_port}",
            "listener.security.protocol.map": "CLIENT:SASL_PLAINTEXT,INTERNAL:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
            "inter.broker.listener.name": "INTERNAL",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.internal.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.internal.plain.sasl.jaas.config": plain,
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": plain,
            "listener.name.client.sasl.enabled.mechanisms": "OAUTHBEARER",
            "listener.name.client.oauthbearer.sasl.jaas.config": f"{OAUTH_LOGIN} required ;",
            "listener.name.client.oauthbearer.sasl.server.callback.handler.class": OAUTH_VALIDATOR,
            # Kafka 4.1.1's default (DefaultJwtValidator, made without a key resolver) checks no
            # signature at all: name the broker's validator explicitly.
            "sasl.oauthbearer.jwt.validator.class": BROKER_JWT_VALIDATOR,
            "listener.name.client.oauthbearer.connections.max.reauth.ms": str(self.reauth_ms),
            "sasl.oauthbearer.jwks.endpoint.url": self.jwks_url,
            "sasl.oauthbearer.expected.issuer": self.issuer,
            "sasl.oauthbearer.expected.audience": ",".join(self.audiences),
            "sasl.oauthbearer.sub.claim.name": self.principal_claim,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": ";".join(f"User:{u}" for u in [ADMIN, *self.super_users]),
        }

    def system_properties(self) -> list[str]:
        allowed = [f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={self.jwks_url}"]
        if self.jwks_url.startswith("file:"):
            allowed.append(f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.files={urlparse(self.jwks_url).path}")
        return allowed

    def admin_config(self) -> dict[str, Any]:
        """kafka-python settings of the super user ``admin`` on the INTERNAL listener."""
        return {
            "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
            "sasl_plain_username": ADMIN, "sasl_plain_password": self.admin_password,
        }


# -- finding Java and the jars ---------------------------------------------------------------


def jar_dir() -> tuple[Path | None, str | None]:
    """The broker's jar directory, and why it cannot be used (None if it can)."""
    return maven_jar_dir(SCRIPT)


def missing_reason() -> str | None:
    """Why a local broker cannot be started here, or None if it can."""
    return java_problem("the Kafka 4 broker") or jar_dir()[1]


def external_bootstrap() -> str | None:
    """``host:port`` list of an existing broker the tests should use instead of starting one."""
    return os.environ.get(ENV_BOOTSTRAP) or _ENV_BOOTSTRAP_AT_IMPORT or None


def broker_processes(directory: Path | str) -> list[int]:
    """Pids of the live processes whose command line names ``directory`` (a broker's temporary
    directory): the JVM of that broker, or a StorageTool run for it."""
    needle = str(directory).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if needle in cmdline and state != "Z":
            pids.append(int(entry.name))
    return sorted(pids)


def _free_ports(count: int) -> list[int]:
    """``count`` distinct ports that were free on 127.0.0.1 a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


# -- what tests use, common to a started and an existing broker ------------------------------


class _KafkaAPI:
    bootstrap: str

    def admin_options(self) -> dict[str, Any]:
        """Where and how a super user reaches this broker (kafka-python settings)."""
        return {"bootstrap_servers": self.bootstrap}

    @contextlib.contextmanager
    def admin(self, **configs: Any) -> Iterator[Any]:
        """A kafka-python ``KafkaAdminClient`` on this broker (as a super user), closed on exit."""
        options: dict[str, Any] = {
            **self.admin_options(),
            "client_id": "gateway-tests-admin",
            "bootstrap_timeout_ms": 15000,
            "request_timeout_ms": 15000,
        }
        options.update(configs)
        client = KafkaAdminClient(**options)
        try:
            yield client
        finally:
            client.close()

    def create_topics(self, names: Iterable[str], partitions: int = 1) -> None:
        """Create topics ``names`` with ``partitions`` partitions each (the broker's default
        replication factor), and wait until every partition has a leader."""
        names = list(names)
        if not names:
            return
        with self.admin() as admin:
            admin.create_topics(
                {name: {"num_partitions": partitions, "replication_factor": -1} for name in names},
                wait_for_metadata=True,
            )


class ExternalKafka(_KafkaAPI):
    """An existing broker, from ``GATEWAY_TEST_KAFKA_BOOTSTRAP``; never started or stopped."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def __repr__(self) -> str:
        return f"ExternalKafka({self.bootstrap!r})"


# -- the throwaway broker --------------------------------------------------------------------


class KafkaBroker(_KafkaAPI):
    """One single-node KRaft broker in a temporary directory. ``start()``, then ``stop()``
    (also usable as a context manager). ``stop()`` removes every file it made."""

    def __init__(
        self,
        jar_dir: Path | str,
        *,
        java: str = "java",
        heap_min: str = "256m",
        heap_max: str = "512m",
        start_timeout: float = 60.0,
        stop_timeout: float = 20.0,
        settings: dict[str, str] | None = None,
        security: OAuthSecurity | None = None,
        client_port: int | None = None,
    ) -> None:
        self.jar_dir = Path(jar_dir)
        self.java = java
        self.heap_min = heap_min
        self.heap_max = heap_max
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        #: extra or overriding server.properties entries
        self.settings = dict(settings or {})
        #: SASL OAUTHBEARER with ACLs instead of PLAINTEXT for everyone (see OAuthSecurity)
        self.security = security
        self.port: int | None = None
        self.controller_port: int | None = None
        #: the INTERNAL listener of a secured broker (the super user's), else None
        self.internal_port: int | None = None
        #: the client listener's port, when it must be known before start() (else a free one)
        self.client_port = client_port
        self.tmpdir: Path | None = None
        self.cluster_id: str | None = None
        #: seconds for the whole start(): ports, format, JVM start, ready
        self.startup_seconds: float | None = None
        #: seconds from launching the JVM to a successful describe_cluster (last start)
        self.ready_seconds: float | None = None
        #: seconds for the last restart(), SIGTERM to ready
        self.restart_seconds: float | None = None
        #: exit code of the last JVM that was stopped (143 = SIGTERM, the clean path)
        self.last_exit_code: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._console: IO[bytes] | None = None

    # -- paths and properties ----------------------------------------------------------------

    def _path(self, name: str) -> Path:
        if self.tmpdir is None:
            raise KafkaBrokerError("the broker is not started")
        return self.tmpdir / name

    @property
    def properties_file(self) -> Path:
        return self._path("server.properties")

    @property
    def log_dir(self) -> Path:
        """Kafka's ``log.dirs``: the topic data and the KRaft metadata log."""
        return self._path("data")

    @property
    def server_log(self) -> Path:
        return self._path("server.log")

    @property
    def console_log(self) -> Path:
        return self._path("console.log")

    @property
    def bootstrap(self) -> str:  # type: ignore[override]
        """``127.0.0.1:<port>`` of the client (PLAINTEXT) listener."""
        if self.port is None:
            raise KafkaBrokerError("the broker is not started")
        return f"{HOST}:{self.port}"

    def admin_options(self) -> dict[str, Any]:
        if self.security is None:
            return super().admin_options()
        if self.internal_port is None:
            raise KafkaBrokerError("the broker is not started")
        return {"bootstrap_servers": f"{HOST}:{self.internal_port}", **self.security.admin_config()}

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def rss_bytes(self) -> int | None:
        """Resident memory of the JVM now, or None if it is not running."""
        if not self.running:
            return None
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        return int(match.group(1)) * 1024 if match else None

    def _write_properties(self) -> None:
        settings = dict(BROKER_SETTINGS)
        settings.update({
            "controller.quorum.voters": f"{NODE_ID}@{HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "log.dirs": str(self.log_dir),
        })
        if self.security is not None:
            assert self.internal_port is not None and self.controller_port is not None
            settings.update(self.security.properties(self.port, self.internal_port, self.controller_port))
        settings.update(self.settings)
        self.properties_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))

    def _jvm(self, *args: str, heap: bool = False) -> list[str]:
        cmd = [self.java]
        if heap:
            cmd += [f"-Xms{self.heap_min}", f"-Xmx{self.heap_max}", "-XX:+UseSerialGC"]
        else:
            cmd += ["-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]
        return cmd + [
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "-Dlog4j2.shutdownHookEnabled=false",  # else the last lines are lost at stop
            f"-Dkafka.logs.dir={self.tmpdir}",
            *(self.security.system_properties() if self.security is not None else []),
            "-cp", str(self.jar_dir / "*"),  # expanded by java, not a shell
            *args,
        ]

    def _storage_tool(self, *args: str) -> str:
        proc = subprocess.run(
            self._jvm("kafka.tools.StorageTool", *args),
            cwd=self.tmpdir, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=self.start_timeout,
        )
        if proc.returncode != 0:
            raise KafkaBrokerError(
                f"StorageTool {args[0]} failed with exit code {proc.returncode}:\n"
                f"{(proc.stdout + proc.stderr).strip()}{self._log_tail()}"
            )
        return proc.stdout

    def _log_tail(self, lines: int = 30) -> str:
        parts = []
        for path in (self._path_or_none("server.log"), self._path_or_none("console.log")):
            if path is None:
                continue
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            tail = "\n".join(text.splitlines()[-lines:])
            if tail:
                parts.append(f"\n--- tail of {path} ---\n{tail}")
        return "".join(parts)

    def _path_or_none(self, name: str) -> Path | None:
        return self.tmpdir / name if self.tmpdir is not None else None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> KafkaBroker:
        """Format a fresh log directory and start the broker; returns once it serves clients."""
        if self._process is not None:
            return self
        began = time.monotonic()
        self.tmpdir = Path(tempfile.mkdtemp(prefix="gateway-kafka-"))
        atexit.register(self.stop)
        try:
            self.cluster_id = self._storage_tool("random-uuid").strip()
            for attempt in range(1, 4):
                self.port, self.controller_port, *internal = _free_ports(2 if self.security is None else 3)
                self.port = self.client_port or self.port
                self.internal_port = internal[0] if internal else None
                shutil.rmtree(self.log_dir, ignore_errors=True)
                self._write_properties()
                self._storage_tool("format", "-t", self.cluster_id, "-c", str(self.properties_file))
                try:
                    self._launch_and_wait(began + self.start_timeout)
                    break
                except KafkaBrokerError:
                    # Someone took a port between _free_ports() and the JVM's bind: new ports.
                    if attempt < 3 and self._bind_failed():
                        self._terminate()
                        continue
                    raise
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def restart(self) -> None:
        """Stop the JVM (SIGTERM) and start it again on the same log directory and ports."""
        if self.tmpdir is None or self.port is None:
            raise KafkaBrokerError("the broker is not started")
        began = time.monotonic()
        self._terminate()
        deadline = began + self.start_timeout
        while True:
            try:
                self._launch_and_wait(deadline)
                break
            except KafkaBrokerError:
                # The old ports are normally free at once (the JVM binds with SO_REUSEADDR);
                # if another process grabbed one meanwhile, wait for it a little.
                if self._bind_failed() and time.monotonic() + 2 < deadline:
                    self._terminate()
                    time.sleep(1)
                    continue
                raise
        self.restart_seconds = time.monotonic() - began

    def stop(self) -> None:
        """Stop the broker (SIGTERM, SIGKILL after ``stop_timeout``) and remove its temporary
        directory. Idempotent."""
        try:
            self._terminate()
        finally:
            if self.tmpdir is not None:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
                self.tmpdir = None
            atexit.unregister(self.stop)

    def _launch_and_wait(self, deadline: float) -> None:
        launched = time.monotonic()
        self._console = open(self.console_log, "ab")  # noqa: SIM115 (closed in _terminate)
        self._process = subprocess.Popen(
            self._jvm("kafka.Kafka", str(self.properties_file), heap=True),
            cwd=self.tmpdir, stdin=subprocess.DEVNULL, stdout=self._console,
            stderr=subprocess.STDOUT,
        )
        self._wait_ready(deadline)
        self.ready_seconds = time.monotonic() - launched

    def _wait_ready(self, deadline: float) -> None:
        assert self._process is not None and self.port is not None
        while not _port_open(self.port):
            self._check_alive()
            if time.monotonic() >= deadline:
                raise KafkaBrokerError(
                    f"the Kafka broker did not listen on {self.bootstrap} within "
                    f"{self.start_timeout:.0f} s{self._log_tail()}"
                )
            time.sleep(0.1)
        # The port is bound; the broker may still be catching up with its metadata log.
        # One client with a bootstrap deadline of the time left: kafka-python 3 leaves a
        # background thread running when KafkaAdminClient() fails, so do not loop on it.
        remaining_ms = max(1000, int((deadline - time.monotonic()) * 1000))
        try:
            with self.admin(
                bootstrap_timeout_ms=remaining_ms,
                request_timeout_ms=min(remaining_ms, 10000),
                client_id="gateway-tests-readiness",
            ) as admin:
                while True:
                    cluster = admin.describe_cluster()
                    if cluster.get("brokers") and cluster.get("controller_id", -1) != -1:
                        return
                    if time.monotonic() >= deadline:
                        raise KafkaBrokerError(f"the cluster has no broker or controller: {cluster}")
                    time.sleep(0.2)
        except Exception as exc:
            self._check_alive()
            raise KafkaBrokerError(
                f"the Kafka broker on {self.bootstrap} did not become ready within "
                f"{self.start_timeout:.0f} s: {type(exc).__name__}: {exc}{self._log_tail()}"
            ) from exc

    def _check_alive(self) -> None:
        assert self._process is not None
        code = self._process.poll()
        if code is not None:
            raise KafkaBrokerError(
                f"the Kafka broker exited with code {code} during start-up{self._log_tail()}"
            )

    def _bind_failed(self) -> bool:
        tail = self._log_tail(lines=200)
        return "Address already in use" in tail or "BindException" in tail

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # controlled shutdown, 1-2 s
                try:
                    process.wait(timeout=self.stop_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self.last_exit_code = process.returncode
        if self._console is not None:
            self._console.close()
            self._console = None

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"{self.bootstrap}, pid {self.pid}" if self.running else "stopped"
        return f"KafkaBroker({state})"


def require_local_broker() -> Path:
    """The jar directory for a ``KafkaBroker``, or fail (``CI=true``) / skip the test."""
    reason = missing_reason()
    if reason is not None:
        unavailable("the Kafka broker", reason)
    directory, _ = jar_dir()
    assert directory is not None
    return directory


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[_KafkaAPI]:
    """A Kafka broker for the whole test session: external, started, or skip/fail."""
    bootstrap = external_bootstrap()
    if bootstrap:
        yield ExternalKafka(bootstrap)
        return
    broker = KafkaBroker(require_local_broker()).start()
    try:
        yield broker
    finally:
        broker.stop()
