"""A live case to exchange RFIs on: the worked Queensland case as referred (scenario step 1),
its agencies registered, and the messages its agencies send, built as an agency's system would."""

import uuid
from datetime import datetime, timedelta, timezone

import orjson

from gateway.connectors import topics
from gateway.connectors.transport import EVENT, MESSAGE_ID, DeliveredMessage
from gateway.demo import scenario
from gateway.domain.case import MultiAgencyCase
from gateway.domain.rfi import InformationRequest, ResponseItem
from gateway.domain.vocabulary import ExcludedInformation, InformationCategory, MessageEvent, RfiPurpose
from gateway.fhir.indexing import index_entries
from gateway.mappings import organization
from gateway.mappings import rfi as rfi_mapping
from gateway.messaging import bundles

CASE_ID = "case-logan-0427"
NOW = datetime(2026, 11, 2, 9, tzinfo=timezone.utc)


def open_case(services, case_id: str = CASE_ID) -> str:
    """Register the scenario's agencies and save the referred case (its people shared by every case id); return its id."""
    state: dict = {}
    scenario.steps()[0].run(state)  # the worked case's referral, with its consents
    case = MultiAgencyCase.refer(case_id, scenario.QLD, scenario.referral(), scenario.people(), scenario.team())
    case.consents = state["case"].consents

    def job(conn):
        for agency in scenario.AGENCIES:
            resource = organization.to_fhir(agency)
            services.store.write_if_changed(conn, resource, index_entries(resource))
        services.cases.repository.save(conn, case)

    services.db.run_write(job)
    return case_id


def request(
    rfi_id: str, requester: str = "dfv-logan", target: str = "qps", subject: str = "puv-dan",
    categories=(InformationCategory.CRIMINAL_HISTORY,), requested: datetime = NOW, urgent: bool = False,
) -> InformationRequest:
    return InformationRequest(
        rfi_id, requester, target, (subject,), RfiPurpose.RISK_ASSESSMENT, tuple(categories), requested,
        InformationRequest.default_due(requested, urgent), urgent,
    )


def answered(rfi: InformationRequest, *items: tuple[InformationCategory, str, frozenset[ExcludedInformation]]) -> InformationRequest:
    rfi.responses = [ResponseItem(c, rfi.subject_ids[0], text, NOW + timedelta(hours=1), excluded) for c, text, excluded in items]
    return rfi


def message(
    event: MessageEvent, sender: str, destination: str, rfi: InformationRequest, case_id: str = CASE_ID,
    topic_agency: str | None = None, message_id: str | None = None, status: str | None = None,
) -> DeliveredMessage:
    """What agency `sender` puts on its inbound topic (or on `topic_agency`'s, to test spoofing)."""
    task = rfi_mapping.to_fhir(rfi, case_id)
    if status:
        task["status"] = status
    message_id = message_id or str(uuid.uuid4())
    bundle = bundles.build(event, sender, destination, [task], NOW, message_id)
    return delivered(topics.inbound(topic_agency or sender), orjson.dumps(bundle), {MESSAGE_ID: message_id, EVENT: event.value}, case_id)


_offsets = iter(range(10**9))


def delivered(topic: str, value: bytes, headers: dict, key: str | None = CASE_ID) -> DeliveredMessage:
    return DeliveredMessage(topic, 0, next(_offsets), key, value, headers)
