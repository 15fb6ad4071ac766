"""SMART Backend Services scopes: what a token lets its holder do.

Two spellings of the same permissions are accepted, because agency systems are built against
both versions of SMART App Launch:

    v2  system/Task.rs      letters in the order c r u d s (create, read, update, delete, search)
    v1  system/Task.read    read = r s, write = c u d, * = all five

`*` as the resource type means every FHIR resource type. Two scopes of the gateway's own are
kept apart from case data on purpose, so that no wildcard ever reaches them: `audit` (privacy
officers reading the disclosure ledger) and `admin` (the registry of agencies and clients).
"""

import re
from dataclasses import dataclass

ADMIN = "admin"
AUDIT = "audit"
GATEWAY_SCOPES = (ADMIN, AUDIT)

INTERACTIONS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
_LETTERS = "cruds"
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"^system/(?P<resource>\*|[A-Z][A-Za-z]{1,63})\.(?P<permissions>[a-z*]+)$")


class ScopeError(ValueError):
    """A scope the gateway does not grant (wrong shape, user/patient context, unknown name)."""


@dataclass(frozen=True)
class ResourceScope:
    resource: str  # a FHIR resource type, or "*"
    permissions: frozenset[str]  # letters of c r u d s

    @property
    def text(self) -> str:
        return f"system/{self.resource}.{''.join(c for c in _LETTERS if c in self.permissions)}"

    def covers(self, resource_type: str, letter: str) -> bool:
        return self.resource in ("*", resource_type) and letter in self.permissions

    def intersect(self, other: "ResourceScope") -> "ResourceScope | None":
        if self.resource == "*":
            resource = other.resource
        elif other.resource in ("*", self.resource):
            resource = self.resource
        else:
            return None
        permissions = self.permissions & other.permissions
        return ResourceScope(resource, permissions) if permissions else None


def parse_scope(text: str) -> "ResourceScope | str":
    """One scope: a ResourceScope, or the name of one of the gateway's own scopes."""
    if text in GATEWAY_SCOPES:
        return text
    match = _SCOPE.match(text)
    if match is None:
        if text.startswith(("user/", "patient/")):
            raise ScopeError(f"'{text}': only system/ scopes are granted to backend services")
        raise ScopeError(f"'{text}' is not a scope the gateway grants (system/<Resource>.<cruds>, system/<Resource>.read, {', '.join(GATEWAY_SCOPES)})")
    permissions = match["permissions"]
    letters = _V1.get(permissions, permissions)
    if not letters or any(c not in _LETTERS for c in letters) or letters != "".join(c for c in _LETTERS if c in letters):
        raise ScopeError(f"'{text}': permissions must be read, write, * or letters of 'cruds' in that order")
    return ResourceScope(match["resource"], frozenset(letters))


@dataclass(frozen=True)
class ScopeSet:
    """Parsed scopes, with the text they were written as (echoed back to the client)."""

    texts: tuple[str, ...]
    resources: tuple[ResourceScope, ...]
    gateway: frozenset[str]

    @classmethod
    def parse(cls, text: str | None) -> "ScopeSet":
        texts = tuple(dict.fromkeys((text or "").split()))  # in order, each once
        parsed = [parse_scope(t) for t in texts]
        return cls(
            texts,
            tuple(p for p in parsed if isinstance(p, ResourceScope)),
            frozenset(p for p in parsed if isinstance(p, str)),
        )

    @property
    def text(self) -> str:
        return " ".join(self.texts)

    def __bool__(self) -> bool:
        return bool(self.texts)

    def allows(self, resource_type: str, interaction: str) -> bool:
        """`interaction`: create, read, update, delete, search (or its letter)."""
        letter = interaction[0] if interaction in INTERACTIONS.values() else interaction
        return any(scope.covers(resource_type, letter) for scope in self.resources)

    def has(self, gateway_scope: str) -> bool:
        return gateway_scope in self.gateway

    def granted_from(self, registered: "ScopeSet") -> "ScopeSet":
        """What of these requested scopes `registered` allows: each requested scope as written if
        wholly allowed, otherwise its intersection with each registered scope (never more)."""
        granted: list[str] = []
        for text in self.texts:
            scope = parse_scope(text)
            if isinstance(scope, str):
                granted += [text] if registered.has(scope) else []
            elif all(registered.allows(scope.resource, c) for c in scope.permissions):  # "*" only by "*"
                granted.append(text)
            else:
                granted += [part.text for r in registered.resources if (part := scope.intersect(r)) is not None]
        return ScopeSet.parse(" ".join(granted))
