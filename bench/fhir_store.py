"""Benchmark of the FHIR store through HTTP: create, then read back, R4B resources.

Starts ``gateway serve`` as a subprocess on a free port with a fresh data directory (and, for
PostgreSQL, a fresh database), registers an agency system on its database and takes an access
token from its ``/auth/token`` (every FHIR request carries it, as an agency's would), creates N resources (Patient, RFI Task, RiskAssessment,
CareTeam, Consent, round-robin) with ``POST /fhir/{type}``, then reads each back by id in
random order, and prints resources/s, p50/p99 latency and the server's peak RSS.

Absolute rates on shared 2-core machines vary from run to run (DESIGN.md section 9), so every
figure is also given as a ratio to a baseline measured in the same run: plain fhir.resources
parse + serialise of the same resources, single thread. Targets are printed, never asserted;
the exit status is non-zero only when a request failed (or a server did not come up).

The load generator is asyncio over raw HTTP/1.1 keep-alive connections: request bytes are
built before the clock starts and responses are parsed by hand, so on 2 cores the client
spends a small fraction of what the server does (its CPU share is printed to show it).

    .venv/bin/python bench/fhir_store.py               # 20,000 resources, SQLite + PostgreSQL
    .venv/bin/python bench/fhir_store.py --quick       # 500 resources, smoke run
    .venv/bin/python bench/fhir_store.py --count 100000 --backends sqlite   # the RSS target
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import orjson
from fhir.resources.R4B import get_fhir_model_class

import processes  # bench/processes.py

REPO_ROOT = Path(__file__).resolve().parent.parent

TARGET_CREATE_PER_S = 1_000  # SQLite
TARGET_READ_PER_S = 2_000  # SQLite
TARGET_RSS_MB = 300  # after 100,000 resources
RSS_TARGET_COUNT = 100_000

REQUEST_TIMEOUT_S = 30.0
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
BASELINE_MAX = 5_000  # resources parsed+serialised per baseline (the mix repeats round-robin)
HEALTHZ_REQUESTS = 2_000
BENCH_SCOPES = "system/*.cruds"  # the resources it creates name no existing case: the scopes decide

# --------------------------------------------------------------------------------------------
# Representative R4B resources
# --------------------------------------------------------------------------------------------

CS = "https://fv-gateway.example.org/fhir/CodeSystem/"  # the benchmark's own code systems
NS = "https://fv-gateway.example.org/fhir/NamingSystem/"
SCHEMES = "https://fv-gateway.example.org/legal-scheme/"
V3_CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
V3_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"

AGENCIES = ("vicpol", "health-rch", "corrections", "dffh-cp", "orange-door", "housing-vic",
            "magistrates", "youth-justice", "safe-steps", "vacca")
GIVEN = ("Alex", "Sam", "Jordan", "Casey", "Riley", "Taylor", "Morgan", "Jamie", "Avery", "Quinn",
         "Charlie", "Drew", "Emerson", "Harper")
FAMILY = ("Nguyen", "Smith", "Williams", "Brown", "Jones", "Singh", "Wilson", "Taylor", "Chen",
          "Martin", "Kelly", "Anderson", "Thomas", "Walker", "White")
GENDERS = ("female", "male", "other", "unknown")
SUBJECT_ROLES = ("adult-victim-survivor", "child-victim-survivor", "person-using-violence",
                 "third-party")
CATEGORIES = ("criminal-history", "order-status", "custody-release-dates", "whereabouts",
              "health", "mental-health", "alcohol-other-drugs", "child-protection", "housing")
RISK_LEVELS = ("imminent", "high", "at-risk", "no-low", "unknown")
RISK_METHODS = ("victim-survivor-self-assessment", "practitioner-assessment",
                "multi-agency-assessment")
TEAM_ROLES = ("chair", "lead-agency", "coordinator", "core-member", "associate-member", "observer")
PURPOSES = ("assess-risk", "manage-risk", "safety-planning")
POLICIES = ("FVISS", "CISS", "DFVPA-5A")


def _coding(system: str, code: str, display: str | None = None) -> dict:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def _concept(system: str, code: str) -> dict:
    return {"coding": [_coding(system, code, code.replace("-", " ").capitalize())]}


def _ref(kind: str, key: str, display: str | None = None) -> dict:
    out = {"reference": f"{kind}/{key}"}
    if display:
        out["display"] = display
    return out


def _day(i: int, base: date = date(2026, 1, 1)) -> date:
    return base + timedelta(days=i % 300)


def _subject(i: int, run: str) -> dict:
    return _ref("Patient", f"{run}-p{i // 5}")


def patient(i: int, run: str) -> dict:
    agency = AGENCIES[i % len(AGENCIES)]
    return {
        "resourceType": "Patient",
        "identifier": [
            {"system": NS + agency + "/client-id", "value": f"{run}-{i:08d}"},
            {"system": NS + "case-person", "value": f"CP-{i * 7919 % 10_000_000:07d}"},
        ],
        "active": True,
        "name": [{
            "use": "official",
            "family": FAMILY[i % len(FAMILY)],
            "given": [GIVEN[i % len(GIVEN)], GIVEN[(i // 7) % len(GIVEN)]],
        }],
        "gender": GENDERS[i % len(GENDERS)],
        "birthDate": (date(1960, 1, 1) + timedelta(days=(i * 37) % 20_000)).isoformat(),
    }


def rfi_task(i: int, run: str) -> dict:
    requester, owner = AGENCIES[i % len(AGENCIES)], AGENCIES[(i + 3) % len(AGENCIES)]
    categories = [CATEGORIES[(i + k) % len(CATEGORIES)] for k in range(1 + i % 3)]
    urgent = i % 4 == 0
    authored = _day(i)
    return {
        "resourceType": "Task",
        "meta": {"security": [
            _coding(CS + "subject-role", SUBJECT_ROLES[i % len(SUBJECT_ROLES)]),
            *(_coding(CS + "information-category", c) for c in categories),
            _coding(V3_CONFIDENTIALITY, "R", "restricted"),
        ]},
        "identifier": [{"system": NS + requester + "/rfi", "value": f"{run}-rfi-{i}"}],
        "status": "requested",
        "intent": "order",
        "priority": "urgent" if urgent else "routine",
        "code": {"coding": [_coding(CS + "task-type", "rfi", "Request for information")]},
        "focus": _ref("EpisodeOfCare", f"{run}-case{i // 25}"),
        "for": _subject(i, run),
        "authoredOn": f"{authored.isoformat()}T09:{i % 60:02d}:00+10:00",
        "requester": _ref("Organization", requester),
        "owner": _ref("Organization", owner),
        "restriction": {"period": {
            "end": f"{(authored + timedelta(days=1 if urgent else 7)).isoformat()}T17:00:00+10:00",
        }},
        "input": [
            *({"type": _concept(CS + "rfi-input", "requested-category"),
               "valueCodeableConcept": _concept(CS + "information-category", c)}
              for c in categories),
            {"type": _concept(CS + "rfi-input", "purpose"),
             "valueCodeableConcept": _concept(CS + "purpose", PURPOSES[i % len(PURPOSES)])},
        ],
    }


def risk_assessment(i: int, run: str) -> dict:
    level = RISK_LEVELS[i % len(RISK_LEVELS)]
    return {
        "resourceType": "RiskAssessment",
        "status": "final",
        "subject": _subject(i, run),
        "occurrenceDateTime": f"{_day(i).isoformat()}T10:{i % 60:02d}:00+10:00",
        "performer": _ref("Organization", AGENCIES[i % len(AGENCIES)]),
        "method": _concept(CS + "risk-assessment-method", RISK_METHODS[i % len(RISK_METHODS)]),
        "prediction": [{"qualitativeRisk": {
            "coding": [_coding(CS + "risk-level", level, level.replace("-", " ").capitalize())],
            "text": level,
        }}],
    }


def care_team(i: int, run: str) -> dict:
    members = 3 + i % 4
    start = _day(i)
    return {
        "resourceType": "CareTeam",
        "status": "active",
        "name": f"MARAM case team {i // 5}",
        "subject": _subject(i, run),
        "period": {"start": start.isoformat(), "end": (start + timedelta(days=90)).isoformat()},
        "participant": [{
            "role": [_concept(CS + "care-team-role", TEAM_ROLES[(i + k) % len(TEAM_ROLES)])],
            "member": _ref("Organization", AGENCIES[(i + k) % len(AGENCIES)]),
            "period": {"start": start.isoformat()},
        } for k in range(members)],
    }


def consent(i: int, run: str) -> dict:
    scheme = POLICIES[i % len(POLICIES)]
    out = {
        "resourceType": "Consent",
        "status": "active",
        "scope": _concept("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy"),
        "category": [{"coding": [_coding(V3_ACT_CODE, "INFA", "information access")]}],
        "patient": _subject(i, run),
        "dateTime": f"{_day(i).isoformat()}T11:{i % 60:02d}:00+10:00",
        "organization": [_ref("Organization", AGENCIES[i % len(AGENCIES)])],
        "provision": {
            "type": "permit",
            "period": {"start": _day(i).isoformat()},
            "actor": [{
                "role": {"coding": [_coding(V3_PARTICIPATION, "IRCP", "information recipient")]},
                "reference": _ref("Organization", AGENCIES[(i + k) % len(AGENCIES)]),
            } for k in range(1 + i % 3)],
            "purpose": [_coding(V3_ACT_REASON, "TREAT", "treatment")],
        },
    }
    if i % 2:  # R4B allows either (ppc-1); use both forms
        out["policy"] = [{"authority": f"{SCHEMES}{scheme}", "uri": f"{SCHEMES}{scheme}#consent"}]
    else:
        out["policyRule"] = _concept(CS + "legal-scheme", scheme)
    return out


BUILDERS: tuple[Callable[[int, str], dict], ...] = (
    patient, rfi_task, risk_assessment, care_team, consent)


def build_resource(i: int, run: str) -> dict:
    """The i-th resource of the mix: the five types round-robin, each varied by i."""
    return BUILDERS[i % len(BUILDERS)](i, run)


def self_test(run: str, samples: int = 100) -> None:
    """Every builder makes a resource that fhir.resources R4B accepts and round-trips exactly
    (so that comparing what the server returns with what was sent is meaningful)."""
    for i in range(samples):
        d = build_resource(i, run)
        model = get_fhir_model_class(d["resourceType"]).model_validate(d)
        back = orjson.loads(model.model_dump_json())
        if back != d:
            raise SystemExit(f"self-test: {d['resourceType']} #{i} does not round-trip:\n"
                             f"sent {d}\ngot  {back}")


# --------------------------------------------------------------------------------------------
# Baseline: plain fhir.resources parse + serialise, single thread
# --------------------------------------------------------------------------------------------

@dataclass
class Baseline:
    per_s: float
    per_type_us: dict[str, float]
    orjson_per_s: float


def measure_baseline(bodies: list[tuple[str, bytes]]) -> Baseline:
    classes = {t: get_fhir_model_class(t) for t, _ in bodies[: len(BUILDERS)]}
    for t, body in bodies[: len(BUILDERS)]:  # warm the models' validators
        classes[t].model_validate_json(body).model_dump_json()
    spent: dict[str, float] = defaultdict(float)
    seen: Counter[str] = Counter()
    began = time.perf_counter()
    for t, body in bodies:
        t0 = time.perf_counter()
        classes[t].model_validate_json(body).model_dump_json()
        spent[t] += time.perf_counter() - t0
        seen[t] += 1
    elapsed = time.perf_counter() - began
    began = time.perf_counter()
    for _, body in bodies:
        orjson.dumps(orjson.loads(body))
    raw_elapsed = time.perf_counter() - began
    return Baseline(
        per_s=len(bodies) / elapsed,
        per_type_us={t: spent[t] / seen[t] * 1e6 for t in seen},
        orjson_per_s=len(bodies) / raw_elapsed,
    )


# --------------------------------------------------------------------------------------------
# Load generator: raw HTTP/1.1 keep-alive over asyncio
# --------------------------------------------------------------------------------------------

class HttpError(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


class Connection:
    """One keep-alive HTTP/1.1 connection; one request in flight at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> tuple[Response, bool]:
        """Send one request; return the response and whether the connection stays open."""
        self.writer.write(request)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise HttpError(f"bad status line {lines[0][:80]!r}")
        status = int(parts[1])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        length = headers.get(b"content-length")
        if length is not None:
            body = await self.reader.readexactly(int(length))
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            body = await self._read_chunked()
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:
            body = await self.reader.read()  # delimited by close
            return Response(status, headers, body), False
        keep = headers.get(b"connection", b"").lower() != b"close" and parts[0] == b"HTTP/1.1"
        return Response(status, headers, body), keep

    async def _read_chunked(self) -> bytes:
        chunks = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while (await self.reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


def request_bytes(method: str, path: str, host: str, body: bytes | None = None, token: str | None = None) -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Accept: application/fhir+json"]
    if token is not None:
        head.append(f"Authorization: Bearer {token}")
    if body is not None:
        head += ["Content-Type: application/fhir+json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")


Check = Callable[[int, Response], str | None]  # index, response -> failure text or None


@dataclass
class Phase:
    name: str
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    server_cpu_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    by_type: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def per_s(self) -> float:
        return self.ok / self.wall_s if self.wall_s else 0.0

    def percentile_ms(self, q: float, values: list[float] | None = None) -> float:
        values = sorted(self.latencies if values is None else values)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, round(q * (len(values) - 1)))] * 1e3


