"""Configuration from GATEWAY_* environment variables.

Only the composition root (`gateway.bootstrap`) builds a Settings object; nothing reads the
environment at import time. Every variable is listed in README.md.
"""

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EXAMPLE_SECRETS = {"changethis", "changeme", "secret", "password"}


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

    @field_validator("data_key", "audit_signing_key")
    @classmethod
    def _no_example_secret(cls, value: str) -> str:
        if value.strip().lower() in EXAMPLE_SECRETS:
            raise ValueError("the key is a well-known example value; generate one with `gateway keys generate`")
        return value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gateway.db').as_posix()}"
