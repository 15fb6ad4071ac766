"""The AuditEvent that records one disclosure decision (a release or a refusal) of one item.

It carries what the record-keeping rules ask for: who asked, who held the information, whom it is
about, the category, the purpose, the decision with its legal basis, rule and policy revision,
and the consent status it was decided on.
"""

from datetime import datetime

from gateway.consent.model import Decision, DecisionRequest
from gateway.mappings.common import coding, fhir_datetime, reference

DICOM = "http://dicom.nema.org/resources/ontology/DCM"


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
    details = {
        "decision": decision.decision.value,
        "rule": decision.rule,
        "legal-basis": decision.legal_basis,
        "policy": decision.policy,
        "decision-id": decision.decision_id,
        "consent-status": request.consent.status.value,
    }
    what = {
        "what": entity or reference("Patient", subject_id),
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
        "securityLabel": [coding(request.category), coding(request.subject_role)],
        "detail": [{"type": key, "valueString": value} for key, value in details.items()],
    }
    return {
        "resourceType": "AuditEvent",
        "id": event_id,
        "type": {"system": DICOM, "code": "110106", "display": "Export"},
        "action": "E",
        "recorded": fhir_datetime(recorded),
        "outcome": "0" if decision.releases else "4",
        "outcomeDesc": decision.explanation,
        "purposeOfEvent": [{"coding": [coding(request.purpose)]}],
        "agent": [
            {"who": reference("Organization", requester_id), "requestor": True},
            {"who": reference("Organization", releaser_id), "requestor": False},
        ],
        "source": {"observer": {"display": "family-violence interoperability gateway"}},
        "entity": [what, {"what": reference("Patient", subject_id), "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}}],
    }
