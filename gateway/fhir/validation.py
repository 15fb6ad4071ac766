"""Parse and validate incoming FHIR R4B JSON, once, at the edge.

The validated dict (not the pydantic model) is what the store keeps: re-serialising the model
costs more than validating it (DESIGN.md section 9), and the input already is valid FHIR JSON.
A resource the compiled check accepts (gateway.fhir.acceptance, a tenth of the cost) is valid;
any other is validated by fhir.resources, which accepts it or names what is wrong.
"""

import re
from functools import lru_cache

import orjson
from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from gateway.errors import InvalidRequest, InvalidResource, Issue, NotFound
from gateway.fhir import acceptance
from gateway.fhir.search_parameters import SUPPORTED_TYPES


_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def require_valid_id(resource_type: str, resource_id: str) -> None:
    """FHIR ids: 1-64 characters of letters, digits, '-' and '.'."""
    if not _ID.match(resource_id):
        raise InvalidRequest.at(f"{resource_type}.id", f"'{resource_id}' is not a valid FHIR id (1-64 of A-Z a-z 0-9 - .)")


def parse_json(body: bytes) -> dict:
    if not body.strip():
        raise InvalidRequest("The request body is empty; a FHIR JSON resource was expected")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("The body must be a JSON object (a FHIR resource)")
    return data


def require_supported_type(resource_type: str) -> None:
    if resource_type not in SUPPORTED_TYPES:
        raise NotFound(f"Resource type '{resource_type}' is not supported by this server; see /fhir/metadata")


def validate_resource(data: dict, expected_type: str | None = None, path: str = "") -> dict:
    """Check `data` is a valid R4B resource of a supported type; return it unchanged.

    `path` prefixes element paths in errors, e.g. "Bundle.entry[2].resource".
    """
    resource_type = data.get("resourceType")
    where = path or str(resource_type or "resourceType")
    if not isinstance(resource_type, str):
        raise InvalidResource.at(f"{path + '.' if path else ''}resourceType", "The resource has no resourceType")
    if expected_type and resource_type != expected_type:
        raise InvalidRequest.at(
            f"{path + '.' if path else ''}resourceType",
            f"resourceType is '{resource_type}' but the URL is for '{expected_type}'",
        )
    require_supported_type(resource_type)
    if acceptance.accepts(data):
        return data
    try:
        _model(resource_type).model_validate(data)
    except ValidationError as exc:
        raise InvalidResource(
            f"{resource_type} is not valid FHIR R4B", [_issue(where, err) for err in exc.errors()]
        ) from None
    except Exception as exc:  # for some shapes fhir.resources raises TypeError, ValueError, AttributeError, RecursionError
        raise InvalidResource.at(where, f"{resource_type} is not valid FHIR R4B: {exc}") from None
    return data


def load_models() -> None:
    """Build every supported type's model class and compiled check now (about 0.7 s), not on the
    first request for it."""
    for resource_type in SUPPORTED_TYPES:
        _model(resource_type)
        acceptance.prepare(resource_type)


@lru_cache(maxsize=None)
def _model(resource_type: str):
    return get_fhir_model_class(resource_type)


def _issue(root: str, err: dict) -> Issue:
    element = _fhir_path(root, err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        message = f"Unknown element '{err['loc'][-1]}' at {element}"
    elif kind == "missing":
        message = f"Required element missing at {element}"
    else:
        message = f"{element}: {err['msg']}"
    return Issue(message, (element,))


def _fhir_path(root: str, loc: tuple) -> str:
    path = root
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in ("__root__",):
            path += f".{part}"
    return path
