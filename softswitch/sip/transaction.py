"""The four transaction machines of RFC 3261 §17, with RFC 6026's Accepted state.

Theory of operation
-------------------
A transaction is one request and every response to it, plus the retransmissions
that UDP needs (§17).  Each machine here is sans-IO: it never reads a clock and
never touches a socket.  Its owner (the endpoint, see :class:`TransactionOwner`)
feeds it inputs, each carrying ``now`` (loop time, in seconds):

* client side -- ``start(now)``, ``receive_response(response, now)``;
* server side -- ``receive_request(request, now)`` for retransmissions and ACK,
  ``respond(response, now)`` from the TU;
* both -- ``handle_timer(now)`` and ``transport_error(now)``.

The machine answers through the owner: ``send`` a message, ``response_received``
(a response for the TU), ``timed_out`` (Timer B/F/H fired or the transport failed),
``terminated`` (drop me from the table) and ``schedule`` (my ``deadline`` changed).

Timers are named deadlines, exactly as the RFC names them (Timer A, B, ... M),
kept in a small dict and exposed read-only as ``armed_timers``; ``deadline`` is
the earliest of them, or None.  ``handle_timer(now)`` fires, in time order, every
timer due at or before ``now``.  A retransmission timer is re-armed from the time
it was due, not from ``now``, so the schedule does not drift with the loop's
latency (an unanswered INVITE over UDP goes out at 0, 0.5, 1.5, 3.5, 7.5, 15.5,
31.5 s and Timer B fires at 32 s); when the loop was so late that the next firing
is already past, it is re-armed from ``now`` instead, so a stall never turns into a
burst of retransmissions.

Rules every machine keeps:

1. ``owner.schedule(self)`` is called once after any input that changed
   ``deadline`` (including to None when the transaction terminates).
2. Entering Terminated clears every timer and calls ``owner.terminated(self)``
   exactly once; after that every input is ignored.
3. The state changes before the owner is called, so an owner that reacts
   re-entrantly (a send that fails at once and reports ``transport_error``) sees
   the new state; a machine checks it is still alive after every call out.
4. Ordinary inputs (a response in a state that does not expect it, a late timer)
   are ignored, never raised.

Over a reliable transport (anything but UDP) the retransmission timers A, E and G
are never armed and the wait timers D, I, J and K are zero: they are armed at
``now`` and fire on the owner's next ``handle_timer``.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from .message import Headers, Request, Response

Address = tuple[str, int]  # (host, port), host without IPv6 brackets

# Timer D "at least 32 seconds for unreliable transports", RFC 3261 §17.1.1.2,
# Table 4: a fixed wait, independent of T1.
TIMER_D_UNRELIABLE = 32.0


@dataclass(frozen=True, slots=True)
class Timers:
    """RFC 3261 §17.1.1.1, Table 4: the base values every timer derives from."""

    t1: float = 0.5  # RTT estimate
    t2: float = 4.0  # maximum retransmit interval for non-INVITE requests and INVITE responses
    t4: float = 5.0  # maximum duration a message will remain in the network


class TransactionOwner(Protocol):
    """The endpoint that owns transactions: it sends, schedules, and hears outcomes."""

    def send(self, message: Request | Response, destination: Address, transport: str) -> None:
        """Pass ``message`` to the transport layer (§18)."""

    def schedule(self, transaction: Transaction) -> None:
        """``transaction.deadline`` changed; called after any such change."""

    def response_received(
        self, transaction: ClientTransaction, response: Response, now: float
    ) -> None:
        """A response the TU must hear (§17.1)."""

    def timed_out(self, transaction: Transaction, now: float) -> None:
        """Timer B, F or H fired, or the transport failed (§17.1.4, §17.2.4)."""

    def terminated(self, transaction: Transaction) -> None:
        """The transaction reached Terminated: remove it from the table."""


class InviteClientState(Enum):
    """RFC 3261 §17.1.1.2 Figure 5, with Accepted from RFC 6026 §7.2 Figure 3."""

    CALLING = "calling"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


class NonInviteClientState(Enum):
    """RFC 3261 §17.1.2.2 Figure 6."""

    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    TERMINATED = "terminated"


class InviteServerState(Enum):
    """RFC 3261 §17.2.1 Figure 7, with Accepted from RFC 6026 §7.1 Figure 5."""

    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


class NonInviteServerState(Enum):
    """RFC 3261 §17.2.2 Figure 8."""

    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    TERMINATED = "terminated"


def ack_for_non2xx(invite: Request, response: Response) -> Request:
    """The ACK a client transaction sends for a 300-699 response (RFC 3261 §17.1.1.3).

    Request-URI, Call-ID, From and the CSeq number come from the INVITE, the CSeq
    method is ACK, To comes from the response (with its tag), the only Via is the
    INVITE's top Via (so the ACK matches the server transaction) and the INVITE's
    Route header fields are kept.
    """
    headers = Headers()
    headers.set("via", invite.headers.values("via")[0])
    headers.set("max-forwards", "70")
    routes = invite.headers.get_all("route")
    if routes:
        headers.set_all("route", routes)
    headers.set("from", invite.headers.get("from") or "")
    headers.set("to", response.headers.get("to") or "")
    headers.set("call-id", invite.call_id)
    headers.set("cseq", f"{invite.cseq.number} ACK")  # Content-Length: 0 is rendered by bytes()
    return Request("ACK", invite.uri, headers, raw_uri=invite.raw_uri)


class Transaction:
    """What the four machines share: the owner, the timers and termination.

    ``_timers`` maps a timer's RFC name ("A", "B", ...) to the loop time it fires at.
    """

    __slots__ = (
        "owner", "request", "transport", "timers", "reliable", "created",
        "_timers", "_scheduled", "_alive",
    )

    def __init__(
        self, owner: TransactionOwner, request: Request, transport: str, timers: Timers,
        now: float,
    ) -> None:
        self.owner = owner
        self.request = request
        self.transport = transport
        self.timers = timers
        self.reliable = transport.lower() != "udp"
        self.created = now
        self._timers: dict[str, float] = {}
        self._scheduled: float | None = None  # the deadline the owner last heard of
        self._alive = True

    @property
    def deadline(self) -> float | None:
        """The earliest armed timer, None when none is armed."""
        return min(self._timers.values()) if self._timers else None

    @property
    def armed_timers(self) -> dict[str, float]:
        """A copy of the armed timers: RFC name -> the loop time it fires at."""
        return dict(self._timers)

    @property
    def is_terminated(self) -> bool:
        return not self._alive

    def handle_timer(self, now: float) -> None:
        """Fire, in time order, every timer due at or before ``now``."""
        timers = self._timers
        while self._alive and timers:
            name = min(timers, key=timers.__getitem__)
            due = timers[name]
            if due > now:
                break
            del timers[name]
            self._fire(name, due, now)
        self._sync()

    def transport_error(self, now: float) -> None:
        """The transport could not send (§17.1.4, §17.2.4): tell the TU, terminate."""
        if not self._alive:
            return
        self.owner.timed_out(self, now)
        self._terminate()

    # -- for the machines ------------------------------------------------------------

    def _fire(self, name: str, due: float, now: float) -> None:
        raise NotImplementedError

    def _enter_terminated(self) -> None:
        """Set the machine's own state enum to TERMINATED."""
        raise NotImplementedError

    def _rearm(self, name: str, due: float, interval: float, now: float) -> None:
        """Re-arm a retransmission timer ``interval`` after it was due (never in the past)."""
        at = due + interval
        self._timers[name] = at if at > now else now + interval

    def _time_out(self, now: float) -> None:
        self.owner.timed_out(self, now)
        self._terminate()

    def _terminate(self) -> None:
        if not self._alive:
            return
        self._alive = False
        self._timers.clear()
        self._enter_terminated()
        self._sync()
        self.owner.terminated(self)

    def _sync(self) -> None:
        """Tell the owner when the deadline it knows of is no longer the right one."""
        deadline = self.deadline
        if deadline != self._scheduled:
            self._scheduled = deadline
            self.owner.schedule(self)


