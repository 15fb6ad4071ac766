"""Parse FHIR search parameters into a query the store can run.

Repeated parameters are ANDed, comma-separated values are ORed (FHIR search 3.1.1.4).
Anything the server does not support is an error, not silently ignored: a filter that is
dropped would return more records than the caller asked for.
"""

import re
from dataclasses import dataclass, field

from gateway.errors import InvalidRequest, UnsupportedSearchParameter
from gateway.fhir import dates
from gateway.fhir.indexing import normalise
from gateway.fhir.search_parameters import (
    DATE,
    REFERENCE,
    RESULT_PARAMETERS,
    STRING,
    TOKEN,
    URI,
    SearchParameter,
    parameters_for,
)

DEFAULT_COUNT = 50
MAX_COUNT = 1000
DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_MODIFIERS = {STRING: {"", "exact", "contains"}, TOKEN: {""}, URI: {""}, DATE: {""}, REFERENCE: {""}}


@dataclass(frozen=True)
class TokenMatch:
    code: str | None
    system: str | None
    system_given: bool  # "sys|code" or "|code" (system must be absent) vs plain "code"


@dataclass(frozen=True)
class StringMatch:
    value: str
    mode: str  # prefix | exact | contains


@dataclass(frozen=True)
class ReferenceMatch:
    exact: tuple[str, ...]  # "Type/id" candidates
    id_suffix: str | None = None  # a bare id on a reference to any type


@dataclass(frozen=True)
class DateMatch:
    prefix: str
    lo: int
    hi: int


@dataclass(frozen=True)
class Criterion:
    param: SearchParameter
    alternatives: tuple  # of *Match; any may hold (OR)


@dataclass
class SearchQuery:
    resource_type: str
    criteria: list[Criterion] = field(default_factory=list)  # all must hold (AND)
    sort: list[tuple[SearchParameter, bool]] = field(default_factory=list)  # (param, descending)
    count: int = DEFAULT_COUNT
    offset: int = 0
    with_total: bool = True


def parse_search(resource_type: str, params: list[tuple[str, str]]) -> SearchQuery:
    known = parameters_for(resource_type)
    query = SearchQuery(resource_type)
    for key, raw in params:
        name, _, modifier = key.partition(":")
        if name in RESULT_PARAMETERS:
            _apply_result_parameter(query, known, name, raw)
            continue
        param = known.get(name)
        if param is None or "." in name:
            raise UnsupportedSearchParameter.at(
                key, f"Search parameter '{key}' is not supported on {resource_type}; supported: {', '.join(sorted(known))}"
            )
        if modifier not in _MODIFIERS[param.type] and not (param.type == REFERENCE and modifier in param.targets):
            raise UnsupportedSearchParameter.at(key, f"Modifier ':{modifier}' is not supported on '{name}'")
        values = [v for v in _split(raw) if v != ""]
        if not values:
            raise InvalidRequest.at(key, f"Search parameter '{key}' has no value")
        query.criteria.append(Criterion(param, tuple(_match(param, modifier, v, key) for v in values)))
    return query


def _apply_result_parameter(query: SearchQuery, known: dict, name: str, raw: str) -> None:
    if name == "_count":
        query.count = min(_non_negative(name, raw), MAX_COUNT)
    elif name == "_offset":
        query.offset = _non_negative(name, raw)
    elif name == "_total":
        if raw not in ("none", "estimate", "accurate"):
            raise InvalidRequest.at(name, "_total must be none, estimate or accurate")
        query.with_total = raw != "none"
    elif name == "_sort":
        for item in raw.split(","):
            descending = item.startswith("-")
            param = known.get(item.lstrip("-"))
            if param is None or param.type == REFERENCE:
                raise UnsupportedSearchParameter.at("_sort", f"Cannot sort {query.resource_type} by '{item}'")
            query.sort.append((param, descending))
    # _format: the gateway answers JSON only; the parameter is accepted and needs no action


def _non_negative(name: str, raw: str) -> int:
    if not raw.isdigit():
        raise InvalidRequest.at(name, f"{name} must be a non-negative whole number, not '{raw}'")
    return int(raw)


def _split(raw: str) -> list[str]:
    parts = re.split(r"(?<!\\),", raw)
    return [p.replace("\\,", ",") for p in parts]


def _match(param: SearchParameter, modifier: str, value: str, key: str):
    if param.type == TOKEN or param.type == URI:
        return _token(value)
    if param.type == STRING:
        mode = {"": "prefix", "exact": "exact", "contains": "contains"}[modifier]
        return StringMatch(value if mode == "exact" else normalise(value), mode)
    if param.type == REFERENCE:
        return _reference(param, modifier, value)
    return _date(value, key)


def _token(value: str) -> TokenMatch:
    if "|" not in value:
        return TokenMatch(code=value, system=None, system_given=False)
    system, _, code = value.partition("|")
    return TokenMatch(code=code or None, system=system or None, system_given=True)


def _reference(param: SearchParameter, modifier: str, value: str) -> ReferenceMatch:
    if "://" in value:  # absolute URL: compare on the Type/id tail
        value = "/".join(value.rstrip("/").split("/")[-2:])
    if "/" in value:
        return ReferenceMatch(exact=(value,))
    targets = (modifier,) if modifier else param.targets
    if len(targets) == 0:
        return ReferenceMatch(exact=(), id_suffix=value)
    return ReferenceMatch(exact=tuple(f"{t}/{value}" for t in targets))


def _date(value: str, key: str) -> DateMatch:
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    text = value[2:] if value[:2] in DATE_PREFIXES else value
    try:
        lo, hi = dates.date_range(text)
    except ValueError as exc:
        raise InvalidRequest.at(key, f"{key}: {exc}") from None
    return DateMatch(prefix, lo, hi)
