"""Topic names. Each agency has one inbound topic (it writes, the gateway reads) and one outbound
topic (the gateway writes, it reads); anything the gateway cannot handle goes to the dead-letter
topic. Agency ids are FHIR ids ([A-Za-z0-9.-]), which are valid in Kafka topic names.

On a broker that checks identities, an agency may write its inbound topic, read its outbound
topic and use consumer groups named `<agency id>:<anything>` (`access` and `group_prefix`); the
colon, which no agency id has, keeps one agency's groups apart from another's (`vicpol:` is not a
prefix of `vicpol-north:` nor of `vicpol.north:`)."""

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


def agency_of_outbound(topic: str) -> str | None:
    return topic[len(OUTBOUND_PREFIX):] if topic.startswith(OUTBOUND_PREFIX) else None


def access(topic: str) -> tuple[str, str] | None:
    """(agency id, "write" or "read"): what an agency may do with this topic; None for the gateway's own."""
    if agency := agency_of_inbound(topic):
        return agency, "write"
    if agency := agency_of_outbound(topic):
        return agency, "read"
    return None


def group_prefix(agency_id: str) -> str:
    """The consumer groups an agency may use start with this."""
    return agency_id + ":"