class ClientTransaction(Transaction):
    """A client transaction (§17.1): sends ``request`` to ``destination``."""

    __slots__ = ("destination", "key", "_started")

    def __init__(
        self, owner: TransactionOwner, request: Request, destination: Address, transport: str,
        timers: Timers, now: float,
    ) -> None:
        super().__init__(owner, request, transport, timers, now)
        self.destination = destination
        # Responses match on the top Via branch and the CSeq method (§17.1.3).
        self.key: tuple[str, str] = (request.branch or "", request.method)
        self._started = False

    def start(self, now: float) -> None:
        """Send the request and arm the machine's timers."""
        if self._started or not self._alive:
            return
        self._started = True
        self._arm_initial(now)
        self._send(self.request)
        self._sync()

    def receive_response(self, response: Response, now: float) -> None:
        raise NotImplementedError

    def _arm_initial(self, now: float) -> None:
        raise NotImplementedError

    def _send(self, message: Request) -> bool:
        """Send; False when the transaction terminated meanwhile (transport error)."""
        self.owner.send(message, self.destination, self.transport)
        return self._alive


class InviteClientTransaction(ClientTransaction):
    """RFC 3261 §17.1.1 and RFC 6026 §7.2."""

    __slots__ = ("state", "_interval_a", "_ack")

    def __init__(
        self, owner: TransactionOwner, request: Request, destination: Address, transport: str,
        timers: Timers, now: float,
    ) -> None:
        super().__init__(owner, request, destination, transport, timers, now)
        self.state = InviteClientState.CALLING
        self._interval_a = timers.t1
        self._ack: Request | None = None

    def _arm_initial(self, now: float) -> None:
        t1 = self.timers.t1
        if not self.reliable:
            self._timers["A"] = now + t1  # Timer A = T1, doubling, UDP only, RFC 3261 §17.1.1.2
        self._timers["B"] = now + 64 * t1  # Timer B = 64*T1, RFC 3261 §17.1.1.2

    def receive_response(self, response: Response, now: float) -> None:
        if not self._alive:
            return
        status = response.status
        state = self.state
        if state is InviteClientState.CALLING or state is InviteClientState.PROCEEDING:
            if status < 200:
                # Calling -> Proceeding stops A and B: a ringing call is timed by the TU.
                self.state = InviteClientState.PROCEEDING
                self._timers.clear()
            elif status < 300:
                self.state = InviteClientState.ACCEPTED
                self._timers.clear()
                # Timer M = 64*T1, RFC 6026 §7.2 (absorbs 2xx retransmissions, forks)
                self._timers["M"] = now + 64 * self.timers.t1
            else:
                self.state = InviteClientState.COMPLETED
                self._timers.clear()
                # Timer D = 32 s on UDP, 0 on reliable transports, RFC 3261 §17.1.1.2
                self._timers["D"] = now + (0.0 if self.reliable else TIMER_D_UNRELIABLE)
                self._ack = ack_for_non2xx(self.request, response)
                self._sync()
                if not self._send(self._ack):
                    return
            self._sync()
            self.owner.response_received(self, response, now)
        elif state is InviteClientState.ACCEPTED:
            if 200 <= status < 300:
                # Each 2xx (retransmitted or from another fork) goes to the TU, which
                # ACKs it itself (§13.2.2.4).
                self.owner.response_received(self, response, now)
        elif state is InviteClientState.COMPLETED:
            if status >= 300 and self._ack is not None:
                self._send(self._ack)  # a retransmitted final: ACK again, absorb (§17.1.1.2)
            self._sync()

    def cancel_sent(self, now: float) -> None:
        """§9.1: "If no final response is received in 64*T1 seconds after the CANCEL was
        sent, the client SHOULD consider the transaction cancelled and destroy it."
        Proceeding has no timer of its own, so Timer B is armed again for that."""
        if self._alive and self.state is InviteClientState.PROCEEDING:
            self._timers["B"] = now + 64 * self.timers.t1
            self._sync()

    def _fire(self, name: str, due: float, now: float) -> None:
        if name == "A":
            self._interval_a *= 2
            self._rearm("A", due, self._interval_a, now)
            self._send(self.request)
        elif name == "B":
            self._time_out(now)
        else:  # "D" in Completed, "M" in Accepted
            self._terminate()

    def _enter_terminated(self) -> None:
        self.state = InviteClientState.TERMINATED


