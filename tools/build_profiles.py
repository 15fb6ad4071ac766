"""Generate profiles/ from the project's vocabulary and the Level 3 tools.

    .venv/bin/python tools/build_profiles.py           # (re)write profiles/
    .venv/bin/python tools/build_profiles.py --check   # exit 1, naming the files that differ

Writes, all FHIR R4B JSON:
  CodeSystem-<system_name>.json   one per vocabulary in gateway.domain.vocabulary.ALL_VOCABULARIES
  ValueSet-<system_name>.json     all codes of that CodeSystem
  ValueSet-<subset>.json          the risk-level subsets the Level 3 tools offer (SUBSETS below)
  Questionnaire-level-3*.json     the Level 3A, 3B and 3C tools (tools/questionnaires.py)
  StructureDefinition-<name>.json the profiles and extensions (tools/structure_definitions.py)

Every resource is validated with fhir.resources.R4B, each Questionnaire is checked for the
rules that library does not enforce (item types, unique linkIds, answer lists that resolve), and
each StructureDefinition for what the gateway's own validator relies on (paths the base resource
has, bindings to ValueSets in profiles/, extensions defined here and used in their context),
before anything is written. The JSON is stable (fixed key order, 2-space indent, trailing
newline), so --check is a plain byte comparison. profiles/README.md is not generated.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path

from fhir.resources.R4B import get_fhir_model_class
from gateway.fhir.capability import capability_statement, supported_profiles
from gateway.domain.vocabulary import ALL_VOCABULARIES, CANONICAL_BASE, Coded, RiskLevel
from gateway.mappings.common import extension_url, profile_url

ROOT = Path(__file__).resolve().parent.parent
PROFILES_DIR = ROOT / "profiles"
VERSION = "0.1.0"
PUBLISHER = "Family-violence interoperability gateway"
GENERATED_PATTERNS = (
    "CodeSystem-*.json",
    "ValueSet-*.json",
    "Questionnaire-*.json",
    "StructureDefinition-*.json",
    "CapabilityStatement-*.json",
)
FHIR_VERSION = "4.3.0"
CORE_BASE = "http://hl7.org/fhir/StructureDefinition"
REFERENCE_RESOURCE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/questionnaire-referenceResource"

# R4B QuestionnaireItemType, less the abstract "question".
ITEM_TYPES = frozenset(
    "group display boolean decimal integer date dateTime time string text url "
    "choice open-choice attachment reference quantity".split()
)

# (id, title, description, vocabulary, members): ValueSets that offer part of a CodeSystem.
SUBSETS: tuple[tuple[str, str, str, type[Coded], tuple[Coded, ...]], ...] = (
    (
        "practitioner-risk-level",
        "Practitioner or initial multi-agency risk level",
        "Risk levels a practitioner can determine at referral, and the multi-agency team at its initial "
        "meeting (Level 3A Part 1 and Part 3 A): imminent, high or at risk.",
        RiskLevel,
        (RiskLevel.IMMINENT, RiskLevel.HIGH, RiskLevel.AT_RISK),
    ),
    (
        "ongoing-multi-agency-risk-level",
        "Ongoing multi-agency risk level",
        "Risk levels of the updated multi-agency risk assessment at each later meeting (Level 3B Part 5): "
        "imminent, high, at risk or no/low risk.",
        RiskLevel,
        (RiskLevel.IMMINENT, RiskLevel.HIGH, RiskLevel.AT_RISK, RiskLevel.NO_LOW),
    ),
    (
        "closure-multi-agency-risk-level",
        "Multi-agency risk level at closure",
        "Multi-agency determined risk levels at case closure (Level 3C A): high, at risk or no/low risk. "
        "The case cannot be closed if there is imminent risk.",
        RiskLevel,
        (RiskLevel.HIGH, RiskLevel.AT_RISK, RiskLevel.NO_LOW),
    ),
    (
        "closure-victim-survivor-risk-level",
        "Victim-survivor's assessment of risk at closure",
        "The victim-survivor's own assessment of risk at case closure (Level 3C A): high, at risk, "
        "no/low risk or unknown.",
        RiskLevel,
        (RiskLevel.HIGH, RiskLevel.AT_RISK, RiskLevel.NO_LOW, RiskLevel.UNKNOWN),
    ),
)


class ProfileError(Exception):
    """A generated resource is not valid; nothing has been written."""


def pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("_", "-").split("-") if part)


def value_set_url(value_set_id: str) -> str:
    return f"{CANONICAL_BASE}/ValueSet/{value_set_id}"


# --- CodeSystems and ValueSets -------------------------------------------------------------------


def _description(vocabulary: type[Coded]) -> str:
    doc = vocabulary.__dict__.get("__doc__")
    text = " ".join(doc.split()).rstrip(".") if doc else vocabulary.title
    return f"{text}. Generated from gateway/domain/vocabulary.py."


def code_system(vocabulary: type[Coded]) -> dict:
    members = list(vocabulary)
    return {
        "resourceType": "CodeSystem",
        "id": vocabulary.system_name,
        "url": vocabulary.system(),
        "version": VERSION,
        "name": pascal(vocabulary.system_name),
        "title": vocabulary.title,
        "status": "active",
        "publisher": PUBLISHER,
        "description": _description(vocabulary),
        "caseSensitive": True,
        "valueSet": value_set_url(vocabulary.system_name),
        "content": "complete",
        "count": len(members),
        "concept": [
            {"code": member.value, "display": member.display, "definition": member.definition}
            for member in members
        ],
    }


def full_value_set(vocabulary: type[Coded]) -> dict:
    return {
        "resourceType": "ValueSet",
        "id": vocabulary.system_name,
        "url": value_set_url(vocabulary.system_name),
        "version": VERSION,
        "name": pascal(vocabulary.system_name),
        "title": vocabulary.title,
        "status": "active",
        "publisher": PUBLISHER,
        "description": f"All codes of the CodeSystem '{vocabulary.title}'.",
        "compose": {"include": [{"system": vocabulary.system()}]},
    }


def subset_value_set(value_set_id: str, title: str, description: str, vocabulary, members) -> dict:
    for member in members:
        if not isinstance(member, vocabulary):
            raise ProfileError(f"ValueSet {value_set_id}: {member!r} is not a {vocabulary.__name__}")
    return {
        "resourceType": "ValueSet",
        "id": value_set_id,
        "url": value_set_url(value_set_id),
        "version": VERSION,
        "name": pascal(value_set_id),
        "title": title,
        "status": "active",
        "publisher": PUBLISHER,
        "description": description,
        "compose": {
            "include": [
                {
                    "system": vocabulary.system(),
                    "concept": [{"code": member.value, "display": member.display} for member in members],
                }
            ]
        },
    }


# --- Questionnaires ------------------------------------------------------------------------------


def _load_tool_module(file_name: str):
    """A module of tools/, loaded by path so this script works both run and imported."""
    path = Path(__file__).resolve().parent / file_name
    spec = importlib.util.spec_from_file_location(f"fv_gateway_tools_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def _load_questionnaire_definitions():
    """tools/questionnaires.py."""
    return _load_tool_module("questionnaires.py")


def _load_structure_definitions():
    """tools/structure_definitions.py."""
    return _load_tool_module("structure_definitions.py")


def _enable_when(parent: str, condition) -> dict:
    out = {"question": f"{parent}.{condition.question}", "operator": condition.operator}
    answer = condition.answer
    if isinstance(answer, bool):
        out["answerBoolean"] = answer
    elif isinstance(answer, Coded):
        out["answerCoding"] = {"system": type(answer).system(), "code": answer.value, "display": answer.display}
    else:
        raise ProfileError(f"enableWhen on {out['question']}: unsupported answer {answer!r}")
    return out


def _item(node, parent: str) -> dict:
    link_id = f"{parent}.{node.name}"
    out: dict = {}
    if node.reference_to:
        out["extension"] = [{"url": REFERENCE_RESOURCE_EXTENSION, "valueCode": t} for t in node.reference_to]
    out["linkId"] = link_id
    out["text"] = node.text
    out["type"] = node.type
    if node.when:
        out["enableWhen"] = [_enable_when(parent, condition) for condition in node.when]
        if len(node.when) > 1:
            out["enableBehavior"] = "any"
    if node.required:
        out["required"] = True
    if node.repeats:
        out["repeats"] = True
    if node.value_set:
        out["answerValueSet"] = value_set_url(node.value_set)
    if node.items:
        out["item"] = [_item(child, link_id) for child in node.items]
    return out


def questionnaire(questionnaire_id: str, title: str, description: str, items) -> dict:
    prefix = questionnaire_id.removeprefix("level-")  # "3a"
    return {
        "resourceType": "Questionnaire",
        "id": questionnaire_id,
        "url": f"{CANONICAL_BASE}/Questionnaire/{questionnaire_id}",
        "version": VERSION,
        "name": pascal(questionnaire_id).upper().replace("LEVEL", "Level"),  # Level3A
        "title": title,
        "status": "active",
        "subjectType": ["Patient"],
        "publisher": PUBLISHER,
        "description": description,
        "item": [_item(node, prefix) for node in items],
    }


def iter_items(items):
    for item in items:
        yield item
        yield from iter_items(item.get("item", ()))


def questionnaire_problems(resource: dict, value_set_urls: set[str]) -> list[str]:
    """Rules fhir.resources does not check (R4B que-1..que-12), and answer lists that resolve."""
    problems = []
    seen: set[str] = set()
    for item in iter_items(resource.get("item", ())):
        link_id, kind = item["linkId"], item["type"]
        where = f"{resource.get('id')} {link_id}"
        if link_id in seen:
            problems.append(f"{where}: duplicate linkId")
        seen.add(link_id)
        if kind not in ITEM_TYPES:
            problems.append(f"{where}: unknown item type '{kind}'")
        if kind == "group" and not item.get("item"):
            problems.append(f"{where}: a group must have items")
        if kind == "display" and (item.get("item") or item.get("required") or item.get("repeats")):
            problems.append(f"{where}: a display item has no children, required or repeats")
        has_list = "answerValueSet" in item or "answerOption" in item
        if has_list and kind not in ("choice", "open-choice"):
            problems.append(f"{where}: only choice items have answer lists")
        if kind in ("choice", "open-choice") and not has_list:
            problems.append(f"{where}: a choice item needs answerValueSet or answerOption")
        if "answerValueSet" in item and "answerOption" in item:
            problems.append(f"{where}: answerValueSet and answerOption together")
        if "answerValueSet" in item and item["answerValueSet"] not in value_set_urls:
            problems.append(f"{where}: answerValueSet {item['answerValueSet']} is not in profiles/")
        conditions = item.get("enableWhen", ())
        if len(conditions) > 1 and "enableBehavior" not in item:
            problems.append(f"{where}: several enableWhen need enableBehavior")
        for condition in conditions:
            if condition["question"] not in seen or condition["question"] == link_id:
                problems.append(f"{where}: enableWhen names {condition['question']}, not an earlier item")
    return problems


# --- StructureDefinitions: profiles and extensions -----------------------------------------------


def slice_name(extension_name: str) -> str:
    """subject-role -> subjectRole"""
    head, *rest = extension_name.split("-")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _field_model(model, element: str):
    """The model class of `element` of `model` (None for a primitive)."""
    field = next((f for name, f in model.model_fields.items() if (f.alias or name) == element), None)
    if field is None:
        return None
    found = re.search(r"\b([A-Z][A-Za-z0-9]*)Type\b", str(field.annotation))
    if found is None:
        return None
    try:
        return get_fhir_model_class(found.group(1))
    except ValueError:
        return None  # a primitive type


def element_order(path: str) -> tuple[int, ...]:
    """Where `path` (Task.restriction.period.end, Observation.value[x]) comes in its base
    definition, as indexes of each step; raises ProfileError if the base has no such element."""
    resource_type, *steps = path.split(".")
    try:
        model = get_fhir_model_class(resource_type)
    except ValueError:
        raise ProfileError(f"{path}: {resource_type} is not a FHIR R4B resource or type") from None
    order = []
    for step in steps:
        sequence = model.elements_sequence() if model is not None else []
        if step.endswith("[x]"):
            stem = step[:-3]
            choices = [i for i, name in enumerate(sequence) if name.startswith(stem) and name[len(stem):][:1].isupper()]
            if not choices:
                raise ProfileError(f"{path}: the base has no choice element {step}")
            order.append(choices[0])
            model = None  # nothing is constrained below a choice here
        elif step in sequence:
            order.append(sequence.index(step))
            model = _field_model(model, step)
        else:
            raise ProfileError(f"{path}: the base has no element {step}")
    return tuple(order)


def _binding(value_set_id: str, value_set_urls: set[str], where: str) -> dict:
    url = value_set_url(value_set_id)
    if url not in value_set_urls:
        raise ProfileError(f"{where}: binding to ValueSet {value_set_id}, which is not in profiles/")
    return {"strength": "required", "valueSet": url}


def _pattern_coding(code: Coded) -> dict:
    return {"system": type(code).system(), "code": code.value}


def _structure_definition_header(sd_id: str, title: str, description: str) -> dict:
    return {
        "resourceType": "StructureDefinition",
        "id": sd_id,
        "url": profile_url(sd_id),
        "version": VERSION,
        "name": pascal(sd_id),
        "title": title,
        "status": "active",
        "publisher": PUBLISHER,
        "description": description,
        "fhirVersion": FHIR_VERSION,
    }


def extension_definition(definition, value_set_urls: set[str]) -> dict:
    where = f"extension {definition.name}"
    for context in definition.contexts:
        element_order(context)
    value: dict = {"id": "Extension.value[x]", "path": "Extension.value[x]", "min": 1}
    value_type: dict = {"code": definition.value_type}
    if definition.target:
        if definition.value_type != "Reference":
            raise ProfileError(f"{where}: a target needs a Reference value")
        element_order(definition.target)
        value_type["targetProfile"] = [f"{CORE_BASE}/{definition.target}"]
    value["type"] = [value_type]
    if definition.value_set:
        if definition.value_type not in ("code", "Coding", "CodeableConcept"):
            raise ProfileError(f"{where}: a {definition.value_type} value cannot be bound")
        value["binding"] = _binding(definition.value_set, value_set_urls, where)
    return {
        **_structure_definition_header(definition.name, definition.title, definition.description),
        "kind": "complex-type",
        "abstract": False,
        "context": [{"type": "element", "expression": context} for context in definition.contexts],
        "type": "Extension",
        "baseDefinition": f"{CORE_BASE}/Extension",
        "derivation": "constraint",
        "differential": {
            "element": [
                {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
                {"id": "Extension.url", "path": "Extension.url", "fixedUri": extension_url(definition.name)},
                value,
            ]
        },
    }


def _rule_element(rule, value_set_urls: set[str], where: str) -> dict:
    element: dict = {"id": rule.path, "path": rule.path}
    if rule.min is not None:
        element["min"] = rule.min
    if rule.max is not None:
        element["max"] = rule.max
    if rule.fixed_code is not None:
        element["fixedCode"] = rule.fixed_code
    if rule.pattern_concept is not None:
        element["patternCodeableConcept"] = {"coding": [_pattern_coding(rule.pattern_concept)]}
    if rule.pattern_coding is not None:
        element["patternCoding"] = _pattern_coding(rule.pattern_coding)
    if rule.value_set is not None:
        element["binding"] = _binding(rule.value_set, value_set_urls, f"{where} {rule.path}")
    if len(element) == 2:
        raise ProfileError(f"{where} {rule.path}: a rule that constrains nothing")
    return element


def profile_definition(profile, extensions: dict, value_set_urls: set[str]) -> dict:
    """The StructureDefinition of a profile; its differential in the order of the base resource."""
    where = f"profile {profile.name}"
    keyed: dict[str, tuple[tuple, dict]] = {}  # element id -> (sort key, element)

    def add(element_id: str, key: tuple, element: dict) -> None:
        if element_id in keyed:
            raise ProfileError(f"{where}: {element_id} is constrained twice")
        keyed[element_id] = (key, element)

    slices = 0
    for rule in profile.rules:
        if getattr(rule, "extension", None) is None:  # a Rule, not a Slice
            if not rule.path.startswith(f"{profile.type}."):
                raise ProfileError(f"{where}: {rule.path} is not an element of {profile.type}")
            add(rule.path, tuple((i, 0) for i in element_order(rule.path)), _rule_element(rule, value_set_urls, where))
            continue
        definition = extensions.get(rule.extension)
        if definition is None:
            raise ProfileError(f"{where}: extension {rule.extension} is not defined in tools/structure_definitions.py")
        if rule.on not in definition.contexts:
            raise ProfileError(f"{where}: extension {rule.extension} may not sit on {rule.on} (its context is "
                               f"{', '.join(definition.contexts)})")
        if rule.on.split(".")[0] != profile.type:
            raise ProfileError(f"{where}: {rule.on} is not {profile.type} or one of its elements")
        base_path = f"{rule.on}.extension"
        base_key = tuple((i, 0) for i in element_order(base_path))
        if base_path not in keyed:
            add(base_path, base_key, {
                "id": base_path,
                "path": base_path,
                "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"},
            })
        slices += 1
        name = slice_name(rule.extension)
        add(f"{base_path}:{name}", base_key[:-1] + ((base_key[-1][0], slices),), {
            "id": f"{base_path}:{name}",
            "path": base_path,
            "sliceName": name,
            "min": rule.min,
            "max": rule.max,
            "type": [{"code": "Extension", "profile": [extension_url(rule.extension)]}],
        })
    elements = [element for _, element in sorted(keyed.values(), key=lambda pair: pair[0])]
    return {
        **_structure_definition_header(profile.name, profile.title, profile.description),
        "kind": "resource",
        "abstract": False,
        "type": profile.type,
        "baseDefinition": f"{CORE_BASE}/{profile.type}",
        "derivation": "constraint",
        "differential": {"element": elements},
    }


def structure_definitions(value_set_urls: set[str]) -> dict[str, dict]:
    """Every profile and extension definition by file name; raises ProfileError on a mistake."""
    definitions = _load_structure_definitions()
    extensions = {}
    for definition in definitions.EXTENSIONS:
        if definition.name in extensions:
            raise ProfileError(f"extension {definition.name} is defined twice")
        extensions[definition.name] = definition
    found: dict[str, dict] = {}
    for definition in definitions.EXTENSIONS:
        found[f"StructureDefinition-{definition.name}.json"] = extension_definition(definition, value_set_urls)
    for profile in definitions.PROFILES:
        name = f"StructureDefinition-{profile.name}.json"
        if name in found:
            raise ProfileError(f"profile {profile.name} has the name of another StructureDefinition")
        found[name] = profile_definition(profile, extensions, value_set_urls)
    used = {getattr(rule, "extension", None) for profile in definitions.PROFILES for rule in profile.rules}
    unused = sorted(set(extensions) - used)
    if unused:
        raise ProfileError(f"extensions no profile uses: {', '.join(unused)}")
    return found


# --- Build, validate, write ----------------------------------------------------------------------


def fhir_problems(resource: dict) -> list[str]:
    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except Exception as exc:  # pydantic ValidationError, or TypeError/ValueError for odd shapes
        return [f"{resource.get('resourceType')}/{resource.get('id')}: not valid FHIR R4B: {exc}"]
    return []


def build() -> dict[str, dict]:
    """Every generated resource by file name; raises ProfileError if any is invalid."""
    resources: dict[str, dict] = {}
    for vocabulary in ALL_VOCABULARIES:
        resources[f"CodeSystem-{vocabulary.system_name}.json"] = code_system(vocabulary)
        resources[f"ValueSet-{vocabulary.system_name}.json"] = full_value_set(vocabulary)
    for subset in SUBSETS:
        name = f"ValueSet-{subset[0]}.json"
        if name in resources:
            raise ProfileError(f"{name}: a subset ValueSet has the id of a vocabulary")
        resources[name] = subset_value_set(*subset)
    definitions = _load_questionnaire_definitions()
    for questionnaire_id, title, description, items in definitions.QUESTIONNAIRES:
        resources[f"Questionnaire-{questionnaire_id}.json"] = questionnaire(questionnaire_id, title, description, items)

    value_set_urls = {r["url"] for r in resources.values() if r["resourceType"] == "ValueSet"}
    resources.update(structure_definitions(value_set_urls))
    resources["CapabilityStatement-gateway.json"] = capability(resources.values())
    problems = []
    for resource in resources.values():
        problems += fhir_problems(resource)
        if resource["resourceType"] == "Questionnaire":
            problems += questionnaire_problems(resource, value_set_urls)
    if problems:
        raise ProfileError("\n".join(problems))
    return resources


def capability(resources) -> dict:
    """The gateway's CapabilityStatement, as /fhir/metadata serves it (with the canonical base)."""
    profiles = supported_profiles([r for r in resources if r["resourceType"] == "StructureDefinition"])
    statement = json.loads(capability_statement(CANONICAL_BASE, "0.1.0", profiles))
    return {"resourceType": statement.pop("resourceType"), "id": "gateway", "url": f"{CANONICAL_BASE}/CapabilityStatement/gateway", **statement}


