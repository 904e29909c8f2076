"""The ``langchain-es-cache`` command line (also ``python -m langchain_es_cache``).

Standard library only: argparse parses the commands, and the few tables and the
progress line are simple enough to print by hand, so the command line adds no
dependency to the core install.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta, timezone, tzinfo
from typing import Any, NamedTuple, TextIO, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    Elasticsearch,
    NotFoundError,
    TransportError,
)
from elasticsearch import ConnectionError as ESConnectionError

from langchain_es_cache import _ops
from langchain_es_cache._common import inspection, migration
from langchain_es_cache._common.connection import client_settings
from langchain_es_cache._common.documents import utc_now
from langchain_es_cache._common.failures import api_error, is_error_type
from langchain_es_cache._version import __version__
from langchain_es_cache.errors import CacheError
from langchain_es_cache.types import MigrationReport

PROG = "langchain-es-cache"

ENVIRONMENT = {
    "url": "ES_URL",
    "cloud_id": "ES_CLOUD_ID",
    "api_key": "ES_API_KEY",
    "user": "ES_USER",
    "password": "ES_PASSWORD",
}
"""Where each connection setting is read from when its flag is not given."""

NumberT = TypeVar("NumberT", int, float)


class Failure(Exception):
    """The command did not do what was asked; the message says why, in one line."""


# --- connection ---


def _setting(args: argparse.Namespace, name: str) -> str | None:
    value = getattr(args, name, None)
    return value if value else None


def _env(name: str) -> str | None:
    return os.environ.get(ENVIRONMENT[name]) or None


def connection_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The client's keyword arguments, from the flags, else the environment.

    Flags win: a URL or cloud id flag replaces both variables, and a credential
    flag replaces every credential variable. From the environment, ES_API_KEY
    wins over ES_USER/ES_PASSWORD.
    """
    if _setting(args, "url") or _setting(args, "cloud_id"):
        url, cloud_id = _setting(args, "url"), _setting(args, "cloud_id")
    else:
        url, cloud_id = _env("url"), _env("cloud_id")
        if url and cloud_id:
            raise Failure("both ES_URL and ES_CLOUD_ID are set: unset one")
    if any(_setting(args, name) for name in ("api_key", "user", "password")):
        api_key = _setting(args, "api_key")
        user, password = _setting(args, "user"), _setting(args, "password")
    elif _env("api_key"):
        api_key, user, password = _env("api_key"), None, None
    else:
        api_key, user, password = None, _env("user"), _env("password")
    if url is None and cloud_id is None:
        raise Failure(
            "no cluster given: pass --url (or --cloud-id), or set ES_URL "
            "(or ES_CLOUD_ID)"
        )
    try:
        settings = client_settings(
            has_client=False,
            es_url=url,
            es_cloud_id=cloud_id,
            es_user=user,
            es_api_key=api_key,
            es_password=password,
        )
    except ValueError as exc:
        raise Failure(str(exc).replace("es_", "").replace("_", "-")) from None
    assert settings is not None
    timeout = getattr(args, "timeout", None)
    if timeout is not None:
        settings["request_timeout"] = timeout
    return settings


def connect(args: argparse.Namespace) -> Elasticsearch:
    """A client for the cluster the flags and environment name."""
    return Elasticsearch(**connection_settings(args))


# --- output ---