class NonInviteClientTransaction(ClientTransaction):
    """RFC 3261 §17.1.2."""

    __slots__ = ("state", "_interval_e")

    def __init__(
        self, owner: TransactionOwner, request: Request, destination: Address, transport: str,
        timers: Timers, now: float,
    ) -> None:
        super().__init__(owner, request, destination, transport, timers, now)
        self.state = NonInviteClientState.TRYING
        self._interval_e = timers.t1

    def _arm_initial(self, now: float) -> None:
        t1 = self.timers.t1
        if not self.reliable:
            self._timers["E"] = now + t1  # Timer E = T1, doubling to T2, UDP only, §17.1.2.2
        self._timers["F"] = now + 64 * t1  # Timer F = 64*T1, RFC 3261 §17.1.2.2

    def receive_response(self, response: Response, now: float) -> None:
        if not self._alive:
            return
        state = self.state
        if state is NonInviteClientState.COMPLETED:
            return  # retransmitted responses are absorbed (§17.1.2.2)
        if response.status < 200:
            self.state = NonInviteClientState.PROCEEDING
        else:
            self.state = NonInviteClientState.COMPLETED
            self._timers.clear()
            # Timer K = T4 on UDP, 0 on reliable transports, RFC 3261 §17.1.2.2
            self._timers["K"] = now + (0.0 if self.reliable else self.timers.t4)
            self._sync()
        self.owner.response_received(self, response, now)

    def _fire(self, name: str, due: float, now: float) -> None:
        if name == "E":
            t2 = self.timers.t2
            if self.state is NonInviteClientState.PROCEEDING:
                self._interval_e = t2  # in Proceeding, Timer E is reset to T2 (§17.1.2.2)
            else:
                self._interval_e = min(2 * self._interval_e, t2)
            self._rearm("E", due, self._interval_e, now)
            self._send(self.request)
        elif name == "F":
            self._time_out(now)
        else:  # "K"
            self._terminate()

    def _enter_terminated(self) -> None:
        self.state = NonInviteClientState.TERMINATED


