"""The B2BUA: the transaction user that turns INVITEs to tracking numbers into calls.

It admits or refuses a new INVITE (403 from outside every trunk, 404 for a number
that is not a tracking number, 483 when Max-Forwards is spent, 503 while draining),
asks the router for a plan, creates the :class:`Call`, and dispatches everything the
endpoint hands up afterwards to the call and leg it belongs to.  Call lifecycle
events are emitted on ``events`` (a pyee EventEmitter): ``call_started``,
``leg_dialing``, ``leg_ringing``, ``leg_failed``, ``answered``, ``bridged``,
``call_ended``.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import random
import secrets
from collections.abc import Callable, Sequence
from urllib.parse import quote

from pyee import EventEmitter

from ..config import Config, Credentials, TrackingNumber
from ..media.streams import MediaEngine
from ..routing.conditions import CallFacts
from ..routing.counters import InMemoryCounters, LiveCounters
from ..routing.router import AgentContact, Router, Target
from ..sip.dialog import DialogId
from ..sip.digest import ha1
from ..sip.e164 import NumberError, normalize
from ..sip.endpoint import Endpoint, EndpointConfig
from ..sip.message import Headers, Request, Response
from ..sip.registrar import Registrar, RegistrarPolicy
from ..sip.timers import TimerHandle
from ..sip.transaction import (
    ClientTransaction,
    InviteServerTransaction,
    ServerTransaction,
    Transaction,
)
from ..sip.uri import NameAddr, SipUri, TelUri, quote_string
from .call import Call
from .legs import InboundLeg, Leg, OutboundLeg
from .queues import QueueService

log = logging.getLogger("softswitch.b2bua")


class B2BUA:
    def __init__(
        self,
        config: Config,
        endpoint_config: EndpointConfig,
        rng: random.Random | None = None,
        counters: LiveCounters | None = None,
        wall_clock: Callable[[], datetime.datetime] | None = None,
        epoch_offset: float = 0.0,
        media: MediaEngine | None = None,
    ) -> None:
        self.config = config
        # RTP streams for anchored legs; None: media is never anchored (SDP passes through).
        self.media = media
        # Loop time ``now`` + epoch_offset = wall-clock seconds since the epoch, so
        # call records carry the time each message reached the socket.
        self.epoch_offset = epoch_offset
        self.counters: LiveCounters = counters if counters is not None else InMemoryCounters()
        # Wall-clock time for schedules (hours); loop time ``now`` is monotonic.
        self.wall_clock = wall_clock or (lambda: datetime.datetime.now(datetime.UTC))
        if "REGISTER" not in endpoint_config.allow:  # softswitch is the agents' registrar
            allow = (*endpoint_config.allow, "REGISTER")
            endpoint_config = dataclasses.replace(endpoint_config, allow=allow)
        self.endpoint = Endpoint(endpoint_config, self, rng=rng)
        self.events = EventEmitter()
        self.calls: dict[str, Call] = {}
        self.queues = QueueService(self, rng)
        self.now = 0.0  # the time of the input being handled (for registrations)
        secret = rng.randbytes(32) if rng is not None else secrets.token_bytes(32)
        self.registrar = Registrar(config.sip.realm, self._ha1, _policy(config), secret)
        self._expiry: TimerHandle | None = None
        self._by_invite: dict[int, Call] = {}
        self._tracked: dict[int, tuple[Call, Leg]] = {}
        self._tracked_by_call: dict[str, set[int]] = {}
        self.draining = False

    # ---- TransactionUser -----------------------------------------------------------

    def on_request(
        self, request: Request, transaction: ServerTransaction | None, now: float
    ) -> None:
        self.now = now
        if request.method == "REGISTER" and transaction is not None:
            self._register(request, transaction, now)
            return
        to_tag = request.to.tag
        if to_tag is not None:
            dialog_id: DialogId = (request.call_id, to_tag, request.from_.tag or "")
            owner = self.endpoint.dialogs.get(dialog_id)
            if isinstance(owner, (InboundLeg, OutboundLeg)):
                owner.call.dialog_request(owner, request, transaction, now)
            elif transaction is not None:
                self.endpoint.respond(transaction, request.response(481), now)
            else:
                log.debug("dropped ACK outside any dialog: %s", request.call_id)
            return
        if transaction is None:
            log.debug("dropped ACK that matches nothing: %s", request.call_id)
            return
        if request.method != "INVITE":
            # Out-of-dialog BYE, UPDATE, INFO: nothing to act on (§15.1.2, §12.2.2).
            self.endpoint.respond(
                transaction, request.response(481, to_tag=self.endpoint.new_id()), now
            )
            return
        assert isinstance(transaction, InviteServerTransaction)
        self._new_call(request, transaction, now)

    def on_cancel(self, invite: InviteServerTransaction, now: float) -> None:
        call = self._by_invite.get(id(invite))
        if call is None:
            log.debug("CANCEL for an INVITE that made no call")
            return
        call.cancelled_by_caller(now)

    def on_response(self, transaction: ClientTransaction, response: Response, now: float) -> None:
        self.now = now
        entry = self._tracked.get(id(transaction))
        if entry is None:
            log.debug("response %s for a transaction no call owns any more", response.status)
            return
        call, leg = entry
        call.on_response(leg, transaction, response, now)

    def on_timeout(self, transaction: Transaction, now: float) -> None:
        self.now = now
        entry = self._tracked.get(id(transaction))
        if entry is None:
            if isinstance(transaction, InviteServerTransaction):
                log.info("no ACK came for the final response to %s", transaction.request.call_id)
            return
        call, leg = entry
        assert isinstance(transaction, ClientTransaction)
        call.on_timeout(leg, transaction, now)

    # ---- admission -----------------------------------------------------------------

    def _refuse(
        self,
        txn: InviteServerTransaction,
        request: Request,
        status: int,
        now: float,
        reason: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> None:
        response = request.response(
            status, reason, to_tag=self.endpoint.new_id(), extra=extra or ()
        )
        log.info(
            "refused INVITE %s from %s:%s: %s %s",
            request.raw_uri,
            *txn.source,
            status,
            response.reason,
        )
        self.endpoint.respond(txn, response, now)

    def _new_call(self, request: Request, txn: InviteServerTransaction, now: float) -> None:
        if self.draining:
            self._refuse(txn, request, 503, now, "Draining", [("Retry-After", "30")])
            return
        trunk = self.config.trunk_for(txn.source[0])
        if trunk is None:
            self._refuse(txn, request, 403, now, "Forbidden (not a trusted trunk)")
            return
        if request.max_forwards == 0:
            self._refuse(txn, request, 483, now)
            return
        tracking = self._tracking_number(request)
        if tracking is None:
            self._refuse(txn, request, 404, now, "Not Found (not a tracking number)")
            return
        caller = _caller(request)
        facts = CallFacts(
            tracking_number=tracking.number,
            caller=caller,
            caller_e164=_e164_or_none(caller),
            headers=_headers_of(request),
            at=self.wall_clock(),
        )
        router = Router(self.config, tracking, facts, self.counters, self)
        max_calls = self.config.routing.max_calls
        overloaded = max_calls > 0 and len(self.calls) >= max_calls
        call_id = self.endpoint.new_id()
        call = Call(self, call_id, request, txn, router, caller, now)
        self.calls[call_id] = call
        self._by_invite[id(txn)] = call
        call.log_event(f"from {caller} to tracking number {tracking.number} ({tracking.label})")
        self.events.emit("call_started", call)
        call.start(now, overloaded)

    def _tracking_number(self, request: Request) -> TrackingNumber | None:
        uri = request.uri
        if isinstance(uri, SipUri):
            user = uri.user_unescaped
            if user is None:
                return None
            number = user.split(";", 1)[0]
        elif isinstance(uri, TelUri):
            number = uri.number
        else:
            return None
        try:
            return self.config.tracking_number(normalize(number))
        except NumberError:
            return None

    # ---- helpers for calls -----------------------------------------------------------

    def outbound_invite(
        self, call: Call, leg: OutboundLeg, uri: SipUri, target: Target, transport: str, body: bytes
    ) -> Request:
        """A new INVITE for one leg: its own Call-ID, tags, CSeq and Via (issue #2), and
        the SDP the call gives it (the caller's, or softswitch's when anchored)."""
        inbound = call.inbound.invite
        host = self.endpoint.config.local[transport][0]
        host = f"[{host}]" if ":" in host else host
        # The receiving phone shows the caller's number, or the tracking number dialled
        # when the receiving number asks for it (caller_id: tracking).
        tracking_number = call.router.tracking.number
        shown = tracking_number if target.present_tracking_number else call.caller
        display = None if target.present_tracking_number else inbound.from_.display_name
        from_addr = NameAddr(
            SipUri("sip", host, _user_part(shown)),
            quote_string(display) if display else None,
            (("tag", self.endpoint.new_id()),),
        )
        headers = Headers()
        headers.set("via", self.endpoint.via(transport))
        forwards = inbound.max_forwards
        headers.set("max-forwards", str(min(forwards - 1, 70) if forwards is not None else 70))
        headers.set("from", str(from_addr))
        headers.set("to", f"<{uri}>")
        headers.set("call-id", f"{self.endpoint.new_id()}@{host}")
        headers.set("cseq", "1 INVITE")
        headers.set("contact", self.endpoint.contact(transport))
        if target.proxy is not None:
            headers.set("route", f"<{target.proxy};lr>")
        if target.diversion:
            # RFC 5806: the call was diverted from the tracking number.
            headers.set("diversion", f"<sip:{tracking_number}@{host}>;reason=unconditional")
        headers.set("allow", ", ".join(self.endpoint.config.allow))
        if body:
            headers.set("content-type", inbound.headers.get("content-type") or "application/sdp")
        return Request("INVITE", uri, headers, body)

    def wall(self, now: float) -> float:
        return now + self.epoch_offset

    def credentials_for(self, target: Target) -> Credentials | None:
        if target.trunk is None:
            return None
        for trunk in self.config.trunks:
            if trunk.name == target.trunk:
                return trunk.credentials
        return None

    def track(self, transaction: ClientTransaction, call: Call, leg: Leg) -> None:
        self._tracked[id(transaction)] = (call, leg)
        self._tracked_by_call.setdefault(call.id, set()).add(id(transaction))

    def untrack(self, transaction: ClientTransaction) -> None:
        entry = self._tracked.pop(id(transaction), None)
        if entry is not None:
            self._tracked_by_call.get(entry[0].id, set()).discard(id(transaction))

    def emit(self, event: str, *args: object) -> None:
        self.events.emit(event, *args)

    def call_ended(self, call: Call) -> None:
        """The call is over for the caller and the records (exactly once)."""
        self.calls.pop(call.id, None)
        self._by_invite.pop(id(call.inbound.transaction), None)
        self.events.emit("call_ended", call)

    def forget(self, call: Call) -> None:
        """No transaction of the call is awaited any more (see ``Call._maybe_end``)."""
        for tid in self._tracked_by_call.pop(call.id, set()):
            self._tracked.pop(tid, None)

    # ---- drain -------------------------------------------------------------------------

    def start_draining(self) -> None:
        self.draining = True

    def hangup_all(self, now: float, why: str) -> None:
        for call in list(self.calls.values()):
            call.hangup(None, now, why)

    # ---- agents' registrations (RFC 3261 §10) ----------------------------------------

    def _ha1(self, agent: str, algorithm: str) -> str | None:
        """The stored HA1 of ``agent`` for ``algorithm``, from the config in force."""
        entry = self.config.agents.get(agent)
        if entry is None:
            return None
        realm = self.config.sip.realm
        if algorithm == "MD5":
            return entry.ha1 or (ha1(agent, realm, entry.password) if entry.password else None)
        if algorithm == "SHA-256":
            if entry.ha1_sha256:
                return entry.ha1_sha256
            return ha1(agent, realm, entry.password, "SHA-256") if entry.password else None
        return None

    def _register(self, request: Request, txn: ServerTransaction, now: float) -> None:
        outcome = self.registrar.handle(request, txn.source, txn.transport, now)
        response = outcome.response
        failed = response.status >= 400 and (
            response.status != 401 or "authorization" in request.headers
        )  # a first 401 is the normal challenge; one after credentials is a failed login
        if outcome.added or outcome.removed or failed:
            log.info(
                "REGISTER %s from %s:%s over %s: %s %s%s", request.to.uri, *txn.source,
                txn.transport, response.status, response.reason,
                f" ({outcome.detail})" if outcome.detail else "",
            )
        if outcome.delay > 0:
            # A source that keeps failing waits for its answer (the registrar's throttle).
            self.endpoint.timers.call_at(
                now + outcome.delay, lambda at: self.endpoint.respond(txn, response, at)
            )
        else:
            self.endpoint.respond(txn, response, now)
        if outcome.added or outcome.removed:
            self._arm_expiry()
            self.queues.dispatch_all(now)

    def _arm_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        deadline = self.registrar.next_expiry()
        self._expiry = None if deadline is None else self.endpoint.timers.call_at(
            deadline, self._expire
        )

    def _expire(self, now: float) -> None:
        self._expiry = None
        self.now = now
        for binding in self.registrar.expire(now):
            log.info("registration of %s at %s expired", binding.aor, binding.contact)
        self._arm_expiry()
        self.queues.dispatch_all(now)

    def reconfigure(self, config: Config) -> None:
        """A reload: new calls use ``config``; registrations and queues carry on."""
        self.config = config
        self.registrar.policy = _policy(config)

    def contacts(self, agent: str) -> Sequence[AgentContact]:
        """The phones ``agent`` has registered (the router's AgentDirectory)."""
        return [
            AgentContact(b.contact, b.source[0], b.source[1], b.transport)
            for b in self.registrar.contacts(agent, self.now)
        ]

    def stats(self) -> dict[str, int]:
        return {
            "calls": len(self.calls),
            "tracked_transactions": len(self._tracked),
            **self.endpoint.stats(),
        }


def _policy(config: Config) -> RegistrarPolicy:
    settings = config.sip.registrar
    return RegistrarPolicy(
        min_expires=settings.min_expires,
        max_expires=settings.max_expires,
        default_expires=settings.default_expires,
        nonce_lifetime=settings.nonce_lifetime,
        window=settings.window,
        slow_after=settings.slow_after,
        block_after=settings.block_after,
        block_for=settings.block_for,
        algorithms=settings.algorithms,
    )


def _caller(request: Request) -> str:
    uri = request.from_.uri
    if isinstance(uri, SipUri):
        return uri.user_unescaped or "anonymous"
    if isinstance(uri, TelUri):
        return uri.number
    return "anonymous"


def _e164_or_none(caller: str) -> str | None:
    try:
        return normalize(caller)
    except NumberError:
        return None


def _headers_of(request: Request) -> dict[str, tuple[str, ...]]:
    """The INVITE's header fields for conditional routing, lower-case names."""
    values: dict[str, list[str]] = {}
    for name, value in request.headers:
        values.setdefault(name.lower(), []).append(value)
    return {name: tuple(v) for name, v in values.items()}


def _user_part(caller: str) -> str:
    """The caller's number as a URI user part (escape what a user part cannot hold)."""
    return quote(caller, safe="+-_.!~*'()&=$,;?/")
