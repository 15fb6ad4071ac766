"""The RFI lifecycle, as agencies drive it with messages (over Kafka, the embedded queue or REST).

    rfi-request   requester -> gateway: checked (valid, requester on the team, the request's
                  identifying content passes the consent engine), stored, routed to the target
    rfi-status    target -> gateway: accepted / in-progress / rejected / failed, told to the requester
    rfi-response  target -> gateway: each item decided by the consent engine; released items go
                  to the requester, withheld ones are reported by category and reason class only

Every method runs in the caller's transaction: the Task, the AuditEvents of every decision and
the outgoing messages (outbox) commit together or not at all.
"""

from dataclasses import replace
from datetime import datetime
from typing import Callable

import orjson
from sqlalchemy import Connection

from gateway.cases.release import CaseReader, Disclosure, ReleaseCheck, ReleaseContext, withheld_reason
from gateway.connectors import topics
from gateway.connectors.transport import AGENCY, CORRELATION_ID, EVENT, MESSAGE_ID, OutgoingMessage
from gateway.consent.model import Decision, Outcome
from gateway.domain.case import CaseStatus
from gateway.domain.rfi import InformationRequest, ResponseItem, RfiStatus, WithheldItem
from gateway.domain.vocabulary import InformationCategory, MessageEvent, TaskType
from gateway.errors import BusinessRuleViolation, Conflict, Forbidden, InvalidRequest, NotFound
from gateway.fhir.ids import new_id
from gateway.fhir.indexing import index_entries
from gateway.mappings import rfi as rfi_mapping
from gateway.mappings.common import read_code, reference, reference_id
from gateway.messaging import bundles
from gateway.messaging.bundles import Message
from gateway.messaging.outbox import Outbox
from gateway.store.resources import ResourceStore, StoredVersion

OPEN = ",".join(s.value for s in (RfiStatus.REQUESTED, RfiStatus.ACCEPTED, RfiStatus.IN_PROGRESS))
OVERDUE_PAGE = 500  # open RFIs read at a time when looking for overdue ones (all are looked at, page by page)


