"""A Request For Information <-> Task: requester, owner (target agency), focus (the case),
inputs (subjects, categories, purpose, question), outputs (the answers, each labelled)."""

from gateway.domain.rfi import InformationRequest, ResponseItem, RfiStatus, WithheldItem
from gateway.domain.vocabulary import ExcludedInformation, InformationCategory, RfiPurpose, TaskParameter, TaskType, WithheldReason
from gateway.mappings.common import (
    coding,
    concept,
    ext,
    ext_value,
    ext_values,
    fhir_datetime,
    parse_datetime,
    profile_url,
    read_code,
    read_codes,
    reference,
    reference_id,
)

PROFILE = profile_url("fv-rfi")


def to_fhir(rfi: InformationRequest, case_id: str) -> dict:
    inputs = [{"type": concept(TaskParameter.SUBJECT), "valueReference": reference("Patient", s)} for s in rfi.subject_ids]
    inputs += [{"type": concept(TaskParameter.INFORMATION_CATEGORY), "valueCodeableConcept": concept(c)} for c in rfi.categories]
    inputs.append({"type": concept(TaskParameter.PURPOSE), "valueCodeableConcept": concept(rfi.purpose)})
    if rfi.question:
        inputs.append({"type": concept(TaskParameter.QUESTION), "valueString": rfi.question})
    task = {
        "resourceType": "Task",
        "id": rfi.id,
        "meta": {"profile": [PROFILE], "security": [coding(c) for c in rfi.categories]},
        "status": rfi.status.value,
        "intent": "order",
        "priority": "urgent" if rfi.urgent else "routine",
        "code": concept(TaskType.RFI),
        "focus": reference("EpisodeOfCare", case_id),
        "for": reference("Patient", rfi.subject_ids[0]),
        "authoredOn": fhir_datetime(rfi.requested_on),
        "requester": reference("Organization", rfi.requester_agency_id),
        "owner": reference("Organization", rfi.target_agency_id),
        "restriction": {"period": {"end": fhir_datetime(rfi.due)}},
        "input": inputs,
    }
    if rfi.status_reason:
        task["statusReason"] = {"text": rfi.status_reason}
    if rfi.overdue_notified:
        task["businessStatus"] = {"text": OVERDUE}
    outputs = [_output(item) for item in rfi.responses] + [_withheld(item) for item in rfi.withheld]
    if outputs:
        task["output"] = outputs
    return task


OVERDUE = "overdue"


def _output(item: ResponseItem) -> dict:
    extensions = [
        ext("response-subject", valueReference=reference("Patient", item.subject_id)),
        ext("recorded-on", valueDateTime=fhir_datetime(item.recorded_on)),
    ]
    extensions += [ext("excluded-information", valueCoding=coding(e)) for e in sorted(item.excluded)]
    return {
        "extension": extensions,
        "type": concept(TaskParameter.RESPONSE, text=item.category.display),
        "valueCodeableConcept": concept(item.category, text=item.text),
    }


def _withheld(item: WithheldItem) -> dict:
    return {
        "extension": [
            ext("response-subject", valueReference=reference("Patient", item.subject_id)),
            ext("recorded-on", valueDateTime=fhir_datetime(item.recorded_on)),
            ext("withheld-reason", valueCoding=coding(item.reason)),
        ],
        "type": concept(TaskParameter.WITHHELD, text=item.reason.display),
        "valueCodeableConcept": concept(item.category),
    }


def from_fhir(task: dict) -> InformationRequest:
    by_kind: dict[TaskParameter, list[dict]] = {}
    for item in task.get("input", []):
        by_kind.setdefault(read_code(item["type"], TaskParameter), []).append(item)
    question = by_kind.get(TaskParameter.QUESTION, [{}])[0].get("valueString", "")
    return InformationRequest(
        id=task["id"],
        requester_agency_id=reference_id(task["requester"], "Organization"),
        target_agency_id=reference_id(task["owner"], "Organization"),
        subject_ids=tuple(reference_id(i["valueReference"], "Patient") for i in by_kind.get(TaskParameter.SUBJECT, [])),
        purpose=read_code(by_kind[TaskParameter.PURPOSE][0]["valueCodeableConcept"], RfiPurpose),
        categories=tuple(
            read_code(i["valueCodeableConcept"], InformationCategory) for i in by_kind.get(TaskParameter.INFORMATION_CATEGORY, [])
        ),
        requested_on=parse_datetime(task["authoredOn"]),
        due=parse_datetime(task["restriction"]["period"]["end"]),
        urgent=task.get("priority") == "urgent",
        question=question,
        status=RfiStatus(task["status"]),
        status_reason=task.get("statusReason", {}).get("text", ""),
        responses=[_response(o) for o in task.get("output", []) if read_code(o["type"], TaskParameter) is TaskParameter.RESPONSE],
        withheld=[_withheld_item(o) for o in task.get("output", []) if read_code(o["type"], TaskParameter) is TaskParameter.WITHHELD],
        overdue_notified=(task.get("businessStatus") or {}).get("text") == OVERDUE,
    )


def _response(output: dict) -> ResponseItem:
    return ResponseItem(
        category=read_code(output["valueCodeableConcept"], InformationCategory),
        subject_id=reference_id(ext_value(output, "response-subject"), "Patient"),
        text=output["valueCodeableConcept"]["text"],
        recorded_on=parse_datetime(ext_value(output, "recorded-on")),
        excluded=frozenset(read_codes(ext_values(output, "excluded-information"), ExcludedInformation)),
    )


def _withheld_item(output: dict) -> WithheldItem:
    return WithheldItem(
        category=read_code(output["valueCodeableConcept"], InformationCategory),
        subject_id=reference_id(ext_value(output, "response-subject"), "Patient"),
        recorded_on=parse_datetime(ext_value(output, "recorded-on")),
        reason=read_code(ext_value(output, "withheld-reason"), WithheldReason),
    )
