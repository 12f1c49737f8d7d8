"""The SIP endpoint: the sans-IO core that owns transactions and answers what it can.

Theory of operation
-------------------
The edge calls ``receive(data, source, transport, now)`` for every datagram or TCP
frame, ``run_timers(now)`` when the deadline it was given passes, and after either
sends everything ``take_outgoing()`` returns and re-arms its one timer at
``next_deadline()``.  Nothing here reads a clock or touches a socket.

On the way in a message is parsed (a malformed request is answered 400, 413, 505 or
513 statelessly when it carries enough to answer; anything else is dropped and
logged), the top Via of a request gets ``received``/``rport`` (RFC 3581), responses
are matched to client transactions (§17.1.3) and requests to server transactions
(§17.2.3, with RFC 2543 matching for branches without the magic cookie).  A new
request goes through the checks every UAS makes (§8.2: URI scheme 416, method 405/501,
Require 420, in-dialog 481, Content-Type 415, Accept 406) and OPTIONS is answered
here (200); what survives reaches the transaction user (the B2BUA) with its server
transaction.  CANCEL is matched to its INVITE (§9.2), answered 200 here, and the TU
is told.

The TU talks back through ``respond``, ``send_request``, ``cancel`` and
``send_stateless`` (ACK for 2xx and 2xx retransmissions, which §13.3.1.4 and §17.1.1.3
leave to the user agent, not the transaction).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Protocol

from .dialog import DialogId
from .errors import ParseError, SipError
from .message import (
    DEFAULT_LIMITS,
    Headers,
    Limits,
    MessageParseError,
    Request,
    Response,
    parse_message,
)
from .timers import TimerHandle, TimerQueue
from .transaction import (
    Address,
    ClientTransaction,
    InviteClientTransaction,
    InviteServerTransaction,
    NonInviteClientTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
    Timers,
    Transaction,
)
from .uri import (
    SipUri,
    TelUri,
    Via,
    is_digits,
    is_token,
    parse_via,
    split_hostport,
    strip_brackets,
)

log = logging.getLogger("softswitch.sip")

MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7
KNOWN_METHODS = frozenset(
    "INVITE ACK CANCEL BYE OPTIONS REGISTER PRACK SUBSCRIBE NOTIFY PUBLISH INFO REFER "
    "MESSAGE UPDATE".split()
)
DEFAULT_ALLOW = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "UPDATE", "INFO")
SDP = "application/sdp"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A message for the edge to put on the wire."""

    data: bytes
    destination: Address
    transport: str


@dataclass(slots=True)
class EndpointConfig:
    """What the core needs to know of where it lives."""

    local: dict[str, Address]  # transport -> (host, port) written into Via/Contact
    timers: Timers = field(default_factory=Timers)
    limits: Limits = DEFAULT_LIMITS
    user_agent: str = "softswitch"
    allow: tuple[str, ...] = DEFAULT_ALLOW
    supported: tuple[str, ...] = ()


class TransactionUser(Protocol):
    """What the endpoint hands up: the B2BUA implements this."""

    def on_request(
        self, request: Request, transaction: ServerTransaction | None, now: float
    ) -> None:
        """A new request to act on; ``transaction`` is None for an ACK to a 2xx."""

    def on_cancel(self, invite: InviteServerTransaction, now: float) -> None:
        """A CANCEL matched this INVITE (already answered 200 here)."""

    def on_response(self, transaction: ClientTransaction, response: Response, now: float) -> None:
        """A response for a client transaction (including 2xx retransmissions)."""

    def on_timeout(self, transaction: Transaction, now: float) -> None:
        """Timer B/F/H fired, or the transport could not deliver."""


ServerKey = tuple[str, ...]


