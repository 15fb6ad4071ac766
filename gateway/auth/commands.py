"""`gateway agency ...`, `gateway client ...` and `gateway keys rotate-signing`.

They work on the configured database, also while gateway processes serve it: a new client can
get tokens at once, a revoked one is refused by every process within GATEWAY_IDENTITY_CACHE_SECONDS.
Failures are GatewayErrors, which `gateway.cli.main` prints as one line.
"""

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from gateway.domain.agencies import Agency
from gateway.domain.vocabulary import AgencyType, Jurisdiction, PrescribedStatus
from gateway.errors import InvalidRequest


def register(verbs, keys, services: Callable) -> None:
    """Add the identity commands to the `gateway` parser; `services()` builds the Services."""
    agency = verbs.add_parser("agency", help="the agency registry").add_subparsers(dest="agency_verb", required=True, metavar="ACTION")
    add = agency.add_parser("add", help="register an agency (or update it)")
    add.add_argument("--id", required=True, help="the agency's id, e.g. vicpol")
    add.add_argument("--name", required=True)
    add.add_argument("--type", required=True, choices=[t.value for t in AgencyType])
    add.add_argument("--jurisdiction", required=True, choices=[j.value for j in Jurisdiction])
    add.add_argument("--prescribed", nargs="*", default=[], choices=[p.value for p in PrescribedStatus], metavar="STATUS",
                     help=f"statuses under the jurisdiction's scheme: {', '.join(p.value for p in PrescribedStatus)}")
    add.set_defaults(run=lambda args: _agency_add(args, services))
    agency.add_parser("list", help="registered agencies").set_defaults(run=lambda args: _agency_list(services))

    client = verbs.add_parser("client", help="agency systems that get tokens").add_subparsers(dest="client_verb", required=True, metavar="ACTION")
    add = client.add_parser("add", help="register an agency system (or replace its keys and scopes)")
    add.add_argument("--agency", required=True, help="id of a registered agency")
    add.add_argument("--client-id", required=True)
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--jwks", type=Path, help="file with the system's public keys (JWKS)")
    source.add_argument("--jwks-url", help="URL where the system publishes its public keys")
    add.add_argument("--scopes", required=True, help='space-separated, e.g. "system/Task.rs system/Patient.r"')
    add.set_defaults(run=lambda args: _client_add(args, services))
    client.add_parser("list", help="registered agency systems").set_defaults(run=lambda args: _client_list(services))
    revoke = client.add_parser("revoke", help="revoke a system: no new tokens, and its tokens stop working")
    revoke.add_argument("--client-id", required=True)
    revoke.set_defaults(run=lambda args: _client_revoke(args, services))

    rotate = keys.add_parser("rotate-signing", help="sign new access tokens with a new key; issued tokens stay valid")
    rotate.add_argument("--revoke-previous", action="store_true", help="delete the previous keys now (a leaked key): their tokens stop working")
    rotate.set_defaults(run=lambda args: _rotate_signing(args, services))


def _with_identity(services: Callable, work: Callable):
    built = services()
    try:
        return work(built.identity)
    finally:
        built.close()


def _agency_add(args, services) -> int:
    agency = Agency(args.id, args.name, AgencyType(args.type), Jurisdiction(args.jurisdiction), frozenset(PrescribedStatus(p) for p in args.prescribed))
    changed = _with_identity(services, lambda identity: identity.agencies.add(agency))
    state = "registered" if changed else "already registered as given:"
    print(f"{state} agency {agency.id} ({agency.type.value}, {agency.jurisdiction.value}) as Organization/{agency.id}")
    return 0


def _agency_list(services) -> int:
    for agency in _with_identity(services, lambda identity: identity.agencies.all()):
        prescribed = ",".join(sorted(p.value for p in agency.prescribed)) or "-"
        print(f"{agency.id:24} {agency.jurisdiction.value:8} {agency.type.value:36} {prescribed}  {agency.name}")
    return 0


def _client_add(args, services) -> int:
    jwks = _read_jwks(args.jwks) if args.jwks else None
    client, created = _with_identity(
        services, lambda identity: identity.clients.add(args.client_id, args.agency, args.scopes, jwks, args.jwks_url)
    )
    keys = f"keys {', '.join(client.key_ids)}" if client.key_ids else f"keys from {client.jwks_url}"
    print(f"{'registered' if created else 'updated'} client {client.client_id} of agency {client.agency_id}: {keys}; scopes {client.scopes.text}")
    return 0


def _read_jwks(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise InvalidRequest(f"{path} is not JSON (a JWKS: {{\"keys\": [...]}})") from None


def _client_list(services) -> int:
    for client in _with_identity(services, lambda identity: identity.clients.all()):
        state = "revoked" if client.revoked else "active"
        keys = ",".join(client.key_ids) or client.jwks_url
        print(f"{client.client_id:32} {client.agency_id:20} {state:8} {keys}  {client.scopes.text}")
    return 0


def _client_revoke(args, services) -> int:
    def revoke(identity):
        return identity.clients.revoke(args.client_id), identity.signing.cache_seconds

    client, within = _with_identity(services, revoke)
    print(f"revoked client {client.client_id}; every gateway process refuses its tokens within {within:g} s")
    return 0


def _rotate_signing(args, services) -> int:
    def rotate(identity):
        return identity.signing.rotate(revoke_previous=args.revoke_previous), identity.signing.status()

    result, keys = _with_identity(services, rotate)
    print(f"access tokens are now signed with key {result.new_kid}")
    if result.deleted:
        print(f"deleted keys (their tokens no longer verify): {', '.join(result.deleted)}")
    for key in keys:
        since = datetime.fromtimestamp(key.created_at / 1e6, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")
        print(f"  {key.kid}  {'signing' if key.active else 'retired, still verifies':24} created {since}")
    return 0
