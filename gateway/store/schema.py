"""The current shape of the gateway's tables. Alembic migrations (store/migrations) create them.

Times are integer UTC microseconds so that SQLite and PostgreSQL sort and compare them alike.
Resource bodies are AES-GCM ciphertext; `key_id` names the data key that encrypted each one.
"""

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, LargeBinary, MetaData, String, Table, Text, text

metadata = MetaData()

# BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite, so ids autoincrement on both.
RowId = BigInteger().with_variant(Integer(), "sqlite")

resources = Table(
    "resources",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Index("ix_resources_type_updated", "resource_type", "last_updated"),
)

resource_versions = Table(
    "resource_versions",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Column("version_id", Integer, primary_key=True),
    Column("last_updated", BigInteger, nullable=False),
    Column("method", String(8), nullable=False),
    Column("key_id", String(32), nullable=True),  # NULL for a delete marker (no body)
    Column("body", LargeBinary, nullable=True),
)

_VALUED, _DATED = text("value IS NOT NULL"), text("lo IS NOT NULL")

search_index = Table(
    "search_index",
    metadata,
    Column("row_id", RowId, primary_key=True, autoincrement=True),
    Column("resource_type", String(64), nullable=False),
    Column("resource_id", String(64), nullable=False),
    Column("param", String(64), nullable=False),
    Column("system", String(255), nullable=True),
    Column("value", String(512), nullable=True),
    Column("raw", Text, nullable=True),
    Column("lo", BigInteger, nullable=True),
    Column("hi", BigInteger, nullable=True),
    # partial: a row has either a value or a date range, so each index holds only what it can match
    Index("ix_search_value", "resource_type", "param", "value", sqlite_where=_VALUED, postgresql_where=_VALUED),
    Index("ix_search_date", "resource_type", "param", "lo", "hi", sqlite_where=_DATED, postgresql_where=_DATED),
    Index("ix_search_resource", "resource_type", "resource_id"),
)

data_keys = Table(
    "data_keys",
    metadata,
    Column("kid", String(32), primary_key=True),
    Column("kek_id", String(32), nullable=False),  # which GATEWAY_DATA_KEY wrapped it
    Column("wrapped", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("retired_at", BigInteger, nullable=True),
)

# The disclosure ledger (gateway.audit.ledger): each AuditEvent's digest chained to the one before.
audit_chain = Table(
    "audit_chain",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False),
    Column("event_version", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("chain", String(64), nullable=False),
    Column("recorded_at", BigInteger, nullable=False),
)

audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("chain", String(64), nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("signed_at", BigInteger, nullable=False),
)
