"""The two kinds of call leg and the vocabulary they share with their call.

An :class:`InboundLeg` is softswitch as UAS toward the trunk (the caller); an
:class:`OutboundLeg` is softswitch as UAC toward one receiving number.  Each has its
own dialog: its own Call-ID, tags and CSeq.  Legs do the SIP of their side (build
requests and responses, ACK, CANCEL, BYE, the 2xx retransmission of §13.3.1.4) and
tell their :class:`~softswitch.b2bua.call.Call` what happened through a small set of
methods; the call decides what that means for the other side.
"""

from __future__ import annotations

import ipaddress
from enum import Enum
from typing import TYPE_CHECKING

from ..records.model import LegRecord
from ..routing.router import LegResult, Outcome, Target
from ..sip.auth import DigestChallengeError, authorization_header
from ..sip.dialog import Dialog
from ..sip.endpoint import Endpoint
from ..sip.message import Request, Response
from ..sip.timers import TimerCallback, TimerHandle
from ..sip.transaction import Address, ClientTransaction, InviteServerTransaction
from ..sip.uri import SipUri

if TYPE_CHECKING:
    from .call import Call
    from .confirm import Confirmation


class LegState(Enum):
    """Where a leg is; INVITE-side states follow §13, plus the B2BUA's own."""

    CALLING = "calling"  # INVITE sent / received, nothing back yet
    RINGING = "ringing"  # a provisional response seen
    ANSWERED = "answered"  # 2xx sent / received
    CONFIRMED = "confirmed"  # ACK exchanged: the dialog is up
    ENDING = "ending"  # CANCEL or BYE under way
    FAILED = "failed"  # ended without being answered
    ENDED = "ended"  # ended after being answered


