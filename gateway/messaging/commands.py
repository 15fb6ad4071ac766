"""`gateway kafka init` and `gateway dlq list|replay`: the operator's handles on messaging."""

import argparse
import logging
import threading
from datetime import datetime, timezone

from gateway.connectors import topics
from gateway.fhir.search import parse_search

log = logging.getLogger("gateway.messaging")


def register(verbs: argparse._SubParsersAction, services) -> None:
    """`services`: a callable that builds the gateway's services (the CLI's, so tests can swap it)."""
    kafka = verbs.add_parser("kafka", help="message topics").add_subparsers(dest="kafka_verb", required=True, metavar="ACTION")
    init = kafka.add_parser(
        "init", help="create every registered agency's inbound and outbound topics, and the dead-letter topic; on a broker "
        "that checks identities (GATEWAY_KAFKA_SECURITY=oauthbearer), let each agency write its inbound and read its outbound topic",
    )
    init.add_argument("--partitions", type=int, help="partitions per topic (default GATEWAY_KAFKA_PARTITIONS)")
    init.add_argument("--replication", type=int, help="replication factor (default GATEWAY_KAFKA_REPLICATION)")
    init.set_defaults(run=lambda args: _kafka_init(args, services))

    dlq = verbs.add_parser("dlq", help="dead letters: messages the gateway could not handle").add_subparsers(
        dest="dlq_verb", required=True, metavar="ACTION"
    )
    listing = dlq.add_parser("list", help="dead letters not yet replayed, oldest first")
    listing.add_argument("--all", action="store_true", help="include those already replayed")
    listing.set_defaults(run=lambda args: _dlq_list(args, services))
    replay = dlq.add_parser("replay", help="send dead letters back to the topic they came from, to be handled again")
    replay.add_argument("ids", nargs="+", type=int, metavar="ID")
    replay.set_defaults(run=lambda args: _dlq_replay(args, services))


def registered_agencies(conn, store) -> list[str]:
    query = parse_search("Organization", [])
    query.count, query.with_total = 10_000, False
    return sorted(v.resource_id for v in store.search(conn, query)[0])


def ensure_topics(built, partitions: int | None = None, replication: int | None = None) -> list[str]:
    agencies = built.db.run_read(lambda conn: registered_agencies(conn, built.store))
    return built.transport.create_topics(
        topics.for_agencies(agencies), partitions or built.settings.kafka_partitions, replication or built.settings.kafka_replication
    )


def ensure_topics_until_done(built, stop: threading.Event, retry_seconds: float = 2.0) -> None:
    """`ensure_topics`, tried again until it succeeds or `stop` is set (for `gateway serve`)."""
    while not stop.is_set():
        try:
            created = ensure_topics(built)
        except Exception as exc:  # the broker is not up yet, or refuses the gateway: say so, try again
            log.warning("topics not ready on the %s transport, retrying in %.0f s: %s", built.transport.name, retry_seconds, exc)
            stop.wait(retry_seconds)
            continue
        if created:
            log.info("%d topics created on the %s transport: %s", len(created), built.transport.name, ", ".join(created))
        return


def _kafka_init(args, services) -> int:
    built = services()
    try:
        created = ensure_topics(built, args.partitions, args.replication)
    finally:
        built.close()
    print(f"{len(created)} topics created on the {built.transport.name} transport" + (f": {', '.join(created)}" if created else ""))
    if getattr(built.transport, "agency_acls", False):
        print("ACLs: each agency (User:<agency id>) may write its inbound topic, read its outbound topic and use groups '<agency id>:*'")
    return 0


def _dlq_list(args, services) -> int:
    built = services()
    try:
        letters = built.db.run_read(lambda conn: built.dead_letters.list(conn, include_replayed=args.all, limit=10_000))
    finally:
        built.close()
    for d in letters:
        when = datetime.fromtimestamp(d.failed_at / 1e6, timezone.utc).isoformat(timespec="seconds")
        state = " (replayed)" if d.replayed_at else ""
        print(f"{d.id}\t{when}\t{d.topic}\t{d.message_id or '-'}\t{d.reason_code}: {d.reason}{state}")
    if not letters:
        print("no dead letters")
    return 0


def _dlq_replay(args, services) -> int:
    built = services()
    try:
        results = {i: built.db.run_write(lambda conn, i=i: built.dead_letters.replay(conn, i)) for i in args.ids}
    finally:
        built.close()
    for i, replayed in results.items():
        print(f"{i}: {'sent back to be handled again' if replayed else 'no such dead letter, or replayed already'}")
    return 0 if all(results.values()) else 1