def _number(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Rows under headers, in columns; numbers right-aligned."""
    cells = [[_number(v) if v is not None else "-" for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [
        bool(cells) and all(re.fullmatch(r"[\d,.]+|-", row[i]) for row in cells)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in cells)])


def pairs(rows: Iterable[tuple[str, object]]) -> str:
    """Label and value lines, labels aligned."""
    rows = list(rows)
    width = max(len(label) for label, _ in rows)
    return "\n".join(
        f"{label.ljust(width)}  {_number(value) if value is not None else '-'}"
        for label, value in rows
    )


def _size(size: int | None) -> str:
    if size is None:
        return "unknown (no monitor privilege)"
    amount = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if amount < 1024 or unit == "TB":
            return f"{size:,} B" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print `data` as JSON with --json, else `text`."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(text)


# --- commands ---


def cmd_stats(args: argparse.Namespace, client: Elasticsearch) -> int:
    stats = _ops.index_stats(client, args.index, top=args.top)
    text = [
        pairs(
            [
                ("index", stats.index),
                ("kind", stats.kind),
                ("entries", stats.entries),
                ("claims", stats.claims),
                ("size", _size(stats.size_bytes)),
                ("oldest", stats.oldest),
                ("newest", stats.newest),
            ]
        )
    ]
    if stats.namespaces:
        rows = [
            (g.key if g.key is not None else "(none)", g.entries, g.newest)
            for g in stats.namespaces
        ]
        if stats.namespaces_other:
            rows.append(("(other namespaces)", stats.namespaces_other, None))
        text.append(table(["namespace", "entries", "newest"], rows))
    if stats.configurations:
        models: list[tuple[str | None, str, int, str | None]] = [
            (g.key, g.model or "(llm_params not stored)", g.entries, g.newest)
            for g in stats.configurations
        ]
        if stats.configurations_other:
            others = stats.configuration_count - len(stats.configurations)
            models.append((f"({others} more)", "", stats.configurations_other, None))
        text.append(
            table(
                ["model configuration (llm_string_hash)", "model", "entries", "newest"],
                models,
            )
        )
    emit(args, stats.as_dict(), "\n\n".join(text))
    return 0


def cmd_check(args: argparse.Namespace, client: Elasticsearch) -> int:
    report = _ops.check_index(client, args.index)
    rows = [(c.name, "ok" if c.ok else "FAIL", c.detail) for c in report.checks]
    verdict = "ok" if report.ok else "FAILED"
    emit(
        args,
        report.as_dict(),
        f"{table(['check', 'result', 'detail'], rows)}\n\n{args.index}: {verdict}",
    )
    if not report.ok:
        failed = next(c for c in report.checks if not c.ok)
        print(f"{PROG}: check failed: {failed.name}: {failed.detail}", file=sys.stderr)
    return 0 if report.ok else 1


def _namespace_args(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "namespace": args.namespace,
        "all_namespaces": args.all_namespaces,
    }


def cmd_purge_expired(args: argparse.Namespace, client: Elasticsearch) -> int:
    filters = {"older_than": args.ttl.value}
    what = f"entries older than {args.ttl.text}"
    return _delete(args, client, filters, None, what)


def cmd_clear(args: argparse.Namespace, client: Elasticsearch) -> int:
    filters: dict[str, Any] = {}
    if args.llm_string is not None:
        filters["llm_string"] = args.llm_string
    if args.older_than is not None:
        filters["older_than"] = args.older_than.value
    if args.metadata is not None:
        filters["metadata"] = args.metadata
    what = "entries" + (
        " matching the filters" if filters or args.llm_string_hash else ""
    )
    return _delete(args, client, filters, args.llm_string_hash, what)


def _scope(args: argparse.Namespace) -> str:
    if args.all_namespaces:
        return "all namespaces"
    if args.namespace is None:
        return "entries without a namespace"
    return f"namespace {args.namespace!r}"


def _delete(
    args: argparse.Namespace,
    client: Elasticsearch,
    filters: dict[str, Any],
    llm_string_hash: str | None,
    what: str,
) -> int:
    query = _ops.selection_query(
        filters,
        llm_string_hash=llm_string_hash,
        now=utc_now(),
        **_namespace_args(args),
    )
    matched = _ops.count_matching(client, args.index, query)
    where = f"{args.index} ({_scope(args)})"
    result = {
        "index": args.index,
        "matched": matched,
        "deleted": 0,
        "dry_run": args.dry_run,
    }
    if args.dry_run or matched == 0:
        verb = "would delete" if args.dry_run else "deleted"
        emit(
            args,
            result,
            f"{verb} {_number(matched if args.dry_run else 0)} {what} from {where}",
        )
        return 0
    if not args.yes:
        _confirm(f"Delete {_number(matched)} {what} from {where}? [y/N] ")
    result["deleted"] = _ops.delete_matching(client, args.index, query)
    emit(args, result, f"deleted {_number(result['deleted'])} {what} from {where}")
    return 0


def _confirm(question: str) -> None:
    if not sys.stdin.isatty():
        raise Failure("refusing to delete without confirmation: pass --yes")
    print(question, end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise Failure("aborted: nothing deleted")


class ProgressLine:
    """Migration progress on stderr: one line redrawn on a terminal, else a
    line per tenth of the way."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._shown = -1
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        text = f"migrate: {done:,} / {total:,} documents read ({percent}%)"
        if self._tty:
            now = time.monotonic()
            if now - self._last >= 0.2 or done >= total:
                self._last = now
                end = "\n" if done >= total else ""
                print(f"\r{text}", end=end, file=self._stream, flush=True)
        elif percent // 10 > self._shown:
            self._shown = percent // 10
            print(text, file=self._stream, flush=True)


def cmd_migrate(args: argparse.Namespace, client: Elasticsearch) -> int:
    report = _ops.migrate(
        client,
        args.source,
        args.dest,
        kind=args.kind,
        namespace=args.namespace,
        source_timezone=args.source_timezone,
        dry_run=args.dry_run,
        batch_size=args.batch_size,
        progress=None if args.no_progress else ProgressLine(sys.stderr),
    )
    emit(args, report.as_dict(), migration_text(report))
    if report.failed:
        print(
            f"{PROG}: {report.failed:,} entries could not be written "
            f"(first: {report.examples['failed'][0]})",
            file=sys.stderr,
        )
        return 1
    return 0


def migration_text(report: MigrationReport) -> str:
    """The report as a reader wants it: what was copied, what was not and why."""
    if report.kind is None:
        return f"{report.source} holds no documents: nothing to migrate"
    would = "would be " if report.dry_run else ""
    lines = [
        ("source", f"{report.source} ({migration.KIND_NAMES[report.kind]})"),
        (
            "dest",
            report.dest + (" (dry run: nothing written)" if report.dry_run else ""),
        ),
        ("documents read", report.scanned),
        (f"{would}created", report.created),
        (f"{would}updated (dest had an older copy)", report.updated),
        ("unchanged (dest has it, as new or newer)", report.unchanged),
    ]
    lines += [
        (f"not copied: {text}", getattr(report, reason))
        for reason, text in report.SKIP_REASONS.items()
    ]
    lines.append(("failed writes", report.failed))
    if report.without_timestamp:
        lines.append(("copied without a timestamp", report.without_timestamp))
    text = pairs(lines)
    examples = [
        f"  {reason}: {example}"
        for reason, kept in report.examples.items()
        for example in kept
    ]
    if examples:
        text += "\n\nexamples (document id: reason):\n" + "\n".join(examples)
    return text


# --- arguments ---


class Duration(NamedTuple):
    """A duration as given (for messages) and as a `timedelta`."""

    text: str
    value: timedelta


def duration(text: str) -> Duration:
    """argparse type: a duration such as ``7d``."""
    try:
        return Duration(text, inspection.parse_duration(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def time_zone(text: str) -> tzinfo | None:
    """argparse type: ``local`` (`None`), ``UTC``, ``+05:30`` or an IANA name."""
    if text == "local":
        return None
    if text.upper() in ("UTC", "Z"):
        return timezone.utc
    match = re.fullmatch(r"([+-])(\d\d):?(\d\d)", text)
    if match:
        sign = -1 if match[1] == "-" else 1
        offset = timedelta(hours=int(match[2]), minutes=int(match[3]))
        if offset >= timedelta(hours=24):
            raise argparse.ArgumentTypeError(f"offset out of range: {text!r}")
        return timezone(sign * offset)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f"unknown time zone {text!r}: use local, UTC, an offset such as "
            "+05:30, or a name such as Europe/Paris"
        ) from None


def metadata_object(text: str) -> dict[str, Any]:
    """argparse type: a JSON object."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            'must be a JSON object, such as \'{"team": "search"}\''
        )
    return value


def positive_int(text: str) -> int:
    """argparse type: an int of at least 1."""
    return _checked(text, int, lambda n: n >= 1, "a whole number of at least 1")


def positive_seconds(text: str) -> float:
    """argparse type: a number of seconds above 0."""
    return _checked(
        text, float, lambda n: 0 < n < float("inf"), "a number of seconds above 0"
    )


def _checked(
    text: str, parse: Callable[[str], NumberT], ok: Callable[[NumberT], bool], what: str
) -> NumberT:
    """`text` parsed, if `ok`; else argparse's error saying it `must be {what}`."""
    try:
        value = parse(text)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"must be {what}, not {text!r}")
    return value


def _common_options() -> argparse.ArgumentParser:
    """Connection and output flags, accepted before or after the command."""
    # SUPPRESS: a subcommand's absent flag must not hide the one given before it.
    parser = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    group = parser.add_argument_group(
        "connection (flags win over ES_URL, ES_CLOUD_ID, ES_API_KEY, "
        "ES_USER, ES_PASSWORD)"
    )
    group.add_argument("--url", help="cluster URL [ES_URL]")
    group.add_argument("--cloud-id", help="Elastic Cloud id [ES_CLOUD_ID]")
    group.add_argument("--api-key", help="encoded API key [ES_API_KEY]")
    group.add_argument("--user", help="user for basic authentication [ES_USER]")
    group.add_argument(
        "--password",
        help="password [ES_PASSWORD]; prefer the variable: flags show in ps",
    )
    group.add_argument(
        "--timeout", type=positive_seconds, help="seconds per request (default: 10)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _namespace_options(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace", help="only this namespace (default: entries without one)"
    )
    scope.add_argument("--all-namespaces", action="store_true", help="every namespace")
    parser.add_argument("--dry-run", action="store_true", help="count only")
    parser.add_argument("--yes", action="store_true", help="do not ask to confirm")


def parser() -> argparse.ArgumentParser:
    """The command line's parser."""
    common = _common_options()
    main = argparse.ArgumentParser(
        prog=PROG,
        parents=[common],
        description="Inspect, check, purge, clear and migrate langchain-es-cache "
        "indices in Elasticsearch.",
        epilog="Exit status: 0 done, 1 failed (the reason on one line), "
        "2 bad arguments.",
    )
    main.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        name: str, handler: Callable[..., int], help: str
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    stats = add(
        "stats", cmd_stats, "entries, size, ages, namespaces, model configurations"
    )
    stats.add_argument("index")
    stats.add_argument(
        "--top",
        type=positive_int,
        default=10,
        help="namespaces and configurations listed (default: 10)",
    )
    check = add("check", cmd_check, "connection, credentials, index and privileges")
    check.add_argument("index")

    purge = add("purge-expired", cmd_purge_expired, "delete entries older than --ttl")
    purge.add_argument("index")
    purge.add_argument(
        "--ttl",
        type=duration,
        required=True,
        help="the cache's ttl: seconds, or such as 30m, 12h, 7d, 2w",
    )
    _namespace_options(purge)

    clear = add("clear", cmd_clear, "delete entries, all or those matching filters")
    clear.add_argument("index")
    clear.add_argument("--llm-string", help="only this model configuration")
    clear.add_argument(
        "--llm-string-hash", help="only this configuration, as `stats` lists it"
    )
    clear.add_argument(
        "--older-than", type=duration, help="only entries older than this (7d)"
    )
    clear.add_argument(
        "--metadata",
        type=metadata_object,
        help="only entries with these metadata values (a JSON object)",
    )
    _namespace_options(clear)

    migrate = add(
        "migrate",
        cmd_migrate,
        "copy a langchain-elasticsearch cache index into one of ours",
    )
    migrate.add_argument("source", help="index written by langchain-elasticsearch")
    migrate.add_argument("dest", help="new index, or a cache index of ours")
    migrate.add_argument(
        "--kind",
        choices=migration.KINDS,
        help="what SOURCE holds (default: read from its documents)",
    )
    migrate.add_argument(
        "--namespace", help="namespace of ours for LLM entries (default: none)"
    )
    migrate.add_argument(
        "--source-timezone",
        type=time_zone,
        default=None,
        help="time zone of langchain-elasticsearch's naive timestamps: local "
        "(default: this machine's), UTC, +05:30 or a name such as Europe/Paris",
    )
    migrate.add_argument("--dry-run", action="store_true", help="count, write nothing")
    migrate.add_argument(
        "--batch-size",
        type=positive_int,
        default=500,
        help="documents per scan page and bulk request (default: 500)",
    )
    migrate.add_argument(
        "--no-progress", action="store_true", help="no progress on stderr"
    )
    return main


def describe(exc: BaseException) -> str:
    """One line saying why a command failed; never a secret."""
    if isinstance(exc, ESConnectionError):
        return f"cannot connect to the cluster: {_first_line(exc.message)}"
    if isinstance(exc, AuthenticationException):
        return "the cluster refused the credentials (401)"
    if isinstance(exc, AuthorizationException):
        return f"not allowed (403): {_reason(exc)}"
    if isinstance(exc, NotFoundError) and is_error_type(
        exc, "index_not_found_exception"
    ):
        return f"{_reason(exc)}"
    if isinstance(exc, ApiError):
        return f"the cluster answered {exc.status_code}: {_reason(exc)}"
    if isinstance(exc, TransportError):
        return f"request failed: {_first_line(exc.message)}"
    return _first_line(str(exc)) or type(exc).__name__


def _reason(exc: ApiError) -> str:
    error = api_error(exc)
    if error is None:
        return _first_line(str(exc))
    return _first_line(f"{error.get('type')}: {error.get('reason')}")


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


def _log_warnings() -> None:
    """Show the library's warnings (unreadable entries) on stderr, one line
    each; the client's retry warnings, with tracebacks, are not for operators."""
    logging.getLogger().addHandler(logging.NullHandler())
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"{PROG}: warning: %(message)s"))
    library = logging.getLogger("langchain_es_cache")
    library.addHandler(handler)
    library.setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = parser().parse_args(argv)
    _log_warnings()
    try:
        client = connect(args)
        try:
            status: int = args.handler(args, client)
        finally:
            client.close()
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (
        Failure,
        ValueError,
        TypeError,
        ApiError,
        TransportError,
        CacheError,
    ) as exc:
        print(f"{PROG}: error: {describe(exc)}", file=sys.stderr)
        return 1
    return status
