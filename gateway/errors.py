"""Every error the gateway answers with, and how it becomes a FHIR OperationOutcome.

    GatewayError                      500 exception
    ├── InvalidRequest                400 invalid       malformed JSON, bad parameters
    │   ├── InvalidResource           400 structure     unknown or mistyped elements
    │   └── UnsupportedSearchParameter 400 not-supported
    ├── Unauthorized                  401 login         no valid access token (with a WWW-Authenticate challenge)
    ├── Forbidden                     403 forbidden     not this agency's to do or see
    ├── NotFound                      404 not-found     unknown type or id
    ├── MethodNotAllowed              405 not-supported
    ├── Conflict                      409 conflict      concurrent write lost the race
    ├── Gone                          410 deleted       read of a deleted resource
    ├── PreconditionFailed            412 conflict      If-Match / conditional create
    ├── PayloadTooLarge               413 too-long
    ├── UnsupportedMediaType          415 not-supported
    ├── BusinessRuleViolation         422 business-rule
    └── ServiceUnavailable            503 transient     database unreachable

Each issue carries the element path (FHIRPath-style `Patient.name[0].family`) when one applies,
so an integrator can find what to fix without reading server logs.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Issue:
    diagnostics: str
    expression: tuple[str, ...] = ()
    code: str | None = None  # overrides the error class's code for this issue
    severity: str = "error"


@dataclass
class GatewayError(Exception):
    message: str
    issues: list[Issue] = field(default_factory=list)

    status = 500
    code = "exception"

    def __post_init__(self) -> None:
        super().__init__(self.message)
        if not self.issues:
            self.issues = [Issue(self.message)]

    @classmethod
    def at(cls, path: str, message: str) -> "GatewayError":
        return cls(message, [Issue(message, (path,))])

    def operation_outcome(self) -> dict:
        return operation_outcome(self.issues, self.code)


class InvalidRequest(GatewayError):
    status = 400
    code = "invalid"


class InvalidResource(InvalidRequest):
    code = "structure"


class UnsupportedSearchParameter(InvalidRequest):
    code = "not-supported"


class Unauthorized(GatewayError):
    """401: the request carries no valid access token. `headers` holds the RFC 6750 challenge."""

    status = 401
    code = "login"

    def __init__(self, message: str, challenge: str = 'Bearer realm="gateway"'):
        super().__init__(message)
        self.headers = {"WWW-Authenticate": challenge}


class Forbidden(GatewayError):
    status = 403
    code = "forbidden"


class NotFound(GatewayError):
    status = 404
    code = "not-found"


class MethodNotAllowed(GatewayError):
    status = 405
    code = "not-supported"


class Conflict(GatewayError):
    status = 409
    code = "conflict"


class Gone(GatewayError):
    status = 410
    code = "deleted"


class PreconditionFailed(GatewayError):
    status = 412
    code = "conflict"


class PayloadTooLarge(GatewayError):
    status = 413
    code = "too-long"


class UnsupportedMediaType(GatewayError):
    status = 415
    code = "not-supported"


class BusinessRuleViolation(GatewayError):
    status = 422
    code = "business-rule"


class ServiceUnavailable(GatewayError):
    status = 503
    code = "transient"


def operation_outcome(issues: list[Issue], default_code: str) -> dict:
    out = []
    for issue in issues:
        entry = {"severity": issue.severity, "code": issue.code or default_code, "diagnostics": issue.diagnostics}
        if issue.expression:
            entry["expression"] = list(issue.expression)
        out.append(entry)
    return {"resourceType": "OperationOutcome", "issue": out}
