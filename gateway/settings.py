"""Configuration from GATEWAY_* environment variables.

Only the composition root (`gateway.bootstrap`) builds a Settings object; nothing reads the
environment at import time. Every variable is listed in README.md.
"""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EXAMPLE_SECRETS = {"changethis", "changeme", "secret", "password"}


class TrustedIssuer(BaseModel):
    """An external identity provider (Keycloak, Entra ID) whose access tokens the gateway accepts."""

    issuer: str = Field(description="the exact `iss` of its tokens")
    jwks_url: str = Field(description="where its public keys are published (https, or http on loopback)")
    audience: str = Field(description="the `aud` its tokens carry for this gateway")
    agency_claim: str = Field(default="agency", description="the claim that names the calling agency")
    agencies: dict[str, str] = Field(default_factory=dict, description="claim value -> agency id, where they differ")
    client_claim: str = Field(default="azp", description="the claim that names the calling system")
    scope_claim: str = Field(default="scope", description="the claim with the granted scopes (Entra ID: roles)")
    algorithms: list[str] = Field(default=["RS256", "ES256"], description="signature algorithms accepted from it")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="local state: SQLite file, dev key")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite under data_dir")
    data_key: str = Field(default="", description="base64url 32-byte key-encryption key; empty means dev key file")
    audit_signing_key: str = Field(
        default="", description="base64url 32-byte Ed25519 key that signs ledger checkpoints; empty means dev key file"
    )
    max_body_bytes: int = Field(default=5 * 1024 * 1024, gt=0)
    base_url: str = Field(default="", description="public base URL for fullUrl and links; empty means from the request")
    key_cache_seconds: float = Field(default=5.0, ge=0, description="how long a process trusts its cached active data key")
    log_level: str = "INFO"
    consent_policies_dir: Path = Field(
        default=Path(__file__).resolve().parent / "consent" / "policies",
        description="one YAML policy per information-sharing scheme; a bad file stops start-up",
    )
    profiles_dir: Path = Field(
        default=Path(__file__).resolve().parent.parent / "profiles",
        description="conformance resources published under /fhir at start-up",
    )

    transport: Literal["embedded", "kafka"] = Field(
        default="embedded", description="where messages travel: the gateway's database (one machine) or Apache Kafka"
    )
    kafka_bootstrap: str = Field(default="", description="Kafka bootstrap servers, host:port[,host:port]; needed when transport=kafka")
    queue_retention_hours: float = Field(
        default=168.0, gt=0,
        description="how long the embedded queue keeps a message once every reader has passed it (then it is deleted)",
    )
    idempotency_retention_hours: float = Field(
        default=720.0, gt=0,
        description="how long a handled message's id is remembered, so that a redelivery of it has no second effect; "
        "keep it longer than the inbound topics' retention on the broker and GATEWAY_QUEUE_RETENTION_HOURS",
    )
    kafka_partitions: int = Field(default=3, ge=1, description="partitions of each topic `gateway kafka init` creates")
    kafka_replication: int = Field(default=1, ge=1, description="replication factor of each topic `gateway kafka init` creates")
    kafka_security: Literal["none", "oauthbearer"] = Field(
        default="none",
        description="how the gateway authenticates to Kafka: none, or SASL OAUTHBEARER with tokens it signs for itself (needs base_url)",
    )
    kafka_tls: bool = Field(default=False, description="TLS to the brokers (SSL / SASL_SSL); production needs it, tokens are bearer credentials")
    kafka_ca_file: str = Field(default="", description="PEM file of the CAs that sign the brokers' certificates; empty means the system's")
    kafka_publisher_process: bool = Field(
        default=True,
        description="run the Kafka producer in a child process, off the GIL the gateway's one database writer needs; "
        "false keeps it in the gateway's process",
    )

    token_lifetime_seconds: int = Field(default=300, ge=30, le=3600, description="lifetime of the access tokens /auth/token issues")
    identity_cache_seconds: float = Field(
        default=5.0, ge=0, description="how long a process trusts its cached signing keys, client revocations and JWKS fetches"
    )
    trusted_issuers: list[TrustedIssuer] = Field(
        default_factory=list, description="external identity providers whose access tokens are accepted (JSON list)"
    )

    @field_validator("data_key", "audit_signing_key")
    @classmethod
    def _no_example_secret(cls, value: str) -> str:
        if value.strip().lower() in EXAMPLE_SECRETS:
            raise ValueError("the key is a well-known example value; generate one with `gateway keys generate`")
        return value

    @model_validator(mode="after")
    def _ids_outlive_queued_messages(self) -> "Settings":
        if self.idempotency_retention_hours < self.queue_retention_hours:
            raise ValueError(
                "GATEWAY_IDEMPOTENCY_RETENTION_HOURS must be at least GATEWAY_QUEUE_RETENTION_HOURS: "
                "a message still queued could otherwise be handled twice"
            )
        return self

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gateway.db').as_posix()}"