class Endpoint:
    def __init__(
        self,
        config: EndpointConfig,
        tu: TransactionUser,
        timers: TimerQueue | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.tu = tu
        self.timers = timers if timers is not None else TimerQueue()
        self._rng = rng if rng is not None else random.Random()
        self._outgoing: list[Outgoing] = []
        self.client_transactions: dict[tuple[str, str], ClientTransaction] = {}
        self.server_transactions: dict[ServerKey, ServerTransaction] = {}
        self._server_keys: dict[int, ServerKey] = {}
        self._timer_handles: dict[int, TimerHandle] = {}
        self.dialogs: dict[DialogId, object] = {}
        self.counters: dict[str, int] = {}
        # SIP messages by direction and method/status ("in INVITE", "out 200"), for metrics.
        self.messages: dict[str, int] = {}

    # ---- identifiers -------------------------------------------------------------

    def new_id(self) -> str:
        return f"{self._rng.getrandbits(64):016x}"

    def new_branch(self) -> str:
        return MAGIC_COOKIE + self.new_id()

    def via(self, transport: str, branch: str | None = None) -> str:
        host, port = self.config.local[transport]
        host = f"[{host}]" if ":" in host else host
        return (
            f"SIP/2.0/{transport.upper()} {host}:{port};branch={branch or self.new_branch()};rport"
        )

    def contact(self, transport: str, user: str | None = None) -> str:
        host, port = self.config.local[transport]
        host = f"[{host}]" if ":" in host else host
        userinfo = f"{user}@" if user else ""
        suffix = "" if transport == "udp" else f";transport={transport}"
        return f"<sip:{userinfo}{host}:{port}{suffix}>"

    # ---- edge-facing -------------------------------------------------------------

    def take_outgoing(self) -> list[Outgoing]:
        out, self._outgoing = self._outgoing, []
        return out

    def next_deadline(self) -> float | None:
        return self.timers.next_deadline()

    def run_timers(self, now: float) -> None:
        self.timers.run(now)

    def _count_message(self, direction: str, message: Request | Response) -> None:
        if isinstance(message, Response):
            kind = str(message.status)
        else:  # unknown methods share one key: a peer cannot grow this map
            kind = message.method if message.method in KNOWN_METHODS else "other"
        key = f"{direction} {kind}"
        self.messages[key] = self.messages.get(key, 0) + 1

    def _count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def receive(self, data: bytes, source: Address, transport: str, now: float) -> None:
        try:
            message = parse_message(data, self.config.limits)
        except MessageParseError as exc:
            self._count("parse_errors")
            self._answer_malformed(exc, source, transport)
            return
        self._count_message("in", message)
        if isinstance(message, Response):
            self._receive_response(message, now)
        else:
            try:
                self._receive_request(message, source, transport, now)
            except SipError as exc:
                # A field the checks below needed was unusable: answer like a parse error.
                self._count("parse_errors")
                self._answer_malformed(MessageParseError(exc, message.headers), source, transport)

    def transport_error(self, destination: Address, transport: str, now: float) -> None:
        """The edge could not reach ``destination``: its client transactions fail now."""
        for txn in list(self.client_transactions.values()):
            if txn.destination == destination and txn.transport == transport:
                txn.transport_error(now)

    # ---- TransactionOwner --------------------------------------------------------

    def send(self, message: Request | Response, destination: Address, transport: str) -> None:
        self._count_message("out", message)
        self._outgoing.append(Outgoing(bytes(message), destination, transport))

    def schedule(self, transaction: Transaction) -> None:
        key = id(transaction)
        old = self._timer_handles.pop(key, None)
        if old is not None:
            old.cancel()
        deadline = transaction.deadline
        if deadline is not None:
            self._timer_handles[key] = self.timers.call_at(deadline, transaction.handle_timer)

    def response_received(
        self, transaction: ClientTransaction, response: Response, now: float
    ) -> None:
        self.tu.on_response(transaction, response, now)

    def timed_out(self, transaction: Transaction, now: float) -> None:
        self._count("transaction_timeouts")
        self.tu.on_timeout(transaction, now)

    def terminated(self, transaction: Transaction) -> None:
        handle = self._timer_handles.pop(id(transaction), None)
        if handle is not None:
            handle.cancel()
        if isinstance(transaction, ClientTransaction):
            self.client_transactions.pop(transaction.key, None)
        else:
            key = self._server_keys.pop(id(transaction), None)
            if key is not None:
                self.server_transactions.pop(key, None)

    # ---- TU-facing ---------------------------------------------------------------

    def send_request(
        self, request: Request, destination: Address, transport: str, now: float
    ) -> ClientTransaction:
        """Start a client transaction; ``request`` already carries its Via with a branch."""
        txn: ClientTransaction
        if request.method == "INVITE":
            txn = InviteClientTransaction(
                self, request, destination, transport, self.config.timers, now
            )
        else:
            txn = NonInviteClientTransaction(
                self, request, destination, transport, self.config.timers, now
            )
        self.client_transactions[txn.key] = txn
        txn.start(now)
        return txn

    def cancel(
        self, invite: ClientTransaction, now: float, reason: str | None = None
    ) -> ClientTransaction:
        """§9.1: CANCEL with the INVITE's Request-URI, Call-ID, From, To, CSeq number, Via."""
        request = invite.request
        headers = Headers()
        headers.set("via", str(request.top_via))
        headers.set("max-forwards", "70")
        for name in ("from", "to", "call-id"):
            headers.set(name, request.headers.get(name) or "")
        headers.set("cseq", f"{request.cseq.number} CANCEL")
        headers.set_all("route", request.headers.get_all("route"))
        if reason:
            headers.set("reason", reason)
        cancel = Request("CANCEL", request.uri, headers, raw_uri=request.raw_uri)
        if isinstance(invite, InviteClientTransaction):
            invite.cancel_sent(now)
        return self.send_request(cancel, invite.destination, invite.transport, now)

    def respond(self, transaction: ServerTransaction, response: Response, now: float) -> None:
        if self.config.user_agent and "server" not in response.headers:
            response.headers.set("server", self.config.user_agent)
        transaction.respond(response, now)

    def send_stateless(
        self, message: Request | Response, destination: Address, transport: str
    ) -> None:
        self.send(message, destination, transport)

    def register_dialog(self, dialog_id: DialogId, owner: object) -> None:
        self.dialogs[dialog_id] = owner

    def unregister_dialog(self, dialog_id: DialogId) -> None:
        self.dialogs.pop(dialog_id, None)

    def stats(self) -> dict[str, int]:
        return {
            "client_transactions": len(self.client_transactions),
            "server_transactions": len(self.server_transactions),
            "dialogs": len(self.dialogs),
            "timers": len(self.timers),
        }

    # ---- inbound -----------------------------------------------------------------

    def _receive_response(self, response: Response, now: float) -> None:
        branch = response.top_via.branch or ""
        txn = self.client_transactions.get((branch, response.cseq.method))
        if txn is None:
            self._count("stray_responses")
            log.debug(
                "dropped stray response %s %s: no transaction", response.status, response.cseq
            )
            return
        txn.receive_response(response, now)

    def _server_key(self, request: Request, method: str) -> ServerKey:
        via = request.top_via
        branch = via.branch or ""
        sent_by = f"{via.host}:{via.port or 5060}"
        if branch.startswith(MAGIC_COOKIE):
            return (branch, sent_by, method)
        # RFC 2543 matching (§17.2.3): no To tag (an ACK's differs from the INVITE's).
        return (
            "2543",
            request.raw_uri if method != "ACK" else "",
            request.call_id,
            request.from_.tag or "",
            str(request.cseq.number),
            sent_by,
            method,
        )

    def _receive_request(
        self, request: Request, source: Address, transport: str, now: float
    ) -> None:
        _stamp_via(request, source)
        method = request.method
        key = self._server_key(request, "INVITE" if method == "ACK" else method)
        existing = self.server_transactions.get(key)
        if existing is not None:
            self._count("retransmissions_absorbed")
            if existing.receive_request(request, now):
                self.tu.on_request(request, None, now)
            return
        if method == "ACK":
            # An ACK for a 2xx is end to end (§13.2.2.4, §17.2.1): the TU's business.
            self.tu.on_request(request, None, now)
            return
        destination = response_destination(request.top_via, source, transport)
        txn: ServerTransaction
        server_class = InviteServerTransaction if method == "INVITE" else NonInviteServerTransaction
        txn = server_class(
            self,
            request,
            source,
            transport,
            self.config.timers,
            now,
            key=key,
            response_destination=destination,
        )
        self.server_transactions[key] = txn
        self._server_keys[id(txn)] = key
        if method == "CANCEL":
            self._receive_cancel(request, txn, now)
            return
        refusal = self._check(request)
        if refusal is not None:
            self.respond(txn, refusal, now)
            return
        if method == "OPTIONS" and request.to.tag is None:
            self.respond(txn, self._options_answer(request), now)
            return
        self.tu.on_request(request, txn, now)

    def _receive_cancel(self, cancel: Request, txn: ServerTransaction, now: float) -> None:
        invite = self.server_transactions.get(self._server_key(cancel, "INVITE"))
        if not isinstance(invite, InviteServerTransaction):
            self.respond(txn, cancel.response(481, to_tag=self.new_id()), now)
            return
        self.respond(txn, cancel.response(200, to_tag=self.new_id()), now)
        self.tu.on_cancel(invite, now)

    def _check(self, request: Request) -> Response | None:
        """The checks of §8.2.1–§8.2.3 in their order; a response means refuse."""
        method = request.method
        if not isinstance(request.uri, (SipUri, TelUri)):
            return request.response(416, to_tag=self.new_id())
        if method not in self.config.allow:
            status = 405 if method in KNOWN_METHODS else 501
            return request.response(
                status, to_tag=self.new_id(), extra=[("Allow", ", ".join(self.config.allow))]
            )
        required = [o for o in request.headers.values("require") if o not in self.config.supported]
        if required and method != "ACK":
            return request.response(
                420, to_tag=self.new_id(), extra=[("Unsupported", ", ".join(required))]
            )
        to_tag = request.to.tag
        if to_tag is not None:
            dialog_id = (request.call_id, to_tag, request.from_.tag or "")
            if dialog_id not in self.dialogs:
                return request.response(481, to_tag=None)
            return None
        if method == "INVITE":
            content_type = request.content_type
            if request.body and content_type != SDP:
                return request.response(415, to_tag=self.new_id(), extra=[("Accept", SDP)])
            accept = request.headers.values("accept")
            if accept and not any(_accepts_sdp(a) for a in accept):
                return request.response(
                    406,
                    to_tag=self.new_id(),
                    extra=[("Warning", '399 softswitch "only application/sdp is supported"')],
                )
        return None

    def _options_answer(self, request: Request) -> Response:
        return request.response(
            200,
            to_tag=self.new_id(),
            extra=[
                ("Allow", ", ".join(self.config.allow)),
                ("Accept", SDP),
                ("Supported", ", ".join(self.config.supported)),
            ],
        )

    def _answer_malformed(self, exc: MessageParseError, source: Address, transport: str) -> None:
        """Answer a request that failed parsing, statelessly, if it says where to (§18.2.2).

        Only the top Via must be readable (its sent-by, even when its parameters or
        version are broken: RFC 4475 §3.1.2.1, §3.1.2.16); From, To, Call-ID and CSeq
        are copied when present (§3.3.1).
        """
        headers = exc.headers
        if headers is None:
            log.info("dropped unanswerable message from %s:%s: %s", *source, exc)
            return
        vias = headers.values("via")
        try:
            if not vias:
                raise SipError(400, "Bad Request", "no Via")
            top = _readable_via(vias[0], source)
        except SipError as inner:
            log.info("dropped malformed request from %s:%s: %s (%s)", *source, exc, inner)
            return
        response = Response(exc.status_code, exc.reason, Headers())
        response.headers.set_all("via", [str(top), *(v for v in vias[1:] if _parses(v))])
        for name in ("from", "to", "call-id", "cseq"):
            value = headers.get(name)
            if value is not None:
                if name == "to" and ";tag=" not in value.replace(" ", "").lower():
                    value = f"{value};tag={self.new_id()}"
                response.headers.set(name, value)
        if exc.detail:
            response.headers.set("warning", f'399 softswitch "{_quote_safe(exc.detail)}"')
        log.info(
            "answered malformed request from %s:%s with %s: %s",
            *source,
            exc.status_code,
            exc.detail,
        )
        self.send(response, response_destination(top, source, transport), transport)


def _readable_via(value: str, source: Address) -> Via:
    """The top Via stamped with received/rport, read leniently if it must be.

    A Via that does not parse strictly still answers if its sent-by can be read; its
    well-formed parameters are kept (the branch, rport) and the rest dropped.
    """
    try:
        return _stamped(parse_via(value), source)
    except ParseError:
        pass
    head, *param_texts = value.split(";")
    parts = head.split("/", 2)
    fields = parts[2].split() if len(parts) == 3 else []
    if len(fields) != 2 or not is_token(fields[0]):
        raise ParseError(f"unreadable Via {value[:60]!r}")
    host, port = split_hostport(fields[1])
    params: list[tuple[str, str | None]] = []
    for text in param_texts:
        name, eq, param_value = (t.strip() for t in text.partition("="))
        if is_token(name) and (not eq or is_token(param_value)):
            params.append((name, param_value if eq else None))
    return _stamped(Via(fields[0].upper(), host, port, tuple(params)), source)


def _parses(via: str) -> bool:
    try:
        parse_via(via)
    except ParseError:
        return False
    return True


def _accepts_sdp(media_range: str) -> bool:
    value = media_range.split(";", 1)[0].strip().lower()
    return value in (SDP, "application/*", "*/*")


def _quote_safe(text: str) -> str:
    return "".join(c for c in text if c.isprintable() and c not in '"\\')[:120]


def _stamped(via: Via, source: Address) -> Via:
    """RFC 3581 §4 / RFC 3261 §18.2.1: note where the request really came from."""
    ip, port = source
    if strip_brackets(via.host) != ip:
        via = via.with_param("received", ip)
    if via.has_rport and not via.rport:
        via = via.with_param("rport", str(port))
    return via


def _stamp_via(request: Request, source: Address) -> None:
    vias = request.vias
    top = _stamped(vias[0], source)
    if top is not vias[0]:
        request.headers.set_all("via", [str(top)] + [str(v) for v in vias[1:]])
        request.invalidate()


def response_destination(via: Via, source: Address, transport: str) -> Address:
    """§18.2.2 and RFC 3581 §4: where a response to this request goes."""
    if transport != "udp":
        return source  # the same connection
    host = strip_brackets(via.received or via.host)
    if via.has_rport:
        rport = via.rport
        return host, int(rport) if rport and is_digits(rport) else source[1]
    return host, via.port or 5060
