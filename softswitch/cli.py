"""The ``softswitch`` command: run, check, version."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from . import __version__
from .config import ConfigError, Listen, load_config


def _listen(text: str) -> Listen:
    try:
        return Listen.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


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
    check = sub.add_parser("check", help="validate a config file without starting")
    check.add_argument("-c", "--config", required=True, type=Path)
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
    if args.command == "check":
        print(
            f"{args.config}: OK ({len(config.tracking_numbers)} tracking numbers, "
            f"{len(config.receiving_numbers)} receiving numbers, {len(config.trunks)} trunks)"
        )
        return 0
    logging.basicConfig(
        level=(args.log_level or config.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from .app import App

    app = App(config, args.config, args.listen)
    return _run_loop(app.run)


if __name__ == "__main__":
    sys.exit(main())
