"""Nothing lost, nothing doubled, nothing released that was not permitted: RFIs through real
gateway processes and a real Kafka broker while the broker restarts and gateways are killed.

Each test runs `gateway serve` processes (API and worker) on one PostgreSQL database with
GATEWAY_TRANSPORT=kafka. A requester (dfv-logan) and a target (qps) talk to them over Kafka:
the target answers every request with one releasable item and, for every other RFI, an item
labelled as excluded information, which must never reach the requester.
"""

import signal
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.bootstrap import build_services
from gateway.messaging.commands import ensure_topics
from gateway.settings import Settings
from gateway.store.schema import audit_chain, dead_letters, outbox, processed_messages
from tests.support import cases
from tests.support.kafka import KafkaBroker
from tests.support.kafka_agencies import SECRET, AgencyOnKafka, RfiExchange
from tests.support.server import GatewayProcess, children, gateway_env

pytestmark = pytest.mark.postgres
CASES = [f"case-fault-{i}" for i in range(6)]  # keys spread over the topics' partitions


@pytest.fixture
def deployment(tmp_path, postgres_template, kafka_broker, data_key):
    """A migrated database with the case and agencies, the agencies' topics, and the env to serve it."""
    name = f"f_{uuid.uuid4().hex[:12]}"
    postgres_template.create_database(name, template="gateway_template")
    url = postgres_template.database_url(name)
    settings = Settings(data_dir=tmp_path, database_url=url, data_key=data_key, transport="kafka",
                        kafka_bootstrap=kafka_broker.bootstrap, kafka_partitions=3)
    services = build_services(settings)
    for case_id in CASES:
        cases.open_case(services, case_id)
    ensure_topics(services)
    env = gateway_env(tmp_path, data_key, GATEWAY_DATABASE_URL=url, GATEWAY_TRANSPORT="kafka",
                      GATEWAY_KAFKA_BOOTSTRAP=kafka_broker.bootstrap, GATEWAY_AUDIT_SIGNING_KEY=(tmp_path / "audit-signing-key").read_text().strip())
    exchange = RfiExchange(AgencyOnKafka(kafka_broker.bootstrap, "dfv-logan"), AgencyOnKafka(kafka_broker.bootstrap, "qps"), CASES)
    yield services, env, exchange
    exchange.requester.close()
    exchange.target.close()
    services.close()
    postgres_template.drop_database(name)


def count(services, table, *where) -> int:
    query = select(func.count()).select_from(table)
    return services.db.run_read(lambda conn: conn.execute(query.where(*where) if where else query).scalar_one())


def assert_exactly_once_in_effect(services, exchange: RfiExchange) -> None:
    n = len(exchange.asked)
    assert set(exchange.answered_at) == set(exchange.asked), "every accepted RFI was answered to its requester"
    assert all(len(ids) == 1 for ids in exchange.requests_seen.values()), "each RFI reached its target once in effect"
    assert all(len(ids) == 1 for ids in exchange.answers_seen.values()), "each answer reached its requester once in effect"
    assert SECRET not in exchange.released_text, "nothing the consent engine withheld was released"
    withheld = sum(int(r[-1], 16) % 2 for r in exchange.asked)
    assert count(services, audit_chain) == n + n + withheld  # the request, each released item, each withheld item: once each
    assert count(services, processed_messages) == 2 * n and count(services, dead_letters) == 0
    assert count(services, outbox) == 0
    assert services.ledger.verify().intact


def test_a_broker_restart_mid_stream_loses_and_doubles_nothing(deployment, kafka_broker):
    if not isinstance(kafka_broker, KafkaBroker):
        pytest.skip("an existing broker cannot be restarted")
    services, env, exchange = deployment
    gateway = GatewayProcess(env)
    try:
        exchange.ask(60)
        exchange.run_until_answered(timeout=3)  # some answered, the rest in flight
        kafka_broker.restart()
        exchange.ask(60)
        exchange.run_until_answered(timeout=120)
    finally:
        log = gateway.stop()
    assert gateway.process.returncode == 0, "SIGTERM stops the gateway cleanly: its worker's shutdown ran"
    assert_exactly_once_in_effect(services, exchange)
    assert "Traceback" not in log


def test_gateways_killed_mid_batch_and_a_second_process_lose_and_double_nothing(deployment):
    """DESIGN 10: two processes share the work; one is SIGKILLed mid-stream and replaced."""
    services, env, exchange = deployment
    first, second = GatewayProcess(env), GatewayProcess(env)
    try:
        exchange.ask(150)
        while len(exchange.answered_at) < 20:
            exchange.pump()
        # Each publishes from a child process (gateway.connectors.kafka_publishing), made on its first batch
        assert children(first.process.pid) or children(second.process.pid)
        helpers = children(first.process.pid)
        first.process.send_signal(signal.SIGKILL)  # mid-batch: no shutdown, no commit of its positions
        first.process.wait()
        assert gone(helpers), "a killed gateway's publisher leaves with it"
        exchange.ask(50)
        exchange.run_until_answered(timeout=10)
        replacement = GatewayProcess(env)
        exchange.run_until_answered(timeout=120)
    finally:
        for process in (first, second):
            process.stop()
        if "replacement" in locals():
            replacement.stop()
    assert_exactly_once_in_effect(services, exchange)


def gone(pids: list[int], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(_state(p) in ("Z", "gone") for p in pids):
            return True
        time.sleep(0.1)
    return False


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
