"""A case's release context is kept between transactions, and never outlives a change to what it
was read from: whoever makes the change, in whichever process, and however it is made.

Every release decision reads the consents, risk, roles and team from the context, so a stale one
would release what a withdrawn consent or a closed case no longer allows.
"""

import dataclasses
from datetime import date

import orjson
import pytest

from gateway.bootstrap import build_services
from gateway.domain.consent import ConsentRecord
from gateway.domain.risk import RiskDetermination
from gateway.domain.vocabulary import ConsentStatus, Jurisdiction, MessageEvent, RiskDeterminedBy, RiskLevel, SubjectRole
from gateway.domain.case import CaseStatus
from gateway.fhir.indexing import index_entries
from gateway.mappings import consent, episode, patient, risk_assessment
from tests.support import cases
from tests.support.cases import CASE_ID


@pytest.fixture
def case(services):
    return cases.open_case(services)


def context(services):
    return services.db.run_read(lambda conn: services.rfis.reader.context(conn, CASE_ID))


def stored(services, resource_type: str, resource_id: str) -> dict:
    return services.db.run_read(lambda conn: orjson.loads(services.store.current(conn, resource_type, resource_id).body))


def write(services, *resources: dict) -> None:
    def job(conn):
        for r in resources:
            services.store.write(conn, r, r["resourceType"], r["id"], index_entries(r))

    services.db.run_write(job)


def withdrawn(consent_id: str, person: str) -> dict:
    return consent.to_fhir(ConsentRecord(consent_id, person, ConsentStatus.WITHDRAWN, date(2026, 11, 5), Jurisdiction.QLD))


def test_the_context_is_read_once_and_kept_while_nothing_it_was_read_from_changes(services, case):
    first = context(services)
    rfi = cases.request("rfi-1")
    services.inbound.process([cases.message(MessageEvent.RFI_REQUEST, "dfv-logan", "qps", rfi)])  # writes a Task and an AuditEvent

    assert context(services) is first


def _withdraw_consent(services):
    write(services, withdrawn("consent-mai-2", "vs-mai"))


def _move_consent_to_someone_outside_the_case(services):
    moved = stored(services, "Consent", "consent-mai")  # recorded against the wrong person, say
    moved["patient"] = {"reference": "Patient/someone-else"}
    write(services, moved)


def _delete_consent(services):
    services.db.run_write(lambda conn: services.store.write(conn, None, "Consent", "consent-mai"))


def _lower_the_risk(services):
    determination = RiskDetermination(RiskLevel.AT_RISK, RiskDeterminedBy.MULTI_AGENCY, date(2026, 11, 5))
    write(services, *risk_assessment.to_fhir(determination, f"{CASE_ID}-risk-9", "vs-mai", CASE_ID))


def _remove_police_from_the_team(services):
    team = stored(services, "CareTeam", f"{CASE_ID}-team")
    team["participant"] = [p for p in team["participant"] if p.get("member", {}).get("reference") != "Organization/qps"]
    write(services, team)


def _close_the_case(services):
    record = episode.from_fhir(stored(services, "EpisodeOfCare", CASE_ID))
    write(services, episode.to_fhir(dataclasses.replace(record, status=CaseStatus.CLOSED)))


def _recast_a_person(services):
    person = patient.from_fhir(stored(services, "Patient", "child-sam"))
    write(services, patient.to_fhir(dataclasses.replace(person, role=SubjectRole.THIRD_PARTY)))


CHANGES = {
    "a consent withdrawn": (_withdraw_consent, lambda c: c.consents["vs-mai"].status is ConsentStatus.WITHDRAWN),
    "a consent moved to someone outside the case": (_move_consent_to_someone_outside_the_case, lambda c: "vs-mai" not in c.consents),
    "a consent deleted": (_delete_consent, lambda c: "vs-mai" not in c.consents),
    "a new risk determination": (_lower_the_risk, lambda c: not c.serious_threat),
    "the team changed": (_remove_police_from_the_team, lambda c: c.team.member("qps") is None),
    "the case closed": (_close_the_case, lambda c: c.status is CaseStatus.CLOSED),
    "a person's role changed": (_recast_a_person, lambda c: c.roles["child-sam"] is SubjectRole.THIRD_PARTY),
}


@pytest.mark.parametrize("change", CHANGES)
def test_any_change_to_what_the_context_was_read_from_is_seen_by_the_next_transaction(services, case, change):
    make, holds = CHANGES[change]
    before = context(services)
    assert not holds(before)

    make(services)

    assert holds(context(services))


def test_a_change_made_by_another_gateway_process_is_seen(services, case, settings):
    before = context(services)
    other = build_services(settings)  # a second process on the same database: its own reader, its own kept contexts
    try:
        write(other, withdrawn("consent-mai-2", "vs-mai"))
    finally:
        other.close()

    assert before.consents["vs-mai"].status is ConsentStatus.GIVEN
    assert context(services).consents["vs-mai"].status is ConsentStatus.WITHDRAWN


class _Abandoned(Exception):
    pass


def test_what_a_rolled_back_transaction_read_is_never_taken_for_the_committed_case(services, case):
    context(services)

    def job(conn):
        services.store.write(conn, None, "Consent", "consent-mai")
        assert "vs-mai" not in services.rfis.reader.context(conn, CASE_ID).consents  # its own uncommitted change
        raise _Abandoned

    with pytest.raises(_Abandoned):
        services.db.run_write(job)

    assert context(services).consents["vs-mai"].id == "consent-mai"
