"""Consent decisions on request: agencies check before sending, testers probe the policies.

A decision reads no stored data (everything it weighs is in the request), so any valid access
token may ask; an anonymous caller may not.
"""

from fastapi import APIRouter, Depends, Request

from gateway.api.deps import require_caller
from gateway.consent.documents import DecisionIn, DecisionOut

router = APIRouter(prefix="/api/v1/consent", tags=["consent"], dependencies=[Depends(require_caller)])


@router.post("/decisions", response_model=DecisionOut, summary="Decide whether one information item may be shared")
async def decide(body: DecisionIn, request: Request) -> DecisionOut:
    return DecisionOut.of(request.app.state.services.consent.decide(body.to_domain()))
