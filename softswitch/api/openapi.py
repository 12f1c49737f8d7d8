"""The OpenAPI 3.1 description of the management API (served at ``GET /openapi.json``).

Built here as plain data so it can name the enums of the core (dispositions, call
and leg states) instead of copying them.  ``tests/unit/test_api_schema.py`` keeps it
true: every route of the aiohttp router is described (and nothing else), the record
schemas match the :class:`~softswitch.records.model.CallRecord` fields, and
schemathesis drives the running API with generated requests and checks every
status code, content type and response body against this document.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import __version__
from ..b2bua.call import CallState
from ..b2bua.legs import LegState
from ..records.model import Disposition

__all__ = ["MAX_LIMIT", "MAX_OFFSET", "document"]

Json = dict[str, Any]

MAX_LIMIT = 1000
MAX_OFFSET = 2**63 - 1  # SQLite's largest integer

_NUMBER_OR_NULL: Json = {"type": ["number", "null"]}
_STRING_OR_NULL: Json = {"type": ["string", "null"]}
_INTEGER_OR_NULL: Json = {"type": ["integer", "null"]}


def _object(properties: Json, *, required: list[str] | None = None, **extra: Any) -> Json:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": False,
        **extra,
    }


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _leg() -> Json:
    return _object(
        {
            "number": {"type": "integer", "minimum": 1,
                       "description": "1, 2, ... in the order dialled"},
            "name": {"type": "string", "description": "receiving number name in the config"},
            "phone": {"type": "string", "description": "the receiving number, E.164"},
            "label": {"type": "string"},
            "tried_at": {"type": "number", "description": "epoch seconds (UTC)"},
            "rang_at": _NUMBER_OR_NULL,
            "answered_at": _NUMBER_OR_NULL,
            "ended_at": _NUMBER_OR_NULL,
            "status": {**_INTEGER_OR_NULL, "description": "the leg's final SIP status"},
            "outcome": {**_STRING_OR_NULL,
                        "description": "answered, busy, no answer, failed, unreachable, "
                                       "cancelled"},
            "reason": {**_STRING_OR_NULL, "description": "the Reason header, if any"},
        },
        description="One outbound leg: a receiving number tried for the call.",
    )


def _record(leg: Json) -> Json:
    return _object(
        {
            "id": {"type": "string", "description": "the call id"},
            "tracking_number": {"type": "string", "description": "E.164"},
            "tracking_label": {"type": "string"},
            "caller_number": {"type": "string"},
            "caller_name": _STRING_OR_NULL,
            "pattern": {**_STRING_OR_NULL, "description": "dial pattern of the route followed"},
            "started_at": {"type": "number", "description": "epoch seconds (UTC)"},
            "first_ring_at": _NUMBER_OR_NULL,
            "answered_at": _NUMBER_OR_NULL,
            "bridged_at": _NUMBER_OR_NULL,
            "ended_at": _NUMBER_OR_NULL,
            "hangup_by": {**_STRING_OR_NULL, "description": "caller, callee or softswitch"},
            "disposition": {"type": "string", "enum": [d.value for d in Disposition]},
            "final_status": {**_INTEGER_OR_NULL, "description": "the status the caller got"},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            "legs": {"type": "array", "items": leg},
            "billable_seconds": {"type": "integer", "minimum": 0},
            "cost": {"type": "number"},
        },
        description="A call record (times in epoch seconds, UTC).",
    )


def _schemas() -> Json:
    leg = _leg()
    live_leg = copy.deepcopy(leg)
    live_leg["properties"]["state"] = {"type": "string", "enum": [s.value for s in LegState]}
    live_leg["required"].append("state")
    live_leg["description"] = "An outbound leg of a live call, with its signalling state."
    live_call = _record(_ref("LiveLeg"))
    live_call["properties"]["state"] = {"type": "string", "enum": [s.value for s in CallState]}
    live_call["required"].append("state")
    live_call["description"] = "A call in progress: its record so far and its state."
    return {
        "Error": _object({"error": {"type": "string"}}),
        "Health": _object(
            {
                "status": {"type": "string", "enum": ["ok", "draining"]},
                "version": {"type": "string"},
                "uptime_seconds": {"type": "number", "minimum": 0},
                "calls_in_progress": {"type": "integer", "minimum": 0},
            }
        ),
        "Ready": _object({"ready": {"type": "boolean"}}),
        "Leg": leg,
        "LiveLeg": live_leg,
        "Record": _record(_ref("Leg")),
        "LiveCall": live_call,
        "RecordPage": _object(
            {
                "records": {"type": "array", "items": _ref("Record")},
                "total": {"type": "integer", "minimum": 0,
                          "description": "how many records match the filters in all"},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                "offset": {"type": "integer", "minimum": 0},
            }
        ),
        "HungUp": _object({"hung_up": {"type": "string", "description": "the call id"}}),
        "Reloaded": _object(
            {
                "reloaded": {"type": "boolean", "const": True},
                "message": {"type": "string"},
            }
        ),
        "ReloadRefused": _object(
            {
                "reloaded": {"type": "boolean", "const": False},
                "problems": {"type": "string",
                             "description": "every problem found; the old config stays"},
            }
        ),
        # Agents, queues and registrations come with issue #5; their shape is open.
        "Agent": {"type": "object"},
        "Queue": {"type": "object"},
        "Registration": {"type": "object"},
    }


def _json(description: str, schema: Json) -> Json:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> Json:
    return _json(description, _ref("Error"))


_UNAUTHORIZED: Json = {
    "description": "No bearer token, or the wrong one.",
    "headers": {
        "WWW-Authenticate": {"schema": {"type": "string"}, "required": True,
                             "description": "Bearer"}
    },
    "content": {"application/json": {"schema": _ref("Error")}},
}

_CALL_ID: Json = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "the call id",
    "schema": {"type": "string", "minLength": 1},
}


def _op(operation_id: str, summary: str, responses: Json, *, public: bool = False,
        parameters: list[Json] | None = None) -> Json:
    op: Json = {"operationId": operation_id, "summary": summary}
    if parameters:
        op["parameters"] = parameters
    if public:
        op["security"] = []
    else:
        responses = {**responses, "401": _UNAUTHORIZED}
    op["responses"] = responses
    return op


def _query(name: str, description: str, schema: Json) -> Json:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


def _paths() -> Json:
    records_parameters = [
        _query("tracking_number", "only calls to this tracking number (E.164, exact)",
               {"type": "string"}),
        _query("disposition", "only calls with this disposition",
               {"type": "string", "enum": [d.value for d in Disposition]}),
        _query("caller", "only calls from this caller number (exact)", {"type": "string"}),
        _query("since", "only calls started at or after this time (RFC 3339; without an "
               "offset, UTC)", {"type": "string", "format": "date-time"}),
        _query("until", "only calls started before this time (RFC 3339; without an offset, "
               "UTC)", {"type": "string", "format": "date-time"}),
        _query("limit", "page size",
               {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100}),
        _query("offset", "records to skip (newest first)",
               {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}),
    ]
    return {
        "/health": {"get": _op(
            "health", "Liveness, version, uptime and calls in progress (no token needed).",
            {"200": _json("Alive.", _ref("Health"))}, public=True)},
        "/ready": {"get": _op(
            "ready", "Ready to take calls (not draining).",
            {"200": _json("Ready.", _ref("Ready")),
             "503": _json("Draining: new calls are refused.", _ref("Ready"))})},
        "/calls": {"get": _op(
            "list_calls", "Calls in progress.",
            {"200": _json("The live calls.", {"type": "array", "items": _ref("LiveCall")})})},
        "/calls/{id}": {"get": _op(
            "get_call", "One live call: its record so far, state and legs.",
            {"200": _json("The call.", _ref("LiveCall")),
             "404": _error("No live call with this id.")},
            parameters=[_CALL_ID])},
        "/calls/{id}/hangup": {"post": _op(
            "hangup_call",
            "End a live call from softswitch's side (BYE, or CANCEL and 503 while ringing).",
            {"202": _json("Hangup under way.", _ref("HungUp")),
             "404": _error("No live call with this id.")},
            parameters=[_CALL_ID])},
        "/records": {"get": _op(
            "list_records", "Stored call records, newest first, filtered and paged.",
            {"200": _json("One page of records.", _ref("RecordPage")),
             "400": _error("A filter or paging value is not valid.")},
            parameters=records_parameters)},
        "/records/{id}": {"get": _op(
            "get_record", "One stored call record.",
            {"200": _json("The record.", _ref("Record")),
             "404": _error("No record with this call id.")},
            parameters=[_CALL_ID])},
        "/reload": {"post": _op(
            "reload",
            "Reload the config file, as SIGHUP: validated first; a bad config is refused "
            "and the old one stays. Calls in progress keep the routes they started with.",
            {"200": _json("Reloaded.", _ref("Reloaded")),
             "422": _json("Refused: the config does not validate.", _ref("ReloadRefused"))})},
        "/agents": {"get": _op(
            "list_agents", "Agents and their state.",
            {"200": _json("The agents.", {"type": "array", "items": _ref("Agent")})})},
        "/queues": {"get": _op(
            "list_queues", "Queues and their members' state.",
            {"200": _json("The queues.", {"type": "array", "items": _ref("Queue")})})},
        "/registrations": {"get": _op(
            "list_registrations", "Current SIP registrations.",
            {"200": _json("The registrations.",
                          {"type": "array", "items": _ref("Registration")})})},
        "/metrics": {"get": _op(
            "metrics", "Counters and gauges in the Prometheus text format 0.0.4.",
            {"200": {"description": "Prometheus exposition.",
                     "content": {"text/plain": {"schema": {"type": "string"}}}}})},
        "/openapi.json": {"get": _op(
            "openapi", "This document (no token needed).",
            {"200": _json("The OpenAPI document.", {"type": "object"})}, public=True)},
    }


def document() -> Json:
    """The OpenAPI 3.1 document of the management API (a fresh copy each call)."""
    return copy.deepcopy({
        "openapi": "3.1.0",
        "info": {
            "title": "softswitch management API",
            "version": __version__,
            "description": "Live calls, call records, config reload and metrics. Every "
                           "route but /health and /openapi.json needs "
                           "'Authorization: Bearer <token>' (the api.token setting).",
        },
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
        },
    })
