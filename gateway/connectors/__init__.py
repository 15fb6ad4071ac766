"""Message transports behind one interface (`transport.Transport`), chosen by GATEWAY_TRANSPORT.

The package itself imports nothing heavy: the Kafka publisher's child process
(kafka_publishing) imports it on its way and needs neither SQLAlchemy nor the gateway's
settings (with them, the child's imports took 66 MB instead of 31)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.errors import GatewayError

if TYPE_CHECKING:
    from gateway.connectors.transport import Transport
    from gateway.settings import Settings
    from gateway.store.database import Database
    from gateway.store.encryption import DataKeyring


def open_transport(settings: Settings, db: Database, keyring: DataKeyring) -> Transport:
    from gateway.connectors.embedded import DatabaseQueue

    if settings.transport == "kafka":
        if not settings.kafka_bootstrap:
            raise GatewayError("GATEWAY_TRANSPORT=kafka needs GATEWAY_KAFKA_BOOTSTRAP (host:port[,host:port])")
        from gateway.connectors.kafka import KafkaTransport, security_config  # only a Kafka deployment loads kafka-python

        token = None
        if settings.kafka_security == "oauthbearer":
            token = _gateway_tokens(settings, db, keyring).token
        config = security_config(settings.kafka_security, settings.kafka_tls, settings.kafka_ca_file, token)
        return KafkaTransport(settings.kafka_bootstrap, agency_acls=settings.kafka_security != "none",
                              publisher_process=settings.kafka_publisher_process, **config)
    return DatabaseQueue(db, keyring)


def _gateway_tokens(settings: Settings, db: Database, keyring: DataKeyring):
    """The gateway's own tokens for the broker, signed with the keys its token endpoint uses."""
    from gateway.auth.gateway_tokens import GatewayTokens
    from gateway.auth.signing import SigningKeys

    if not settings.base_url:
        raise GatewayError(
            "GATEWAY_KAFKA_SECURITY=oauthbearer needs GATEWAY_BASE_URL: it is the issuer the broker expects in every token"
        )
    signing = SigningKeys(db, keyring, settings.token_lifetime_seconds, settings.identity_cache_seconds)
    return GatewayTokens(signing, settings.base_url, settings.token_lifetime_seconds)