async def drive(name: str, host: str, port: int, requests: list[bytes], kinds: list[str],
                check: Check, concurrency: int, server: GatewayProcess) -> Phase:
    """Send every request over `concurrency` keep-alive connections, as fast as answered."""
    phase = Phase(name)
    connections = [await Connection.open(host, port)
                   for _ in range(min(concurrency, len(requests)))]
    indices = iter(range(len(requests)))

    async def worker(conn: Connection | None) -> None:
        for i in indices:
            try:
                if conn is None:
                    conn = await Connection.open(host, port)
                t0 = time.perf_counter()
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    response, keep = await conn.exchange(requests[i])
                elapsed = time.perf_counter() - t0
            except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    TimeoutError, HttpError, ValueError) as exc:
                phase.failures.append(f"{name} #{i} {kinds[i]}: {type(exc).__name__}: {exc}")
                phase.statuses[0] += 1
                if conn is not None:
                    conn.close()
                conn = None
                continue
            phase.statuses[response.status] += 1
            problem = check(i, response)
            if problem is None:
                phase.latencies.append(elapsed)
                phase.by_type[kinds[i]].append(elapsed)
            else:
                phase.failures.append(f"{name} #{i} {kinds[i]}: {problem}")
            if not keep:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    cpu0, server0, t0 = time.process_time(), server.cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    phase.wall_s = time.perf_counter() - t0
    phase.client_cpu_s = time.process_time() - cpu0
    phase.server_cpu_s = server.cpu_seconds() - server0
    return phase


