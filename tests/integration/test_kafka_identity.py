"""Kafka with the gateway's identity: SASL OAUTHBEARER and topic ACLs (issue 6, point 5).

One deployment for the module, started the way production must start: `gateway serve` first
(GATEWAY_TRANSPORT=kafka, GATEWAY_KAFKA_SECURITY=oauthbearer) while its broker is still down,
then a broker of its own (not the session's PLAINTEXT one) whose client listener takes only SASL
OAUTHBEARER and checks every token against the gateway's `/.well-known/jwks.json`, fetched from
that running gateway, with an authorizer that allows nothing without an ACL. The gateway then
connects with a token it signs for itself, creates the agencies' topics and grants each agency
its ACLs, with nothing done by hand. Agencies (the worked case's `dfv-logan` and `qps`) get
their tokens from the gateway's token endpoint over HTTP, as their systems would.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

# tests.support.kafka before kafka or gateway.connectors.kafka: kafka-python's import warning and socket leak
from tests.support.kafka import KafkaAdminClient, KafkaBroker, KafkaConsumer, KafkaProducer, OAuthSecurity, require_local_broker

import kafka.errors as kafka_errors
from kafka import TopicPartition
from gateway.auth.caller import AccessDenied
from gateway.auth.gateway_tokens import PRINCIPAL, PRINCIPAL_CLAIM, GatewayTokens, kafka_audience
from gateway.auth.signing import ALGORITHM
from gateway.bootstrap import Services, build_services
from gateway.connectors import open_transport, topics
from gateway.connectors.kafka import ALL_GRANTS, KafkaTransport, TokenProvider, acls_for
from gateway.connectors.transport import OutgoingMessage
from gateway.settings import Settings
from gateway.store.encryption import generate_kek
from tests.support import cases
from tests.support.agency_systems import FORM, AgencySystem
from tests.support.kafka_agencies import SECRET, AgencyOnKafka, RfiExchange
from tests.support.server import GatewayProcess, free_port, gateway_env, run_gateway

ISSUER = "https://fv-gateway.test"  # GATEWAY_BASE_URL: the tokens' issuer and audience
REQUESTER, TARGET = "dfv-logan", "qps"  # two of the worked case's agencies
SCOPE = "system/Task.cruds"
REAUTH_MS = 5_000  # every session re-authenticates at least this often: the gateway's own, many times over


@dataclass
class Deployment:
    gateway: GatewayProcess
    broker: KafkaBroker
    services: Services  # the same database, in this process: its signing keys, for tokens made here
    settings: Settings
    systems: dict[str, AgencySystem]
    env: dict[str, str]  # the gateway's environment, for `gateway` commands

    def token(self, agency: str) -> str:
        """An access token from the gateway's token endpoint, over HTTP, for the agency's system."""
        system = self.systems[agency]
        answer = httpx.post(f"{self.gateway.url}/auth/token", data=system.token_form(f"{ISSUER}/auth/token", SCOPE), headers=FORM, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()["access_token"]

    def client_config(self, token: str | Callable[[], str], **more) -> dict:
        """kafka-python settings of an agency's system on this broker (the test broker has no TLS)."""
        source = token if callable(token) else (lambda: token)
        return {
            "bootstrap_servers": self.broker.bootstrap, "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "OAUTHBEARER",
            "sasl_oauth_token_provider": TokenProvider(source), "bootstrap_timeout_ms": 15000, **more,
        }


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Deployment:
    jars = require_local_broker()  # a broker of its own, secured: fails under CI=true if it cannot start
    data_dir: Path = tmp_path_factory.mktemp("kafka-identity")
    data_key = generate_kek()
    kafka_port = free_port()
    settings = Settings(
        data_dir=data_dir, data_key=data_key, base_url=ISSUER, transport="kafka", kafka_bootstrap=f"127.0.0.1:{kafka_port}",
        kafka_security="oauthbearer", kafka_partitions=2,
    )
    services = build_services(settings)  # connects to nothing yet: the transport connects on first use
    cases.open_case(services)  # registers the scenario's agencies, among them dfv-logan and qps
    systems = {agency: AgencySystem(f"{agency}-case-system", "ES256") for agency in (REQUESTER, TARGET)}
    for agency, system in systems.items():
        services.identity.clients.add(system.client_id, agency, SCOPE, jwks=system.jwks)
    services.identity.signing.signer()  # the gateway's first signing key, so the JWKS is not empty

    env = gateway_env(
        data_dir, data_key, GATEWAY_BASE_URL=ISSUER, GATEWAY_TRANSPORT="kafka", GATEWAY_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        GATEWAY_KAFKA_SECURITY="oauthbearer", GATEWAY_KAFKA_PARTITIONS="2", GATEWAY_LOG_LEVEL="WARNING",
    )
    gateway = broker = None
    try:
        gateway = GatewayProcess(env)  # serves its API (and JWKS) while its broker is down
        broker = KafkaBroker(jars, client_port=kafka_port, security=OAuthSecurity(
            jwks_url=f"{gateway.url}/.well-known/jwks.json", issuer=ISSUER, audiences=[ISSUER, kafka_audience(ISSUER)],
            principal_claim=PRINCIPAL_CLAIM, super_users=[PRINCIPAL], reauth_ms=REAUTH_MS,
        ))
        broker.start()
        _wait_for_the_gateways_topics_and_grants(broker, gateway)
        yield Deployment(gateway, broker, services, settings, systems, env)
    finally:
        if gateway is not None:
            gateway.stop()
        if broker is not None:
            broker.stop()
        services.close()


