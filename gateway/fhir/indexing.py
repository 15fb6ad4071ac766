"""Extract search-index entries from a resource's JSON form.

Works on the plain dict (not the fhir.resources model) so that indexing costs microseconds and
never needs the model to be serialised again.
"""

import unicodedata
from typing import Any, Iterator, NamedTuple

from gateway.fhir import dates
from gateway.fhir.search_parameters import DATE, REFERENCE, STRING, TOKEN, URI, indexed_parameters

# Index values are stored cut to this length (the column holds 512), and the prefixes a string
# search looks for are cut alike, so a long value still matches its own beginning.
MAX_INDEXED_CHARS = 500


class IndexEntry(NamedTuple):  # a tuple: made and hashed about ten times per write
    param: str
    system: str | None = None
    value: str | None = None  # token code, normalised string, reference "Type/id", uri
    raw: str | None = None  # the exact string, for :exact
    lo: int | None = None  # date ranges, UTC microseconds, half open
    hi: int | None = None


def normalise(text: str) -> str:
    """Case- and accent-insensitive form used for FHIR string search."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def values_at(node: Any, path: tuple[str, ...]) -> list[Any]:
    """Every value at `path` below `node`, arrays on the way flattened (FHIR's path semantics).

    A loop over the path rather than a generator per step: index entries and profile rules walk
    a dozen paths per resource, on every write."""
    if len(path) == 1 and isinstance(node, dict):  # most paths: one element of the resource
        value = node.get(path[0])
        return list(value) if isinstance(value, list) else [] if value is None else [value]
    current = [node]
    for key in path:
        step: list[Any] = []
        _step(current, key, step)
        current = step
    found: list[Any] = []
    for value in current:
        if isinstance(value, list):
            found.extend(value)
        elif value is not None:
            found.append(value)
    return found


def _step(nodes: list[Any], key: str, into: list[Any]) -> None:
    for node in nodes:
        if isinstance(node, dict):
            into.append(node.get(key))
        elif isinstance(node, list):
            _step(node, key, into)


def index_entries(resource: dict) -> list[IndexEntry]:
    entries: list[IndexEntry] = []
    for param in indexed_parameters(resource["resourceType"]):
        extract = _EXTRACTORS[param.type]
        seen: set[IndexEntry] = set()
        for path in param.paths:
            for value in values_at(resource, path):
                for entry in extract(param.name, value):
                    if entry not in seen:
                        seen.add(entry)
                        entries.append(entry)
    return entries


def _tokens(name: str, value: Any) -> Iterator[IndexEntry]:
    if isinstance(value, bool):
        yield IndexEntry(name, value="true" if value else "false")
    elif isinstance(value, str):
        yield IndexEntry(name, value=value)
    elif isinstance(value, dict):
        if "coding" in value:
            for coding in value["coding"]:
                yield from _tokens(name, coding)
        elif "code" in value:
            yield IndexEntry(name, system=value.get("system"), value=value["code"])
        elif "value" in value:  # Identifier
            yield IndexEntry(name, system=value.get("system"), value=str(value["value"]))


_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


def _strings(name: str, value: Any) -> Iterator[IndexEntry]:
    if isinstance(value, str):
        yield IndexEntry(name, value=normalise(value), raw=value)
    elif isinstance(value, dict):
        for part in _NAME_PARTS + _ADDRESS_PARTS:
            for text in values_at(value, (part,)):
                yield from _strings(name, text)


def _references(name: str, value: Any) -> Iterator[IndexEntry]:
    if isinstance(value, dict) and isinstance(value.get("reference"), str):
        yield IndexEntry(name, value=value["reference"])


def _uris(name: str, value: Any) -> Iterator[IndexEntry]:
    if isinstance(value, str):
        yield IndexEntry(name, value=value)


def _dates(name: str, value: Any) -> Iterator[IndexEntry]:
    if isinstance(value, str):
        lo, hi = dates.date_range(value)
        yield IndexEntry(name, lo=lo, hi=hi)
    elif isinstance(value, dict) and ("start" in value or "end" in value):
        lo = dates.date_range(value["start"])[0] if "start" in value else dates.MIN_US
        hi = dates.date_range(value["end"])[1] if "end" in value else dates.MAX_US
        yield IndexEntry(name, lo=lo, hi=hi)


_EXTRACTORS = {TOKEN: _tokens, STRING: _strings, REFERENCE: _references, URI: _uris, DATE: _dates}