def render(resource: dict) -> str:
    return json.dumps(resource, indent=2, ensure_ascii=False) + "\n"


def _shown(path: Path) -> str:
    """The path relative to the working directory when it is under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _stale(profiles_dir: Path, expected: set[str]) -> list[Path]:
    found = {path for pattern in GENERATED_PATTERNS for path in profiles_dir.glob(pattern)}
    return sorted(path for path in found if path.name not in expected)


def check(profiles_dir: Path = PROFILES_DIR) -> list[str]:
    """What differs between profiles_dir and what would be generated: one line per file."""
    profiles_dir = Path(profiles_dir)
    rendered = {name: render(resource) for name, resource in build().items()}
    differences = []
    for name, text in rendered.items():
        path = profiles_dir / name
        if not path.is_file():
            differences.append(f"{_shown(path)}: missing")
        elif path.read_text(encoding="utf-8") != text:
            differences.append(f"{_shown(path)}: differs")
    differences += [f"{_shown(path)}: not generated (stale)" for path in _stale(profiles_dir, set(rendered))]
    return differences


def write(profiles_dir: Path = PROFILES_DIR) -> list[str]:
    """Write every generated file whose content changed and remove stale ones; return what changed."""
    profiles_dir = Path(profiles_dir)
    rendered = {name: render(resource) for name, resource in build().items()}  # validate all first
    profiles_dir.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, text in rendered.items():
        path = profiles_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(f"{_shown(path)}: written")
    for path in _stale(profiles_dir, set(rendered)):
        path.unlink()
        changed.append(f"{_shown(path)}: removed (stale)")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if any file differs")
    parser.add_argument("--profiles-dir", type=Path, default=PROFILES_DIR, help="default: profiles/ of the repository")
    args = parser.parse_args(argv)
    try:
        lines = check(args.profiles_dir) if args.check else write(args.profiles_dir)
    except ProfileError as exc:
        print(f"build_profiles: invalid profiles, nothing written:\n{exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line, file=sys.stderr if args.check else sys.stdout)
    if args.check and lines:
        print("build_profiles: profiles/ is out of date; run .venv/bin/python tools/build_profiles.py", file=sys.stderr)
        return 1
    if not lines:
        print("build_profiles: profiles/ is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