def _wait_for_the_gateways_topics_and_grants(broker: KafkaBroker, gateway: GatewayProcess, timeout: float = 60) -> None:
    wanted = set(topics.for_agencies([REQUESTER, TARGET]))
    grants = {acl for t in wanted for acl in acls_for(t)}
    deadline = time.monotonic() + timeout
    with broker.admin() as admin:
        while not (wanted <= set(admin.list_topics()) and grants <= set(admin.describe_acls(ALL_GRANTS)[0])):
            assert time.monotonic() < deadline, f"the gateway made no topics or grants:\n{gateway.output()[-3000:]}"
            time.sleep(0.5)


def own_transport(deployment: Deployment) -> KafkaTransport:
    """The gateway's transport as `gateway serve` opens it, in this process (same database, same keys)."""
    transport = open_transport(deployment.settings, deployment.services.db, deployment.services.keyring)
    assert isinstance(transport, KafkaTransport)
    return transport


def test_the_gateway_grants_each_agency_its_own_topics_and_nothing_else(deployment):
    transport = own_transport(deployment)
    try:
        granted = transport.granted()
        mine = [acl for acl in granted if acl.principal in (f"User:{REQUESTER}", f"User:{TARGET}")]
        expected = [acl for t in topics.for_agencies([REQUESTER, TARGET]) for acl in acls_for(t)]
        assert sorted(map(repr, mine)) == sorted(map(repr, expected))
        summary = {(a.principal, a.operation.name, a.resource_pattern.resource_name) for a in mine}
        assert (f"User:{TARGET}", "WRITE", topics.inbound(TARGET)) in summary
        assert (f"User:{TARGET}", "READ", topics.outbound(TARGET)) in summary
        assert (f"User:{TARGET}", "READ", topics.group_prefix(TARGET)) in summary
        assert len(mine) == 6  # three each: write inbound, read outbound, its consumer groups

        # the operator's `gateway kafka init` (as every start) creates and grants nothing twice
        init = run_gateway(["kafka", "init"], deployment.env)
        assert init.returncode == 0, init.stderr
        assert init.stdout.startswith("0 topics created on the kafka transport") and "User:<agency id>" in init.stdout
        assert sorted(map(repr, transport.granted())) == sorted(map(repr, granted))
    finally:
        transport.close()


def test_an_agency_writes_its_inbound_topic_and_reads_its_outbound_topic(deployment):
    token = deployment.token(TARGET)
    producer = KafkaProducer(**deployment.client_config(token))
    try:
        sent = producer.send(topics.inbound(TARGET), value=b'{"not": "a bundle"}', key=b"k").get(timeout=15)
        assert sent.topic == topics.inbound(TARGET)  # stored (the gateway dead-letters it: not a message Bundle)
    finally:
        producer.close(timeout=5)

    note = f"for-{TARGET}-{uuid.uuid4().hex[:8]}"
    transport = own_transport(deployment)
    try:
        transport.publish([OutgoingMessage(topics.outbound(TARGET), "k", note.encode(), {"message-id": note})])
    finally:
        transport.close()
    consumer = KafkaConsumer(topics.outbound(TARGET), **deployment.client_config(
        token, group_id=topics.group_prefix(TARGET) + "tests", auto_offset_reset="earliest", enable_auto_commit=False,
    ))
    try:
        values = _poll_until(consumer, lambda got: note.encode() in got)
        assert note.encode() in values
        consumer.commit()  # its own consumer group keeps its position
    finally:
        consumer.close()


