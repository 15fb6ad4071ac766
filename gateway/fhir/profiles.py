"""The gateway's own check of incoming resources against the profiles they claim (profiles/).

It interprets the small subset of StructureDefinition that profiles/ uses (see
tools/structure_definitions.py): cardinality on plain element paths, fixed and pattern codes,
required bindings to the ValueSets in profiles/, and extension slices with their value bindings.
HAPI's validator (in the tests) checks everything the gateway emits; this check runs on every
write, in microseconds, so an agency that claims a profile learns at once which rule it broke.
"""

from dataclasses import dataclass
from typing import Any, Iterator

from gateway.errors import Issue
from gateway.fhir.capability import supported_profiles
from gateway.fhir.indexing import values_at


@dataclass(frozen=True)
class ElementRule:
    profile: str  # the profile's name, for messages
    element: str  # element id, e.g. Task.restriction.period.end or Patient.extension:subjectRole
    parent: tuple[str, ...]
    name: str
    min: int = 0
    max: int | None = None
    fixed: Any = None
    pattern: tuple[tuple[str, str], ...] = ()  # (system, code) codings a value must carry
    value_set: str | None = None
    extension_url: str | None = None  # for an extension slice: which extension it counts


class ProfileRegistry:
    def __init__(self, conformance: list[dict]):
        code_systems = {r["url"]: r for r in conformance if r["resourceType"] == "CodeSystem"}
        self.value_sets = {
            r["url"]: _codes(r, code_systems) for r in conformance if r["resourceType"] == "ValueSet"
        }
        # for a code element, whose system is its value set's: the codes alone, made once
        self._bare_codes = {url: frozenset(code for _, code in codes) for url, codes in self.value_sets.items()}
        definitions = [r for r in conformance if r["resourceType"] == "StructureDefinition"]
        self.extension_bindings = {d["url"]: _value_binding(d) for d in definitions if d.get("type") == "Extension"}
        self.rules = {d["url"]: _rules(d) for d in definitions if d.get("kind") == "resource"}
        self.supported = supported_profiles(definitions)  # for the CapabilityStatement

    def check(self, resource: dict, path: str = "") -> list[Issue]:
        issues = []
        for url in resource.get("meta", {}).get("profile", []):
            rules = self.rules.get(url)
            if rules is None:
                issues.append(Issue(f"{resource['resourceType']} claims profile {url}, which this server does not know", ("meta.profile",)))
                continue
            for rule in rules:
                issues.extend(self._check_rule(rule, resource))
        if path:  # inside a Bundle: Task.owner becomes Bundle.entry[1].resource.owner
            prefix = resource["resourceType"] + "."
            issues = [Issue(i.diagnostics, tuple(f"{path}.{e.removeprefix(prefix)}" for e in i.expression), i.code) for i in issues]
        return issues

    def _check_rule(self, rule: ElementRule, resource: dict) -> Iterator[Issue]:
        parents = [resource] if not rule.parent else values_at(resource, rule.parent)
        for parent in parents:
            values = values_at(parent, (rule.name,))
            if rule.extension_url:
                values = [v for v in values if isinstance(v, dict) and v.get("url") == rule.extension_url]
            where = f"{resource['resourceType']}.{'.'.join(rule.parent + (rule.name,))}"
            if len(values) < rule.min:
                yield _issue(rule, where, f"is required (at least {rule.min})")
            if rule.max is not None and len(values) > rule.max:
                yield _issue(rule, where, "is not allowed" if rule.max == 0 else f"may appear at most {rule.max} time(s)")
            for value in values:
                yield from self._check_value(rule, where, value)

    def _check_value(self, rule: ElementRule, where: str, value: Any) -> Iterator[Issue]:
        if rule.fixed is not None and value != rule.fixed:
            yield _issue(rule, where, f"must be '{rule.fixed}', not '{value}'")
        if rule.pattern:
            codings = set(_codings(value))
            for system, code in rule.pattern:
                if (system, code) not in codings:
                    yield _issue(rule, where, f"must carry the code {system}#{code}")
        if rule.value_set:
            yield from self._check_binding(rule, where, value, rule.value_set)
        if rule.extension_url and isinstance(value, dict):
            bound = self.extension_bindings.get(rule.extension_url)
            inner = next((v for k, v in value.items() if k.startswith("value")), None)
            if bound and inner is not None:
                yield from self._check_binding(rule, f"{where}.value", inner, bound)

    def _check_binding(self, rule: ElementRule, where: str, value: Any, value_set: str) -> Iterator[Issue]:
        allowed = self.value_sets.get(value_set)
        if allowed is None:
            return
        if isinstance(value, str):  # a code element: its system is the value set's
            ok, shown = value in self._bare_codes[value_set], value
        else:
            found = set(_codings(value))
            ok, shown = bool(found & allowed), ", ".join(f"{s}#{c}" for s, c in sorted(found, key=str)) or "no code"
        if not ok:
            yield _issue(rule, where, f"has {shown}, which is not in the required value set {value_set}")


def _issue(rule: ElementRule, where: str, problem: str) -> Issue:
    element = where if not rule.extension_url else f"{where}({rule.extension_url.rsplit('/', 1)[-1]})"
    return Issue(f"Profile {rule.profile}: {element} {problem}", (where,), "processing")


def _codings(value: Any) -> Iterator[tuple[str | None, str]]:
    if isinstance(value, dict):
        if "coding" in value:
            for c in value["coding"]:
                yield c.get("system"), c.get("code")
        elif "code" in value:
            yield value.get("system"), value["code"]


def _codes(value_set: dict, code_systems: dict[str, dict]) -> frozenset[tuple[str, str]]:
    found = set()
    for include in value_set.get("compose", {}).get("include", []):
        system = include.get("system")
        concepts = include.get("concept") or code_systems.get(system, {}).get("concept", [])
        found.update((system, c["code"]) for c in concepts)
    return frozenset(found)


def _value_binding(definition: dict) -> str | None:
    for element in definition.get("differential", {}).get("element", []):
        if element["path"] == "Extension.value[x]" and element.get("binding", {}).get("strength") == "required":
            return element["binding"]["valueSet"]
    return None


def _rules(definition: dict) -> list[ElementRule]:
    rules = []
    for element in definition.get("differential", {}).get("element", []):
        path = element["path"].split(".")[1:]  # drop the resource type
        if not path or any("[x]" in p for p in path):
            continue
        slice_url = None
        if ":" in element["id"]:
            slice_url = next((p for t in element.get("type", []) for p in t.get("profile", [])), None)
            if slice_url is None:
                continue
        elif path[-1] == "extension":
            continue  # the slicing header itself
        binding = element.get("binding", {})
        rules.append(
            ElementRule(
                profile=definition["name"],
                element=element["id"],
                parent=tuple(path[:-1]),
                name=path[-1],
                min=element.get("min", 0),
                max=None if element.get("max", "*") == "*" else int(element["max"]),
                fixed=next((v for k, v in element.items() if k.startswith("fixed")), None),
                pattern=tuple(_pattern(element)),
                value_set=binding.get("valueSet") if binding.get("strength") == "required" else None,
                extension_url=slice_url,
            )
        )
    return rules


def _pattern(element: dict) -> Iterator[tuple[str, str]]:
    if "patternCodeableConcept" in element:
        for c in element["patternCodeableConcept"].get("coding", []):
            yield c["system"], c["code"]
    if "patternCoding" in element:
        yield element["patternCoding"]["system"], element["patternCoding"]["code"]
