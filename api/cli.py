"""The ``prepmeet`` command line."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

from api.settings import Settings
from domain.errors import DomainError
from domain.store import StoreUnavailable


class CommandFailed(Exception):
    """A failure to report as one line on standard error."""


def _settings() -> Settings:
    return Settings()


def _open_app(settings: Settings | None = None) -> Any:
    from api.container import open_application

    return open_application(settings or _settings())


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from api.observability import logging_config

    settings = _settings()
    app = _open_app(settings)
    try:
        if args.demo and app.last_position() == 0:
            _print_demo(app)
    finally:
        app.close()
    projector: subprocess.Popen[bytes] | None = None
    if args.workers > 1:
        os.environ["PREPMEET_CREATE_TABLES"] = "false"
        os.environ["PREPMEET_EMBEDDED_PROJECTOR"] = "false"
        projector = subprocess.Popen([sys.executable, "-m", "api.cli", "project"])
    options: dict[str, Any] = {
        "factory": True,
        "host": args.host,
        "port": args.port,
        "workers": args.workers,
        "log_level": settings.log_level,
        "log_config": logging_config(settings.log_level),
        "access_log": False,
        "server_header": False,
    }
    try:
        if args.workers > 1:
            from api.supervisor import run_workers

            with suppress(KeyboardInterrupt):
                run_workers(uvicorn.Config("api.main:serve_app", **options))
        else:
            uvicorn.run("api.main:serve_app", **options)
    finally:
        if projector is not None:
            projector.terminate()
            projector.wait(timeout=10)


def _print_demo(app: Any) -> None:
    from api.demo import PEOPLE, load_demo

    loaded = load_demo(app)
    print(f"demo meeting: {loaded['meeting_id']}")
    for handle, token in loaded["tokens"].items():
        name, delegation = PEOPLE[handle][0], PEOPLE[handle][1]
        print(f"{handle:22} {name} ({delegation})")
        print(f"{'':22} id {loaded['users'][handle]['id']}")
        print(f"{'':22} token {token}")


def cmd_demo(args: argparse.Namespace) -> None:
    app = _open_app()
    try:
        _print_demo(app)
    finally:
        app.close()


def cmd_users_create(args: argparse.Namespace) -> None:
    from domain.application import SYSTEM

    app = _open_app()
    try:
        result = app.create_user(
            SYSTEM,
            args.name,
            args.delegation,
            secretariat=args.secretariat,
            ministerial=args.ministerial,
        )
    finally:
        app.close()
    print(f"user {result.state['id']} {result.state['name']} ({result.state['delegation']})")
    print(result.extra["token"])


def cmd_users_token(args: argparse.Namespace) -> None:
    from domain.application import SYSTEM

    app = _open_app()
    try:
        result = app.issue_token(SYSTEM, args.user_id)
    finally:
        app.close()
    print(f"new token for user {result.state['id']}")
    print(result.extra["token"])


def cmd_users_revoke(args: argparse.Namespace) -> None:
    from domain.application import SYSTEM

    app = _open_app()
    try:
        app.revoke_tokens(SYSTEM, args.user_id)
    finally:
        app.close()
    print(f"revoked every token of user {args.user_id}")


def cmd_project(args: argparse.Namespace) -> None:
    from projections.runner import run_projector_forever

    settings = _settings()
    status = run_projector_forever(settings.data_dir, settings.database_url)
    if status:
        raise CommandFailed("the projector stopped on an error")


def _read_side(settings: Settings) -> tuple[Any, Any]:
    from projections.views import open_read_side

    app = _open_app(settings)
    try:
        return app, open_read_side(settings.data_dir, settings.database_url)
    except Exception:
        app.close()
        raise


def cmd_projections_rebuild(args: argparse.Namespace) -> None:
    from projections.runner import Projector, ViewsBusy

    settings = _settings()
    app, views = _read_side(settings)
    try:
        try:
            position = Projector(app, views).rebuild(progress=sys.stderr.isatty(), wait=False)
        except ViewsBusy:
            raise CommandFailed(
                "a projector (a running server or `prepmeet project`) holds the views; "
                "stop it first"
            ) from None
    finally:
        views.close()
        app.close()
    print(f"views rebuilt to position {position}")


def cmd_projections_status(args: argparse.Namespace) -> None:
    from projections.runner import views_status

    settings = _settings()
    app, views = _read_side(settings)
    try:
        status = views_status(app, views)
    finally:
        views.close()
        app.close()
    print(
        f"views at position {status['position']} of {status['store_position']} "
        f"(lag {status['lag']})"
    )


def cmd_verify(args: argparse.Namespace) -> None:
    from api.signing import load_public_key, verify_document

    try:
        data = Path(args.file).read_bytes()
    except OSError as e:
        raise CommandFailed(f"cannot read {args.file}: {e.strerror}") from None
    if args.key:
        try:
            pem = Path(args.key).read_bytes()
            public = load_public_key(pem)
        except (OSError, ValueError) as e:
            raise CommandFailed(f"cannot use the key {args.key}: {e}") from None
    else:
        from api.signing import KEY_FILE, load_or_create_key

        settings = _settings()
        key_file = settings.signing_key_file or settings.data_dir / KEY_FILE
        if not key_file.exists():
            raise CommandFailed(
                f"no --key given and no signing key at {key_file}; "
                "save GET /api/v1/signing-key's pem to a file and pass --key FILE"
            )
        public = load_or_create_key(key_file).public_key()
    verdict = verify_document(data, public)
    if not verdict.ok:
        raise CommandFailed(f"{args.file}: {verdict.message}")
    print(f"{args.file}: {verdict.message}")


def _progress(total: int, label: str) -> Any:
    """A rich progress bar on a terminal; nothing otherwise."""
    from contextlib import nullcontext

    if not sys.stderr.isatty() or total == 0:
        return nullcontext(None)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    class Bar:
        def __enter__(self) -> Any:
            self.progress = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn())
            self.progress.__enter__()
            task = self.progress.add_task(label, total=total)
            return lambda position: self.progress.update(task, completed=position)

        def __exit__(self, *exc: object) -> None:
            self.progress.__exit__(None, None, None)

    return Bar()


def cmd_events_export(args: argparse.Namespace) -> None:
    from domain.backup import export_log

    app = _open_app()
    try:
        target = Path(args.file)
        tmp = target.with_name(f".{target.name}.partial")
        with (
            _progress(app.last_position(), "exporting events") as advance,
            tmp.open("w", encoding="utf-8") as out,
        ):
            count, head = export_log(app, out, advance)
        tmp.replace(target)
    finally:
        app.close()
    print(f"exported {count} events to {args.file}; chain head {head}")


def cmd_events_import(args: argparse.Namespace) -> None:
    from domain.backup import BackupError, check_file, import_log
    from projections.runner import Projector
    from projections.views import open_read_side

    settings = _settings()
    source = Path(args.file)
    if not source.exists():
        raise CommandFailed(f"no file {args.file}")
    app = _open_app(settings)
    try:
        try:
            _, last = check_file(source)
            with _progress(last, "importing events") as advance:
                count = import_log(app, source, advance)
        except BackupError as e:
            raise CommandFailed(str(e)) from None
        views = open_read_side(settings.data_dir, settings.database_url)
        try:
            Projector(app, views).rebuild(progress=sys.stderr.isatty(), wait=False)
        finally:
            views.close()
    finally:
        app.close()
    print(f"imported {count} events from {args.file}; views rebuilt")


def cmd_audit_verify(args: argparse.Namespace) -> None:
    from projections.audit import verify

    settings = _settings()
    app, views = _read_side(settings)
    try:
        report = verify(app, views)
    finally:
        views.close()
        app.close()
    if not report.ok:
        raise CommandFailed("audit failed: " + "; ".join(report.problems))
    print(
        f"{report.events} events hash to chain head {report.head}; "
        f"{report.compared} digests and {report.checkpoints} forwarded checkpoints match"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prepmeet",
        description="The record of a peacekeeping preparatory meeting and its outcome.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="API processes (default 1)")
    serve.add_argument("--demo", action="store_true", help="load the demo meeting if empty")
    serve.set_defaults(func=cmd_serve)

    users = sub.add_parser("users", help="create users, issue and revoke tokens")
    users_sub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    create = users_sub.add_parser("create", help="create a user; prints its token last")
    create.add_argument("--name", required=True)
    create.add_argument("--delegation", required=True)
    create.add_argument("--secretariat", action="store_true")
    create.add_argument("--ministerial", action="store_true")
    create.set_defaults(func=cmd_users_create)
    token = users_sub.add_parser("token", help="issue a new token; prints it last")
    token.add_argument("user_id")
    token.set_defaults(func=cmd_users_token)
    revoke = users_sub.add_parser("revoke", help="revoke every token of a user")
    revoke.add_argument("user_id")
    revoke.set_defaults(func=cmd_users_revoke)

    demo = sub.add_parser("demo", help="load the Islamabad 2025 demo meeting, print tokens")
    demo.set_defaults(func=cmd_demo)

    project = sub.add_parser(
        "project", help="run the projector as its own process (several API processes)"
    )
    project.set_defaults(func=cmd_project)

    projections = sub.add_parser("projections", help="rebuild the views, or show their lag")
    projections_sub = projections.add_subparsers(
        dest="projections_command", required=True, metavar="ACTION"
    )
    rebuild = projections_sub.add_parser("rebuild", help="drop and rebuild the views from the log")
    rebuild.set_defaults(func=cmd_projections_rebuild)
    status = projections_sub.add_parser("status", help="the views' position and lag")
    status.set_defaults(func=cmd_projections_status)

    verify = sub.add_parser("verify", help="check a forwarded document's hash and signature")
    verify.add_argument("file", metavar="FILE.json")
    verify.add_argument("--key", metavar="PEM", help="the public key (GET /api/v1/signing-key)")
    verify.set_defaults(func=cmd_verify)

    events = sub.add_parser("events", help="back up the whole log, or restore it")
    events_sub = events.add_subparsers(dest="events_command", required=True, metavar="ACTION")
    export = events_sub.add_parser("export", help="write every event to a JSON-lines file")
    export.add_argument("file", metavar="FILE.jsonl")
    export.set_defaults(func=cmd_events_export)
    restore = events_sub.add_parser("import", help="restore a backup into an empty store")
    restore.add_argument("file", metavar="FILE.jsonl")
    restore.set_defaults(func=cmd_events_import)

    audit = sub.add_parser("audit", help="check the log against its hash chain")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    audit_verify = audit_sub.add_parser("verify", help="recompute the chain, name the first change")
    audit_verify.set_defaults(func=cmd_audit_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (CommandFailed, StoreUnavailable, DomainError, OSError) as e:
        print(f"prepmeet: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