def _snippet(body: bytes, limit: int = 200) -> str:
    text = body[:limit].decode("utf-8", "replace")
    return text + ("..." if len(body) > limit else "")


LOCATION = re.compile(rb"/fhir/([A-Za-z]+)/([A-Za-z0-9\-.]{1,64})/_history/([A-Za-z0-9\-.]{1,64})$")


@dataclass
class StoreRun:
    """What one backend's run produced, for the summary table."""

    backend: str
    baseline: Baseline | None = None
    warmup: Phase | None = None
    create: Phase | None = None
    read: Phase | None = None
    healthz: Phase | None = None
    peak_rss_mb: float | None = None
    rss_after_create_mb: float | None = None
    content_mismatches: list[str] = field(default_factory=list)
    server_problems: list[str] = field(default_factory=list)
    skipped: str | None = None

    @property
    def failures(self) -> int:
        phases = (self.warmup, self.create, self.read, self.healthz)
        return sum(len(p.failures) for p in phases if p is not None)


async def exercise(store: StoreRun, server: GatewayProcess, bodies: list[tuple[str, bytes]],
                   warm_bodies: list[tuple[str, bytes]], concurrency: int, seed: int) -> None:
    host, port = "127.0.0.1", server.port
    authority = f"{host}:{port}"

    # Warm up (untimed, resources of their own) so first-request costs stay out of the figures.
    token = server.token
    warm_requests = [request_bytes("POST", f"/fhir/{t}", authority, b, token) for t, b in warm_bodies]
    store.warmup = await drive("warm-up", host, port, warm_requests, [t for t, _ in warm_bodies],
                lambda i, r: None if r.status == 201 else f"HTTP {r.status}", concurrency, server)

    # Create.
    created: list[tuple[str, str] | None] = [None] * len(bodies)
    requests = [request_bytes("POST", f"/fhir/{t}", authority, b, token) for t, b in bodies]
    kinds = [t for t, _ in bodies]

    def check_create(i: int, r: Response) -> str | None:
        if r.status != 201:
            return f"HTTP {r.status} (expected 201): {_snippet(r.body)}"
        location = r.headers.get(b"location", b"")
        m = LOCATION.search(location)
        if m is None:
            return f"Location {location[:120]!r} is not <base>/fhir/{kinds[i]}/<id>/_history/<vid>"
        try:
            got = orjson.loads(r.body)
        except orjson.JSONDecodeError as exc:
            return f"201 body is not JSON ({exc}): {_snippet(r.body)}"
        rid = m.group(2).decode()
        if m.group(1).decode() != kinds[i] or got.get("resourceType") != kinds[i]:
            return f"created {got.get('resourceType')} at {location!r}, expected {kinds[i]}"
        if got.get("id") != rid:
            return f"body id {got.get('id')!r} differs from Location id {rid!r}"
        created[i] = (kinds[i], rid)
        return None

    report_phase(store.warmup, store.baseline, quiet=True)
    store.create = await drive("create", host, port, requests, kinds, check_create, concurrency,
                               server)
    report_phase(store.create, store.baseline)
    store.rss_after_create_mb = server.peak_rss_mb()
    del requests

    # Read back, in random order.
    order = [i for i, c in enumerate(created) if c is not None]
    random.Random(seed).shuffle(order)
    read_requests = [request_bytes("GET", "/fhir/{}/{}".format(*created[i]), authority, token=token)
                     for i in order]
    read_kinds = [kinds[i] for i in order]

    def check_read(j: int, r: Response) -> str | None:
        i = order[j]
        rtype, rid = created[i]
        if r.status != 200:
            return f"HTTP {r.status} for {rtype}/{rid} (expected 200): {_snippet(r.body)}"
        try:
            got = orjson.loads(r.body)
        except orjson.JSONDecodeError as exc:
            return f"200 body is not JSON ({exc}): {_snippet(r.body)}"
        if got.get("resourceType") != rtype or got.get("id") != rid:
            return f"read {rtype}/{rid} returned {got.get('resourceType')}/{got.get('id')}"
        # Not a request failure, but a store that changes content is worth knowing about.
        differs = _differences(orjson.loads(bodies[i][1]), got)
        if differs:
            store.content_mismatches.append(f"{rtype}/{rid} (#{i}): {', '.join(differs)} differ")
        return None

    store.read = await drive("read", host, port, read_requests, read_kinds, check_read,
                             concurrency, server)
    report_phase(store.read, store.baseline)
    del read_requests

    # For scale: the same server on its cheapest route (HTTP stack, middleware, a database ping).
    health = [request_bytes("GET", "/healthz", authority)] * HEALTHZ_REQUESTS
    store.healthz = await drive("healthz", host, port, health, ["healthz"] * len(health),
                                lambda i, r: None if r.status == 200 else f"HTTP {r.status}",
                                concurrency, server)
    report_phase(store.healthz, store.baseline)
    store.peak_rss_mb = server.peak_rss_mb()


