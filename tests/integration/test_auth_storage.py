"""What identity keeps in the database, so that any number of gateway processes agree (DESIGN 10)."""

import time

import pytest
from sqlalchemy import inspect, select

from gateway.auth import replay
from gateway.bootstrap import build_services
from gateway.settings import Settings
from gateway.store import schema
from gateway.store.schema import used_assertions
from tests.support.agency_systems import register_system

IDENTITY_TABLES = ("oauth_clients", "signing_keys", "used_assertions", "security_events")
ROOT = "http://gateway.test"


@pytest.fixture
def second_process(settings):
    """Another gateway process on the same database: its own caches, the same rows."""
    other = build_services(settings, upgrade_schema=False)
    yield other
    other.close()


def form(system, assertion=None, scope="admin") -> dict:
    return system.token_form(f"{ROOT}/auth/token", scope, assertion)


def test_an_assertion_used_at_one_process_is_refused_at_another(services, second_process):
    system = register_system(services)
    assertion = system.assertion(f"{ROOT}/auth/token")
    assert services.identity.tokens.issue(form(system, assertion), ROOT).status == 200
    refused = second_process.identity.tokens.issue(form(system, assertion), ROOT)
    assert refused.status == 401 and refused.body["error_description"] == "This assertion (its jti) was used before"


def test_both_processes_sign_with_the_same_key_and_verify_each_others_tokens(services, second_process):
    system = register_system(services)
    token = services.identity.tokens.issue(form(system), ROOT).body["access_token"]
    assert second_process.identity.signing.signer().kid == services.identity.signing.signer().kid
    assert second_process.identity.access.verify(token, ROOT).agency_id == "vicpol"


def test_a_rotation_by_one_process_is_seen_by_the_other(services, second_process):
    system = register_system(services)
    old = second_process.identity.tokens.issue(form(system), ROOT).body["access_token"]
    services.identity.signing.rotate()
    new = services.identity.tokens.issue(form(system), ROOT).body["access_token"]
    # the second process has never seen the new kid: it looks it up at once
    assert second_process.identity.access.verify(new, ROOT).client_id == system.client_id
    assert second_process.identity.access.verify(old, ROOT).client_id == system.client_id


def rotation_during_the_next_read(monkeypatch, signing):
    """The next key read gets the keys as they were, and a revoking rotation commits right after
    that read, before its caller keeps what it read (as another thread's rotation can)."""
    read = signing.db.run_read

    def read_then_rotate(job):
        monkeypatch.setattr(signing.db, "run_read", read)
        found = read(job)
        signing.rotate(revoke_previous=True)
        return found

    monkeypatch.setattr(signing.db, "run_read", read_then_rotate)


def test_keys_read_while_a_revocation_commits_are_not_kept(services, monkeypatch):
    signing = services.identity.signing
    revoked = signing.signer().kid
    signing._published = None  # the next check reads the keys
    rotation_during_the_next_read(monkeypatch, signing)
    assert signing.is_published(revoked)  # that check read before the rotation committed
    assert not signing.is_published(revoked)  # but what it read is not kept for the cache's lifetime
    assert signing.signer().kid != revoked


def test_a_signing_key_read_while_a_revocation_commits_is_not_kept(services, monkeypatch):
    signing = services.identity.signing
    revoked = signing.signer().kid
    signing._signer = None  # the next signature reads the key
    rotation_during_the_next_read(monkeypatch, signing)
    assert signing.signer().kid == revoked  # read before the rotation committed
    assert signing.signer().kid != revoked  # no further token is signed with the deleted key


def test_used_assertions_are_purged_once_expired(services, monkeypatch):
    used, now = replay.UsedAssertions(services.db), time.time()
    assert used.first_use("vicpol-cad", "first", now + 60)
    assert not used.first_use("vicpol-cad", "first", now + 60)  # the primary key refuses the replay
    monkeypatch.setattr(replay.time, "time", lambda: now + 3600)  # an hour later
    assert used.first_use("vicpol-cad", "second", now + 3660)
    rows = services.db.run_read(lambda conn: conn.execute(select(used_assertions.c.jti)).scalars().all())
    assert rows == ["second"]  # the expired record was purged


def test_the_migration_creates_the_identity_tables_as_the_schema_describes(services):
    found = inspect(services.db.engine)
    for name in IDENTITY_TABLES:
        table = schema.metadata.tables[name]
        assert {c["name"] for c in found.get_columns(name)} == {c.name for c in table.columns}, name
        assert {i["name"] for i in found.get_indexes(name)} == {i.name for i in table.indexes}, name


def test_settings_read_trusted_issuers_from_json(monkeypatch):
    monkeypatch.setenv(
        "GATEWAY_TRUSTED_ISSUERS",
        '[{"issuer": "https://kc.example.org/realms/fv", "jwks_url": "https://kc.example.org/realms/fv/protocol/openid-connect/certs",'
        ' "audience": "fv-gateway"}]',
    )
    issuer = Settings().trusted_issuers[0]
    assert issuer.audience == "fv-gateway" and issuer.agency_claim == "agency" and issuer.scope_claim == "scope"
