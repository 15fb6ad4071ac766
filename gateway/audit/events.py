"""The AuditEvents that record disclosure decisions (releases and refusals).

Each decided item is an entity carrying what the record-keeping rules ask for: the category and
the subject's role, the decision with its legal basis, rule and policy revision, and the consent
status it was decided on; the agents are who asked and who held the information.

- `disclosure_event`: one item (an RFI's identifying content, one answered item);
- `record_release_event`: everything one FHIR read or search decided, as one event (DESIGN 7:
  not one row per search hit), with one entity per decided item.
"""

from dataclasses import dataclass
from datetime import datetime

from gateway.consent.model import Decision, DecisionRequest
from gateway.mappings.common import coding, fhir_datetime, reference

DICOM = "http://dicom.nema.org/resources/ontology/DCM"
RESTFUL_INTERACTION = "http://hl7.org/fhir/restful-interaction"
_EXPORT = {"system": DICOM, "code": "110106", "display": "Export"}
_SYSTEM_OBJECT = {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"}
_PATIENT_ROLE = {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}
_OBSERVER = {"observer": {"display": "family-violence interoperability gateway"}}


@dataclass(frozen=True)
class DecidedItem:
    """One item a read or search decided: which version, whose, about whom, and the decision."""

    entity: dict  # reference to the resource version
    holder_id: str | None  # None: no agency holds it (refused for that reason)
    subject_id: str
    request: DecisionRequest
    decision: Decision


def disclosure_event(
    event_id: str,
    decision: Decision,
    request: DecisionRequest,
    requester_id: str,
    releaser_id: str,
    subject_id: str,
    recorded: datetime,
    entity: dict | None = None,
) -> dict:
    """`entity`: a reference to the resource released or withheld, where there is one."""
    return {
        "resourceType": "AuditEvent",
        "id": event_id,
        "type": _EXPORT,
        "action": "E",
        "recorded": fhir_datetime(recorded),
        "outcome": "0" if decision.releases else "4",
        "outcomeDesc": decision.explanation,
        "purposeOfEvent": [{"coding": [coding(request.purpose)]}],
        "agent": [
            {"who": reference("Organization", requester_id), "requestor": True},
            {"who": reference("Organization", releaser_id), "requestor": False},
        ],
        "source": _OBSERVER,
        "entity": [
            _decided(decision, request, entity or reference("Patient", subject_id)),
            {"what": reference("Patient", subject_id), "role": _PATIENT_ROLE},
        ],
    }


def record_release_event(event_id: str, interaction: str, recipient_id: str, items: list[DecidedItem], recorded: datetime) -> dict:
    """What one FHIR `interaction` (read, vread, search-type, history-instance...) released to
    `recipient_id` and what it withheld. Outcome 0 when every item was released, 4 otherwise."""
    refused = sum(not item.decision.releases for item in items)
    holders = dict.fromkeys(item.holder_id for item in items if item.holder_id)
    subjects = dict.fromkeys(item.subject_id for item in items)
    return {
        "resourceType": "AuditEvent",
        "id": event_id,
        "type": _EXPORT,
        "subtype": [{"system": RESTFUL_INTERACTION, "code": interaction}],
        "action": "R" if interaction in ("read", "vread") else "E",
        "recorded": fhir_datetime(recorded),
        "outcome": "4" if refused else "0",
        "outcomeDesc": f"{len(items) - refused} decided item(s) released, {refused} withheld",
        "purposeOfEvent": [{"coding": [coding(items[0].request.purpose)]}],
        "agent": [{"who": reference("Organization", recipient_id), "requestor": True}]
        + [{"who": reference("Organization", holder), "requestor": False} for holder in holders],
        "source": _OBSERVER,
        "entity": [_decided(item.decision, item.request, item.entity) for item in items]
        + [{"what": reference("Patient", subject), "role": _PATIENT_ROLE} for subject in subjects],
    }


def _decided(decision: Decision, request: DecisionRequest, what: dict) -> dict:
    details = {
        "decision": decision.decision.value,
        "rule": decision.rule,
        "legal-basis": decision.legal_basis,
        "policy": decision.policy,
        "decision-id": decision.decision_id,
        "consent-status": request.consent.status.value,
    }
    return {
        "what": what,
        "type": _SYSTEM_OBJECT,
        "securityLabel": [coding(request.category), coding(request.subject_role)],
        "detail": [{"type": key, "valueString": value} for key, value in details.items()],
    }