def encode(resource: dict) -> tuple[str, bytes]:
    # orjson's result keeps its whole output buffer (about 8 KB for a 1 KB body, measured with
    # tracemalloc); an exact-size copy keeps 100,000 bodies near 110 MB instead of 500.
    return resource["resourceType"], bytes(memoryview(orjson.dumps(resource)))


def _differences(sent: dict, got: dict) -> list[str]:
    """Top-level elements that came back changed (the server owns id and meta, except that
    the security labels sent must survive)."""
    def labels(d: dict) -> set[tuple[str, str]]:
        return {(c.get("system"), c.get("code")) for c in d.get("meta", {}).get("security", [])}

    out = sorted(k for k in sent.keys() | got.keys()
                 if k not in ("id", "meta") and sent.get(k) != got.get(k))
    if not labels(sent) <= labels(got):
        out.append("meta.security")
    return out


# --------------------------------------------------------------------------------------------
# The server under test
# --------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_server_command() -> list[str]:
    for candidate in (Path(sys.executable).parent / "gateway", REPO_ROOT / ".venv/bin/gateway"):
        if candidate.exists():
            return [str(candidate), "serve"]
    return ["gateway", "serve"]


class ServerDidNotStart(Exception):
    pass


class GatewayProcess:
    """`gateway serve` in a subprocess with its own data directory; its log goes to a file
    (a pipe nobody reads would block the server once full)."""

    def __init__(self, command: list[str], data_dir: Path, database_url: str) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.log_path = data_dir / "server.log"
        self.database_url = database_url
        self.data_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
        self.token: str | None = None  # the benchmark agency's access token (see `take_token`)
        env = dict(os.environ)
        env.update({
            "GATEWAY_DATA_DIR": str(data_dir),
            "GATEWAY_DATABASE_URL": database_url,
            "GATEWAY_DATA_KEY": self.data_key,
            "GATEWAY_TOKEN_LIFETIME_SECONDS": "3600",  # long runs (--count 100000) outlast the default 300 s
        })
        self.command = [*command, "--host", "127.0.0.1", "--port", str(self.port)]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.command, env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.exit_code: int | None = None

    def take_token(self) -> None:
        """Register the benchmark's agency system on the server's database, as an operator
        would, and ask the server's /auth/token for a token (SMART Backend Services)."""
        from joserfc import jwt
        from joserfc.jwk import ECKey, KeySet

        from gateway.bootstrap import build_services
        from gateway.domain.agencies import Agency
        from gateway.domain.vocabulary import AgencyType, Jurisdiction
        from gateway.settings import Settings

        settings = Settings(data_dir=self.data_dir, database_url=self.database_url, data_key=self.data_key)
        services = build_services(settings, upgrade_schema=False)
        key = ECKey.generate_key("P-256", parameters={"kid": "bench-1"}, private=True)
        try:
            services.identity.agencies.add(Agency("bench-agency", "Benchmark agency", AgencyType.POLICE, Jurisdiction.VIC))
            services.identity.clients.add("bench-loader", "bench-agency", BENCH_SCOPES, jwks=KeySet([key]).as_dict(private=False))
        finally:
            services.close()
        url = f"http://127.0.0.1:{self.port}/auth/token"
        claims = {"iss": "bench-loader", "sub": "bench-loader", "aud": url, "exp": int(time.time()) + 240, "jti": uuid.uuid4().hex}
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials", "scope": BENCH_SCOPES,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key, algorithms=["ES256"]),
        }).encode()
        request = urllib.request.Request(url, data=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            self.token = orjson.loads(answer.read())["access_token"]

    def wait_ready(self) -> float:
        began = time.monotonic()
        url = f"http://127.0.0.1:{self.port}/healthz"
        while time.monotonic() - began < READY_TIMEOUT_S:
            if self.proc.poll() is not None:
                raise ServerDidNotStart(f"server exited with code {self.proc.returncode} before "
                                        f"/healthz answered\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return time.monotonic() - began
            time.sleep(0.1)
        raise ServerDidNotStart(f"/healthz not 200 within {READY_TIMEOUT_S:.0f} s\n{self.log_tail()}")

    def _tree(self) -> list[int]:
        """The server's pid and its descendants' (a launcher may fork the real server)."""
        pids, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            with contextlib.suppress(OSError):
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as f:
                        todo += [int(c) for c in f.read().split()]
        return pids

    def peak_rss_mb(self) -> float | None:
        """Sum of VmHWM over the process tree (one process for a single uvicorn worker)."""
        peaks = []
        for pid in self._tree():
            with contextlib.suppress(OSError):
                peaks.append(processes.peak_rss_mb(pid))
        found = [p for p in peaks if p is not None]
        return sum(found) if found else None

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self._tree():
            with contextlib.suppress(OSError):
                total += processes.cpu_seconds(pid)
        return total

    def log_tail(self, lines: int = 25) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "--- server log (tail) ---\n" + "\n".join(text) if text else "(server log empty)"

    def stop(self) -> str | None:
        """SIGTERM and wait; returns a complaint if the stop was not clean."""
        problem = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                problem = f"did not exit within {STOP_TIMEOUT_S:.0f} s of SIGTERM; killed"
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        else:
            problem = f"had already exited with code {self.proc.returncode}"
        self.exit_code = self.proc.returncode
        if problem is None and self.exit_code not in (0, -signal.SIGTERM):
            problem = f"exited with code {self.exit_code} after SIGTERM"
        self._log.close()
        return problem


# --------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------

class BackendUnavailable(Exception):
    pass


@contextlib.contextmanager
def sqlite_database() -> Iterator[str]:
    yield ""  # empty: SQLite under the fresh data directory


@contextlib.contextmanager
def postgresql_database(name: str) -> Iterator[str]:
    """A fresh database: on GATEWAY_BENCH_POSTGRES_URL's server if set, else on a throwaway
    server from tests/support/postgres.py."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    url = os.environ.get("GATEWAY_BENCH_POSTGRES_URL")
    try:
        from tests.support import postgres as support
    except Exception as exc:  # noqa: BLE001 - any import problem means: no PostgreSQL here
        if url:
            print(f"  (tests.support.postgres unavailable ({exc}): using GATEWAY_BENCH_POSTGRES_URL "
                  "as given, not a fresh database)")
            yield url
            return
        raise BackendUnavailable(f"tests.support.postgres not importable: {exc}") from exc
    if url:
        server = support.ExternalPostgres(url)
    else:
        try:
            server = support.PostgresServer()
            server.start()
        except Exception as exc:  # noqa: BLE001
            raise BackendUnavailable(f"could not start a throwaway PostgreSQL: {exc}") from exc
    try:
        try:
            server.create_database(name)
        except Exception as exc:  # noqa: BLE001
            raise BackendUnavailable(f"could not create database {name!r}: {exc}") from exc
        try:
            yield server.database_url(name)
        finally:
            if url:
                with contextlib.suppress(Exception):
                    server.drop_database(name)
    finally:
        if not url:
            server.stop()


BACKENDS = {"sqlite": sqlite_database, "postgresql": postgresql_database}


def run_backend(backend: str, command: list[str], bodies: list[tuple[str, bytes]],
                warm_bodies: list[tuple[str, bytes]], concurrency: int, seed: int) -> StoreRun:
    store = StoreRun(backend)
    print(f"\n== {backend}")
    opener = BACKENDS[backend]
    try:
        database = opener(f"bench_{uuid.uuid4().hex[:12]}") if backend == "postgresql" else opener()
        with database as database_url, tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
            # The baseline next to the run it scales: load on a shared machine drifts.
            store.baseline = measure_baseline(bodies[:BASELINE_MAX])
            report_baseline(store.baseline, min(len(bodies), BASELINE_MAX))
            try:
                server = GatewayProcess(command, Path(tmp), database_url)
            except OSError as exc:
                store.server_problems.append(f"could not run {' '.join(command)}: {exc}")
                print(f"  SERVER: {store.server_problems[-1]}")
                return store
            try:
                ready = server.wait_ready()
                server.take_token()
                print(f"  server pid {server.proc.pid} on port {server.port}, ready in {ready:.1f} s")
                asyncio.run(exercise(store, server, bodies, warm_bodies, concurrency, seed))
            except ServerDidNotStart as exc:
                store.server_problems.append(f"did not start: {exc}")
            finally:
                problem = server.stop()
                if problem and store.create is not None:  # else "did not start" says it all
                    store.server_problems.append(f"stop: {problem}")
                if store.server_problems or store.failures:
                    print(server.log_tail())
    except BackendUnavailable as exc:
        store.skipped = str(exc)
        print(f"  skipped: {exc}")
        return store
    report_backend(store)
    return store


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def report_baseline(baseline: Baseline, count: int) -> None:
    per_type = "  ".join(f"{t} {us:.0f}" for t, us in baseline.per_type_us.items())
    print(f"  baseline  fhir.resources parse+serialise {baseline.per_s:,.0f}/s, single thread, "
          f"{count:,} resources  [us each: {per_type}]; orjson load+dump {baseline.orjson_per_s:,.0f}/s")


def report_phase(phase: Phase, baseline: Baseline, quiet: bool = False) -> None:
    if quiet and not phase.failures:
        return
    types = "  ".join(f"{t} {phase.percentile_ms(0.5, v):.1f}" for t, v in phase.by_type.items())
    print(f"  {phase.name:<7} {phase.ok:>7,} ok in {phase.wall_s:6.2f} s = {phase.per_s:8,.0f}/s"
          f"  ({phase.per_s / baseline.per_s:.2f}x baseline)"
          f"  p50 {phase.percentile_ms(0.5):6.1f} ms  p99 {phase.percentile_ms(0.99):6.1f} ms"
          f"  | CPU server {phase.server_cpu_s / phase.wall_s:4.0%} client "
          f"{phase.client_cpu_s / phase.wall_s:4.0%}")
    if len(phase.by_type) > 1:
        print(f"          p50 ms by type: {types}")
    if phase.failures:
        print(f"  {phase.name}: {len(phase.failures)} FAILED; statuses {dict(phase.statuses)}")
        for line in phase.failures[:5]:
            print(f"    {line}")


def report_backend(store: StoreRun) -> None:
    print(f"  peak RSS {_fmt(store.peak_rss_mb, '.0f')} MB "
          f"(after create {_fmt(store.rss_after_create_mb, '.0f')} MB)")
    if store.content_mismatches:
        print(f"  WARNING {len(store.content_mismatches)} reads differ from what was created, e.g.")
        for line in store.content_mismatches[:3]:
            print(f"    {line}")
    for problem in store.server_problems:
        print(f"  SERVER: {problem.splitlines()[0]}")


def summary(runs: list[StoreRun], count: int, concurrency: int) -> None:
    print(f"\n== summary: {count:,} resources, {concurrency} connections")
    head = (f"{'backend':<11}{'base/s':>7}{'create/s':>9}{'x base':>7}{'p50':>7}{'p99':>7}"
            f"{'read/s':>9}{'x base':>7}{'p50':>7}{'p99':>7}{'healthz/s':>10}{'RSS MB':>8}"
            f"{'failed':>8}")
    print(head)
    print("-" * len(head))
    for s in runs:
        if s.skipped:
            print(f"{s.backend:<11}skipped: {s.skipped}")
            continue
        c, r, h, baseline = s.create, s.read, s.healthz, s.baseline
        cells = [f"{s.backend:<11}{_fmt(baseline.per_s):>7}"]
        for p in (c, r):
            cells.append(f"{_fmt(p and p.per_s):>9}{_fmt(p and p.per_s / baseline.per_s, '.2f'):>7}"
                         f"{_fmt(p and p.percentile_ms(0.5), '.1f'):>7}"
                         f"{_fmt(p and p.percentile_ms(0.99), '.1f'):>7}")
        cells.append(f"{_fmt(h and h.per_s):>10}{_fmt(s.peak_rss_mb, '.0f'):>8}{s.failures:>8}")
        print("".join(cells))
    print("base/s = fhir.resources parse+serialise of the same resources, single thread, measured\n"
          "just before that backend; x base = HTTP rate / base/s; p50/p99 latency in ms")
    print("\ntargets (printed, not asserted):")
    for s in runs:
        if s.backend != "sqlite" or s.skipped:
            continue
        for label, phase, target in (("create", s.create, TARGET_CREATE_PER_S),
                                     ("read", s.read, TARGET_READ_PER_S)):
            rate = phase.per_s if phase else 0.0
            print(f"  sqlite {label:<6} >= {target:,}/s: {rate:8,.0f}/s  "
                  f"{'met' if rate >= target else 'MISSED'}")
    for s in runs:
        if s.skipped or s.peak_rss_mb is None:
            continue
        verdict = "met" if s.peak_rss_mb < TARGET_RSS_MB else "MISSED"
        if count < RSS_TARGET_COUNT:
            verdict += f" (the target is for --count {RSS_TARGET_COUNT:,}; this run had {count:,})"
        print(f"  {s.backend:<10} peak RSS < {TARGET_RSS_MB} MB: {s.peak_rss_mb:6.0f} MB  {verdict}")


# --------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000,
                        help="resources to create (default 20000)")
    parser.add_argument("--concurrency", type=int, default=8, help="HTTP connections (default 8)")
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql (default both)")
    parser.add_argument("--quick", action="store_true", help="smoke run: --count 500")
    parser.add_argument("--seed", type=int, default=20261124, help="read order (default fixed)")
    parser.add_argument("--server-command", default=None,
                        help="command that serves the gateway, without --host/--port "
                             "(default: the venv's `gateway serve`)")
    args = parser.parse_args(argv)
    count = 500 if args.quick else args.count
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or count < 1 or args.concurrency < 1:
        parser.error(f"unknown backend(s) {unknown}" if unknown
                     else "--count and --concurrency must be >= 1")
    command = shlex.split(args.server_command) if args.server_command else default_server_command()
    sys.stdout.reconfigure(line_buffering=True)  # progress shows as it happens, also in a log file

    with contextlib.suppress(ImportError):
        import uvloop  # less client overhead per request than the default loop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

    run = uuid.uuid4().hex[:8]
    self_test(run)
    # Only the encoded bodies are kept: 100,000 dicts would hold about 0.5 GB in the client.
    bodies = [encode(build_resource(i, run)) for i in range(count)]
    warm_bodies = [encode(build_resource(i, run + "-warm"))
                   for i in range(min(200, max(len(BUILDERS), count // 20)))]
    avg = sum(len(b) for _, b in bodies) / len(bodies)
    print(f"fhir_store bench: {count:,} resources ({', '.join(b.__name__ for b in BUILDERS)}; "
          f"avg {avg:,.0f} bytes), concurrency {args.concurrency}, server {' '.join(command)}")
    print("self-test: the five builders validate with fhir.resources R4B and round-trip")

    runs = [run_backend(b, command, bodies, warm_bodies, args.concurrency, args.seed)
            for b in backends]
    summary(runs, count, args.concurrency)

    failed = sum(s.failures for s in runs)
    broken = [s.backend for s in runs if s.server_problems and (s.create is None)]
    if failed or broken:
        reasons = ([f"{failed:,} request(s) failed"] if failed else []) + (
            [f"the server did not run for {', '.join(broken)}"] if broken else [])
        print(f"\nFAILED: {'; '.join(reasons)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
