"""The disclosure ledger: written with the release, and any edit, removal or reordering is detected."""

from datetime import datetime, timezone

import orjson
import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from sqlalchemy import delete, select, update

from gateway.audit import ledger as ledger_module
from gateway.audit.events import disclosure_event
from gateway.audit.ledger import AuditSigner
from gateway.consent.model import ConsentOnFile, DecisionRequest, Party
from gateway.domain.vocabulary import (
    AgencyType,
    ConsentStatus,
    InformationCategory,
    Jurisdiction,
    PrescribedStatus,
    RfiPurpose,
    SubjectRole,
)
from gateway.store.encryption import generate_kek, parse_kek
from gateway.store.savepoint import Savepoint
from gateway.store.schema import audit_chain, audit_checkpoints, resource_versions

NOW = datetime(2026, 11, 24, 9, tzinfo=timezone.utc)
ISE = frozenset({PrescribedStatus.INFORMATION_SHARING_ENTITY, PrescribedStatus.RISK_ASSESSMENT_ENTITY})


def disclose(services, n: int, consent=ConsentStatus.GIVEN) -> list[int]:
    request = DecisionRequest(
        Jurisdiction.VIC, RfiPurpose.RISK_MANAGEMENT, Party(AgencyType.POLICE, ISE), Party(AgencyType.HEALTH, ISE),
        SubjectRole.ADULT_VICTIM_SURVIVOR, InformationCategory.MENTAL_HEALTH, consent=ConsentOnFile(consent), at=NOW,
    )
    decision = services.consent.decide(request)
    return [
        services.db.run_write(
            lambda conn, i=i: services.ledger.record(
                conn, disclosure_event(f"disclosure-{consent.value}-{i}", decision, request, "police", "health", "vs-1", NOW)
            )
        )
        for i in range(n)
    ]


def problems(services) -> list[str]:
    return services.ledger.verify().problems


def test_a_recorded_disclosure_is_a_valid_searchable_audit_event_and_the_ledger_verifies(services, client):
    assert disclose(services, 3) == [1, 2, 3]
    disclose(services, 1, ConsentStatus.REFUSED)
    result = services.ledger.verify()
    assert result.intact and result.entries == 4
    refused = client.get("/fhir/AuditEvent", params={"outcome": "4", "agent": "Organization/police"}).json()
    assert refused["total"] == 1
    event = refused["entry"][0]["resource"]
    AuditEvent.model_validate(event)
    details = {d["type"]: d["valueString"] for d in event["entity"][0]["detail"]}
    assert details["decision"] == "deny" and details["consent-status"] == "refused" and "s144N" in details["legal-basis"]


def test_an_audit_entry_is_written_with_its_release_or_not_at_all(services):
    def release_then_fail(conn):
        request = DecisionRequest(Jurisdiction.DEFAULT, RfiPurpose.RISK_MANAGEMENT, Party(AgencyType.POLICE),
                                  Party(AgencyType.HEALTH), SubjectRole.THIRD_PARTY, InformationCategory.HEALTH, at=NOW)
        services.ledger.record(conn, disclosure_event("d-x", services.consent.decide(request), request, "police", "health", "p", NOW))
        raise RuntimeError("the release itself failed")

    with pytest.raises(RuntimeError):
        services.db.run_write(release_then_fail)
    assert services.ledger.verify().entries == 0


def test_entries_appended_in_one_transaction_follow_its_last_kept_entry(services):
    """A transaction appending several entries chains each on its own last one, without reading
    it back; an entry a savepoint rolled back is not followed, nor one of a transaction rolled back."""
    request = DecisionRequest(Jurisdiction.DEFAULT, RfiPurpose.RISK_MANAGEMENT, Party(AgencyType.POLICE),
                              Party(AgencyType.HEALTH), SubjectRole.THIRD_PARTY, InformationCategory.HEALTH, at=NOW)
    decision = services.consent.decide(request)

    def record(conn, event_id: str) -> int:
        return services.ledger.record(conn, disclosure_event(event_id, decision, request, "police", "health", "p", NOW))

    def kept_undone_kept(conn) -> int:
        record(conn, "d-kept")
        savepoint = Savepoint(conn)
        record(conn, "d-undone")
        savepoint.rollback()
        return record(conn, "d-kept-too")

    def recorded_then_failed(conn):
        record(conn, "d-failed")
        raise RuntimeError("the release itself failed")

    assert services.db.run_write(kept_undone_kept) == 2
    with pytest.raises(RuntimeError):
        services.db.run_write(recorded_then_failed)
    assert services.db.run_write(lambda conn: [record(conn, "d-next"), record(conn, "d-last")]) == [3, 4]
    result = services.ledger.verify()
    assert result.intact and result.entries == 4, result.problems
    stored = services.db.run_read(lambda conn: set(conn.execute(
        select(resource_versions.c.resource_id).where(resource_versions.c.resource_type == "AuditEvent")).scalars()))
    assert stored == {"d-kept", "d-kept-too", "d-next", "d-last"}  # no event without its entry


