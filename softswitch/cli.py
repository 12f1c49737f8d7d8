"""The ``softswitch`` command: run, check, route, calls, version."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
from pathlib import Path

from . import __version__, logs
from .config import Config, ConfigError, Listen, load_config
from .records import query as records_query
from .routing.conditions import CallFacts
from .routing.explain import explain
from .sip.e164 import NumberError, normalize


def _listen(text: str) -> Listen:
    try:
        return Listen.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME:VALUE")
    return name.strip().lower(), value.strip()


def _route(config: Config, args: argparse.Namespace) -> int:
    try:
        number = normalize(args.number)
    except NumberError as exc:
        print(f"softswitch route: {exc}", file=sys.stderr)
        return 2
    tracking = config.tracking_number(number)
    if tracking is None:
        print(
            f"softswitch route: {number} is not a tracking number in {args.config} "
            "(a call to it gets 404)",
            file=sys.stderr,
        )
        return 1
    try:
        caller_e164: str | None = normalize(args.caller)
    except NumberError:
        caller_e164 = None
    headers: dict[str, tuple[str, ...]] = {}
    for name, value in args.header:
        headers[name] = (*headers.get(name, ()), value)
    at = args.at or datetime.datetime.now(datetime.UTC)
    facts = CallFacts(tracking.number, args.caller, caller_e164, headers, at)
    print("\n".join(explain(config, tracking, facts)))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="softswitch", description="SIP softswitch for call tracking"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start softswitch")
    run.add_argument("-c", "--config", required=True, type=Path, help="YAML config file")
    run.add_argument(
        "--listen",
        action="append",
        type=_listen,
        metavar="udp:HOST:PORT|tcp:HOST:PORT",
        help="listen here instead of the config's sip.listen (repeatable)",
    )
    run.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="overrides the config's log_level",
    )
    run.add_argument(
        "--log-format",
        choices=["text", "json"],
        default="text",
        help="text lines (default) or one JSON object per line, with the call's id",
    )
    check = sub.add_parser("check", help="validate a config file without starting")
    check.add_argument("-c", "--config", required=True, type=Path)
    route = sub.add_parser(
        "route", help="explain the plan a call to NUMBER would follow, without placing it"
    )
    route.add_argument("-c", "--config", required=True, type=Path)
    route.add_argument("number", help="the tracking number dialled, in any usual form")
    route.add_argument(
        "--from",
        dest="caller",
        default="anonymous",
        help="the caller's number (default: anonymous)",
    )
    route.add_argument(
        "--at",
        type=records_query.parse_when,
        help="the call's time, ISO 8601 (default: now; a time without a zone is UTC)",
    )
    route.add_argument(
        "--header",
        action="append",
        type=_header,
        default=[],
        metavar="NAME:VALUE",
        help="a header of the INVITE (repeatable)",
    )
    records_query.add_parser(sub)
    sub.add_parser("version", help="print the version")
    return parser


def _run_loop(coro_factory: object) -> int:
    """Run on uvloop when it is installed (it is a dependency; absent only in odd setups)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro_factory())  # type: ignore[operator,no-any-return]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro_factory())  # type: ignore[operator,no-any-return]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"softswitch {__version__}")
        return 0
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.command == "route":
        return _route(config, args)
    if args.command == "calls":
        return records_query.run(config, args)
    from .media.files import load_audio  # decoding audio is PyAV's: only for check and run

    try:
        audio_files = load_audio(config, str(args.config))
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.command == "check":
        print(
            f"{args.config}: OK ({len(config.tracking_numbers)} tracking numbers, "
            f"{len(config.receiving_numbers)} receiving numbers, {len(config.trunks)} trunks, "
            f"{audio_files} audio files)"
        )
        return 0
    logs.setup(args.log_level or config.log_level, args.log_format)
    from .app import App

    app = App(config, args.config, args.listen)
    return _run_loop(app.run)


if __name__ == "__main__":
    sys.exit(main())
