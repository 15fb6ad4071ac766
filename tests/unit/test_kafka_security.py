"""The Kafka identity pieces that need no broker: the gateway's own tokens, the kafka-python
security settings, and which ACLs each topic gets (tests/integration/test_kafka_identity.py runs
them against a real broker)."""

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from gateway.auth.gateway_tokens import PRINCIPAL, GatewayTokens, kafka_audience
from gateway.auth.agencies import AGENCY_ID
from gateway.connectors import open_transport, topics
from gateway.connectors.kafka import KafkaTransport, TokenProvider, acls_for, security_config
from gateway.errors import GatewayError
from gateway.settings import Settings

ISSUER = "https://fv-gateway.test"


class Keys:
    """SigningKeys as GatewayTokens sees it: the current signing key."""

    def __init__(self):
        self.made = 0
        self.rotate()

    def rotate(self):
        self.made += 1
        self.key = ECKey.generate_key("P-256", parameters={"kid": f"key-{self.made}"}, private=True)

    def signer(self):
        return self.key


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_gateways_token_is_for_the_broker_as_the_gateway():
    keys = Keys()
    token = GatewayTokens(keys, ISSUER + "/", 300, Clock()).token()
    claims = jwt.decode(token, KeySet([keys.key])).claims
    assert claims["iss"] == ISSUER and claims["aud"] == kafka_audience(ISSUER) == ISSUER + "/kafka"
    assert claims["agency"] == PRINCIPAL and claims["exp"] - claims["iat"] == 300
    assert jwt.decode(token, KeySet([keys.key])).header["kid"] == keys.key.kid
    assert not AGENCY_ID.match(PRINCIPAL)  # no agency can be registered under the gateway's name


def test_the_gateways_token_is_reused_then_renewed_at_half_life_or_with_a_new_key():
    keys, clock = Keys(), Clock()
    tokens = GatewayTokens(keys, ISSUER, 300, clock)
    first = tokens.token()
    clock.now += 149
    assert tokens.token() == first  # more than half its life left: the same token
    clock.now += 2
    second = tokens.token()
    assert second != first  # less than half left: a new one, long before it expires
    keys.rotate()
    third = tokens.token()
    assert third != second and jwt.decode(third, KeySet([keys.key])).header["kid"] == keys.key.kid


def test_security_settings_for_kafka_python():
    assert security_config("none", tls=False) == {"security_protocol": "PLAINTEXT"}
    assert security_config("none", tls=True, ca_file="/ca.pem") == {"security_protocol": "SSL", "ssl_cafile": "/ca.pem"}
    config = security_config("oauthbearer", tls=True, token=lambda: "t")
    assert config["security_protocol"] == "SASL_SSL" and config["sasl_mechanism"] == "OAUTHBEARER"
    assert isinstance(config["sasl_oauth_token_provider"], TokenProvider) and config["sasl_oauth_token_provider"].token() == "t"
    assert security_config("oauthbearer", tls=False, token=lambda: "t")["security_protocol"] == "SASL_PLAINTEXT"
    with pytest.raises(ValueError):
        security_config("oauthbearer", tls=True)


def test_each_agency_topic_grants_its_agency_one_thing():
    assert topics.access("fv.inbound.vicpol") == ("vicpol", "write")
    assert topics.access("fv.outbound.vicpol.north") == ("vicpol.north", "read")
    assert topics.access(topics.DEAD_LETTER) is None and acls_for(topics.DEAD_LETTER) == []
    [write] = acls_for("fv.inbound.qps")
    assert (write.principal, write.operation.name, write.resource_pattern.resource_name) == ("User:qps", "WRITE", "fv.inbound.qps")
    assert write.resource_pattern.pattern_type.name == "LITERAL"
    read, groups = acls_for("fv.outbound.qps")
    assert (read.principal, read.operation.name, read.resource_pattern.pattern_type.name) == ("User:qps", "READ", "LITERAL")
    assert (groups.resource_pattern.resource_type.name, groups.resource_pattern.resource_name) == ("GROUP", "qps:")
    assert groups.resource_pattern.pattern_type.name == "PREFIXED"


def test_one_agencys_group_prefix_never_covers_anothers():
    ids = ["vicpol", "vicpol-north", "vicpol.north", "vicpol2"]
    for a in ids:
        for b in ids:
            if a != b:
                assert not (topics.group_prefix(b) + "x").startswith(topics.group_prefix(a))


def test_oauthbearer_needs_the_issuer_and_opens_nothing_until_used(tmp_path):
    settings = Settings(data_dir=tmp_path, transport="kafka", kafka_bootstrap="127.0.0.1:9", kafka_security="oauthbearer")
    with pytest.raises(GatewayError, match="GATEWAY_BASE_URL"):
        open_transport(settings, db=None, keyring=None)  # type: ignore[arg-type]
    settings = Settings(**{**settings.model_dump(), "base_url": ISSUER})
    transport = open_transport(settings, db=None, keyring=None)  # type: ignore[arg-type]  (no key is read before a connection)
    assert isinstance(transport, KafkaTransport) and transport.agency_acls
    transport.close()  # never connected: nothing to close, nothing leaked
