"""FHIR message Bundles: a MessageHeader (event, sender, receiver, focus) and the focus resources.

Agencies are named twice in a header: `sender` / `destination.receiver` reference their
Organization (what the gateway checks), and the endpoints are URNs for systems that route by
endpoint. `parse` checks the envelope only; the focus resources are validated by their handler.
"""

import re
from dataclasses import dataclass
from datetime import datetime

import orjson

from gateway.domain.vocabulary import MessageEvent
from gateway.errors import InvalidRequest
from gateway.fhir.ids import new_id
from gateway.mappings.common import coding, fhir_datetime, parse_datetime, read_code, reference, reference_id

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # a FHIR id; message ids are Bundle ids
ENDPOINT = "urn:fv-gateway:agency:"
GATEWAY_ENDPOINT = "urn:fv-gateway:gateway"


class MalformedMessage(InvalidRequest):
    """The bytes are not a gateway message Bundle; the reason names the element."""


@dataclass(frozen=True)
class Message:
    id: str
    event: MessageEvent
    source: str
    destination: str
    timestamp: datetime
    focus: tuple[dict, ...]
    response_to: str | None = None
    # What the handler's check made of the focus (validated, read into the domain), when it ran
    # ahead of the message's transaction (gateway.messaging.inbound opens messages a step ahead)
    checked: object = None

    def focus_of(self, resource_type: str) -> dict:
        found = next((r for r in self.focus if r.get("resourceType") == resource_type), None)
        if found is None:
            raise MalformedMessage.at("Bundle.entry", f"A {self.event.value} message carries a {resource_type}")
        return found


def build(
    event: MessageEvent, source: str | None, destination: str, focus: list[dict], now: datetime,
    message_id: str | None = None, response_to: str | None = None, carry: bool = True,
) -> dict:
    """`source`: the agency whose action the message carries; None when the gateway itself speaks.

    `carry=False` (a notification): the header names the focus without carrying it; the recipient
    fetches it through the consent-checked read path, so no push can bypass the release check."""
    message_id = message_id or new_id()
    header = {
        "resourceType": "MessageHeader",
        "id": message_id,
        "eventCoding": coding(event),
        "destination": [{"endpoint": ENDPOINT + destination, "receiver": reference("Organization", destination)}],
        "source": {"endpoint": ENDPOINT + source if source else GATEWAY_ENDPOINT},
        "focus": [reference(r["resourceType"], r["id"]) for r in focus],
    }
    if source:
        header["sender"] = reference("Organization", source)
    if response_to:
        header["response"] = {"identifier": response_to, "code": "ok"}
    entries = [{"fullUrl": f"urn:uuid:{message_id}", "resource": header}]
    if carry:
        entries += [{"fullUrl": f"urn:fv-gateway:{r['resourceType']}/{r['id']}", "resource": r} for r in focus]
    return {"resourceType": "Bundle", "id": message_id, "type": "message", "timestamp": fhir_datetime(now), "entry": entries}


def is_message_id(text: str | None) -> bool:
    return bool(text) and _ID.match(text) is not None


def parse(raw: bytes) -> Message:
    try:
        bundle = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(f"The message is not JSON: {exc}") from None
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle" or bundle.get("type") != "message":
        raise MalformedMessage.at("Bundle.type", "A message is a Bundle of type 'message'")
    resources = [e.get("resource") for e in bundle.get("entry") or []]
    if not resources or not isinstance(resources[0], dict) or resources[0].get("resourceType") != "MessageHeader":
        raise MalformedMessage.at("Bundle.entry[0]", "A message Bundle starts with its MessageHeader")
    if not all(isinstance(r, dict) and isinstance(r.get("id"), str) for r in resources[1:]):
        raise MalformedMessage.at("Bundle.entry.resource", "Every focus resource of a message has an id")
    header = resources[0]
    if not is_message_id(bundle.get("id")):
        raise MalformedMessage.at("Bundle.id", "A message Bundle's id is its message id: 1 to 64 of A-Z a-z 0-9 - .")
    try:
        return Message(
            id=bundle["id"],
            event=_required(read_code(header.get("eventCoding"), MessageEvent), "MessageHeader.eventCoding"),
            source=_required(reference_id(header.get("sender"), "Organization"), "MessageHeader.sender"),
            destination=_required(_receiver(header), "MessageHeader.destination[0].receiver"),
            timestamp=parse_datetime(_required(bundle.get("timestamp"), "Bundle.timestamp")),
            focus=tuple(resources[1:]),
            response_to=(header.get("response") or {}).get("identifier"),
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise MalformedMessage.at("Bundle.entry[0].resource", f"The MessageHeader cannot be read: {exc}") from None


def _receiver(header: dict) -> str | None:
    destinations = header.get("destination") or [{}]
    return reference_id(destinations[0].get("receiver"), "Organization")


def _required(value, path: str):
    if value in (None, ""):
        raise MalformedMessage.at(path, f"{path} is required in a gateway message")
    return value
