"""The `gateway` command. Failures print one readable line and exit non-zero; no stack traces."""

import argparse
import gc
import signal
import sys
import threading

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from gateway import operations_log
from gateway.connectors.transport import TransportError
from gateway.auth import commands as identity_commands
from gateway.consent.policy import PolicyError
from gateway.errors import GatewayError
from gateway.messaging import commands as messaging_commands
from gateway.settings import Settings
from gateway.store.encryption import DataKeyError, generate_kek


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except (GatewayError, DataKeyError, PolicyError, TransportError, ValidationError, OSError) as exc:
        print(f"gateway: {_one_line(exc)}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        print(f"gateway: database error: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="Family-violence interoperability gateway")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    serve = verbs.add_parser("serve", help="serve the API (uvicorn, one process)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.set_defaults(run=_serve)

    demo = verbs.add_parser("demo", help="work the case from the Level 3 tools on the configured database, step by step")
    demo.set_defaults(run=_demo)

    consent = verbs.add_parser("consent", help="the consent-threshold engine").add_subparsers(
        dest="consent_verb", required=True, metavar="ACTION"
    )
    consent.add_parser("policies", help="list the jurisdiction policies and their rules").set_defaults(run=_consent_policies)
    consent.add_parser("decide", help="decide one item: JSON request on standard input, JSON decision on standard output").set_defaults(
        run=_consent_decide
    )

    audit = verbs.add_parser("audit", help="the disclosure ledger").add_subparsers(dest="audit_verb", required=True, metavar="ACTION")
    audit.add_parser("verify", help="check the ledger's chain, AuditEvents and signed checkpoints").set_defaults(run=_audit_verify)
    audit.add_parser("sign", help="sign a checkpoint of the ledger's newest entry now").set_defaults(run=_audit_sign)

    messaging_commands.register(verbs, _services)

    db = verbs.add_parser("db", help="database schema").add_subparsers(dest="db_verb", required=True, metavar="ACTION")
    db.add_parser("upgrade", help="create or migrate the schema to the newest revision").set_defaults(run=_db_upgrade)

    keys = verbs.add_parser("keys", help="encryption keys").add_subparsers(dest="keys_verb", required=True, metavar="ACTION")
    keys.add_parser("generate", help="print a new GATEWAY_DATA_KEY").set_defaults(run=_keys_generate)
    keys.add_parser("status", help="data keys and how many stored versions each encrypts").set_defaults(run=_keys_status)
    rotate = keys.add_parser("rotate", help="new data key; re-encrypt stored data while the API keeps serving")
    rotate.add_argument("--batch", type=int, default=500, help="rows re-encrypted per transaction")
    rotate.set_defaults(run=_keys_rotate)
    identity_commands.register(verbs, keys, _services)
    return parser


def _services(upgrade_schema: bool = True):
    from gateway.bootstrap import build_services

    settings = Settings()
    operations_log.configure(settings.log_level)
    return build_services(settings, upgrade_schema)


def _settle_start_up() -> None:
    """Build the FHIR models now, then keep everything start-up made out of the garbage collector's
    way: it lives as long as the process, and each full collection walked all of it (about 42 ms,
    a pause every request in flight waited out)."""
    from gateway.fhir.validation import load_models

    load_models()
    gc.collect()
    gc.freeze()


def _serve(args) -> int:
    import uvicorn

    from gateway.api.app import create_app

    services = _services()
    worker = services.worker()
    stop = threading.Event()
    try:
        # Topics (and, on a secured broker, the agencies' ACLs) are made beside the API, retried
        # until the broker answers: the API, its JWKS included, must not wait for Kafka, as a
        # broker that checks the gateway's tokens fetches that JWKS when it starts.
        threading.Thread(target=messaging_commands.ensure_topics_until_done, args=(services, stop), name="topics", daemon=True).start()
        worker.start()  # the outbox relay, inbound messages and overdue RFIs, beside the API
        app = create_app(services)
        _settle_start_up()
        # uvicorn stops gracefully on SIGTERM, then raises the signal again with the handler it
        # found: left at the default, that killed the process before the `finally` below, so the
        # worker never stopped cleanly (positions uncommitted, published rows left in the outbox).
        signal.signal(signal.SIGTERM, lambda *_: None)
        uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_config=None)
    finally:
        stop.set()
        worker.stop()
        services.close()
    return 0


def _demo(_args) -> int:
    from gateway.demo.runner import run_demo

    services = _services()
    try:
        case = run_demo(services.db, services.cases.repository)
        print(f"\nThe record is in {services.db.url.render_as_string(hide_password=True)}; see /fhir/EpisodeOfCare/{case.id}")
    finally:
        services.close()
    return 0


def _consent_policies(_args) -> int:
    from gateway.consent.engine import ConsentEngine

    engine = ConsentEngine.from_directory(Settings().consent_policies_dir)
    for _scheme, policy in sorted(engine.policies.items(), key=lambda kv: kv[0].value):
        print(f"{policy.label}  {policy.spec.title}  ({policy.source}, {len(policy.rules)} rules)")
        for rule in policy.rules:
            print(f"  {rule.spec.id:45} {rule.spec.decision.value:22} {rule.spec.status:9} {rule.spec.legal_basis.value}")
    return 0


def _consent_decide(_args) -> int:
    from gateway.consent.documents import DecisionIn, DecisionOut
    from gateway.consent.engine import ConsentEngine

    engine = ConsentEngine.from_directory(Settings().consent_policies_dir)
    try:
        request = DecisionIn.model_validate_json(sys.stdin.read())
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "request"
        print(f"gateway: consent decide: {field}: {err['msg']}", file=sys.stderr)
        return 2
    print(DecisionOut.of(engine.decide(request.to_domain())).model_dump_json(indent=2))
    return 0


def _audit_verify(_args) -> int:
    services = _services()
    try:
        result = services.ledger.verify()
    finally:
        services.close()
    for problem in result.problems:
        print(f"gateway: audit: {problem}", file=sys.stderr)
    state = "intact" if result.intact else f"TAMPERED ({len(result.problems)} problems)"
    print(f"ledger {state}: {result.entries} entries, {result.checkpoints} signed checkpoints")
    return 0 if result.intact else 1


def _audit_sign(_args) -> int:
    services = _services()
    try:
        seq = services.ledger.sign_head()
    finally:
        services.close()
    print(f"signed checkpoint at entry {seq}" if seq else "the ledger is empty; nothing to sign")
    return 0


def _db_upgrade(_args) -> int:
    _services().close()
    print("schema is at the newest revision")
    return 0


def _keys_generate(_args) -> int:
    print(generate_kek())
    return 0


def _keys_status(_args) -> int:
    from gateway.bootstrap import sealed_columns
    from gateway.store.key_rotation import key_status

    services = _services()
    try:
        for row in key_status(services.db, sealed_columns()):
            state = "active" if row.active else ("retired" if row.retired_at else "inactive")
            print(f"{row.kid}  {state:8}  " + ", ".join(f"{n} {name}" for name, n in row.rows.items()))
    finally:
        services.close()
    return 0


def _keys_rotate(args) -> int:
    from gateway.bootstrap import sealed_columns
    from gateway.store.key_rotation import rotate_data_key

    services = _services()
    try:
        report = rotate_data_key(
            services.db, services.keyring, services.settings.key_cache_seconds, args.batch, print, sealed_columns()
        )
        print(f"active data key is now {report.new_kid}; re-encrypted {report.reencrypted} rows")
    finally:
        services.close()
    return 0


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        return f"configuration: GATEWAY_{str(err['loc'][0]).upper()}: {err['msg']}"
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