class ServerTransaction(Transaction):
    """A server transaction (§17.2).

    The owner computes ``key`` (§17.2.3) and ``response_destination`` (§18.2.2,
    RFC 3581); ``source`` is where the request came from.
    """

    __slots__ = ("source", "key", "response_destination", "last_response")

    def __init__(
        self, owner: TransactionOwner, request: Request, source: Address, transport: str,
        timers: Timers, now: float, *, key: Hashable,
        response_destination: Address | None = None,
    ) -> None:
        super().__init__(owner, request, transport, timers, now)
        self.source = source
        self.key = key
        self.response_destination = source if response_destination is None else response_destination
        self.last_response: Response | None = None

    def receive_request(self, request: Request, now: float) -> bool:
        """A retransmission of the request (or an ACK): True = pass it up to the TU."""
        raise NotImplementedError

    def respond(self, response: Response, now: float) -> bool:
        """Send the TU's response; False when this state discards it."""
        raise NotImplementedError

    def _send(self, response: Response) -> bool:
        """Send; False when the transaction terminated meanwhile (transport error)."""
        self.owner.send(response, self.response_destination, self.transport)
        return self._alive

    def _resend_last(self) -> None:
        if self.last_response is not None:
            self._send(self.last_response)


class InviteServerTransaction(ServerTransaction):
    """RFC 3261 §17.2.1 and RFC 6026 §7.1."""

    __slots__ = ("state", "_interval_g")

    def __init__(
        self, owner: TransactionOwner, request: Request, source: Address, transport: str,
        timers: Timers, now: float, *, key: Hashable,
        response_destination: Address | None = None,
    ) -> None:
        super().__init__(
            owner, request, source, transport, timers, now,
            key=key, response_destination=response_destination,
        )
        self.state = InviteServerState.PROCEEDING
        self._interval_g = timers.t1

    def receive_request(self, request: Request, now: float) -> bool:
        if not self._alive:
            return False
        state = self.state
        is_ack = request.method == "ACK"
        if state is InviteServerState.PROCEEDING:
            if not is_ack:
                self._resend_last()  # the last provisional, if any (§17.2.1)
        elif state is InviteServerState.COMPLETED:
            if is_ack:
                self.state = InviteServerState.CONFIRMED
                self._timers.clear()
                # Timer I = T4 on UDP, 0 on reliable transports, RFC 3261 §17.2.1
                self._timers["I"] = now + (0.0 if self.reliable else self.timers.t4)
                self._sync()
            else:
                self._resend_last()  # the final response (§17.2.1)
        elif state is InviteServerState.ACCEPTED:
            # A retransmitted INVITE is absorbed; the ACK for the 2xx belongs to the
            # TU (RFC 6026 §7.1).
            return is_ack
        # Confirmed absorbs ACK retransmissions (§17.2.1).
        return False

    def respond(self, response: Response, now: float) -> bool:
        if not self._alive:
            return False
        status = response.status
        state = self.state
        if state is InviteServerState.PROCEEDING:
            self.last_response = response
            if 200 <= status < 300:
                self.state = InviteServerState.ACCEPTED
                # Timer L = 64*T1, RFC 6026 §7.1
                self._timers["L"] = now + 64 * self.timers.t1
            elif status >= 300:
                self.state = InviteServerState.COMPLETED
                t1 = self.timers.t1
                if not self.reliable:
                    # Timer G = T1, doubling to T2, UDP only, RFC 3261 §17.2.1
                    self._timers["G"] = now + t1
                    self._interval_g = t1
                self._timers["H"] = now + 64 * t1  # Timer H = 64*T1, RFC 3261 §17.2.1
            self._sync()
            self._send(response)
            return True
        if state is InviteServerState.ACCEPTED and 200 <= status < 300:
            # The TU retransmits its 2xx through the transaction (RFC 6026 §7.1).
            self._send(response)
            return True
        return False

    def _fire(self, name: str, due: float, now: float) -> None:
        if name == "G":
            self._interval_g = min(2 * self._interval_g, self.timers.t2)
            self._rearm("G", due, self._interval_g, now)
            self._resend_last()
        elif name == "H":
            self._time_out(now)  # no ACK came (§17.2.1)
        else:  # "I" in Confirmed, "L" in Accepted
            self._terminate()

    def _enter_terminated(self) -> None:
        self.state = InviteServerState.TERMINATED


