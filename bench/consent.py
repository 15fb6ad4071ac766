"""Benchmark of the consent-threshold engine: decisions per second and per-decision latency.

Builds a few hundred varied DecisionRequest objects before the clock starts. They cover all four
jurisdictions, every subject role, consent status and purpose, prescribed and unprescribed
parties, consent limited to named recipients, withdrawals before and after the release, some
excluded labels and some requests for the victim survivor's location from a service that works
with the person using violence. It then runs them round-robin through `ConsentEngine.decide`
(policies loaded once, with `ConsentEngine.from_directory()`, outside the timed loops):

- throughput: a tight loop over a prepared list of N requests, timed as a whole;
- latency: `time.perf_counter_ns()` around each call, giving p50 and p99 in microseconds.

A no-op function call of the same shape (a bound `decide(request)` returning a prepared
Decision) is measured in the same run, so the figures can be read as a ratio on shared
machines, where absolute rates vary from run to run. The garbage collector is paused during the
timed loops, as `timeit` does. The target (at most 20 µs per decision) is printed, never
asserted. The exit status is 1 only if a decision came back as an engine error.

    .venv/bin/python bench/consent.py            # 200,000 decisions per measurement
    .venv/bin/python bench/consent.py --quick    # 20,000: smoke run
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from gateway.consent.engine import ConsentEngine, _decision_id  # noqa: E402
from gateway.consent.model import ConsentOnFile, Decision, DecisionRequest, Outcome, Party  # noqa: E402
from gateway.domain.vocabulary import (  # noqa: E402
    PUV_SERVICE_TYPES,
    AgencyType,
    ConsentStatus,
    ExcludedInformation,
    InformationCategory,
    Jurisdiction,
    PrescribedStatus,
    RfiPurpose,
    SubjectRole,
)

TARGET_US = 20.0  # per decision
DEFAULT_COUNT = 200_000
QUICK_COUNT = 20_000
DISTINCT = 400  # distinct requests in the mix
NOW = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)

A, P = AgencyType, PrescribedStatus
ISE, RAE, CISS = P.INFORMATION_SHARING_ENTITY, P.RISK_ASSESSMENT_ENTITY, P.CHILD_INFORMATION_SHARING_ENTITY
QLD_P, QLD_S = P.QLD_PRESCRIBED_ENTITY, P.QLD_SPECIALIST_DFV_SERVICE

# The agencies of each jurisdiction, prescribed as they are in practice (the last ones are not).
PARTIES: dict[Jurisdiction, list[Party]] = {
    Jurisdiction.VIC: [
        Party(A.POLICE, frozenset({ISE, RAE, CISS}), "vicpol"),
        Party(A.SPECIALIST_FV_VICTIM_SURVIVOR, frozenset({ISE, RAE, CISS}), "safe-steps"),
        Party(A.CHILD_PROTECTION, frozenset({ISE, RAE, CISS}), "dffh-cp"),
        Party(A.HEALTH, frozenset({ISE, CISS}), "monash-health"),
        Party(A.MENTAL_HEALTH, frozenset({ISE}), "amh-dandenong"),
        Party(A.AOD, frozenset({ISE}), "aod-turning-point"),
        Party(A.HOUSING, frozenset({ISE}), "housing-vic"),
        Party(A.EDUCATION, frozenset({ISE, CISS}), "school-42"),
        Party(A.COURTS, frozenset({ISE, CISS}), "magistrates"),
        Party(A.CORRECTIONS, frozenset({ISE}), "corrections-vic"),
        Party(A.SPECIALIST_FV_PERSON_USING_VIOLENCE, frozenset({ISE, RAE}), "mbcp-north"),
        Party(A.ACCO, frozenset({ISE, CISS}), "vacca"),
        Party(A.OTHER, frozenset(), "private-counsellor"),
        Party(A.YOUTH_JUSTICE, frozenset(), None),
    ],
    Jurisdiction.QLD: [
        Party(A.POLICE, frozenset({QLD_P}), "qps"),
        Party(A.CHILD_PROTECTION, frozenset({QLD_P}), "child-safety"),
        Party(A.HEALTH, frozenset({QLD_P}), "qh-metro-south"),
        Party(A.HOUSING, frozenset({QLD_P}), "qld-housing"),
        Party(A.CORRECTIONS, frozenset({QLD_P}), "qcs"),
        Party(A.SPECIALIST_FV_VICTIM_SURVIVOR, frozenset({QLD_S}), "dvconnect"),
        Party(A.SPECIALIST_FV_PERSON_USING_VIOLENCE, frozenset({QLD_S}), "mbcp-logan"),
        Party(A.ACCO, frozenset(), "support-service"),
        Party(A.OTHER, frozenset(), None),
    ],
    Jurisdiction.WA: [
        Party(A.POLICE, frozenset(), "wapol"),
        Party(A.CHILD_PROTECTION, frozenset(), "communities"),
        Party(A.HEALTH, frozenset(), "wa-health"),
        Party(A.HOUSING, frozenset(), "wa-housing"),
        Party(A.CORRECTIONS, frozenset(), "wa-corrections"),
        Party(A.SPECIALIST_FV_VICTIM_SURVIVOR, frozenset(), "fdv-response-team"),
        Party(A.SPECIALIST_FV_PERSON_USING_VIOLENCE, frozenset(), "wa-mbcp"),
        Party(A.OTHER, frozenset(), None),
    ],
    Jurisdiction.DEFAULT: [
        Party(A.POLICE, frozenset(), "afp"),
        Party(A.HEALTH, frozenset(), "gp-clinic"),
        Party(A.HOUSING, frozenset(), "community-housing"),
        Party(A.CORRECTIONS, frozenset(), "act-corrections"),
        Party(A.SPECIALIST_FV_VICTIM_SURVIVOR, frozenset(), "dv-crisis-line"),
        Party(A.OTHER, frozenset(), None),
    ],
}
JURISDICTION_WEIGHTS = {Jurisdiction.VIC: 4, Jurisdiction.QLD: 3, Jurisdiction.WA: 2, Jurisdiction.DEFAULT: 1}
PURPOSE_WEIGHTS = {RfiPurpose.RISK_MANAGEMENT: 6, RfiPurpose.RISK_ASSESSMENT: 3, RfiPurpose.CHILD_WELLBEING_SAFETY: 2}


def build_requests(distinct: int, seed: int) -> list[DecisionRequest]:
    """A varied, repeatable mix; the first rows pin every role, consent status and purpose."""
    rng = random.Random(seed)
    jurisdictions = list(JURISDICTION_WEIGHTS)
    purposes = list(PURPOSE_WEIGHTS)
    roles, statuses, categories = list(SubjectRole), list(ConsentStatus), list(InformationCategory)
    requests = []
    for index in range(distinct):
        jurisdiction = jurisdictions[index % 4] if index < 4 else rng.choices(jurisdictions, list(JURISDICTION_WEIGHTS.values()))[0]
        pool = PARTIES[jurisdiction]
        requester, releaser = _two_parties(rng, jurisdiction, pool)
        category = rng.choice(categories)
        if rng.random() < 0.06:  # her location asked for by a service working with the person using violence
            requester = rng.choice([p for p in pool if p.agency_type in PUV_SERVICE_TYPES])
            category = InformationCategory.VICTIM_SURVIVOR_LOCATION
        status = statuses[index % len(statuses)] if index < 20 else rng.choice(statuses)
        consent = _consent(rng, status, requester)
        excluded = frozenset(rng.sample(list(ExcludedInformation), rng.choice((1, 1, 2)))) if rng.random() < 0.08 else frozenset()
        requests.append(DecisionRequest(
            jurisdiction=jurisdiction,
            purpose=purposes[index % 3] if index < 12 else rng.choices(purposes, list(PURPOSE_WEIGHTS.values()))[0],
            requester=requester,
            releaser=releaser,
            subject_role=roles[index % 4] if index < 16 else rng.choice(roles),
            category=category,
            excluded=excluded,
            consent=consent,
            serious_threat=rng.random() < 0.25,
            child_at_risk=rng.random() < 0.3,
            at=None if rng.random() < 0.1 else NOW + timedelta(minutes=rng.randrange(0, 60 * 24 * 30)),
        ))
    rng.shuffle(requests)
    return requests


def _two_parties(rng: random.Random, jurisdiction: Jurisdiction, pool: list[Party]) -> tuple[Party, Party]:
    """Two different agencies; where a scheme prescribes agencies, unprescribed ones ask less often."""
    schemes = (Jurisdiction.VIC, Jurisdiction.QLD)
    weights = [1.0 if party.prescribed or jurisdiction not in schemes else 0.25 for party in pool]
    requester = rng.choices(pool, weights)[0]
    releaser = rng.choices([p for p in pool if p is not requester], [w for p, w in zip(pool, weights) if p is not requester])[0]
    return requester, releaser


def _consent(rng: random.Random, status: ConsentStatus, requester: Party) -> ConsentOnFile:
    recipients: tuple[str, ...] = ()
    if status in (ConsentStatus.GIVEN, ConsentStatus.WITHDRAWN) and rng.random() < 0.25:  # given to named recipients only
        recipients = (rng.choice((requester.agency_type.value, requester.id or "nobody", "housing", "police")),)
    date = NOW + timedelta(days=rng.randrange(-90, 60)) if rng.random() < 0.7 else None
    return ConsentOnFile(status, recipients, date)


def throughput(decide: Callable, load: Sequence[DecisionRequest]) -> float:
    """Decisions per second over the whole list, in one tight loop."""
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for request in load:
            decide(request)
        elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
    return len(load) / (elapsed / 1e9)


def latencies(decide: Callable, load: Sequence[DecisionRequest]) -> list[int]:
    """Nanoseconds per call, sorted."""
    clock = time.perf_counter_ns
    found = [0] * len(load)
    gc.disable()
    try:
        for index, request in enumerate(load):
            start = clock()
            decide(request)
            found[index] = clock() - start
    finally:
        gc.enable()
    found.sort()
    return found


def percentile(sorted_ns: list[int], fraction: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(fraction * len(sorted_ns)))] / 1_000


class NoopEngine:
    """A call of the same shape as ConsentEngine.decide that does nothing."""

    def __init__(self, answer: Decision):
        self.answer = answer

    def decide(self, request: DecisionRequest) -> Decision:
        return self.answer


def verdict(value_us: float) -> str:
    return "met" if value_us <= TARGET_US else "NOT met"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_COUNT:,} decisions per measurement (smoke run)")
    parser.add_argument("--count", type=int, help=f"decisions per measurement (default {DEFAULT_COUNT:,})")
    parser.add_argument("--distinct", type=int, default=DISTINCT, help="distinct requests in the mix")
    parser.add_argument("--seed", type=int, default=1, help="seed of the request mix")
    args = parser.parse_args(argv)
    count = args.count or (QUICK_COUNT if args.quick else DEFAULT_COUNT)

    engine = ConsentEngine.from_directory()
    requests = build_requests(args.distinct, args.seed)
    load = [requests[i % len(requests)] for i in range(count)]
    noop = NoopEngine(engine.decide(requests[0]))

    print(f"consent engine benchmark: {count:,} decisions per measurement over {len(requests)} distinct requests (seed {args.seed})")
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rules_total = sum(len(policy.rules) for policy in engine.policies.values())
    outcomes, rules = Counter(), Counter()
    for request in requests:
        decision = engine.decide(request)
        outcomes[decision.decision] += 1
        rules[decision.rule] += 1
    exercised = sum(1 for policy in engine.policies.values() for rule in policy.rules if rules[rule.spec.id])
    print("mix: " + ", ".join(f"{j.value} {n}" for j, n in sorted(Counter(r.jurisdiction for r in requests).items())))
    print("     " + ", ".join(f"{o.value} {outcomes[o]}" for o in Outcome)
          + f"; {sum(1 for r in requests if r.excluded)} with excluded labels, "
          f"{rules['victim-survivor-location-to-puv-service']} location-to-PuV-service, "
          f"{exercised} of {rules_total} policy rules exercised")

    # warm up (first calls, caches), untimed
    for request in requests * 3:
        engine.decide(request)
        noop.decide(request)

    rounds = 3
    engine_rates, noop_rates = [], []
    for _ in range(rounds):  # interleaved, so drift on a shared machine hits both alike
        engine_rates.append(throughput(engine.decide, load))
        noop_rates.append(throughput(noop.decide, load))
    engine_rate, noop_rate = sorted(engine_rates)[rounds // 2], sorted(noop_rates)[rounds // 2]
    engine_ns, noop_ns = latencies(engine.decide, load), latencies(noop.decide, load)

    # where the time goes (private parts of the engine, for diagnosis only)
    policies = engine.policies
    part = load[: max(1, count // 4)]
    rules_rate = throughput(lambda r: engine._decide(r, policies.get(r.jurisdiction) or policies[Jurisdiction.DEFAULT], ""), part)
    id_rate = throughput(lambda r: _decision_id(r, policies.get(r.jurisdiction) or policies[Jurisdiction.DEFAULT]), part)
    lambda_rate = throughput(lambda r: noop.decide(r), part)

    mean_engine, mean_noop = 1e6 / engine_rate, 1e6 / noop_rate
    p50, p99 = percentile(engine_ns, 0.50), percentile(engine_ns, 0.99)
    print()
    print(f"{'':34}{'decisions/s':>14}{'mean µs':>10}{'p50 µs':>9}{'p99 µs':>9}{'max µs':>10}")
    print(f"{'ConsentEngine.decide':34}{engine_rate:>14,.0f}{mean_engine:>10.2f}{p50:>9.2f}{p99:>9.2f}"
          f"{engine_ns[-1] / 1000:>10.1f}")
    print(f"{'no-op call, same shape':34}{noop_rate:>14,.0f}{mean_noop:>10.3f}{percentile(noop_ns, 0.5):>9.2f}"
          f"{percentile(noop_ns, 0.99):>9.2f}{noop_ns[-1] / 1000:>10.1f}")
    print(f"  throughput rounds (decisions/s): engine {', '.join(f'{r:,.0f}' for r in engine_rates)}; "
          f"no-op {', '.join(f'{r:,.0f}' for r in noop_rates)} (median shown)")
    print(f"  latency includes the clock reads: a timed no-op call is {percentile(noop_ns, 0.5):.2f} µs at p50")
    print(f"ratio: a decision costs {noop_rate / engine_rate:,.0f}x a no-op call "
          f"({mean_engine - mean_noop:.2f} µs of work per decision)")
    print(f"breakdown (per decision, {len(part):,} calls, less a {1e6 / lambda_rate:.2f} µs lambda call): "
          f"rules and gates {1e6 / rules_rate - 1e6 / lambda_rate:.2f} µs, "
          f"decision id {1e6 / id_rate - 1e6 / lambda_rate:.2f} µs")
    print()
    print(f"target ≤ {TARGET_US:.0f} µs per decision: mean {mean_engine:.2f} µs {verdict(mean_engine)}; "
          f"p50 {p50:.2f} µs {verdict(p50)}; p99 {p99:.2f} µs {verdict(p99)}")

    if rules["engine-error"]:
        print(f"warning: {rules['engine-error']} of {len(requests)} requests ended in an engine error (denied)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
