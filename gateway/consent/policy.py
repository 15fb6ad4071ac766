"""Jurisdiction policies as data: load, check and compile one YAML file per scheme.

A rule is an `id`, a `when` (all conditions must hold), a decision, the legal basis it rests on
(a LegalBasis code and the act and section in words), obligations, and how settled the law
behind it is. Loading refuses, naming the file, line and rule: malformed YAML, unknown fields or
codes, a `permit` resting on law that is not settled, two rules with the same conditions, and a
rule that an earlier, broader rule makes unreachable.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.consent.model import Decision, DecisionRequest, Obligation, Outcome
from gateway.domain.vocabulary import (
    AgencyType,
    ConsentStatus,
    InformationCategory,
    Jurisdiction,
    LegalBasis,
    PrescribedStatus,
    RfiPurpose,
    SubjectRole,
)

Predicate = Callable[[DecisionRequest, ConsentStatus], bool]


class PolicyError(Exception):
    """A policy file that must not be used; the message names the file, the rule and the problem."""


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    when: dict[str, Any] = {}
    decision: Outcome
    legal_basis: LegalBasis
    cites: str = Field(min_length=1, description="the act and section, in words a privacy officer can check")
    explanation: str = Field(min_length=1)
    obligations: list[Obligation] = []
    redact: list[str] = []
    status: Literal["settled", "guidance", "verify", "inference"]


class PolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scheme: Jurisdiction
    title: str
    revision: str
    excluded_information: dict[str, str]  # legal_basis (code) and cites for the engine's exclusion gate
    location_to_puv_services: list[AgencyType] = []  # PuV services that may receive her location (default none)
    rules: list[RuleSpec] = Field(min_length=1)


# condition key -> (vocabulary of its values, or bool, and how it reads the request)
_IN = {
    "purpose": (RfiPurpose, lambda r, c: r.purpose),
    "subject_role": (SubjectRole, lambda r, c: r.subject_role),
    "category": (InformationCategory, lambda r, c: r.category),
    "consent": (ConsentStatus, lambda r, c: c),
    "requester_type": (AgencyType, lambda r, c: r.requester.agency_type),
    "releaser_type": (AgencyType, lambda r, c: r.releaser.agency_type),
}
_SETS = {
    "requester_prescribed": lambda r: r.requester.prescribed,
    "releaser_prescribed": lambda r: r.releaser.prescribed,
}
_FLAGS = {"serious_threat": lambda r: r.serious_threat, "child_at_risk": lambda r: r.child_at_risk}


@dataclass(frozen=True)
class Rule:
    spec: RuleSpec
    predicates: tuple[Predicate, ...]
    conditions: dict[str, Any]  # normalised, for the shadowing check

    def __post_init__(self) -> None:  # what every decision by this rule carries, built once
        object.__setattr__(self, "obligations", tuple(self.spec.obligations))
        object.__setattr__(self, "redactions", tuple(self.spec.redact))

    def matches(self, request: DecisionRequest, consent: ConsentStatus) -> bool:
        return all(p(request, consent) for p in self.predicates)

    def decision(self, policy_label: str, decision_id: str) -> Decision:
        spec = self.spec
        return Decision(spec.decision, self.basis, spec.id, self.obligations, self.redactions, spec.explanation, policy_label, decision_id)

    @property
    def basis(self) -> str:
        return f"{self.spec.legal_basis.display}: {self.spec.cites}"


@dataclass(frozen=True)
class Policy:
    spec: PolicySpec
    rules: tuple[Rule, ...]
    source: str

    @property
    def label(self) -> str:
        return f"{self.spec.scheme.value}@{self.spec.revision}"


def load_policies(directory: Path) -> dict[Jurisdiction, Policy]:
    policies: dict[Jurisdiction, Policy] = {}
    for path in sorted(directory.glob("*.yaml")):
        policy = load_policy(path)
        if policy.spec.scheme in policies:
            raise PolicyError(f"{path.name}: scheme {policy.spec.scheme.value} is already defined by {policies[policy.spec.scheme].source}")
        policies[policy.spec.scheme] = policy
    if Jurisdiction.DEFAULT not in policies:
        raise PolicyError(f"{directory}: no policy for the strict default (scheme: DEFAULT)")
    return policies


def load_policy(path: Path) -> Policy:
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
        lines = _rule_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        raise PolicyError(f"{path.name}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    try:
        spec = PolicySpec.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(f"{path.name}: {_first_problem(exc, raw, lines)}") from None
    rules = []
    for index, rule in enumerate(spec.rules):
        where = f"{path.name}, line {lines[index]}, rule {rule.id}" if index < len(lines) else f"{path.name}, rule {rule.id}"
        rules.append(_compile(rule, where))
    _check_consistency(rules, path.name, lines)
    return Policy(spec, tuple(rules), path.name)


def _compile(rule: RuleSpec, where: str) -> Rule:
    if rule.decision in (Outcome.PERMIT, Outcome.PERMIT_WITH_REDACTION) and rule.status in ("verify", "inference"):
        raise PolicyError(f"{where}: releases information on law marked '{rule.status}'; unsettled points decide 'refer'")
    if rule.decision is Outcome.PERMIT_WITH_REDACTION and not rule.redact:
        raise PolicyError(f"{where}: permit-with-redaction must name what it redacts")
    predicates, conditions = [], {}
    for key, value in rule.when.items():
        predicate, normal = _condition(key, value, where)
        predicates.append(predicate)
        conditions[key] = normal
    return Rule(rule, tuple(predicates), conditions)


def _condition(key: str, value: Any, where: str) -> tuple[Predicate, Any]:
    if key in _FLAGS:
        if not isinstance(value, bool):
            raise PolicyError(f"{where}: condition {key} takes true or false, not {value!r}")
        read = _FLAGS[key]
        return (lambda r, c, read=read, value=value: read(r) is value), value
    base, _, mode = key.rpartition("_")
    if base in _SETS and mode in ("any", "none"):
        values = frozenset(_codes(PrescribedStatus, value, key, where))
        read = _SETS[base]
        if mode == "any":
            return (lambda r, c, read=read, values=values: bool(read(r) & values)), ("any", values)
        return (lambda r, c, read=read, values=values: not (read(r) & values)), ("none", values)
    if key in _IN:
        vocabulary, read = _IN[key]
        values = frozenset(_codes(vocabulary, value, key, where))
        return (lambda r, c, read=read, values=values: read(r, c) in values), ("any", values)
    known = sorted([*_IN, *_FLAGS, *(f"{s}_{m}" for s in _SETS for m in ("any", "none"))])
    raise PolicyError(f"{where}: unknown condition '{key}' (known: {', '.join(known)})")


def _codes(vocabulary, value: Any, key: str, where: str) -> list:
    items = value if isinstance(value, list) else [value]
    found = []
    for item in items:
        try:
            found.append(vocabulary(item))
        except ValueError:
            allowed = ", ".join(m.value for m in vocabulary)
            raise PolicyError(f"{where}: condition {key}: unknown code '{item}' (allowed: {allowed})") from None
    return found


def _check_consistency(rules: list[Rule], file: str, lines: list[int]) -> None:
    for later_index, later in enumerate(rules):
        for earlier_index, earlier in enumerate(rules[:later_index]):
            if earlier.conditions == later.conditions and earlier.spec.decision != later.spec.decision:
                raise PolicyError(
                    f"{file}, line {lines[later_index]}, rule {later.spec.id}: contradicts rule {earlier.spec.id} "
                    f"(same conditions, decision {later.spec.decision.value} vs {earlier.spec.decision.value})"
                )
            if _broader(earlier.conditions, later.conditions):
                raise PolicyError(
                    f"{file}, line {lines[later_index]}, rule {later.spec.id}: can never apply, because the earlier "
                    f"rule {earlier.spec.id} (line {lines[earlier_index]}) matches every case it would"
                )


def _broader(a: dict, b: dict) -> bool:
    """True when every request that meets `b` also meets `a` (a shadows b when a comes first)."""
    for key, condition in a.items():
        if key not in b:
            return False
        other = b[key]
        if isinstance(condition, bool):
            if condition is not other:
                return False
        elif condition[0] == "any" and other[0] == "any":
            if not other[1] <= condition[1]:
                return False
        elif condition[0] == "none" and other[0] == "none":
            if not condition[1] <= other[1]:
                return False
        else:
            return False
    return True


def _rule_lines(text: str) -> list[int]:
    """1-based line of each item of the top-level `rules` list."""
    root = yaml.compose(text)
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if key.value == "rules" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _first_problem(exc: ValidationError, raw: Any, lines: list[int]) -> str:
    error = exc.errors()[0]
    loc = error["loc"]
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        rule_id = (raw.get("rules") or [{}])[loc[1]].get("id", f"#{loc[1] + 1}") if isinstance(raw, dict) else "?"
        line = f"line {lines[loc[1]]}, " if loc[1] < len(lines) else ""
        field = ".".join(str(p) for p in loc[2:]) or "rule"
        return f"{line}rule {rule_id}: {field}: {error['msg']}"
    return f"{'.'.join(str(p) for p in loc) or 'file'}: {error['msg']}"
