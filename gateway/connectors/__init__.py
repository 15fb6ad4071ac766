"""Message transports behind one interface (`transport.Transport`), chosen by GATEWAY_TRANSPORT."""

from gateway.connectors.embedded import DatabaseQueue
from gateway.connectors.transport import Transport
from gateway.errors import GatewayError
from gateway.settings import Settings
from gateway.store.database import Database
from gateway.store.encryption import DataKeyring


def open_transport(settings: Settings, db: Database, keyring: DataKeyring) -> Transport:
    if settings.transport == "kafka":
        if not settings.kafka_bootstrap:
            raise GatewayError("GATEWAY_TRANSPORT=kafka needs GATEWAY_KAFKA_BOOTSTRAP (host:port[,host:port])")
        from gateway.connectors.kafka import KafkaTransport  # only a Kafka deployment loads kafka-python

        return KafkaTransport(settings.kafka_bootstrap)
    return DatabaseQueue(db, keyring)
