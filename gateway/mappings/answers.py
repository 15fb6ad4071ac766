"""Building and reading QuestionnaireResponse items by linkId.

Answers are written and read by the linkIds of profiles/Questionnaire-level-3*.json (pinned by
tests/unit/test_profiles.py). Empty answers and empty groups are left out, as FHIR requires.
"""

from datetime import date
from typing import Any, TypeVar

from gateway.domain.vocabulary import Coded
from gateway.mappings.common import coding, fhir_date, parse_date, read_code, reference

C = TypeVar("C", bound=Coded)


# -- building ----------------------------------------------------------------------------------


def answer(link_id: str, *values: dict | None) -> dict | None:
    present = [v for v in values if v is not None]
    return {"linkId": link_id, "answer": present} if present else None


def group(link_id: str, *children: dict | list | None) -> dict | None:
    flat: list[dict] = []
    for child in children:
        if isinstance(child, list):
            flat.extend(c for c in child if c)
        elif child:
            flat.append(child)
    return {"linkId": link_id, "item": flat} if flat else None


def rows(link_id: str, each: list[tuple]) -> list[dict]:
    """A repeating group: one item per row, each row a tuple of child items."""
    return [g for row in each if (g := group(link_id, *row))]


def text(value: str | None) -> dict | None:
    return {"valueString": value} if value else None


def when(value: date | None) -> dict | None:
    return {"valueDate": fhir_date(value)} if value else None


def flag(value: bool | None) -> dict | None:
    return {"valueBoolean": value} if value is not None else None


def number(value: int | None) -> dict | None:
    return {"valueInteger": value} if value is not None else None


def code(value: Coded | None) -> dict | None:
    return {"valueCoding": coding(value)} if value is not None else None


def ref(resource_type: str, resource_id: str | None, display: str | None = None) -> dict | None:
    return {"valueReference": reference(resource_type, resource_id, display)} if resource_id else None


def named(display: str | None) -> dict | None:
    """A reference answer that only names someone (observers, apologies, signatories)."""
    return {"valueReference": {"display": display}} if display else None


# -- reading -----------------------------------------------------------------------------------


class Answers:
    """The answers under one item (or a whole response), looked up by linkId at any depth."""

    def __init__(self, items: list[dict]):
        self._by_id: dict[str, list[dict]] = {}
        self._collect(items)

    def _collect(self, items: list[dict]) -> None:
        # linkIds are whole dotted paths, so indexing every depth at once never mixes two questions;
        # the children of repeating rows are read per row through rows().
        for item in items:
            self._by_id.setdefault(item["linkId"], []).append(item)
            self._collect(item.get("item", []))

    def rows(self, link_id: str) -> list["Answers"]:
        return [Answers(item.get("item", [])) for item in self._by_id.get(link_id, [])]

    def values(self, link_id: str) -> list[dict]:
        return [a for item in self._by_id.get(link_id, []) for a in item.get("answer", [])]

    def _first(self, link_id: str, key: str) -> Any:
        for value in self.values(link_id):
            if key in value:
                return value[key]
        return None

    def text(self, link_id: str, default: str = "") -> str:
        return self._first(link_id, "valueString") or default

    def date(self, link_id: str) -> date | None:
        return parse_date(self._first(link_id, "valueDate"))

    def flag(self, link_id: str) -> bool | None:
        return self._first(link_id, "valueBoolean")

    def number(self, link_id: str) -> int | None:
        return self._first(link_id, "valueInteger")

    def code(self, link_id: str, vocabulary: type[C]) -> C | None:
        found = self._first(link_id, "valueCoding")
        return read_code(found, vocabulary) if found else None

    def codes(self, link_id: str, vocabulary: type[C]) -> list[C]:
        return [read_code(v["valueCoding"], vocabulary) for v in self.values(link_id) if "valueCoding" in v]

    def ref_id(self, link_id: str) -> str | None:
        found = self._first(link_id, "valueReference")
        return found["reference"].split("/", 1)[1] if found and "reference" in found else None

    def ref_ids(self, link_id: str) -> list[str]:
        return [v["valueReference"]["reference"].split("/", 1)[1] for v in self.values(link_id) if "valueReference" in v]

    def names(self, link_id: str) -> list[str]:
        return [v["valueReference"]["display"] for v in self.values(link_id) if "valueReference" in v]
