"""The management API: HTTP (aiohttp) with a bearer token, Prometheus metrics and an
OpenAPI description.  See :mod:`softswitch.api.server`."""

from .server import ControlApi, create_app, start_api, stop_api

__all__ = ["ControlApi", "create_app", "start_api", "stop_api"]
