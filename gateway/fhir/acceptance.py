"""A compiled check that accepts a resource only where fhir.resources would: validation's fast path.

fhir.resources validates every nested element in Python: each CodeableConcept, Reference or
Identifier becomes a model instance, with a wrap validator, a custom `__init__` and before and
after validators around it. Inside a running server that costs about 0.4 ms for a typical
resource, a third of the work of a create (DESIGN.md section 9).

This module compiles, once per resource type, one pydantic-core schema from the same models:
each complex element is a typed dict of its elements, and each primitive keeps the very schema
fhir.resources built for it (patterns and date checks included). Only the parts fhir.resources
does in Python are restated here, and always more strictly than it does them:

- unknown elements are refused (`extra="forbid"` in fhir.resources too);
- a required element must be present, with a value (fhir.resources also takes a required
  primitive given only as an extension, `_status`);
- no element may be null (fhir.resources lets most be), except in lists of primitives, where a
  null lines a value up with its extension and fhir.resources keeps it too;
- at most one element of a choice (`value[x]`), and one when the choice is required;
- elements this check does not restate (primitive extensions `_x`, contained resources,
  `fhir_comments`, element names given by their Python names) are not in the schema, so their
  presence is a refusal here;
- nothing nested deeper than MAX_DEPTH: fhir.resources takes a few Python frames per level and
  fails (RecursionError) somewhere past 100 levels, which pydantic-core would not.

A refusal here is not an answer: `gateway.fhir.validation` then asks fhir.resources, which
accepts or names the fault. So what matters is only that this check never accepts what
fhir.resources refuses; tests/unit/test_fhir_acceptance.py checks that on valid and broken
resources.
"""

from __future__ import annotations

import typing
from functools import lru_cache

from fhir.resources.R4B import get_fhir_model_class
from fhir_core.types import FhirBase, FhirElementOrResourceBase
from pydantic_core import PydanticCustomError, SchemaValidator, core_schema


MAX_DEPTH = 64  # JSON levels, objects and arrays alike; the resources the gateway handles use about 10


def accepts(data: dict) -> bool:
    """True when `data` is a valid resource of its (supported) type; False means "ask fhir.resources"."""
    validator = _validator(data["resourceType"])  # a type that does not compile is our fault: raised
    if not _within_depth(data):
        return False
    try:
        validator.validate_python(data)
    except Exception:  # a ValidationError, or a primitive validator's own TypeError: fhir.resources answers
        return False
    return True


def _within_depth(data: dict) -> bool:
    pending = [(data, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_DEPTH:
            return False
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, (dict, list)):
                pending.append((child, depth + 1))
    return True


def prepare(resource_type: str) -> None:
    """Compile `resource_type`'s check now rather than on its first use."""
    _validator(resource_type)


@lru_cache(maxsize=None)
def _validator(resource_type: str) -> SchemaValidator:
    model = get_fhir_model_class(resource_type)
    definitions: dict[str, core_schema.CoreSchema | None] = {}
    top = _element(model, definitions, resource_type=resource_type)
    return SchemaValidator(core_schema.definitions_schema(top, [s for s in definitions.values() if s is not None]))


def _element(model, definitions: dict, resource_type: str | None = None) -> core_schema.CoreSchema:
    """A typed dict of `model`'s elements; complex elements by reference, so recursion is finite."""
    ref = f"{model.__module__}.{model.__qualname__}" + (":resource" if resource_type else "")
    if ref not in definitions:
        definitions[ref] = None  # being built: elements that contain this type refer to it
        fields = {}
        required = {name for name, _ in model.model_construct().get_required_fields()}  # JSON names
        for name, field in _model_fields(model).items():
            alias = field.get("validation_alias", name)
            if name.endswith("__ext") or name == "fhir_comments" or not isinstance(alias, str):
                continue  # not restated: its presence is a refusal (see the module's docstring)
            schema, optional = _unwrap(field["schema"])
            schema = _restated(schema, model.model_fields[name].annotation, definitions)
            if schema is None:
                continue
            fields[alias] = core_schema.typed_dict_field(schema, required=not optional or alias in required)
        if resource_type is not None:
            fields["resourceType"] = core_schema.typed_dict_field(core_schema.literal_schema([resource_type]))
        schema = core_schema.typed_dict_schema(fields, extra_behavior="forbid")
        choices = _choices(model)
        if choices:
            schema = core_schema.no_info_after_validator_function(_one_of_each(choices), schema)
        definitions[ref] = {**schema, "ref": ref}
    return core_schema.definition_reference_schema(ref)


def _model_fields(model) -> dict:
    """The `model-fields` part of the model's compiled schema: each element's own schema."""
    schema = model.__pydantic_core_schema__
    while schema["type"] != "model-fields":
        schema = schema["schema"]
    return schema["fields"]


def _unwrap(schema: dict) -> tuple[dict, bool]:
    """Drop the default (None) and nullability fhir.resources gives every optional element."""
    optional = schema["type"] == "default"
    if optional:
        schema = schema["schema"]
    if schema["type"] == "nullable":
        schema = schema["schema"]
    return schema, optional


def _restated(schema: dict, annotation, definitions: dict) -> dict | None:
    """The element's schema with each complex type compiled here; None: not restated."""
    if schema["type"] == "list":
        items = _restated(schema["items_schema"], annotation, definitions)
        return None if items is None else {**schema, "items_schema": items}
    if schema["type"] == "function-wrap" and _is_complex(schema):
        complex_type = _complex_type(annotation)
        if complex_type is None or issubclass(complex_type, FhirElementOrResourceBase):
            return None  # any Resource or any Element: chosen at run time by fhir.resources
        return _element(complex_type.get_model_klass(), definitions)
    return schema  # a primitive: exactly as fhir.resources checks it


def _is_complex(schema: dict) -> bool:
    function = schema["function"]["function"]
    return getattr(function, "__qualname__", "").startswith("FhirBase.")


def _complex_type(annotation) -> type | None:
    if isinstance(annotation, type) and issubclass(annotation, FhirBase):
        return annotation
    for arg in typing.get_args(annotation):
        found = _complex_type(arg)
        if found is not None:
            return found
    return None


def _choices(model) -> list[tuple[tuple[str, ...], bool]]:
    """Each choice (`value[x]`) of `model` as its elements' JSON names and whether one is required."""
    out = []
    for names in model.model_construct().get_one_of_many_fields().values():
        info = model.model_fields[names[0]].json_schema_extra or {}
        aliases = tuple(model.model_fields[n].alias or n for n in names)
        out.append((aliases, info.get("one_of_many_required") is True))
    return out


def _one_of_each(choices: list[tuple[tuple[str, ...], bool]]):
    def check(value: dict) -> dict:
        for aliases, required in choices:
            present = sum(1 for alias in aliases if alias in value)
            if present > 1 or (required and present == 0):
                raise PydanticCustomError("fhir_choice", "one element of a choice is allowed")
        return value

    return check
