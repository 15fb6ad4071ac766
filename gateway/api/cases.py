"""The native case API: the Level 3 forms as JSON, for agencies whose systems do not speak FHIR.

Each route turns its body into domain objects, calls one CaseService command and answers the
case summary. Broken rules come back as OperationOutcomes (422) naming the field.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from gateway.api.case_schemas import CaseCreatedOut, CaseSummaryOut, ClosureIn, MeetingIn, ReferralIn, RfisIn, team_of
from gateway.cases.service import CaseService

router = APIRouter(prefix="/api/v1/cases", tags=["cases (native API)"])


async def case_service(request: Request) -> CaseService:
    return request.app.state.services.cases


Cases = Annotated[CaseService, Depends(case_service)]


@router.post("", status_code=201, response_model=CaseCreatedOut, summary="Refer a case (Level 3A Part 1)")
async def refer_case(body: ReferralIn, cases: Cases) -> JSONResponse:
    consents = [c.to_domain(body.jurisdiction, f"consent-{i}") for i, c in enumerate(body.consents)]
    case = await cases.refer(
        body.jurisdiction, body.to_referral(), [p.to_domain() for p in body.people], team_of(body), consents,
        [n.to_domain() for n in body.informed],
    )
    created = CaseCreatedOut(id=case.id, status=case.status.value, fhir=f"EpisodeOfCare/{case.id}")
    return JSONResponse(created.model_dump(), status_code=201, headers={"Location": f"/api/v1/cases/{case.id}"})


@router.get("/{case_id}", response_model=CaseSummaryOut, summary="Case summary: risk now and over time, open work, warnings")
async def read_case(case_id: str, cases: Cases) -> CaseSummaryOut:
    return CaseSummaryOut.of(await cases.summary(case_id))


@router.post("/{case_id}/rfis", response_model=CaseSummaryOut, summary="Requests for information (Level 3A Part 2)")
async def request_information(case_id: str, body: RfisIn, cases: Cases) -> CaseSummaryOut:
    now = cases.clock()
    requests = [r.to_domain(f"rfi-{case_id[:8]}-{now:%Y%m%d%H%M%S}-{i}", now) for i, r in enumerate(body.requests)]
    await cases.request_information(case_id, requests, [i.to_domain() for i in body.inputs])
    return CaseSummaryOut.of(await cases.summary(case_id))


@router.post("/{case_id}/meetings", response_model=CaseSummaryOut, summary="A meeting: Level 3A Part 3 or a Level 3B review")
async def record_meeting(case_id: str, body: MeetingIn, cases: Cases) -> CaseSummaryOut:
    stamp = f"{body.meeting_date:%Y%m%d}"
    actions = [a.to_domain(f"action-{case_id[:8]}-{stamp}-{i}") for i, a in enumerate(body.actions)]
    await cases.record_meeting(case_id, body.to_meeting(), actions, [n.to_domain() for n in body.informed])
    return CaseSummaryOut.of(await cases.summary(case_id))


@router.post("/{case_id}/closure", response_model=CaseSummaryOut, summary="Close the case (Level 3C)")
async def close_case(case_id: str, body: ClosureIn, cases: Cases) -> CaseSummaryOut:
    await cases.close(case_id, body.to_domain())
    return CaseSummaryOut.of(await cases.summary(case_id))
