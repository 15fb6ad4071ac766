"""RFIs between agencies through the gateway: checked, consent-decided, audited, routed once.

These drive the inbound processor with messages as they come off an agency's inbound topic,
so they hold whichever transport carries them (the transports have their own contract tests).
"""

import time
from datetime import date, timedelta

import orjson
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, update

from gateway.cases import information_requests
from gateway.cases.release import CaseReader
from gateway.connectors import topics
from gateway.connectors.transport import CORRELATION_ID, EVENT
from gateway.domain.risk import RiskDetermination
from gateway.domain.vocabulary import (
    ExcludedInformation,
    InformationCategory,
    MessageEvent,
    RiskDeterminedBy,
    RiskLevel,
    TaskParameter,
    WithheldReason,
)
from gateway.fhir.indexing import index_entries
from gateway.mappings import risk_assessment
from gateway.mappings.common import read_code
from gateway.messaging import bundles
from gateway.messaging.retention import IdempotencyRetention
from gateway.settings import Settings
from gateway.store.schema import audit_chain, dead_letters, outbox, processed_messages
from tests.support import cases
from tests.support.cases import CASE_ID, NOW

NONE = frozenset()
INVESTIGATION = frozenset({ExcludedInformation.PREJUDICE_INVESTIGATION})


@pytest.fixture
def case(services):
    services.cases.clock = lambda: NOW
    services.rfis.clock = lambda: NOW
    return cases.open_case(services)


def sent(services) -> list[tuple[str, dict, dict]]:
    """What the outbox holds: (topic, headers, message Bundle), oldest first."""
    def read(conn):
        rows = conn.execute(select(outbox).order_by(outbox.c.id)).all()
        return [(r.topic, orjson.loads(r.headers), orjson.loads(services.relay._message(conn, r).value)) for r in rows]

    return services.db.run_read(read)


def count(services, table) -> int:
    return services.db.run_read(lambda conn: conn.execute(select(func.count()).select_from(table)).scalar_one())


def task(services, rfi_id: str) -> dict:
    return services.db.run_read(lambda conn: orjson.loads(services.store.current(conn, "Task", rfi_id).body))


def test_a_request_from_a_team_member_is_stored_audited_and_routed_to_the_target(services, case):
    rfi = cases.request("rfi-1")
    [outcome] = services.inbound.process([cases.message(MessageEvent.RFI_REQUEST, "dfv-logan", "qps", rfi)])

    assert outcome.outcome == "routed"
    assert task(services, "rfi-1")["status"] == "requested"
    [(topic, headers, bundle)] = sent(services)
    assert topic == topics.outbound("qps")
    assert headers[EVENT] == "rfi-request" and headers[CORRELATION_ID] == outcome.message_id
    forwarded = bundles.parse(orjson.dumps(bundle))
    assert (forwarded.event, forwarded.source, forwarded.destination) == (MessageEvent.RFI_REQUEST, "dfv-logan", "qps")
    assert [r["resourceType"] for r in forwarded.focus] == ["Task", "Patient"]  # the target learns whom it is about
    assert count(services, audit_chain) == 1  # the request's identifying content was decided and recorded


def test_a_redelivered_message_has_no_second_effect(services, case):
    first = cases.message(MessageEvent.RFI_REQUEST, "dfv-logan", "qps", cases.request("rfi-1"))
    services.inbound.process([first])
    again = services.inbound.process([first, first])

    assert [o.outcome for o in again] == ["duplicate", "duplicate"]
    assert len(sent(services)) == 1 and count(services, audit_chain) == 1
    assert task(services, "rfi-1")["meta"]["versionId"] == "1"


def test_a_message_delivered_twice_in_one_batch_is_handled_once(services, case):
    message = cases.message(MessageEvent.RFI_REQUEST, "dfv-logan", "qps", cases.request("rfi-1"))

    assert [o.outcome for o in services.inbound.process([message, message])] == ["routed", "duplicate"]
    assert len(sent(services)) == 1 and count(services, audit_chain) == 1
    assert task(services, "rfi-1")["meta"]["versionId"] == "1"