def test_a_removed_entry_is_detected(services):
    disclose(services, 4)
    services.db.run_write(lambda conn: conn.execute(delete(audit_chain).where(audit_chain.c.seq == 2)))
    assert any("missing" in p for p in problems(services))


def test_a_reordered_entry_is_detected(services):
    disclose(services, 3)

    def swap(conn):
        one, two = (conn.execute(select(audit_chain).where(audit_chain.c.seq == s)).one() for s in (1, 2))
        conn.execute(update(audit_chain).where(audit_chain.c.seq == 1).values(digest=two.digest, event_id=two.event_id))
        conn.execute(update(audit_chain).where(audit_chain.c.seq == 2).values(digest=one.digest, event_id=one.event_id))

    services.db.run_write(swap)
    assert any("chain broken" in p for p in problems(services))


def test_an_audit_event_changed_after_it_was_recorded_is_detected(services):
    disclose(services, 2)

    def rewrite(conn):
        current = orjson.loads(services.store.current(conn, "AuditEvent", "disclosure-given-1").body)
        current["outcomeDesc"] = "nothing to see here"
        services.store.write(conn, current, "AuditEvent", "disclosure-given-1")

    services.db.run_write(rewrite)
    assert problems(services) == ["entry 2: AuditEvent/disclosure-given-1 was changed after it was recorded"]


def test_an_altered_stored_body_is_detected(services):
    disclose(services, 2)

    def corrupt(conn):
        row = conn.execute(select(resource_versions.c.body).where(resource_versions.c.resource_id == "disclosure-given-0")).one()
        flipped = bytes([row.body[0] ^ 1]) + row.body[1:]
        conn.execute(update(resource_versions).where(resource_versions.c.resource_id == "disclosure-given-0").values(body=flipped))

    services.db.run_write(corrupt)
    assert any("cannot be read" in p for p in problems(services))


def test_checkpoints_are_signed_and_a_rewritten_chain_is_caught(services, monkeypatch):
    monkeypatch.setattr(ledger_module, "CHECKPOINT_EVERY", 2)
    disclose(services, 5)
    assert services.ledger.sign_head() == 5
    result = services.ledger.verify()
    assert result.intact and result.checkpoints == 3

    def rewrite_history(conn):  # an insider recomputes the whole chain after editing entry 1
        rows = conn.execute(select(audit_chain).order_by(audit_chain.c.seq)).all()
        previous = ledger_module.GENESIS
        for row in rows:
            digest = "f" * 64 if row.seq == 1 else row.digest
            previous = ledger_module._chain(previous, digest)
            conn.execute(update(audit_chain).where(audit_chain.c.seq == row.seq).values(digest=digest, chain=previous))

    services.db.run_write(rewrite_history)
    found = problems(services)
    assert any("no longer matches what was signed" in p for p in found)
    assert any("was altered" in p for p in found)


def test_a_forged_or_foreign_signature_is_caught(services):
    disclose(services, 1)
    services.ledger.sign_head()
    services.db.run_write(lambda conn: conn.execute(update(audit_checkpoints).values(signature=b"\0" * 64)))
    assert any("signature does not verify" in p for p in problems(services))
    stranger = AuditSigner.from_bytes(parse_kek(generate_kek()))
    result = services.ledger.verify({stranger.key_id: stranger.public_key})
    assert any("unknown key" in p for p in result.problems)
