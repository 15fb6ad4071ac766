"""Messages over HTTPS, for agencies without Kafka: send with `$process-message`, receive from
the inbox (long poll) and acknowledge. The agency is the one the access token names."""

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from gateway.api.deps import agency_access, bounded_body, require_media_type
from gateway.auth.policy import AccessPolicy
from gateway.connectors.transport import CORRELATION_ID, EVENT
from gateway.errors import operation_outcome, Issue
from gateway.messaging.inbox import InboxEntry

router = APIRouter(tags=["messages (agencies without Kafka)"])
FHIR_JSON = "application/fhir+json"

# the same scope check, and refusal record, as every other route (gateway.auth.policy)
Sender = Annotated[AccessPolicy, Depends(agency_access("Task", "create"))]
Reader = Annotated[AccessPolicy, Depends(agency_access("Task", "read"))]


@router.post("/fhir/$process-message", summary="Send a message Bundle (rfi-request, rfi-status, rfi-response); handled at once")
async def process_message(request: Request, policy: Sender) -> Response:
    require_media_type(request, (FHIR_JSON, "application/json"))
    body = await bounded_body(request)
    services = request.app.state.services
    outcome = await run_in_threadpool(services.inbound.accept, policy.agency_id, body)
    report = operation_outcome([Issue(outcome, severity="information")], "informational")
    return Response(orjson.dumps(report), media_type=FHIR_JSON, headers={"X-Message-Outcome": outcome})


class InboxMessage(BaseModel):
    id: str
    message_id: str | None
    event: str | None
    correlation_id: str | None
    bundle: dict

    @classmethod
    def of(cls, entry: InboxEntry) -> "InboxMessage":
        m = entry.message
        return cls(id=entry.id, message_id=m.message_id, event=m.headers.get(EVENT), correlation_id=m.headers.get(CORRELATION_ID),
                   bundle=orjson.loads(m.value))


class InboxPage(BaseModel):
    messages: list[InboxMessage]


@router.get("/api/v1/inbox", response_model=InboxPage, summary="Messages for the caller's agency not yet acknowledged (long poll)")
async def inbox(
    request: Request, policy: Reader,
    max: Annotated[int, Query(ge=1, le=500, description="at most this many messages")] = 100,
    wait: Annotated[float, Query(ge=0, le=30, description="seconds to wait for a message when there is none")] = 20,
) -> InboxPage:
    entries = await run_in_threadpool(request.app.state.services.inbox.poll, policy.agency_id, max, wait)
    return InboxPage(messages=[InboxMessage.of(e) for e in entries])


@router.post("/api/v1/inbox/{entry_id}/ack", status_code=204, summary="Acknowledge a message and those before it in its partition")
async def acknowledge(entry_id: str, request: Request, policy: Reader) -> Response:
    await run_in_threadpool(request.app.state.services.inbox.ack, policy.agency_id, entry_id)
    return Response(status_code=204)