def test_handled_ids_are_remembered_for_their_retention_then_forgotten_oldest_first(services, case):
    """A redelivery within the retention still has no effect; past it, the id is forgotten, a
    batch at a time, oldest first, and what is newer stays."""
    handled = [cases.message(MessageEvent.RFI_REQUEST, "dfv-logan", "qps", cases.request(f"rfi-{i}")) for i in range(3)]
    services.inbound.process(handled)
    ids = [m.message_id for m in handled]
    ages_days = {ids[0]: 40, ids[1]: 31, ids[2]: 2}
    now_us = int(time.time() * 1_000_000)
    for message_id, days in ages_days.items():
        services.db.run_write(lambda conn, m=message_id, d=days: conn.execute(
            update(processed_messages).where(processed_messages.c.message_id == m)
            .values(processed_at=now_us - d * 86_400_000_000)))
    retention = IdempotencyRetention(retention_hours=30 * 24)

    assert services.db.run_write(lambda conn: retention.trim(conn, limit=1)) == 1
    assert remembered(services) == {ids[1], ids[2]}  # the oldest went first
    assert services.db.run_write(retention.trim) == 1
    assert services.db.run_write(retention.trim) == 0
    assert remembered(services) == {ids[2]}
    assert [o.outcome for o in services.inbound.process([handled[2]])] == ["duplicate"]


def test_handled_ids_cannot_be_forgotten_before_a_queued_message_is(tmp_path, data_key):
    with pytest.raises(ValidationError, match="GATEWAY_IDEMPOTENCY_RETENTION_HOURS"):
        Settings(data_dir=tmp_path, data_key=data_key, queue_retention_hours=168, idempotency_retention_hours=24)


def remembered(services) -> set[str]:
    return set(services.db.run_read(lambda conn: conn.execute(select(processed_messages.c.message_id)).scalars().all()))


@pytest.mark.parametrize(
    "sender, requester, topic_agency, reason",
    [
        ("qps", "dfv-logan", None, "unauthorised"),  # asks in another agency's name
        ("dfv-logan", "dfv-logan", "qps", "unauthorised"),  # writes on another agency's topic
        ("courts", "courts", None, "unauthorised"),  # an observer receives no information
    ],
)
def test_requests_not_the_senders_to_make_are_dead_lettered_and_change_nothing(services, case, sender, requester, topic_agency, reason):
    rfi = cases.request("rfi-x", requester=requester, target="qh")
    [outcome] = services.inbound.process([cases.message(MessageEvent.RFI_REQUEST, sender, "qh", rfi, topic_agency=topic_agency)])

    assert outcome.outcome == f"dead-letter: {reason}"
    assert services.db.run_read(lambda conn: services.store.current(conn, "Task", "rfi-x")) is None
    assert [t for t, _, _ in sent(services)] == [topics.DEAD_LETTER]
    assert count(services, audit_chain) == 0


def test_malformed_and_unknown_messages_are_dead_lettered_with_their_reason(services, case):
    unknown_case = cases.message(MessageEvent.RFI_REQUEST, "dfv-logan", "qps", cases.request("rfi-2"), case_id="no-such-case")
    not_json = cases.delivered(topics.inbound("qps"), b"{not json", {"message-id": "m-broken"})
    no_id = cases.delivered(topics.inbound("qps"), b"{}", {})
    outcomes = services.inbound.process([unknown_case, not_json, no_id])

    assert [o.outcome for o in outcomes] == ["dead-letter: unknown-agency-or-case", "dead-letter: malformed", "dead-letter: malformed"]
    letters = services.db.run_read(lambda conn: services.dead_letters.list(conn))
    assert [d.reason_code for d in letters] == ["unknown-agency-or-case", "malformed", "malformed"]
    assert "not JSON" in letters[1].reason


