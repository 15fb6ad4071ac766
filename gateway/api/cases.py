"""The native case API: the Level 3 forms as JSON, for agencies whose systems do not speak FHIR.

Each route turns its body into domain objects, calls one CaseService command and answers the
case summary. Broken rules come back as OperationOutcomes (422) naming the field.

Every route needs an access token whose scopes allow the interaction on EpisodeOfCare (the case):
create to refer, read for the summary, update for RFIs, meetings and closure. The CaseService
each route uses is its agency's (CaseService.for_agency): a case can be read or changed only by
an agency on its team, and a referral must put the caller's agency on the team.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from gateway.api.case_schemas import CaseCreatedOut, CaseSummaryOut, ClosureIn, MeetingIn, ReferralIn, RfisIn, team_of
from gateway.api.deps import agency_access
from gateway.cases.service import CaseService
from gateway.fhir.ids import new_id

router = APIRouter(prefix="/api/v1/cases", tags=["cases (native API)"])


def cases_for(interaction: str):
    """A dependency: the CaseService as the caller's agency may use it, once its scopes allow `interaction`."""

    async def agency_cases(request: Request, policy=Depends(agency_access("EpisodeOfCare", interaction))) -> CaseService:
        cases = request.app.state.services.cases.for_agency(policy.agency_id, policy.refused)
        if "case_id" in request.path_params:
            await cases.require_case(request.path_params["case_id"])  # before any command: the agency's case, or 403/404
        return cases

    return agency_cases


NewCases = Annotated[CaseService, Depends(cases_for("create"))]
Cases = Annotated[CaseService, Depends(cases_for("read"))]
ChangedCases = Annotated[CaseService, Depends(cases_for("update"))]


@router.post("", status_code=201, response_model=CaseCreatedOut, summary="Refer a case (Level 3A Part 1)")
async def refer_case(body: ReferralIn, cases: NewCases) -> JSONResponse:
    # ids unique to this referral: a consent of one case must never overwrite another case's
    consents = [c.to_domain(body.jurisdiction, f"consent-{new_id()}") for c in body.consents]
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
async def request_information(case_id: str, body: RfisIn, cases: ChangedCases) -> CaseSummaryOut:
    now = cases.clock()
    requests = [r.to_domain(f"rfi-{case_id[:8]}-{now:%Y%m%d%H%M%S}-{i}", now) for i, r in enumerate(body.requests)]
    await cases.request_information(case_id, requests, [i.to_domain() for i in body.inputs])
    return CaseSummaryOut.of(await cases.summary(case_id))


@router.post("/{case_id}/meetings", response_model=CaseSummaryOut, summary="A meeting: Level 3A Part 3 or a Level 3B review")
async def record_meeting(case_id: str, body: MeetingIn, cases: ChangedCases) -> CaseSummaryOut:
    stamp = f"{body.meeting_date:%Y%m%d}"
    actions = [a.to_domain(f"action-{case_id[:8]}-{stamp}-{i}") for i, a in enumerate(body.actions)]
    await cases.record_meeting(case_id, body.to_meeting(), actions, [n.to_domain() for n in body.informed])
    return CaseSummaryOut.of(await cases.summary(case_id))


@router.post("/{case_id}/closure", response_model=CaseSummaryOut, summary="Close the case (Level 3C)")
async def close_case(case_id: str, body: ClosureIn, cases: ChangedCases) -> CaseSummaryOut:
    await cases.close(case_id, body.to_domain())
    return CaseSummaryOut.of(await cases.summary(case_id))
