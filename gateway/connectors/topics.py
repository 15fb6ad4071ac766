"""Topic names. Each agency has one inbound topic (it writes, the gateway reads) and one outbound
topic (the gateway writes, it reads); anything the gateway cannot handle goes to the dead-letter
topic. Agency ids are FHIR ids ([A-Za-z0-9.-]), which are valid in Kafka topic names."""

INBOUND_PREFIX = "fv.inbound."
OUTBOUND_PREFIX = "fv.outbound."
DEAD_LETTER = "fv.dead-letter"


def inbound(agency_id: str) -> str:
    return INBOUND_PREFIX + agency_id


def outbound(agency_id: str) -> str:
    return OUTBOUND_PREFIX + agency_id


def agency_of_inbound(topic: str) -> str | None:
    return topic[len(INBOUND_PREFIX):] if topic.startswith(INBOUND_PREFIX) else None


def for_agencies(agency_ids: list[str]) -> list[str]:
    return [t for a in agency_ids for t in (inbound(a), outbound(a))] + [DEAD_LETTER]