def test_the_answer_is_decided_item_by_item_and_only_what_is_permitted_reaches_the_requester(services, case):
    rfi = cases.request("rfi-1")
    services.inbound.process([cases.message(MessageEvent.RFI_REQUEST, "dfv-logan", "qps", rfi)])
    services.inbound.process([cases.message(MessageEvent.RFI_STATUS, "qps", "dfv-logan", rfi, status="accepted")])
    answer = cases.answered(
        rfi,
        (InformationCategory.CRIMINAL_HISTORY, "Two prior DV incidents (2024, 2025)", NONE),
        (InformationCategory.CRIMINAL_HISTORY, "Suspect in an open investigation", INVESTIGATION),
    )
    [outcome] = services.inbound.process([cases.message(MessageEvent.RFI_RESPONSE, "qps", "dfv-logan", answer)])

    assert outcome.outcome == "answered: 1 released, 1 withheld"
    messages = sent(services)
    assert [(t, h[EVENT]) for t, h, _ in messages] == [
        (topics.outbound("qps"), "rfi-request"), (topics.outbound("dfv-logan"), "rfi-status"), (topics.outbound("dfv-logan"), "rfi-response"),
    ]
    delivered = bundles.parse(orjson.dumps(messages[-1][2])).focus_of("Task")
    assert delivered["status"] == "completed"
    text = orjson.dumps(delivered).decode()
    assert "Two prior DV incidents" in text and "open investigation" not in text
    withheld = [o for o in delivered["output"] if read_code(o["type"], TaskParameter) is TaskParameter.WITHHELD]
    assert [read_code(o["extension"][2]["valueCoding"], WithheldReason) for o in withheld] == [WithheldReason.EXCLUDED_INFORMATION]
    assert "open investigation" not in orjson.dumps(task(services, "rfi-1")).decode()  # the gateway keeps no withheld content
    assert count(services, audit_chain) == 3  # the request, the release and the refusal


def test_only_the_target_can_answer_and_a_closed_rfi_cannot_be_answered_again(services, case):
    rfi = cases.request("rfi-1")
    services.inbound.process([cases.message(MessageEvent.RFI_REQUEST, "dfv-logan", "qps", rfi)])
    answer = cases.answered(rfi, (InformationCategory.CRIMINAL_HISTORY, "Two prior incidents", NONE))
    impostor = services.inbound.process([cases.message(MessageEvent.RFI_RESPONSE, "qh", "dfv-logan", answer)])
    first = services.inbound.process([cases.message(MessageEvent.RFI_RESPONSE, "qps", "dfv-logan", answer)])
    second = services.inbound.process([cases.message(MessageEvent.RFI_RESPONSE, "qps", "dfv-logan", answer)])

    assert impostor[0].outcome == "dead-letter: unauthorised"
    assert first[0].outcome.startswith("answered")
    assert second[0].outcome == "dead-letter: rejected"
    assert task(services, "rfi-1")["meta"]["versionId"] == "2"


def test_a_request_whose_identifying_content_is_not_permitted_is_not_sent(services, case):
    # the team now assesses the risk as lower: no serious threat, and his consent was unsafe to seek
    lower = risk_assessment.to_fhir(RiskDetermination(RiskLevel.AT_RISK, RiskDeterminedBy.MULTI_AGENCY, date(2026, 11, 2)), f"{CASE_ID}-risk-9", "vs-mai", CASE_ID)
    services.db.run_write(lambda conn: [services.store.write(conn, r, r["resourceType"], r["id"], index_entries(r)) for r in lower])
    [outcome] = services.inbound.process([cases.message(MessageEvent.RFI_REQUEST, "dfv-logan", "qps", cases.request("rfi-1"))])

    assert outcome.outcome == "refused"
    assert task(services, "rfi-1")["status"] == "failed"
    [(topic, headers, _)] = sent(services)
    assert (topic, headers[EVENT]) == (topics.outbound("dfv-logan"), "rfi-status")  # the requester hears; the target nothing


def test_an_overdue_rfi_is_told_to_the_requester_and_the_lead_agency_once(services, case):
    services.inbound.process([cases.message(MessageEvent.RFI_REQUEST, "qps", "qh", cases.request("rfi-1", requester="qps", target="qh", urgent=True))])
    services.rfis.clock = lambda: NOW + timedelta(hours=5)  # urgent RFIs are due in 4 hours

    assert services.db.run_write(services.rfis.mark_overdue) == 1
    assert services.db.run_write(services.rfis.mark_overdue) == 0
    overdue = sent(services)[1:]
    assert [(t, h[EVENT]) for t, h, _ in overdue] == [(topics.outbound("qps"), "rfi-status"), (topics.outbound("dfv-logan"), "notification")]
    assert task(services, "rfi-1")["businessStatus"]["text"] == "overdue"
    # the lead agency is not party to the RFI: its notification names the Task and carries nothing of it
    [header] = [e["resource"] for e in overdue[1][2]["entry"]]
    assert header["resourceType"] == "MessageHeader" and header["focus"] == [{"reference": "Task/rfi-1"}]