class InformationRequests:
    def __init__(
        self, store: ResourceStore, reader: CaseReader, accept: Callable[[dict, str, str], dict], release: ReleaseCheck,
        outbox: Outbox, clock: Callable[[], datetime],
    ):
        self.store = store
        self.reader = reader
        self.accept = accept  # FHIR validation and profile checks (FhirService.accept)
        self.release = release
        self.outbox = outbox
        self.clock = clock

    def handle(self, conn: Connection, sender: str, message: Message, memo: dict | None = None) -> str:
        """Apply one message from agency `sender`; return what became of it (for the processed-message record).

        `memo`: what was read for earlier messages of the same transaction (see CaseReader.context)."""
        handler = {
            MessageEvent.RFI_REQUEST: self.request,
            MessageEvent.RFI_STATUS: self.change_status,
            MessageEvent.RFI_RESPONSE: self.respond,
        }.get(message.event)
        if handler is None:
            raise InvalidRequest.at("MessageHeader.eventCoding", f"Agencies do not send {message.event.value} messages to the gateway")
        return handler(conn, sender, message, {} if memo is None else memo)

    def check(self, message: Message) -> Message:
        """What `handle` checks of a message without the database: the Task a request or a response
        carries is valid FHIR and true to its profiles (raises as `handle` would). Run ahead of the
        message's transaction, so the one writer is not kept waiting on it."""
        if message.event not in (MessageEvent.RFI_REQUEST, MessageEvent.RFI_RESPONSE):
            return message
        return replace(message, checked=self._carried_rfi(message))

    # -- the three messages ---------------------------------------------------------------------

    def request(self, conn: Connection, sender: str, message: Message, memo: dict) -> str:
        rfi = self._carried_rfi(message)
        if rfi.requester_agency_id != sender:
            raise Forbidden.at("Task.requester", f"Agency {sender} can send RFIs in its own name only")
        if message.destination != rfi.target_agency_id:
            raise InvalidRequest.at("MessageHeader.destination", "The message goes to the agency that owns the Task")
        return self.route(conn, rfi, reference_id(message.focus_of("Task")["focus"], "EpisodeOfCare"), message.id, memo)

    def route(self, conn: Connection, rfi: InformationRequest, case_id: str, correlation_id: str | None, memo: dict) -> str:
        """Check a new RFI, decide its identifying content, store it and send it (or tell the requester why not).

        The one way in for RFIs, whether they come as messages or through the native case API."""
        context = self.reader.context(conn, case_id, memo)
        self._check_requester(context, rfi)
        sender = rfi.requester_agency_id
        requester, target = self.reader.agency(conn, sender, memo), self.reader.agency(conn, rfi.target_agency_id, memo)
        if self.store.exists(conn, "Task", rfi.id):
            raise Conflict.at("Task.id", f"Task {rfi.id} exists already; a new request needs a new id")
        now = self.clock()
        # The request tells the target that these people are part of a family-violence case.
        refused = [
            d for s in rfi.subject_ids
            if not (d := self.release.decide(
                conn, context, rfi.purpose, target, requester, Disclosure(s, InformationCategory.CASE_PARTICIPATION), now,
                reference("Task", rfi.id),
            )).releases
        ]
        if refused:
            rfi.move_to(RfiStatus.FAILED, "Not sent: the consent engine did not permit telling the target agency "
                        f"that the people named are part of this case ({refused[0].explanation})")
            stored = self._save(conn, rfi, case_id, new=True)
            self._send(conn, MessageEvent.RFI_STATUS, None, sender, [stored], case_id, correlation_id)
            return "refused"
        stored = self._save(conn, rfi, case_id, new=True)
        people = [context.person(s) for s in rfi.subject_ids]
        self._send(conn, MessageEvent.RFI_REQUEST, sender, target.id, [stored, *people], case_id, correlation_id)
        return "routed"

    def change_status(self, conn: Connection, sender: str, message: Message, memo: dict) -> str:
        task = message.focus_of("Task")
        rfi, case_id, version = self._owned(conn, sender, task)
        try:
            status = RfiStatus(task.get("status"))
        except ValueError:
            raise InvalidRequest.at("Task.status", f"'{task.get('status')}' is not a Task status") from None
        rfi.move_to(status, (task.get("statusReason") or {}).get("text", ""))
        stored = self._save(conn, rfi, case_id, base=version)
        self._send(conn, MessageEvent.RFI_STATUS, sender, rfi.requester_agency_id, [stored], case_id, message.id)
        return status.value

    def respond(self, conn: Connection, sender: str, message: Message, memo: dict) -> str:
        answer = self._carried_rfi(message)
        rfi, case_id, version = self._owned(conn, sender, {"id": answer.id})
        context = self.reader.context(conn, case_id, memo)
        requester, holder = self.reader.agency(conn, rfi.requester_agency_id, memo), self.reader.agency(conn, sender, memo)
        now = self.clock()
        released: list[ResponseItem] = []
        withheld: list[WithheldItem] = []
        for i, item in enumerate(answer.responses):
            if item.subject_id not in context.roles:
                raise BusinessRuleViolation.at(f"Task.output[{i}]", f"Patient/{item.subject_id} is not part of case {case_id}")
            decision = self.release.decide(
                conn, context, rfi.purpose, requester, holder, Disclosure(item.subject_id, item.category, item.excluded), now,
                reference("Task", rfi.id),
            )
            if decision.releases:
                released.append(_as_released(item, decision))
            else:
                withheld.append(WithheldItem(item.category, item.subject_id, item.recorded_on, withheld_reason(decision)))
        rfi.respond(released, withheld)
        stored = self._save(conn, rfi, case_id, base=version)
        self._send(conn, MessageEvent.RFI_RESPONSE, sender, rfi.requester_agency_id, [stored], case_id, message.id)
        return f"answered: {len(released)} released, {len(withheld)} withheld"

    def mark_overdue(self, conn: Connection) -> int:
        """Tell the requester and the lead agency about each open RFI past its due time, once.

        The requester gets the Task (its own request); the lead agency, when it is not the
        requester, a notification naming the Task only: what it may read of it is what the read
        path releases to it (gateway.cases.record_release)."""
        now = self.clock()
        count = 0
        params = [("code", f"{TaskType.system()}|{TaskType.RFI.value}"), ("status", OPEN)]
        for task in self.reader.search_all(conn, "Task", params, page=OVERDUE_PAGE):
            rfi = rfi_mapping.from_fhir(task)
            if not rfi.is_overdue(now) or rfi.overdue_notified:
                continue
            rfi.overdue_notified = True
            case_id = reference_id(task["focus"], "EpisodeOfCare")
            stored = self._save(conn, rfi, case_id)
            team = self.reader.team(conn, case_id)  # the lead agency is all it needs of the case
            self._send(conn, MessageEvent.RFI_STATUS, None, rfi.requester_agency_id, [stored], case_id, None)
            lead = team.lead_agency()
            if lead and lead != rfi.requester_agency_id:
                self._send(conn, MessageEvent.NOTIFICATION, None, lead, [stored], case_id, None, carry=False)
            count += 1
        return count

    # -- steps ----------------------------------------------------------------------------------

    def _carried_rfi(self, message: Message) -> InformationRequest:
        """The RFI the message's Task carries, valid FHIR and true to its profiles (as `check` found it)."""
        if isinstance(message.checked, InformationRequest):
            rfi = message.checked  # a copy: the handler changes it, and nothing says a message is handled once
            return replace(rfi, responses=list(rfi.responses), withheld=list(rfi.withheld))
        task = message.focus_of("Task")
        index = next(i for i, r in enumerate(message.focus) if r is task) + 1
        return _domain(self.accept(task, "Task", f"Bundle.entry[{index}].resource"))

    def _check_requester(self, context: ReleaseContext, rfi: InformationRequest) -> None:
        if context.status is CaseStatus.CLOSED:
            raise BusinessRuleViolation.at("Task.focus", f"Case {context.case_id} is closed: RFIs are for open cases")
        member = context.team.member(rfi.requester_agency_id)
        if member is None:
            raise Forbidden.at("Task.requester", f"Agency {rfi.requester_agency_id} is not on the team of case {context.case_id}")
        if not member.may_receive_information:
            raise Forbidden.at("Task.requester", f"Agency {rfi.requester_agency_id} cannot receive information on this case "
                               "(an observer, or confidentiality not yet acknowledged)")
        strangers = [s for s in rfi.subject_ids if s not in context.roles]
        if strangers:
            raise BusinessRuleViolation.at("Task.input", f"Patient/{strangers[0]} is not part of case {context.case_id}")

    def _owned(self, conn: Connection, sender: str, task: dict) -> tuple[InformationRequest, str, StoredVersion]:
        """The RFI `sender` may answer, its case, and the stored version it is read from."""
        version = self.reader.current(conn, "Task", str(task.get("id")))
        found = orjson.loads(version.body) if version is not None else None
        if found is None or read_code(found.get("code"), TaskType) is not TaskType.RFI:
            raise NotFound(f"There is no RFI Task/{task.get('id')}")
        rfi = rfi_mapping.from_fhir(found)
        if rfi.target_agency_id != sender:
            raise Forbidden.at("Task.owner", f"Only the agency the RFI was sent to can answer it, not {sender}")
        return rfi, reference_id(found["focus"], "EpisodeOfCare"), version

    def _save(
        self, conn: Connection, rfi: InformationRequest, case_id: str, base: StoredVersion | None = None, new: bool = False,
    ) -> dict:
        """`base`: the version read in this transaction that this one follows; `new`: found not to exist in it.
        The Task names the case and the people `base` named: an RFI's case and subjects never change."""
        task = rfi_mapping.to_fhir(rfi, case_id)
        self.store.write(conn, task, "Task", rfi.id, index_entries(task), new_id=new, base=base, keeps_links=True)
        return task  # as stored: the write gave it its id and meta

    def _send(
        self, conn: Connection, event: MessageEvent, source: str | None, destination: str, focus: list[dict], case_id: str,
        correlation_id: str | None, carry: bool = True,
    ) -> None:
        message_id = new_id()
        bundle = bundles.build(event, source, destination, focus, self.clock(), message_id, carry=carry)
        headers = {MESSAGE_ID: message_id, EVENT: event.value, AGENCY: destination, CORRELATION_ID: correlation_id or message_id}
        self.outbox.add(conn, OutgoingMessage(topics.outbound(destination), case_id, orjson.dumps(bundle), headers))


def _domain(task: dict) -> InformationRequest:
    """The Task as an RFI; a Task that passed FHIR validation can still break the RFI's own rules."""
    try:
        return rfi_mapping.from_fhir(task)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise BusinessRuleViolation.at("Task", f"The Task is not a request for information the gateway can read: {exc}") from None


def _as_released(item: ResponseItem, decision: Decision) -> ResponseItem:
    """Free text cannot be cut apart safely, so an item to redact loses its text and says what was taken out."""
    if decision.decision is not Outcome.PERMIT_WITH_REDACTION:
        return ResponseItem(item.category, item.subject_id, item.text, item.recorded_on)
    return ResponseItem(item.category, item.subject_id, f"[redacted: {', '.join(decision.redactions)}]", item.recorded_on)
