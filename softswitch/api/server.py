"""The management API over HTTP (aiohttp): live calls, records, reload, metrics.

Every route but ``GET /health`` and ``GET /openapi.json`` needs
``Authorization: Bearer <token>``; a missing or wrong token gets 401 with
``WWW-Authenticate: Bearer`` and a JSON error.  All answers are JSON (errors are
``{"error": "..."}``, including aiohttp's own 404 and 405) except ``/metrics``,
which is the Prometheus text format.  The API only talks to the
:class:`~softswitch.control.Control` facade; the routes and their shapes are
described by :func:`softswitch.api.openapi.document`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web
from prometheus_client.registry import CollectorRegistry

from ..config import ApiSettings
from ..records.model import Disposition
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import make_registry, render
from .openapi import MAX_LIMIT, MAX_OFFSET, document

__all__ = [
    "ControlApi",
    "create_app",
    "parse_time",
    "start_api",
    "stop_api",
]

log = logging.getLogger("softswitch.api")

Json = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PUBLIC_ROUTES = frozenset({"health", "openapi"})  # route names served without a token


class ControlApi(Protocol):
    """What the API uses of :class:`softswitch.control.Control` (tests pass fakes)."""

    def health(self) -> Json: ...
    def ready(self) -> bool: ...
    def live_calls(self) -> list[Json]: ...
    def call(self, call_id: str) -> Json | None: ...
    def hangup(self, call_id: str) -> bool: ...
    def records(self, *, limit: int = 100, offset: int = 0,
                **filters: Any) -> tuple[list[Json], int]: ...
    def record(self, call_id: str) -> Json | None: ...
    def reload(self) -> tuple[bool, str]: ...
    def agents(self) -> list[Json]: ...
    def queues(self) -> list[Json]: ...
    def registrations(self) -> list[Json]: ...
    def metrics(self) -> Json: ...


if TYPE_CHECKING:
    from ..control import Control

    def _control_is_a_control_api(control: Control) -> ControlApi:
        return control  # mypy checks that Control has everything ControlApi names


CONTROL: web.AppKey[ControlApi] = web.AppKey("control")
TOKEN: web.AppKey[str] = web.AppKey("token", str)
REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("registry", CollectorRegistry)
OPENAPI: web.AppKey[bytes] = web.AppKey("openapi", bytes)


class BadRequest(ValueError):
    """A query value that is not valid; its text is the 400 body's ``error``."""


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _json(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=_dumps)


# ---- middlewares ---------------------------------------------------------------------


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own errors (404 no such route, 405 wrong method) as JSON; a bug as a
    logged 500 with a JSON body."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json":
            raise
        headers = {k: v for k, v in exc.headers.items()
                   if k.lower() in ("allow", "www-authenticate")}
        return _error(exc.status, exc.reason.lower(), headers)
    except BadRequest as exc:
        return _error(400, str(exc))
    except Exception:
        log.exception("management API: %s %s failed", request.method, request.path)
        return _error(500, "internal error; see the softswitch log")


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.route.name in PUBLIC_ROUTES:
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return _error(401, "a bearer token is required (Authorization: Bearer <token>)",
                      {"WWW-Authenticate": 'Bearer realm="softswitch"'})
    expected = request.app[TOKEN].encode("utf-8")
    if not hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), expected):
        return _error(401, "the bearer token is not valid",
                      {"WWW-Authenticate": 'Bearer realm="softswitch", error="invalid_token"'})
    return await handler(request)


# ---- query parsing -------------------------------------------------------------------

_INTEGER = re.compile(r"-?[0-9]+")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATE_TIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?P<hms>[0-9]{2}:[0-9]{2}):(?P<s>[0-9]{2})"
    r"(?P<frac>\.[0-9]+)?(?P<zone>[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


def parse_time(name: str, text: str) -> float:
    """An RFC 3339 / ISO 8601 date-time (or a date: its midnight) as epoch seconds.

    Without an offset the time is UTC.  A leap second (``:60``) counts as the
    second before it.  Raises BadRequest naming ``name``."""
    problem = BadRequest(
        f"{name}={text!r} is not a date-time; expected RFC 3339 like 2025-06-01T09:30:00Z "
        "or 2025-06-01T09:30:00+02:00 (no offset means UTC), or a date like 2025-06-01"
    )
    if _DATE.fullmatch(text):
        text = f"{text}T00:00:00"
    match = _DATE_TIME.fullmatch(text)
    if match is None:
        raise problem
    seconds = min(int(match["s"]), 59)
    frac = (match["frac"] or "")[:7]  # fromisoformat takes at most microseconds
    zone = match["zone"] or "+00:00"
    if zone in ("Z", "z"):
        zone = "+00:00"
    try:
        moment = datetime.fromisoformat(f"{match['date']}T{match['hms']}:{seconds:02d}{frac}{zone}")
    except ValueError:
        raise problem from None
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()


