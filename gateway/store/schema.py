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
    Column("holder", String(64), nullable=True),  # the agency whose system wrote it; NULL: the gateway
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

# -- messaging (gateway.connectors.embedded, gateway.messaging) ------------------------------
# Payloads carry personal information, so they are AES-GCM ciphertext like resource bodies.

# The embedded transport: a durable, ordered queue in the gateway's database with Kafka's shape
# (topics, partitions, offsets, consumer-group positions), so both transports pass one contract.
queue_topics = Table(
    "queue_topics",
    metadata,
    Column("topic", String(249), primary_key=True),
    Column("partitions", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

queue_messages = Table(
    "queue_messages",
    metadata,
    Column("offset", RowId, primary_key=True, autoincrement=True),
    Column("topic", String(249), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("msg_key", String(128), nullable=True),
    Column("headers", Text, nullable=False),  # JSON object of string values
    Column("key_id", String(32), nullable=False),
    Column("value", LargeBinary, nullable=False),
    Column("published_at", BigInteger, nullable=False),
    Index("ix_queue_messages_topic", "topic", "partition", "offset"),
)

queue_positions = Table(
    "queue_positions",
    metadata,
    Column("consumer_group", String(128), primary_key=True),
    Column("topic", String(249), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)

# How far each agency has acknowledged its outbound topic through the inbox API (any transport).
inbox_positions = Table(
    "inbox_positions",
    metadata,
    Column("agency_id", String(64), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)

# Transactional outbox: a state change and the messages it causes commit together; the relay
# publishes them afterwards and deletes each row once the transport has it durably.
outbox = Table(
    "outbox",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=False, unique=True),
    Column("topic", String(249), nullable=False),
    Column("msg_key", String(128), nullable=True),
    Column("headers", Text, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("last_error", Text, nullable=True),
    Index("ix_outbox_due", "next_attempt_at", "id"),
)

# Idempotency: a message id handled once is never handled again (a redelivery has no effect),
# for GATEWAY_IDEMPOTENCY_RETENTION_HOURS.
processed_messages = Table(
    "processed_messages",
    metadata,
    Column("message_id", String(64), primary_key=True),
    Column("topic", String(249), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("processed_at", BigInteger, nullable=False),
    Index("ix_processed_messages_at", "processed_at"),  # forgotten oldest first (gateway.messaging.retention)
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("message_id", String(64), nullable=True),
    Column("topic", String(249), nullable=False),
    Column("msg_key", String(128), nullable=True),
    Column("headers", Text, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("reason_code", String(64), nullable=False),
    Column("reason", Text, nullable=False),
    Column("failed_at", BigInteger, nullable=False),
    Column("replayed_at", BigInteger, nullable=True),
    Index("ix_dead_letters_open", "replayed_at", "id"),
)

# -- identity (gateway.auth) -------------------------------------------------------------------
# Agencies themselves are Organizations in the FHIR store; these tables hold how their systems
# authenticate (SMART Backend Services) and what the gateway remembers between requests.

# An agency system's registration: its public keys (a JWKS, or a URL serving one) and the
# scopes it may be granted. Revoked clients stay, so that their id is never reused.
oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("agency_id", String(64), nullable=False),
    Column("jwks", Text, nullable=True),  # JSON of public keys only
    Column("jwks_url", String(2048), nullable=True),
    Column("scopes", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

# The gateway's own token-signing keys. The private key is AES-GCM ciphertext under a data key
# (`key_id`), so every process sharing the database signs with the same key. A retired key
# signs nothing new but stays published until the tokens it signed have expired.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("algorithm", String(16), nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("private_jwk", LargeBinary, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("retired_at", BigInteger, nullable=True),
)

# Client assertions already used: (client, jti) is accepted once while the assertion is valid.
used_assertions = Table(
    "used_assertions",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("jti", String(255), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_used_assertions_expires", "expires_at"),
)

# Refused token requests and access attempts: what was refused, why, for which claimed client.
# Never the assertion or token itself.
security_events = Table(
    "security_events",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("occurred_at", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("client_id", String(128), nullable=True),
    Column("agency_id", String(64), nullable=True),
    Column("source", String(64), nullable=True),
    Column("detail", Text, nullable=False),
    Index("ix_security_events_occurred", "occurred_at"),
)

# -- case access (gateway.store.case_links) ----------------------------------------------------
# Which case(s) each stored resource belongs to and which agencies are on each case's team,
# kept in the transaction of every write, so that a read or search by an agency's system is
# filtered by one indexed join instead of by opening resources.

# One row per (resource, case, reason): `via` is the resource whose content made the link (the
# resource itself when it names the case; the case's EpisodeOfCare for its people, its teams
# and what is about its people), so rewriting that resource replaces exactly its own links.
resource_cases = Table(
    "resource_cases",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Column("case_id", String(64), primary_key=True),
    Column("via_type", String(64), primary_key=True),
    Column("via_id", String(64), primary_key=True),
    Index("ix_resource_cases_via", "via_type", "via_id"),
)

# Resources about one person that name no case (a Consent, a factor Observation): they belong
# to that person's cases, whichever cases name the person now or later.
person_resources = Table(
    "person_resources",
    metadata,
    Column("resource_type", String(64), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Column("patient_id", String(64), nullable=False),
    Index("ix_person_resources_patient", "patient_id"),
)

care_team_agencies = Table(
    "care_team_agencies",
    metadata,
    Column("care_team_id", String(64), primary_key=True),
    Column("agency_id", String(64), primary_key=True),
)

# The agencies on each case's team (the participants of the CareTeams its EpisodeOfCare names).
case_agencies = Table(
    "case_agencies",
    metadata,
    Column("case_id", String(64), primary_key=True),
    Column("agency_id", String(64), primary_key=True),
)

# Work a migration asks the next start-up to do because it needs the data key (which
# migrations never hold): e.g. deriving `resource_cases` from the encrypted bodies.
pending_backfills = Table(
    "pending_backfills",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("requested_at", BigInteger, nullable=False),
)

# A fresh token per case part or person, set by each write that changes what is known of it
# (gateway.store.change_marks): what a reader derived from them holds while their marks do.
change_marks = Table(
    "change_marks",
    metadata,
    Column("subject", String(140), primary_key=True),
    Column("mark", String(36), nullable=False),
)