def test_an_agency_can_neither_read_nor_write_another_agencys_topics(deployment):
    token = deployment.token(TARGET)  # qps
    producer = KafkaProducer(**deployment.client_config(token))
    try:
        for topic in (topics.inbound(REQUESTER), topics.outbound(REQUESTER), topics.outbound(TARGET), topics.DEAD_LETTER):
            future = producer.send(topic, value=b"spoofed")
            with pytest.raises(kafka_errors.TopicAuthorizationFailedError):
                future.get(timeout=15)
    finally:
        producer.close(timeout=5)

    others = [topics.outbound(REQUESTER), topics.inbound(REQUESTER), topics.DEAD_LETTER]
    # kafka-python's poll() on a topic it may not see returns {} and logs; ask the broker directly,
    # as this agency, and it answers TOPIC_AUTHORIZATION_FAILED for each (no READ, not even DESCRIBE)
    admin = KafkaAdminClient(**deployment.client_config(token))
    try:
        answers = {t["name"]: kafka_errors.for_code(t["error_code"]) for t in admin.describe_topics(others)}
        assert answers == dict.fromkeys(others, kafka_errors.TopicAuthorizationFailedError)
    finally:
        admin.close()
    consumer = KafkaConsumer(**deployment.client_config(token, enable_auto_commit=False))
    try:
        assert consumer.topics() == {topics.inbound(TARGET), topics.outbound(TARGET)}  # the others' topics do not even show
        assert not any(consumer.partitions_for_topic(t) for t in others)
        # its own inbound topic it may write, not read (only the gateway reads what agencies send)
        own_inbound = TopicPartition(topics.inbound(TARGET), 0)
        consumer.assign([own_inbound])
        consumer.seek(own_inbound, 0)
        with pytest.raises(kafka_errors.TopicAuthorizationFailedError):
            for _ in range(20):
                consumer.poll(timeout_ms=500)
    finally:
        consumer.close()

    # nor join another agency's consumer groups (its positions are the other agency's)
    consumer = KafkaConsumer(topics.outbound(TARGET), **deployment.client_config(token, group_id=topics.group_prefix(REQUESTER) + "x"))
    try:
        with pytest.raises(kafka_errors.GroupAuthorizationFailedError):
            for _ in range(20):
                consumer.poll(timeout_ms=500)
    finally:
        consumer.close()


def _refused(deployment: Deployment, token: str) -> str:
    """Connect with `token`; return what the broker logged about it (the client only sees its
    connection closed, or an SaslAuthenticationFailedError, and keeps retrying)."""
    before = len(deployment.broker.server_log.read_bytes())
    # told the broker's version, the producer does not bootstrap in its constructor: it can be closed cleanly
    producer = KafkaProducer(**deployment.client_config(token, api_version=(4, 1), max_block_ms=2000))
    try:
        with pytest.raises(kafka_errors.KafkaTimeoutError):
            producer.partitions_for(topics.inbound(TARGET))
    finally:
        producer.close(timeout=5)
    return deployment.broker.server_log.read_bytes()[before:].decode(errors="replace")


def _signed(key: ECKey, **claims) -> str:
    now = int(time.time())
    body = {
        "iss": ISSUER, "aud": ISSUER, "sub": "qps-case-system", "client_id": "qps-case-system", "agency": TARGET,
        "scope": SCOPE, "iat": now, "exp": now + 300, "jti": uuid.uuid4().hex, **claims,
    }
    return jwt.encode({"alg": ALGORITHM, "typ": "at+jwt", "kid": key.kid}, body, key, algorithms=[ALGORITHM])


def test_forged_expired_or_misdirected_tokens_are_refused_at_sasl(deployment):
    real_key = deployment.services.identity.signing.signer()
    forger = ECKey.generate_key("P-256", parameters={"kid": real_key.kid}, private=True)  # the gateway's kid, not its key
    now = int(time.time())
    cases_ = {
        "forged": (_signed(forger), "invalid signature"),
        "expired": (_signed(real_key, iat=now - 900, exp=now - 600), "no longer valid"),
        "another issuer": (_signed(real_key, iss="https://elsewhere.test"), "Issuer (iss) claim value"),
        "another audience": (_signed(real_key, aud="https://elsewhere.test"), "Audience (aud) claim"),
    }
    for name, (token, reason) in cases_.items():
        broker_log = _refused(deployment, token)
        assert "Failed authentication with /127.0.0.1" in broker_log and "invalid_token" in broker_log, name
        assert reason in broker_log, f"{name}: the broker did not say why ({reason!r})"
    # the same claims signed with the gateway's real key are accepted: only the flaw was refused
    producer = KafkaProducer(**deployment.client_config(_signed(real_key)))
    producer.close(timeout=5)


