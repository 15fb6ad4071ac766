"""Consent decisions on request: agencies check before sending, testers probe the policies."""

from fastapi import APIRouter, Request

from gateway.consent.documents import DecisionIn, DecisionOut

router = APIRouter(prefix="/api/v1/consent", tags=["consent"])


@router.post("/decisions", response_model=DecisionOut, summary="Decide whether one information item may be shared")
async def decide(body: DecisionIn, request: Request) -> DecisionOut:
    return DecisionOut.of(request.app.state.services.consent.decide(body.to_domain()))