def test_every_open_rfi_is_looked_at_for_being_overdue_however_many_there_are(services, case, monkeypatch):
    monkeypatch.setattr(information_requests, "OVERDUE_PAGE", 2)  # five open RFIs: three pages
    requests = [cases.request(f"rfi-{i}", requester="qps", target="qh", urgent=i % 2 == 0) for i in range(5)]
    services.inbound.process([cases.message(MessageEvent.RFI_REQUEST, "qps", "qh", r) for r in requests])
    services.rfis.clock = lambda: NOW + timedelta(hours=5)  # the three urgent ones are past their 4 hours

    assert services.db.run_write(services.rfis.mark_overdue) == 3
    assert {i for i in range(5) if task(services, f"rfi-{i}").get("businessStatus", {}).get("text") == "overdue"} == {0, 2, 4}
    assert services.db.run_write(services.rfis.mark_overdue) == 0

def test_a_dead_letter_is_replayed_once_its_cause_is_fixed(services, case):
    rfi = cases.request("rfi-1", target="newcomer")
    [outcome] = services.inbound.process([cases.message(MessageEvent.RFI_REQUEST, "dfv-logan", "newcomer", rfi)])
    assert outcome.outcome == "dead-letter: unknown-agency-or-case"
    [letter] = services.db.run_read(lambda conn: services.dead_letters.list(conn))

    assert services.db.run_write(lambda conn: services.dead_letters.replay(conn, letter.id))
    assert not services.db.run_write(lambda conn: services.dead_letters.replay(conn, letter.id))  # once only
    replayed = sent(services)[-1]
    assert replayed[0] == topics.inbound("dfv-logan") and replayed[1]["message-id"] == outcome.message_id
    assert count(services, dead_letters) == 1
    assert services.db.run_read(lambda conn: services.dead_letters.list(conn)) == []


def test_rfis_made_through_the_native_case_api_take_the_same_brokered_path(services, case):
    import asyncio

    outcomes = asyncio.run(services.cases.request_information(CASE_ID, [cases.request("rfi-native")], []))

    assert outcomes == ["routed"]
    [(topic, headers, bundle)] = sent(services)
    assert (topic, headers[EVENT]) == (topics.outbound("qps"), "rfi-request")
    assert bundles.parse(orjson.dumps(bundle)).focus_of("Task")["id"] == "rfi-native"
    assert count(services, audit_chain) == 1


def test_over_the_native_api_a_team_member_asks_in_its_own_name_only(services, client, case):
    """The test client is dfv-logan's system; qps is on the team too, but it is not qps."""
    body = {"requests": [{"requester": "qps", "target": "qh", "subjects": ["puv-dan"], "purpose": "risk-assessment",
                          "categories": ["health"]}]}
    refused = client.post(f"/api/v1/cases/{CASE_ID}/rfis", json=body)
    assert refused.status_code == 403 and refused.json()["issue"][0]["expression"] == ["requests[0].requester"]
    assert sent(services) == []

    body["requests"][0]["requester"] = "dfv-logan"
    assert client.post(f"/api/v1/cases/{CASE_ID}/rfis", json=body).status_code == 200
    assert [(t, h[EVENT]) for t, h, _ in sent(services)] == [(topics.outbound("qh"), "rfi-request")]


def test_the_newest_multi_agency_determination_outranks_a_newer_practitioners(services, case):
    """Serious threat follows the newest multi-agency determination while there is one, whatever
    a practitioner assessed since; the newest of each method counts, not the first found."""
    def assess(level, by, day, rid):
        for r in risk_assessment.to_fhir(RiskDetermination(level, by, day), f"{CASE_ID}-{rid}", "vs-mai", CASE_ID):
            services.db.run_write(lambda conn, r=r: services.store.write(conn, r, r["resourceType"], r["id"], index_entries(r)))

    def serious():
        return services.db.run_read(lambda conn: CaseReader(services.store).context(conn, CASE_ID)).serious_threat

    assess(RiskLevel.AT_RISK, RiskDeterminedBy.MULTI_AGENCY, date(2026, 11, 2), "risk-ma-low")
    assess(RiskLevel.IMMINENT, RiskDeterminedBy.PRACTITIONER, date(2026, 11, 9), "risk-pr-imminent")
    assert not serious()
    assess(RiskLevel.HIGH, RiskDeterminedBy.MULTI_AGENCY, date(2026, 11, 10), "risk-ma-high")
    assert serious()
    assess(RiskLevel.AT_RISK, RiskDeterminedBy.MULTI_AGENCY, date(2026, 10, 1), "risk-ma-older")
    assert serious()