def test_a_connection_lasts_no_longer_than_its_token(deployment):
    """The broker ends each session when its token expires (KIP-368: connections.max.reauth.ms):
    a client must show a fresh token to go on, so a system that can no longer get one (a revoked
    client) is cut off within the token's lifetime, however long its connection has been open."""
    key = deployment.services.identity.signing.signer()
    stale = _signed(key, exp=int(time.time()) + 4)
    producer = KafkaProducer(**deployment.client_config(stale, request_timeout_ms=2000, delivery_timeout_ms=4000, max_block_ms=4000))
    try:
        producer.send(topics.inbound(TARGET), value=b"while the token holds").get(timeout=10)
        time.sleep(6)
        # Cut off either way: the send times out, or fails as the broker closes the connection
        # that could not re-authenticate (which of the two depends on when the session ends).
        with pytest.raises((kafka_errors.KafkaTimeoutError, kafka_errors.KafkaConnectionError)):
            producer.send(topics.inbound(TARGET), value=b"after it expired").get(timeout=10)
    finally:
        producer.close(timeout=1)
    # the broker itself is up: the same system with a fresh token goes on
    fresh = KafkaProducer(**deployment.client_config(_signed(key)))
    try:
        fresh.send(topics.inbound(TARGET), value=b"with a fresh token").get(timeout=10)
    finally:
        fresh.close(timeout=5)


def test_the_gateways_own_kafka_token_opens_nothing_over_http(deployment):
    own = GatewayTokens(deployment.services.identity.signing, ISSUER, 300).token()
    with pytest.raises(AccessDenied) as refused:
        deployment.services.identity.access.verify(own, ISSUER)
    assert refused.value.reason == "invalid-claims"  # its audience is the broker, not the API


def test_rfis_travel_through_the_gateway_over_sasl(deployment):
    """The running gateway's own transport, end to end: it consumes the requester's inbound topic
    and publishes to the target's outbound topic (and back), each side holding only its token."""
    requester = AgencyOnKafka(deployment.broker.bootstrap, REQUESTER, **_agency_config(deployment, REQUESTER))
    target = AgencyOnKafka(deployment.broker.bootstrap, TARGET, **_agency_config(deployment, TARGET))
    exchange = RfiExchange(requester, target, [cases.CASE_ID])
    try:
        exchange.ask(6)
        exchange.run_until_answered(timeout=90)
        assert set(exchange.answered_at) == set(exchange.asked), deployment.gateway.output()[-3000:]
        assert SECRET not in exchange.released_text
    finally:
        requester.close()
        target.close()


def test_the_gateway_transport_publishes_reads_and_consumes_over_sasl(deployment):
    transport = own_transport(deployment)
    topic = f"fv.sasl-check-{uuid.uuid4().hex[:8]}"  # the gateway may create and use any topic
    try:
        assert transport.create_topics([topic], partitions=2) == [topic]
        ids = [uuid.uuid4().hex for _ in range(5)]
        transport.publish([OutgoingMessage(topic, cases.CASE_ID, i.encode(), {"message-id": i}) for i in ids])
        read = transport.read(topic, {}, max_messages=100, wait_seconds=5)
        assert [m.value.decode() for m in read] == ids  # one key: one partition, in order
        member = transport.consumer(topic, f"gateway-sasl-check-{uuid.uuid4().hex[:6]}")
        try:
            deadline, seen = time.monotonic() + 30, []
            while len(seen) < len(ids) and time.monotonic() < deadline:
                seen += [m.value.decode() for m in member.poll(100, 0.5)]
            assert seen == ids
            member.commit()
        finally:
            member.close()
    finally:
        transport.close()


def _agency_config(deployment: Deployment, agency: str) -> dict:
    """An agency system that asks the gateway for a new token whenever Kafka wants one."""
    config = deployment.client_config(lambda: deployment.token(agency))
    config.pop("bootstrap_servers")
    return config


def _poll_until(consumer: KafkaConsumer, done: Callable[[list[bytes]], bool], timeout: float = 30) -> list[bytes]:
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    while not done(got) and time.monotonic() < deadline:
        got += [r.value for records in consumer.poll(timeout_ms=500).values() for r in records]
    return got