def _integer(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not _INTEGER.fullmatch(text):
        raise BadRequest(f"{name}={text!r} is not a whole number; expected {low}..{high}")
    value = int(text)
    if not low <= value <= high:
        raise BadRequest(f"{name}={value} is out of range; expected {low}..{high}")
    return value


_DISPOSITIONS = [d.value for d in Disposition]


_RECORD_PARAMETERS = ("tracking_number", "disposition", "caller", "since", "until", "limit",
                      "offset")


def _record_filters(query: Mapping[str, str]) -> Json:
    unknown = [name for name in query if name not in _RECORD_PARAMETERS]
    if unknown:
        # A misspelt filter would otherwise silently match every record.
        raise BadRequest(f"unknown query parameter {unknown[0]!r}; expected: "
                         f"{', '.join(_RECORD_PARAMETERS)}")
    filters: Json = {}
    for name in ("tracking_number", "caller"):
        if name in query:
            filters[name] = query[name]
    if "disposition" in query:
        disposition = query["disposition"]
        if disposition not in _DISPOSITIONS:
            raise BadRequest(f"disposition={disposition!r} is not a disposition; expected one "
                             f"of: {', '.join(_DISPOSITIONS)}")
        filters["disposition"] = disposition
    for name in ("since", "until"):
        if name in query:
            filters[name] = parse_time(name, query[name])
    return filters


# ---- handlers ------------------------------------------------------------------------


def _control(request: web.Request) -> ControlApi:
    return request.app[CONTROL]


async def health(request: web.Request) -> web.Response:
    return _json(_control(request).health())


async def ready(request: web.Request) -> web.Response:
    is_ready = _control(request).ready()
    return _json({"ready": is_ready}, 200 if is_ready else 503)


async def list_calls(request: web.Request) -> web.Response:
    return _json(_control(request).live_calls())


async def get_call(request: web.Request) -> web.Response:
    call_id = request.match_info["id"]
    found = _control(request).call(call_id)
    if found is None:
        return _error(404, f"no live call {call_id!r}")
    return _json(found)


async def hangup_call(request: web.Request) -> web.Response:
    call_id = request.match_info["id"]
    if not _control(request).hangup(call_id):
        return _error(404, f"no live call {call_id!r}")
    return _json({"hung_up": call_id}, 202)


async def list_records(request: web.Request) -> web.Response:
    query = request.query
    limit = _integer(query, "limit", 100, 1, MAX_LIMIT)
    offset = _integer(query, "offset", 0, 0, MAX_OFFSET)
    filters = _record_filters(query)
    control = _control(request)
    # SQLite reads run off the event loop, which carries the calls' SIP timers.
    records, total = await asyncio.to_thread(
        lambda: control.records(limit=limit, offset=offset, **filters)
    )
    return _json({"records": records, "total": total, "limit": limit, "offset": offset})


async def get_record(request: web.Request) -> web.Response:
    call_id = request.match_info["id"]
    control = _control(request)
    found = await asyncio.to_thread(control.record, call_id)
    if found is None:
        return _error(404, f"no record of call {call_id!r}")
    return _json(found)


async def reload(request: web.Request) -> web.Response:
    ok, text = _control(request).reload()
    if ok:
        return _json({"reloaded": True, "message": text})
    return _json({"reloaded": False, "problems": text}, 422)


async def list_agents(request: web.Request) -> web.Response:
    return _json(_control(request).agents())


async def list_queues(request: web.Request) -> web.Response:
    return _json(_control(request).queues())


async def list_registrations(request: web.Request) -> web.Response:
    return _json(_control(request).registrations())


async def metrics(request: web.Request) -> web.Response:
    body = render(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


# ---- the application -----------------------------------------------------------------

# (method, path, handler, route name = the operationId in the OpenAPI document)
ROUTES: tuple[tuple[str, str, Handler, str], ...] = (
    ("GET", "/health", health, "health"),
    ("GET", "/ready", ready, "ready"),
    ("GET", "/calls", list_calls, "list_calls"),
    ("GET", "/calls/{id}", get_call, "get_call"),
    ("POST", "/calls/{id}/hangup", hangup_call, "hangup_call"),
    ("GET", "/records", list_records, "list_records"),
    ("GET", "/records/{id}", get_record, "get_record"),
    ("POST", "/reload", reload, "reload"),
    ("GET", "/agents", list_agents, "list_agents"),
    ("GET", "/queues", list_queues, "list_queues"),
    ("GET", "/registrations", list_registrations, "list_registrations"),
    ("GET", "/metrics", metrics, "metrics"),
    ("GET", "/openapi.json", openapi, "openapi"),
)


def create_app(control: ControlApi, token: str) -> web.Application:
    """The aiohttp application for ``control``, guarded by bearer ``token``."""
    if not token:
        raise ValueError("the management API needs a non-empty token")
    app = web.Application(middlewares=[_errors, _auth])
    app[CONTROL] = control
    app[TOKEN] = token
    app[REGISTRY] = make_registry(control)
    app[OPENAPI] = json.dumps(document(), indent=1).encode("utf-8")
    for method, path, handler, name in ROUTES:
        app.router.add_route(method, path, handler, name=name)
    return app


async def start_api(control: ControlApi, settings: ApiSettings) -> web.AppRunner:
    """Serve the API on ``settings.host:settings.port``; returns the runner for
    :func:`stop_api` (``runner.addresses`` holds the bound address — port 0 picks one).

    Raises ValueError without a token and OSError when the address cannot be bound."""
    if not settings.token:
        raise ValueError("api.token is not set: the management API is not started without one")
    runner = web.AppRunner(create_app(control, settings.token), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(
            exc.errno,
            f"management API cannot listen on {settings.host}:{settings.port}: "
            f"{exc.strerror or exc}",
        ) from exc
    log.info("management API listening on http://%s:%d", *_address(runner, settings))
    return runner


def _address(runner: web.AppRunner, settings: ApiSettings) -> tuple[str, int]:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return str(address[0]), int(address[1])
    return settings.host, settings.port


async def stop_api(runner: web.AppRunner) -> None:
    """Stop serving: close the listening socket and finish open requests."""
    await runner.cleanup()