def destination_of(uri: SipUri) -> tuple[Address, str]:
    """The next hop for a SIP URI: its host (an IP literal), port and transport (§18.1.1).

    Names other than ``localhost`` would need RFC 3263 DNS resolution, which this
    version does not do; they raise ValueError and the leg fails as unreachable.
    """
    host = uri.host_address
    if host == "localhost":
        host = "127.0.0.1"
    if not _is_ip(host):
        raise ValueError(f"{uri.host} is not an IP address (DNS is not supported)")
    transport = uri.transport
    if transport not in ("udp", "tcp"):
        raise ValueError(f"transport {transport} is not supported")
    return (host, uri.port or 5060), transport


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class TwoXXRetransmitter:
    """§13.3.1.4: the UAS re-sends its 2xx at T1, 2T1, … capped at T2 until the ACK,
    and gives up after 64*T1."""

    __slots__ = (
        "endpoint",
        "response",
        "destination",
        "transport",
        "interval",
        "give_up",
        "handle",
        "on_give_up",
        "t2",
    )

    def __init__(
        self,
        endpoint: Endpoint,
        response: Response,
        destination: Address,
        transport: str,
        now: float,
        on_give_up: TimerCallback,
    ) -> None:
        timers = endpoint.config.timers
        self.endpoint = endpoint
        self.response = response
        self.destination = destination
        self.transport = transport
        self.interval = timers.t1
        self.t2 = timers.t2
        self.give_up = now + 64 * timers.t1
        self.on_give_up = on_give_up
        self.handle: TimerHandle | None = None
        if transport == "udp":
            self.handle = endpoint.timers.call_at(now + self.interval, self._fire)
        else:
            self.handle = endpoint.timers.call_at(self.give_up, self._fire)

    def _fire(self, now: float) -> None:
        if now >= self.give_up:
            self.handle = None
            self.on_give_up(now)
            return
        self.endpoint.send_stateless(self.response, self.destination, self.transport)
        self.interval = min(self.interval * 2, self.t2)
        self.handle = self.endpoint.timers.call_at(
            min(now + self.interval, self.give_up), self._fire
        )

    def stop(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


def outcome_of(status: int) -> Outcome:
    """How the router should read a leg's final status."""
    if status in (486, 600):
        return Outcome.BUSY
    if status in (408, 480, 487):
        return Outcome.NO_ANSWER
    return Outcome.FAILED


class LegBase:
    """What both sides share: a dialog, where it is reached, BYE, the 2xx retransmission."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.endpoint = call.endpoint
        self.state = LegState.CALLING
        self.transport = "udp"
        self.destination: Address = ("", 0)  # where the dialog's first request went/came from
        self.dialog: Dialog | None = None
        self.retransmitter: TwoXXRetransmitter | None = None
        self.bye: ClientTransaction | None = None

    def destination_in_dialog(self) -> Address:
        """The remote target or first route (§12.2.1.1), else where the leg began."""
        assert self.dialog is not None
        try:
            return destination_of(self.dialog.next_hop)[0]
        except ValueError:
            return self.destination

    def retransmit_2xx(self, response: Response, destination: Address, now: float) -> None:
        """Keep sending this 2xx to an INVITE until the ACK comes (§13.3.1.4)."""
        self.stop_retransmitting()
        self.retransmitter = TwoXXRetransmitter(
            self.endpoint, response, destination, self.transport, now, self._no_ack
        )

    def stop_retransmitting(self) -> None:
        if self.retransmitter is not None:
            self.retransmitter.stop()
            self.retransmitter = None

    def _no_ack(self, now: float) -> None:
        self.retransmitter = None
        self.call.log_event("no ACK came for a 200: ending the call")
        self.call.hangup(None, now, "no ACK")

    def ack_received(self, request: Request, now: float) -> None:
        self.stop_retransmitting()

    def close(self) -> None:
        self.stop_retransmitting()
        if self.dialog is not None:
            self.endpoint.unregister_dialog(self.dialog.id)

    def detach(self) -> None:
        """Forget the call once it has ended (see ``Call._maybe_end``)."""
        del self.call


class InboundLeg(LegBase):
    """The caller's side: softswitch is the UAS of the trunk's INVITE."""

    def __init__(self, call: Call, invite: Request, transaction: InviteServerTransaction) -> None:
        super().__init__(call)
        self.invite = invite
        self.transaction = transaction
        self.transport = transaction.transport
        self.destination = transaction.response_destination
        self.local_tag = call.endpoint.new_id()
        self.early_sdp_sent = False
        self.pending_bye = False

    @property
    def contact(self) -> str:
        return self.endpoint.contact(self.transport)

    def respond(
        self,
        status: int,
        now: float,
        reason: str | None = None,
        body: bytes = b"",
        content_type: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> Response:
        headers = list(extra or [])
        if status > 100:
            headers.append(("Contact", self.contact))
        if body and content_type:
            headers.append(("Content-Type", content_type))
        response = self.invite.response(
            status, reason, to_tag=self.local_tag, extra=headers, body=body
        )
        self.endpoint.respond(self.transaction, response, now)
        return response

    def ringing(self, status: int, body: bytes, content_type: str | None, now: float) -> None:
        if self.state not in (LegState.CALLING, LegState.RINGING):
            return
        self.state = LegState.RINGING
        if body and not self.early_sdp_sent:
            self.early_sdp_sent = True
            self.respond(status, now, body=body, content_type=content_type)
        else:
            self.respond(180 if status == 183 else status, now)

    def answer(self, body: bytes, content_type: str | None, now: float) -> None:
        response = self.respond(200, now, body=body, content_type=content_type)
        self.state = LegState.ANSWERED
        self.dialog = Dialog.as_uas(self.invite, self.local_tag)
        self.endpoint.register_dialog(self.dialog.id, self)
        self.retransmit_2xx(response, self.destination, now)

    def reject(self, status: int, now: float, reason: str | None = None) -> None:
        if self.state in (LegState.CALLING, LegState.RINGING):
            self.respond(status, now, reason)
            self.state = LegState.FAILED

    def _no_ack(self, now: float) -> None:
        # §13.3.1.4: no ACK in 64*T1 — the session is ended with a BYE, including one
        # that was waiting for that ACK.
        pending, self.pending_bye = self.pending_bye, False
        super()._no_ack(now)
        if pending:
            self.send_bye(now)

    def ack_received(self, request: Request, now: float) -> None:
        super().ack_received(request, now)
        if self.state is LegState.ANSWERED:
            self.state = LegState.CONFIRMED
            self.call.inbound_confirmed(request, now)
        if self.pending_bye:
            self.pending_bye = False
            self.send_bye(now)

    def send_bye(self, now: float) -> None:
        """End the caller's dialog; deferred until the ACK if it has not come (§15)."""
        if self.dialog is None or self.bye is not None:
            return
        if self.state is LegState.ANSWERED and self.retransmitter is not None:
            self.pending_bye = True
            return
        self.state = LegState.ENDING
        self.bye = self.call.send_in_dialog(self, "BYE", now)


class OutboundLeg(LegBase):
    """One receiving number: softswitch is the UAC of a new INVITE."""

    def __init__(self, call: Call, target: Target, number: int) -> None:
        super().__init__(call)
        self.target = target
        self.number = number  # position in the call, for logs and records
        self.transaction: ClientTransaction | None = None
        self.invite: Request | None = None
        self.ack: Request | None = None
        self.ack_deferred = False
        self.ring_timer: TimerHandle | None = None
        self.provisional = False
        self.cancel_wanted: str | None = None  # Reason to send once a 1xx arrives
        self.cancel: ClientTransaction | None = None
        self.auth_tried = False
        self.result: LegResult | None = None  # how it ended, if not as the answer
        self.record: LegRecord  # set by the call when the leg is dialled
        self.silence_timer: TimerHandle | None = None
        # Answered but not yet connected: the answer-time sequence (see confirm.py).
        self.confirmation: Confirmation | None = None
        self.queue_member: str | None = None  # rung as this member of the call's queue

    def start(self, invite: Request, destination: Address, transport: str, now: float) -> None:
        self.invite = invite
        self.destination = destination
        self.transport = transport
        self.transaction = self.endpoint.send_request(invite, destination, transport, now)
        self.call.track(self.transaction, self)
        self.ring_timer = self.endpoint.timers.call_at(
            now + self.target.ring_timeout, self._ring_timeout
        )
        self.silence_timer = self.endpoint.timers.call_at(
            now + self.target.no_provisional_timeout, self._silent
        )

    @property
    def awaiting_provisional(self) -> bool:
        """Abandoned before any 1xx: the CANCEL must wait for one (§9.1)."""
        return self.state is LegState.ENDING and not self.provisional and self.dialog is None

    def _ring_timeout(self, now: float) -> None:
        self.ring_timer = None
        self._give_up(now, 480, Outcome.NO_ANSWER, f"no answer in {self.target.ring_timeout:g} s")

    def _silent(self, now: float) -> None:
        """Not even 100 Trying in ``no_provisional_timeout``: the target is unreachable."""
        self.silence_timer = None
        self._give_up(
            now, 408, Outcome.UNREACHABLE,
            f"no response in {self.target.no_provisional_timeout:g} s",
        )

    def _give_up(self, now: float, status: int, outcome: Outcome, why: str) -> None:
        if self.state in (LegState.CALLING, LegState.RINGING):
            self.call.log_event(f"leg {self.number} {self.target.name}: {why}")
            self.abandon(now, None)
            self.call.leg_failed(self, status, outcome, now)

    def abandon(self, now: float, reason: str | None) -> None:
        """Stop ringing this leg: CANCEL now, or as soon as a 1xx allows it (§9.1); a
        leg that answered but is not connected yet gets BYE."""
        self._stop_ring_timer()
        confirming = self.confirmation is not None
        if not confirming and self.state not in (LegState.CALLING, LegState.RINGING):
            return
        self.call.release(self)
        if reason:
            self.record.outcome, self.record.reason = "cancelled", reason
            self.record.ended_at = self.call.service.wall(now)
        if confirming:
            self.send_bye(now)
        elif self.provisional:
            self.state = LegState.ENDING
            self._send_cancel(reason, now)
        else:
            self.state = LegState.ENDING
            self.cancel_wanted = reason or ""

    def _send_cancel(self, reason: str | None, now: float) -> None:
        if self.cancel is not None or self.transaction is None:
            return
        self.cancel = self.endpoint.cancel(self.transaction, now, reason or None)
        self.call.track(self.cancel, self)

    def _stop_ring_timer(self) -> None:
        for timer in (self.ring_timer, self.silence_timer):
            if timer is not None:
                timer.cancel()
        self.ring_timer = self.silence_timer = None

    def on_response(self, transaction: ClientTransaction, response: Response, now: float) -> None:
        if transaction is self.cancel or transaction is self.bye:
            if response.status >= 200:
                self.call.untrack(transaction)
                if transaction is self.bye:
                    self._finished(now)
            return
        if transaction is not self.transaction:
            self.call.relayed_response(self, transaction, response, now)
            return
        status = response.status
        if status < 200:
            self.provisional = True
            if self.silence_timer is not None:
                self.silence_timer.cancel()
                self.silence_timer = None
            if self.cancel_wanted is not None:
                self._send_cancel(self.cancel_wanted, now)
            elif status > 100 and self.state in (LegState.CALLING, LegState.RINGING):
                self.state = LegState.RINGING
                self.call.leg_ringing(self, response, now)
            return
        if status < 300:
            self._answered(response, now)
            return
        if status in (401, 407) and self._retry_with_credentials(response, now):
            return
        self._stop_ring_timer()
        was_live = self.state in (LegState.CALLING, LegState.RINGING)
        self.state = LegState.FAILED
        self.call.untrack(transaction)
        if was_live:
            self.call.leg_failed(self, status, outcome_of(status), now)  # may end the call
        else:
            self._finished(now)

    def _answered(self, response: Response, now: float) -> None:
        if self.dialog is not None:
            # A retransmitted 2xx: the ACK was lost, send it again (§13.2.2.4).
            if self.ack is not None:
                self.endpoint.send_stateless(self.ack, self.destination_in_dialog(), self.transport)
            return
        assert self.invite is not None
        self._stop_ring_timer()
        self.call.settled(self.transaction)  # type: ignore[arg-type]
        self.dialog = Dialog.as_uac(self.invite, response)
        self.endpoint.register_dialog(self.dialog.id, self)
        live = self.state in (LegState.CALLING, LegState.RINGING)
        wanted = live and self.call.accepts_answer
        if not self.invite.body and wanted:
            # Late offer: the 200 carries the offer and the caller's ACK the answer.
            self.ack_deferred = True
        else:
            self.send_ack(b"", None)
        if wanted:
            self.state = LegState.ANSWERED
            self.call.leg_picked_up(self, response, now)
        else:
            # Cancelled, timed out or beaten by another leg: ACK and BYE (§15).
            self.call.log_event(f"leg {self.number} {self.target.name}: late 200, sending BYE")
            self.state = LegState.ANSWERED
            self.send_bye(now)

    def send_ack(self, body: bytes, content_type: str | None) -> None:
        assert self.dialog is not None and self.invite is not None
        ack = self.dialog.create_request("ACK", self.endpoint.via(self.transport), None)
        ack.headers.set("cseq", f"{self.invite.cseq.number} ACK")
        if body and content_type:
            ack.headers.set("content-type", content_type)
            ack.body = body
        self.ack = ack
        self.ack_deferred = False
        self.endpoint.send_stateless(ack, self.destination_in_dialog(), self.transport)

    def _retry_with_credentials(self, response: Response, now: float) -> bool:
        """§22.2: answer a 401/407 once with credentials of the trunk, if it has any."""
        credentials = self.call.credentials_for(self.target)
        if credentials is None or self.auth_tried or self.invite is None:
            return False
        self.auth_tried = True
        try:
            header_name, value = authorization_header(
                response,
                "INVITE",
                str(self.invite.uri),
                credentials.username,
                credentials.password,
                cnonce=self.endpoint.new_id(),
            )
        except DigestChallengeError as exc:
            self.call.log_event(f"leg {self.number}: cannot answer the challenge: {exc}")
            return False
        assert self.transaction is not None
        self.call.untrack(self.transaction)
        headers = self.invite.headers.copy()
        headers.set("via", self.endpoint.via(self.transport))
        cseq = self.invite.cseq.number + 1
        headers.set("cseq", f"{cseq} INVITE")
        headers.set(header_name, value)
        invite = Request("INVITE", self.invite.uri, headers, self.invite.body)
        self.invite = invite
        self.transaction = self.endpoint.send_request(invite, self.destination, self.transport, now)
        self.call.track(self.transaction, self)
        return True

    def _stop_confirming(self) -> None:
        if self.confirmation is not None:
            self.confirmation.stop()
            self.confirmation = None

    def send_bye(self, now: float) -> None:
        self._stop_confirming()
        if self.dialog is None or self.bye is not None:
            return
        if self.ack_deferred:
            self.send_ack(b"", None)
        self.state = LegState.ENDING
        self.bye = self.call.send_in_dialog(self, "BYE", now)

    def on_timeout(self, transaction: ClientTransaction, now: float) -> None:
        self.call.untrack(transaction)
        if transaction is self.transaction:
            self._stop_ring_timer()
            was_live = self.state in (LegState.CALLING, LegState.RINGING)
            self.state = LegState.FAILED
            if was_live:
                # Timer B only runs until the first response: nothing ever came back.
                self.call.leg_failed(self, 408, Outcome.UNREACHABLE, now)  # may end the call
            else:
                self._finished(now)
        elif transaction is self.bye:
            self._finished(now)
        elif transaction is not self.cancel:
            self.call.relayed_timeout(self, transaction, now)

    def _finished(self, now: float) -> None:
        if self.state is not LegState.FAILED:
            self.state = LegState.ENDED
        self.call.leg_finished(self, now)

    def close(self) -> None:
        self._stop_ring_timer()
        self._stop_confirming()
        super().close()


Leg = InboundLeg | OutboundLeg