class NonInviteServerTransaction(ServerTransaction):
    """RFC 3261 §17.2.2."""

    __slots__ = ("state",)

    def __init__(
        self, owner: TransactionOwner, request: Request, source: Address, transport: str,
        timers: Timers, now: float, *, key: Hashable,
        response_destination: Address | None = None,
    ) -> None:
        super().__init__(
            owner, request, source, transport, timers, now,
            key=key, response_destination=response_destination,
        )
        self.state = NonInviteServerState.TRYING

    def receive_request(self, request: Request, now: float) -> bool:
        if self._alive and self.state is not NonInviteServerState.TRYING:
            self._resend_last()  # Trying discards retransmissions (§17.2.2)
        return False

    def respond(self, response: Response, now: float) -> bool:
        if not self._alive or self.state is NonInviteServerState.COMPLETED:
            return False  # further finals are discarded in Completed (§17.2.2)
        self.last_response = response
        if response.status < 200:
            self.state = NonInviteServerState.PROCEEDING
        else:
            self.state = NonInviteServerState.COMPLETED
            # Timer J = 64*T1 on UDP, 0 on reliable transports, RFC 3261 §17.2.2
            self._timers["J"] = now + (0.0 if self.reliable else 64 * self.timers.t1)
            self._sync()
        self._send(response)
        return True

    def _fire(self, name: str, due: float, now: float) -> None:
        self._terminate()  # "J"

    def _enter_terminated(self) -> None:
        self.state = NonInviteServerState.TERMINATED
