"""Benchmark of SMART Backend Services: tokens issued per second, access tokens verified per second.

Builds the gateway's services in process on a fresh SQLite file (or `--database-url`), registers
an agency and two clients (RS384 and ES384 keys), and signs every client assertion before the
clock starts (each with its own jti). Then:

- issuance: `TokenEndpoint.issue` for each assertion, as `POST /auth/token` runs it minus HTTP:
  authlib's grant, assertion verification, the jti row written to the database, the access
  token signed. One thread, then `--threads` threads (SQLite commits concurrent jti rows in
  one group).
- verification: `AccessTokenVerifier.verify` of distinct tokens never seen (signature and
  claims checked), and of tokens already verified (the per-process cache).

Each figure is set beside its raw baseline measured in the same run, because absolute rates on
shared machines vary from run to run (DESIGN.md section 9): joserfc verifying the same
assertion plus signing one access token (no authlib, no database) for issuance; joserfc
decoding the same access token with an already parsed key for verification.

FHIR reads with and without authentication: not measured yet. The FHIR API does not require
tokens until access enforcement lands (issue 6, point 3); that comparison goes in
`fhir_read_with_and_without_auth` below.

    .venv/bin/python bench/auth.py            # 2,000 tokens per issuance run
    .venv/bin/python bench/auth.py --quick    # 300: smoke run
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from joserfc import jwt  # noqa: E402
from joserfc.jwk import ECKey, KeySet, RSAKey  # noqa: E402

from gateway.bootstrap import build_services  # noqa: E402
from gateway.domain.agencies import Agency  # noqa: E402
from gateway.domain.vocabulary import AgencyType, Jurisdiction, PrescribedStatus  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from gateway.store.encryption import generate_kek  # noqa: E402

ROOT = "https://gateway.bench"
TOKEN_URL = f"{ROOT}/auth/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPE = "system/Task.rs system/Patient.rs"
DEFAULT_COUNT, QUICK_COUNT = 2_000, 300


def client_key(alg: str, kid: str):
    if alg.startswith("RS"):
        return RSAKey.generate_key(2048, parameters={"kid": kid}, private=True)
    return ECKey.generate_key("P-384", parameters={"kid": kid}, private=True)


def assertions(client_id: str, key, alg: str, count: int) -> list[str]:
    exp = int(time.time()) + 280
    return [
        jwt.encode({"alg": alg, "kid": key.kid}, {"iss": client_id, "sub": client_id, "aud": TOKEN_URL, "exp": exp, "jti": uuid.uuid4().hex}, key,
                   algorithms=[alg])
        for _ in range(count)
    ]


def form(assertion: str) -> dict:
    return {"grant_type": "client_credentials", "scope": SCOPE, "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}


def timed(work, items) -> float:
    """Items per second over the whole list, garbage collector paused as timeit does."""
    gc.disable()
    try:
        start = time.perf_counter()
        for item in items:
            work(item)
        return len(items) / (time.perf_counter() - start)
    finally:
        gc.enable()


def timed_threads(work, items, threads: int) -> float:
    chunks = [items[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=lambda c=c: [work(x) for x in c]) for c in chunks]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return len(items) / (time.perf_counter() - start)


def issue_checked(tokens):
    def issue(assertion: str) -> str:
        answer = tokens.issue(form(assertion), ROOT)
        if answer.status != 200:
            raise SystemExit(f"token request refused: {answer.body}")
        return answer.body["access_token"]

    return issue


def raw_issuance(client_keys: KeySet, signer, alg: str):
    """What issuance cannot avoid: verify the assertion, sign a token (no authlib, no database)."""

    def work(assertion: str) -> None:
        jwt.decode(assertion, client_keys, algorithms=[alg])
        now = int(time.time())
        claims = {"iss": ROOT, "aud": ROOT, "sub": "c", "agency": "a", "scope": SCOPE, "iat": now, "exp": now + 300, "jti": "x"}
        jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": signer.kid}, claims, signer)

    return work


def fhir_read_with_and_without_auth() -> str:
    return "not measured yet: the FHIR API requires tokens once access enforcement lands (issue 6, point 3)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_COUNT} tokens per issuance run (smoke run)")
    parser.add_argument("--count", type=int, help=f"tokens per issuance run (default {DEFAULT_COUNT:,})")
    parser.add_argument("--threads", type=int, default=4, help="threads for the concurrent issuance run")
    parser.add_argument("--database-url", default="", help="SQLAlchemy URL (default: a fresh SQLite file)")
    args = parser.parse_args(argv)
    count = args.count or (QUICK_COUNT if args.quick else DEFAULT_COUNT)

    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(data_dir=Path(data_dir), database_url=args.database_url, data_key=generate_kek())
        services = build_services(settings)
        try:
            return run(services, count, args.threads)
        finally:
            services.close()


def run(services, count: int, threads: int) -> int:
    identity = services.identity
    identity.agencies.add(Agency("vicpol", "Victoria Police", AgencyType.POLICE, Jurisdiction.VIC,
                                 frozenset({PrescribedStatus.INFORMATION_SHARING_ENTITY})))
    backend = services.db.url.get_backend_name()
    print(f"auth benchmark: {count:,} tokens per issuance run, {backend}, {threads} threads for the concurrent run")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    signer = identity.signing.signer()
    issue = issue_checked(identity.tokens)

    print()
    print(f"{'issuance (assertion -> access token)':44}{'tokens/s':>10}{'ms each':>9}{'raw tokens/s':>14}{'ratio':>8}")
    tokens: list[str] = []
    for alg in ("RS384", "ES384"):
        client_id = f"vicpol-{alg.lower()}"
        key = client_key(alg, f"{client_id}-1")
        identity.clients.add(client_id, "vicpol", SCOPE, jwks=KeySet([key]).as_dict(private=False))
        for warm in assertions(client_id, key, alg, 20):  # caches, first key parse, prepared statements
            issue(warm)
        raw_rate = timed(raw_issuance(KeySet([key]), signer, alg), assertions(client_id, key, alg, min(count, 500)))
        batch = assertions(client_id, key, alg, count)
        rate = timed(lambda a: tokens.append(issue(a)), batch)
        print(f"{'  ' + alg + ', one thread':44}{rate:>10,.0f}{1000 / rate:>9.2f}{raw_rate:>14,.0f}{raw_rate / rate:>7.1f}x")
        batch = assertions(client_id, key, alg, count)
        rate = timed_threads(issue, batch, threads)
        print(f"{'  ' + alg + f', {threads} threads':44}{rate:>10,.0f}{1000 / rate:>9.2f}{'':>14}{raw_rate / rate:>7.1f}x")

    access = identity.access
    verify = lambda token: access.verify(token, ROOT)  # noqa: E731
    published = identity.signing.published()
    raw = lambda token: jwt.decode(token, published, algorithms=["ES256"])  # noqa: E731
    cold = tokens[: min(len(tokens), 2_000)]
    rounds_cold, rounds_warm = [], []
    for _ in range(3):
        access._cache.clear()  # every token unseen again
        rounds_cold.append(timed(verify, cold))
        rounds_warm.append(timed(verify, cold))
    raw_rate = timed(raw, cold)
    cold_rate, warm_rate = sorted(rounds_cold)[1], sorted(rounds_warm)[1]
    print()
    print(f"{'access-token verification':44}{'tokens/s':>10}{'µs each':>9}{'raw tokens/s':>14}{'ratio':>8}")
    print(f"{'  unseen token (signature + claims)':44}{cold_rate:>10,.0f}{1e6 / cold_rate:>9.1f}{raw_rate:>14,.0f}{raw_rate / cold_rate:>7.1f}x")
    print(f"{'  token verified before (cache)':44}{warm_rate:>10,.0f}{1e6 / warm_rate:>9.1f}{raw_rate:>14,.0f}{raw_rate / warm_rate:>7.2f}x")
    print(f"  rounds (median shown): unseen {', '.join(f'{r:,.0f}' for r in rounds_cold)}; "
          f"cached {', '.join(f'{r:,.0f}' for r in rounds_warm)}")
    print()
    print(f"FHIR read with vs without auth: {fhir_read_with_and_without_auth()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
