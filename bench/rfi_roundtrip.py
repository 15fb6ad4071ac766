"""Benchmark of RFI round trips through the gateway, with the real Kafka broker.

A round trip: the requester (dfv-logan) sends an rfi-request; the gateway validates it, checks
the team, asks the consent engine about the request's identifying content, records the
AuditEvent, stores the Task and relays it (outbox) to the target (qps); the target answers with
one or two items; the gateway decides each (consent engine, AuditEvent each), stores the answer
and relays what it may release to the requester, whose consumer receives it.

Measured, in one run:
  raw      kafka-python alone carrying the same payloads over the same four hops
           (requester -> target -> requester, each a produce and a consume), no gateway
  relay    the same, with a process between the agencies that does what any gateway must at
           least do and nothing more: consume, produce to the other side (acks=all,
           idempotent), commit. Its rate is the most a gateway in Python could reach on this
           machine; its CPU, and the broker's and the agencies', show what is left for the
           gateway's own work (validation, consent, audit, storage)
  kafka    `gateway serve` (SQLite, GATEWAY_TRANSPORT=kafka) between agencies on Kafka; its CPU
           and memory include its Kafka publisher's child process
  embedded `gateway serve` (SQLite, the embedded queue) between agencies without Kafka, over
           HTTPS ($process-message, inbox long poll and acknowledgement)

For each: the maximum rate (all RFIs sent at once; round trips/s until the last answer), then
p50/p99 latency with RFIs paced at half that rate. Raw is measured before the relay and again
right after the kafka path; the gateway paths' ratios are against the mean of the two, the
relay's against the raw run just before it. Targets (2 cores): >= 500 round trips/s, >= 0.3 of
raw, p99 < 250 ms at half load. Printed, never asserted.

    .venv/bin/python bench/rfi_roundtrip.py            # 3,000 RFIs per run
    .venv/bin/python bench/rfi_roundtrip.py --quick    # 300 RFIs, smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from tests.support.kafka import KafkaBroker, KafkaConsumer, KafkaProducer, external_bootstrap, require_local_broker  # noqa: E402  (first: kafka's import warning)
from kafka import TopicPartition  # noqa: E402
from tests.support import cases  # noqa: E402
from tests.support.agency_systems import AgencySystem  # noqa: E402
from tests.support.https_agencies import AgencyOverHttps  # noqa: E402
from tests.support.kafka_agencies import AgencyOnKafka, RfiExchange  # noqa: E402
from processes import CpuUse, peak_rss_mb  # noqa: E402  (bench/processes.py)
from tests.support.server import GatewayProcess, children, gateway_env  # noqa: E402

CASES = [f"case-bench-{i}" for i in range(12)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rfis", type=int, default=3000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    args = parser.parse_args()
    n = 300 if args.quick else args.rfis
    paced = 3.0 if args.quick else args.paced_seconds

    broker = None if external_bootstrap() else KafkaBroker(require_local_broker()).start()
    bootstrap = broker.bootstrap if broker else external_bootstrap()
    broker_pid = broker.pid if broker else None
    try:
        before = raw_pipeline(bootstrap, n)
        print(f"raw kafka-python pipeline   {before:8.0f} round trips/s")
        relayed = relay_pipeline(bootstrap, n, broker_pid)
        print(f"through a relay, no logic   {relayed['rate']:8.0f} round trips/s ({relayed['rate'] / before:.2f} of the raw just before); "
              f"CPU: relay {relayed['relay_cpu']:.2f}, broker {relayed['broker_cpu']:.2f}, agencies {relayed['agencies_cpu']:.2f} cores")
        kafka = run_gateway("kafka", bootstrap, n, paced, broker_pid)
        # Raw again, right after: this VM's speed can change by half within minutes, and a ratio
        # against a baseline taken in another phase says nothing about the gateway.
        after = raw_pipeline(bootstrap, n)
        print(f"raw kafka-python pipeline   {after:8.0f} round trips/s (again, after the kafka path)")
        results = {"kafka": kafka, "embedded": run_gateway("embedded", bootstrap, n // 3, paced, broker_pid)}
    finally:
        if broker:
            broker.stop()
    raw = (before + after) / 2
    print(f"\nraw: {raw:.0f} round trips/s, the mean of {before:.0f} before and {after:.0f} after the kafka path"
          + (" (they differ by more than a fifth: the machine's speed changed; run again)" if abs(before - after) > 0.2 * raw else ""))
    print(f"{'path':10} {'round trips/s':>14} {'vs raw':>7} {'p50 ms':>8} {'p99 ms':>8} {'at /s':>6} {'gateway RSS':>12}")
    for name, r in results.items():
        print(f"{name:10} {r['rate']:14.0f} {r['rate'] / raw:7.2f} {r['p50']:8.1f} {r['p99']:8.1f} {r['paced']:6.0f} {r['rss_mb']:10.0f} MB")
    print("\ntargets: kafka >= 500 round trips/s, >= 0.3 of raw, p99 < 250 ms at half load")
    return 0


# -- the raw pipeline ---------------------------------------------------------------------------


def raw_pipeline(bootstrap: str, n: int) -> float:
    """The same payloads, produced and consumed over the same four hops by kafka-python alone."""
    run = uuid.uuid4().hex[:8]
    requests, answers = f"raw.{run}.requests", f"raw.{run}.answers"
    create_topics(bootstrap, [requests, answers])
    return n / agencies_exchange(bootstrap, n, (requests, requests), (answers, answers))


def relay_pipeline(bootstrap: str, n: int, broker_pid: int | None) -> dict:
    """`raw_pipeline` with a relay process between the agencies (requests and answers each
    consumed and produced once more): the floor of what a gateway on Kafka costs."""
    run = uuid.uuid4().hex[:8]
    requests, answers = (f"relay.{run}.requests", f"relay.{run}.requests-out"), (f"relay.{run}.answers", f"relay.{run}.answers-out")
    create_topics(bootstrap, [*requests, *answers])
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    relay = context.Process(target=relay_process, args=(bootstrap, dict([requests, answers]), ready), daemon=True)
    relay.start()
    try:
        ready.wait(60)
        used = CpuUse({"relay": relay.pid, "broker": broker_pid, "agencies": os.getpid()})
        elapsed = agencies_exchange(bootstrap, n, requests, answers)
        return {"rate": n / elapsed, **{f"{k}_cpu": cores for k, cores in used.cores().items()}}
    finally:
        relay.terminate()
        relay.join()


def agencies_exchange(bootstrap: str, n: int, requests: tuple[str, str], answers: tuple[str, str]) -> float:
    """Seconds for the requester to send `n` requests to requests[0] and have every answer back
    on answers[1], the target answering what reaches it on requests[1] to answers[0]."""
    request, answer = sample_payloads()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    target, requester = consumer(bootstrap, requests[1]), consumer(bootstrap, answers[1])
    started = time.perf_counter()
    for i in range(n):
        producer.send(requests[0], value=request, key=CASES[i % len(CASES)].encode(), headers=[("message-id", str(i).encode())])
    producer.flush()
    received = 0
    while received < n:
        for records in target.poll(timeout_ms=10, max_records=2000).values():
            for r in records:
                producer.send(answers[0], value=answer, key=r.key, headers=r.headers)
        producer.flush()
        received += sum(len(b) for b in requester.poll(timeout_ms=0, max_records=2000).values())
    elapsed = time.perf_counter() - started
    producer.close()
    target.close()
    requester.close()
    return elapsed


def relay_process(bootstrap: str, hops: dict[str, str], ready) -> None:
    """Consume each topic of `hops`, produce every record to its other side, commit; forever.
    (Spawned: this module's imports, tests.support.kafka's first, are made again in that process.)"""
    source = KafkaConsumer(*hops, bootstrap_servers=bootstrap, group_id="relay", enable_auto_commit=False, auto_offset_reset="earliest")
    sink = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    while not source.assignment():
        source.poll(timeout_ms=100)
    ready.set()
    while True:
        for partition, records in source.poll(timeout_ms=100, max_records=500).items():
            for r in records:
                sink.send(hops[partition.topic], value=r.value, key=r.key, headers=r.headers)
        sink.flush()
        source.commit()


def create_topics(bootstrap: str, names: list[str]) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics({t: {"num_partitions": 3, "replication_factor": 1} for t in names})
    admin.wait_for_topics(names)
    admin.close()


def consumer(bootstrap: str, topic: str) -> KafkaConsumer:
    client = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    client.assign([TopicPartition(topic, p) for p in sorted(client.partitions_for_topic(topic))])
    return client


def sample_payloads() -> tuple[bytes, bytes]:
    """An rfi-request and an rfi-response Bundle as the gateway relays them (Task, Patient)."""
    from gateway.domain.vocabulary import InformationCategory, MessageEvent
    from gateway.demo import scenario
    from gateway.mappings import patient, rfi as rfi_mapping
    from gateway.messaging import bundles

    rfi = cases.request("rfi-sample")
    person = patient.to_fhir(next(p for p in scenario.people() if p.id == "puv-dan"))
    request = bundles.build(MessageEvent.RFI_REQUEST, "dfv-logan", "qps", [rfi_mapping.to_fhir(rfi, CASES[0]), person], cases.NOW)
    answered = cases.answered(rfi, (InformationCategory.CRIMINAL_HISTORY, "Prior incidents on file", frozenset()))
    answer = bundles.build(MessageEvent.RFI_RESPONSE, "qps", "dfv-logan", [rfi_mapping.to_fhir(answered, CASES[0])], cases.NOW)
    return orjson.dumps(request), orjson.dumps(answer)


# -- through the gateway ------------------------------------------------------------------------


def run_gateway(transport: str, bootstrap: str, n: int, paced_seconds: float, broker_pid: int | None) -> dict:
    from gateway.bootstrap import build_services
    from gateway.messaging.commands import ensure_topics
    from gateway.settings import Settings
    from gateway.store.encryption import generate_kek

    data_dir, key = Path(tempfile.mkdtemp(prefix=f"rfi-bench-{transport}-")), generate_kek()
    settings = Settings(data_dir=data_dir, data_key=key, transport=transport, kafka_bootstrap=bootstrap, kafka_partitions=3)
    services = build_services(settings)
    systems = {a: AgencySystem(f"{a}-bench") for a in ("dfv-logan", "qps")}
    for case_id in CASES:
        cases.open_case(services, case_id)
    for agency, system in systems.items():
        services.identity.clients.add(system.client_id, agency, "system/Task.cru", jwks=system.jwks)
    ensure_topics(services)
    services.close()
    env = gateway_env(data_dir, key, GATEWAY_TRANSPORT=transport, GATEWAY_KAFKA_BOOTSTRAP=bootstrap, GATEWAY_LOG_LEVEL="WARNING",
                      GATEWAY_TOKEN_LIFETIME_SECONDS="3600")
    server = GatewayProcess(env)
    try:
        def agency(agency_id: str):
            if transport == "kafka":
                return AgencyOnKafka(bootstrap, agency_id)
            return AgencyOverHttps(server.url, agency_id, systems[agency_id])

        warm = RfiExchange(agency("dfv-logan"), agency("qps"), CASES)
        # Agencies on Kafka answer and collect on threads of their own, blocked in their polls
        # (RfiExchange.pumping); the HTTPS agencies' clients are used from one thread, in turns.
        with warm.pumping() if transport == "kafka" else contextlib.nullcontext():
            threaded = transport == "kafka"
            warm.ask(50)
            until_answered(warm, 60, threaded)
            helpers = children(server.process.pid)  # its Kafka publisher, counted as the gateway's
            used = CpuUse({"gateway": server.process.pid, "broker": broker_pid, "agencies": os.getpid(),
                           **{f"helper {pid}": pid for pid in helpers}})
            rate = max_rate(warm, n, threaded)
            cpu = used.cores()
            helper_cpu = sum(cpu.pop(f"helper {pid}") for pid in helpers)
            cpu["gateway"] += helper_cpu
            p50, p99, paced = half_load(warm, rate / 2, paced_seconds, threaded)
        rss = sum(peak_rss_mb(pid) or float("nan") for pid in [server.process.pid, *helpers])
        warm.requester.close()
        warm.target.close()
    finally:
        server.stop()
    publisher = f" of which its publisher process {helper_cpu:.2f}" if helpers else ""
    print(f"{transport:10} {rate:8.0f} round trips/s at most (CPU: gateway {cpu['gateway']:.2f}{publisher}, broker {cpu['broker']:.2f}, "
          f"agencies {cpu['agencies']:.2f} cores; gateway {1000 * cpu['gateway'] / rate:.1f} ms per round trip); "
          f"at {paced:.0f}/s p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    return {"rate": rate, "p50": p50, "p99": p99, "paced": paced, "rss_mb": rss}


def until_answered(exchange: RfiExchange, timeout: float, threaded: bool) -> None:
    if threaded:
        exchange.wait_until_answered(timeout)
    else:
        exchange.run_until_answered(timeout)


def max_rate(exchange: RfiExchange, n: int, threaded: bool) -> float:
    before = len(exchange.answered_at)
    started = time.perf_counter()
    exchange.ask(n)
    until_answered(exchange, 600, threaded)
    answered = len(exchange.answered_at) - before
    if answered < n:
        print(f"warning: only {answered} of {n} RFIs answered", file=sys.stderr)
    return answered / (time.perf_counter() - started)


def half_load(exchange: RfiExchange, rate: float, seconds: float, threaded: bool) -> tuple[float, float, float]:
    """Send one RFI every 1/rate seconds for `seconds`; latency of each from asking to its answer."""
    already = set(exchange.answered_at)
    interval, started = 1.0 / rate, time.perf_counter()
    sent = 0
    while time.perf_counter() - started < seconds:
        due = int((time.perf_counter() - started) / interval) + 1
        if due > sent:
            exchange.ask(due - sent)
            sent = due
        if threaded:  # answers are taken on the pumping threads: sleep until the next RFI is due
            time.sleep(max(0.0, started + sent * interval - time.perf_counter()))
        else:
            exchange.pump(0.002)
    until_answered(exchange, 60, threaded)
    latencies = sorted(1000 * (exchange.answered_at[r] - exchange.asked_at[r]) for r in exchange.answered_at if r not in already)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return statistics.median(latencies), p99, sent / seconds


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
    sys.exit(main())
