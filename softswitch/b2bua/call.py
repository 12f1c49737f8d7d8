"""A call: one inbound leg, the outbound legs its router asks for, and what joins them.

Theory of operation
-------------------
The call executes its :class:`~softswitch.routing.router.Router`'s actions: a
``Dial`` gets an outbound leg per target at once; when every leg of that dial has
ended without an answer, the router is told how each ended and gives the next
action, until a ``Finish`` whose status the caller gets.  A router that fails
(raises) or finds every target unreachable turns to the tracking number's
fail-safe number.  Provisional responses are relayed to the caller (SDP from the
first leg that offers early media).  The first 2xx wins: the other legs get CANCEL
with ``Reason: SIP;cause=200;text="Call completed elsewhere"`` (RFC 3326), and any
2xx that arrives after that is ACKed and BYEd.  A final status in the route's
hunt-stop set (6xx by default) ends the search at once, cancelling the other legs.

A receiving number with a dial extension, a whisper or screening is not connected
when it answers: its leg first runs the answer-time sequence
(:mod:`~softswitch.b2bua.confirm`) while the caller keeps hearing ringing, and only a
confirmed leg is the call's answer; one that is not confirmed (no key, or it hangs
up) counts as no answer and the route moves on.  Media of such legs is anchored
(:mod:`~softswitch.b2bua.media`).

Once answered, the caller gets 200 with the winner's SDP (softswitch's own when the
leg is anchored) and the call is bridged.
In-dialog requests (re-INVITE, UPDATE, INFO) are relayed to the other side and
their answers relayed back; BYE from either side ends both.  The call is over
when every leg has finished its last transaction; it then unregisters itself and
the ``call_ended`` event fires exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from enum import Enum
from functools import partial
from typing import TYPE_CHECKING

from ..config import Credentials, Menu, Queue
from ..media import audio
from ..media.dtmf import parse_info
from ..media.streams import MediaUnavailable
from ..records.model import CallRecord, Disposition, LegRecord
from ..records.rating import price
from ..routing.menu import Chosen, MenuAction, MenuSession, Play, StopPlaying
from ..routing.router import (
    Action,
    Finish,
    JoinQueue,
    LegResult,
    Outcome,
    Router,
    RunMenu,
    Target,
)
from ..sip.errors import SipError
from ..sip.message import Request, Response
from ..sip.sdp import SdpError
from ..sip.timers import TimerHandle
from ..sip.transaction import ClientTransaction, InviteServerTransaction, ServerTransaction
from ..sip.uri import SipUri, parse_uri
from .confirm import FRAME, Confirmation
from .legs import InboundLeg, Leg, LegState, OutboundLeg, destination_of
from .media import SDP, CallMedia

if TYPE_CHECKING:
    from .service import B2BUA

log = logging.getLogger("softswitch.call")

ANSWERED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'


class CallState(Enum):
    ROUTING = "routing"  # legs ringing
    ANSWERED = "answered"  # a receiving number answered; caller's 200 sent
    BRIDGED = "bridged"  # caller ACKed: both sides talk
    ENDING = "ending"
    ENDED = "ended"


class Call:
    def __init__(
        self,
        service: B2BUA,
        call_id: str,
        invite: Request,
        transaction: InviteServerTransaction,
        router: Router,
        caller: str,
        now: float,
    ) -> None:
        self.service = service
        self.endpoint = service.endpoint
        self.id = call_id
        self.router = router
        self.caller = caller
        self.record = CallRecord(
            id=call_id,
            tracking_number=router.tracking.number,
            tracking_label=router.tracking.label,
            caller_number=caller,
            caller_name=invite.from_.display_name,
            pattern=None,
            started_at=service.wall(now),
        )
        self.pattern: str | None = None  # of the Dial being rung
        self.started = now
        self.state = CallState.ROUTING
        self.inbound = InboundLeg(self, invite, transaction)
        self.outbound: list[OutboundLeg] = []
        self.dialing: list[OutboundLeg] = []  # the legs of the router's current Dial
        self._released: set[int] = set()  # legs no longer counted as in progress
        self.winner: OutboundLeg | None = None
        self.disposition = Disposition.IN_PROGRESS
        self.hangup_by: str | None = None
        # A relayed in-dialog request: client transaction -> the server one it answers.
        self.relays: dict[int, tuple[ServerTransaction, Request]] = {}
        # Client transactions whose outcome the call still waits for.
        self.pending: set[int] = set()
        # softswitch answered the caller itself (a voice menu, a queue).
        self.answered_here = False
        self.menu: MenuSession | None = None
        self.menu_timer: TimerHandle | None = None
        self.queue: Queue | None = None  # waiting in this queue
        self.queue_timer: TimerHandle | None = None  # its max_wait
        self.announce_timer: TimerHandle | None = None  # "you are number N"
        self.member: tuple[str, str] | None = None  # (queue, member) that took the call
        self.media = CallMedia(
            service.media, service.config.media, invite.body, int(service.wall(now))
        )

    # ---- bookkeeping -------------------------------------------------------------

    def log_event(self, text: str, level: int = logging.INFO) -> None:
        """One line per call event, with the call's id (``call_id`` in JSON logs)."""
        log.log(level, "call %s: %s", self.id, text, extra={"call_id": self.id})

    def track(self, transaction: ClientTransaction, leg: Leg) -> None:
        self.pending.add(id(transaction))
        self.service.track(transaction, self, leg)

    def settled(self, transaction: ClientTransaction) -> None:
        """The outcome is in, but later responses (2xx retransmissions) still reach the leg."""
        self.pending.discard(id(transaction))

    def untrack(self, transaction: ClientTransaction) -> None:
        self.pending.discard(id(transaction))
        self.service.untrack(transaction)

    def on_response(
        self, leg: Leg, transaction: ClientTransaction, response: Response, now: float
    ) -> None:
        if isinstance(leg, OutboundLeg):
            leg.on_response(transaction, response, now)
        elif transaction is leg.bye:
            if response.status >= 200:
                self.untrack(transaction)
                leg.state = LegState.ENDED
                self._maybe_end(now)
        else:
            self.relayed_response(leg, transaction, response, now)

    def on_timeout(self, leg: Leg, transaction: ClientTransaction, now: float) -> None:
        if isinstance(leg, OutboundLeg):
            leg.on_timeout(transaction, now)
        elif transaction is leg.bye:
            self.untrack(transaction)
            leg.state = LegState.ENDED
            self._maybe_end(now)
        else:
            self.relayed_timeout(leg, transaction, now)

    def credentials_for(self, target: Target) -> Credentials | None:
        return self.service.credentials_for(target)

    # ---- routing -----------------------------------------------------------------

    def start(self, now: float, overloaded: bool = False) -> None:
        self.inbound.respond(100, now)
        if overloaded:
            step = partial(self.router.fail_safe, "overload: routing.max_calls reached")
            self._act(self._route(step), now)
        else:
            self._act(self._route(self.router.start), now)

    def _route(self, step: Callable[[], Action]) -> Action:
        """Ask the router; if it fails, the fail-safe number takes the call; if even that
        cannot be dialled, the caller still gets a final answer (503)."""
        try:
            action = step()
        except Exception as exc:  # any failure of routing: the caller must still get a human
            log.exception("call %s: routing failed", self.id, extra={"call_id": self.id})
            try:
                action = self.router.fail_safe(f"routing failed: {exc}")
            except Exception:
                log.exception(
                    "call %s: the fail-safe number cannot be dialled",
                    self.id,
                    extra={"call_id": self.id},
                )
                action = Finish(503, "routing and the fail-safe number both failed")
        for line in self.router.trace:
            # Each routing step at debug (`softswitch route` shows the same); turning to
            # the fail-safe number is an operational event, logged at info.
            level = logging.INFO if line.startswith("fail-safe") else logging.DEBUG
            self.log_event(f"route: {line}", level)
        self.router.trace.clear()
        return action

    def _act(self, action: Action, now: float) -> None:
        while not isinstance(action, Finish):
            if isinstance(action, RunMenu):
                if self._run_menu(action.menu, now):
                    return
                action = self._route(partial(self.router.menu_choice, action.menu.default, None))
                continue
            if isinstance(action, JoinQueue):
                if self._join_queue(action.queue, now):
                    return
                action = self._route(partial(self.router.next, []))
                continue
            self.pattern = action.pattern
            self.dialing = []
            failed: list[LegResult] = []
            for target in action.targets:
                leg = self._dial(target, now)
                if leg is None:
                    failed.append(LegResult(target.name, 503, Outcome.UNREACHABLE))
                else:
                    self.dialing.append(leg)
            if self.dialing:
                self._play_to_caller(audio.ringback, now)
                return
            action = self._route(partial(self.router.next, failed))
        self._give_up(action.status, action.why, now)

    # ---- softswitch answers the caller itself: voice menus and queues ----------------

    def answer_here(self, now: float) -> bool:
        """Answer the caller with softswitch's own media (once); False if it cannot."""
        if self.answered_here:
            return True
        if self.inbound.state not in (LegState.CALLING, LegState.RINGING):
            return False
        try:
            sdp = self.media.answer_here()
        except (MediaUnavailable, SdpError) as exc:
            self.log_event(f"cannot answer the caller here: {exc}")
            return False
        self.answered_here = True
        self.inbound.answer(sdp, SDP, now)
        stream = self.media.caller_stream()
        if stream is not None:
            stream.listen(partial(self.dtmf_received, self.inbound), self._rtp_stopped)
            stream.watch(self.service.config.media.rtp_timeout)
        self.log_event("answered by softswitch")
        return True

    def _play_to_caller(
        self, frames_of: Callable[[str], tuple[bytes, ...]], now: float, repeat: bool = True
    ) -> float:
        """Play to a caller softswitch answered (ringback while legs ring, hold music,
        a prompt); returns when one pass ends."""
        stream, remote = self.media.caller_stream(), self.media.caller_remote()
        if not self.answered_here or stream is None:
            return now
        return stream.play(frames_of(remote.codec if remote else "PCMU"), now, repeat)

    def _run_menu(self, menu: Menu, now: float) -> bool:
        if not self.answer_here(now):
            return False
        remote = self.media.caller_remote()
        codec = remote.codec if remote else "PCMU"
        invalid = audio.frames(menu.invalid_prompt, codec) if menu.invalid_prompt else ()
        prompt = audio.frames(menu.prompt, codec)
        self.menu = MenuSession(menu, len(prompt) * FRAME, len(invalid) * FRAME)
        self.log_event(f"voice menu {menu.name}")
        self._menu_step(self.menu.start(now), now)
        return True

    def _menu_step(self, actions: list[MenuAction], now: float) -> None:
        session = self.menu
        if session is None:
            return
        for line in session.trace:
            self.log_event(f"menu: {line}", logging.DEBUG)
        session.trace.clear()
        stream = self.media.caller_stream()
        for action in actions:
            if isinstance(action, Play):
                self._play_to_caller(partial(audio.frames, action.path), action.at, repeat=False)
            elif isinstance(action, StopPlaying):
                if stream is not None:
                    stream.stop_playing()
            else:
                assert isinstance(action, Chosen)
                self._stop_menu()
                self.log_event(f"menu: {action.why}")
                self._act(self._route(partial(self.router.menu_choice, action.route, action.key)),
                          now)
                return
        if self.menu_timer is not None:
            self.menu_timer.cancel()
            self.menu_timer = None
        if session.deadline is not None:
            self.menu_timer = self.endpoint.timers.call_at(session.deadline, self._menu_tick)

    def _menu_tick(self, now: float) -> None:
        self.menu_timer = None
        if self.menu is not None:
            self._menu_step(self.menu.tick(now), now)

    def _stop_menu(self) -> None:
        self.menu = None
        if self.menu_timer is not None:
            self.menu_timer.cancel()
            self.menu_timer = None
        stream = self.media.caller_stream()
        if stream is not None:
            stream.stop_playing()

    def _join_queue(self, queue: Queue, now: float) -> bool:
        if not self.answer_here(now):
            return False
        self.pattern = "queue"
        self.queue = queue
        self._hold_music(now)
        self.queue_timer = self.endpoint.timers.call_at(now + queue.max_wait, self._queue_gave_up)
        if queue.announce is not None:
            self.announce_timer = self.endpoint.timers.call_at(
                now + queue.announce.every, self._announce
            )
        position = self.service.queues.join(self, queue, now)
        self.log_event(f"queue {queue.name}: waiting, position {position}")
        return True

    def _hold_music(self, now: float) -> None:
        self.announce_timer = None
        if self.queue is not None and self.queue.hold_music is not None:
            self._play_to_caller(partial(audio.frames, self.queue.hold_music), now)

    def _announce(self, now: float) -> None:
        """"You are number N": the recording for the caller's position, then the music."""
        queue = self.queue
        position = self.service.queues.position(self)
        if queue is None or queue.announce is None or position is None:
            self.announce_timer = None
            return
        prompts = queue.announce.prompts
        prompt = prompts[min(position, len(prompts)) - 1]
        end = self._play_to_caller(partial(audio.frames, prompt), now, repeat=False)
        self.announce_timer = self.endpoint.timers.call_at(end + FRAME, self._after_announce)

    def _after_announce(self, now: float) -> None:
        queue = self.queue
        self._hold_music(now)
        if queue is not None and queue.announce is not None:
            self.announce_timer = self.endpoint.timers.call_at(
                now + queue.announce.every, self._announce
            )

    def queue_offer(self, members: Sequence[str], now: float) -> None:
        """The queue offers this caller to ``members``: ring them."""
        queue = self.queue
        assert queue is not None
        for member in members:
            legs = [leg for t in self.service.queues.targets(queue, member, self)
                    if (leg := self._dial(t, now)) is not None]
            for leg in legs:
                leg.queue_member = member
            if not legs:
                self.service.queues.no_answer(self, member, now)

    def _queue_gave_up(self, now: float) -> None:
        self.queue_timer = None
        queue = self.queue
        if queue is None or self.state is not CallState.ROUTING:
            return
        self.log_event(f"queue {queue.name}: nobody answered in {queue.max_wait:g} s")
        self._leave_queue(now)
        self._stop_menu()
        self._act(self._route(partial(self.router.next, [])), now)

    def _leave_queue(self, now: float) -> None:
        for timer in (self.queue_timer, self.announce_timer):
            if timer is not None:
                timer.cancel()
        self.queue_timer = self.announce_timer = None
        if self.queue is None:
            return
        self.service.queues.leave(self, now)
        self.queue = None
        for leg in self.outbound:
            if leg.queue_member is not None and leg is not self.winner:
                leg.abandon(now, None)

    def _dial(self, target: Target, now: float) -> OutboundLeg | None:
        leg = OutboundLeg(self, target, len(self.outbound) + 1)
        try:
            uri = parse_uri(target.uri)
            hop = parse_uri(target.proxy) if target.proxy else uri
            if not isinstance(uri, SipUri) or not isinstance(hop, SipUri):
                raise ValueError("not a sip: URI")
            if target.destination is not None:  # a registered phone: where it registered from
                host, port, transport = target.destination
                destination = (host, port)
            else:
                destination, transport = destination_of(hop)
        except (SipError, ValueError) as exc:  # a target softswitch cannot reach
            self.log_event(f"cannot dial {target.name} ({target.uri}): {exc}")
            return None
        try:
            body = self.media.leg_offer(leg.number, target.needs_media, self.inbound.invite.body)
        except (MediaUnavailable, SdpError) as exc:
            self.log_event(f"cannot anchor the media of {target.name}: {exc}")
            return None
        if target.needs_media and not self.media.anchored_leg(leg.number):
            self.log_event(f"media is off: {target.name} is connected without extension or whisper")
        invite = self.service.outbound_invite(self, leg, uri, target, transport, body)
        leg.record = LegRecord(
            leg.number, target.name, target.number, target.label, self.service.wall(now)
        )
        self.record.legs.append(leg.record)
        self.outbound.append(leg)
        self.service.counters.leg_started(target.name)
        self.log_event(f"leg {leg.number} dialing {target.name} {target.uri}")
        self.service.emit("leg_dialing", self, leg)
        leg.start(invite, destination, transport, now)
        return leg

    def release(self, leg: OutboundLeg) -> None:
        """The leg no longer counts as a call in progress on its receiving number."""
        if id(leg) not in self._released:
            self._released.add(id(leg))
            self.service.counters.leg_ended(leg.target.name)

    def _mark_end(self, now: float) -> None:
        """The moment the call ended for the record: the first hangup or final answer."""
        if self.record.ended_at is None:
            self.record.ended_at = self.service.wall(now)

    def _give_up(self, status: int, why: str, now: float) -> None:
        self._mark_end(now)
        self._stop_menu()
        self._leave_queue(now)
        self.disposition = {486: Disposition.BUSY, 480: Disposition.NO_ANSWER}.get(
            status, Disposition.FAILED
        )
        self.record.final_status = status
        self.log_event(f"no receiving number answered ({why}); answering {status}")
        for leg in self.outbound:
            leg.abandon(now, None)
        self.inbound.reject(status, now)
        if self.answered_here:
            self.inbound.send_bye(now)  # answered by softswitch: a BYE, not a status
        self.state = CallState.ENDING
        self._maybe_end(now)

    @property
    def accepts_answer(self) -> bool:
        """Nobody has answered yet and the call is still looking for someone."""
        return self.winner is None and self.state is CallState.ROUTING

    # ---- leg events --------------------------------------------------------------

    def leg_ringing(self, leg: OutboundLeg, response: Response, now: float) -> None:
        if self.state is not CallState.ROUTING:
            return
        self.service.emit("leg_ringing", self, leg)
        at = self.service.wall(now)
        if leg.record.rang_at is None:
            leg.record.rang_at = at
        if self.record.first_ring_at is None:
            self.record.first_ring_at = at
        self.log_event(f"leg {leg.number} {leg.target.name} ringing ({response.status})")
        body, content_type = response.body, response.headers.get("content-type")
        if body and self.media.anchored_leg(leg.number):
            try:
                self.media.leg_sdp(leg.number, body)
            except SdpError as exc:
                self.log_event(f"leg {leg.number}: early SDP ignored: {exc}")
                body = b""
            else:
                early = not self.inbound.early_sdp_sent and not self.answered_here
                body = self.media.sdp_for_caller(leg.number, body, early) if early else b""
                content_type = SDP
        self.inbound.ringing(response.status, body, content_type, now)

    def leg_picked_up(self, leg: OutboundLeg, response: Response, now: float) -> None:
        """A receiving number sent 200: confirm it first if it needs that, else answer."""
        leg.record.answered_at = self.service.wall(now)
        anchored = self.media.anchored_leg(leg.number)
        if anchored:
            try:
                self.media.leg_sdp(leg.number, response.body)
            except SdpError as exc:
                self.log_event(f"leg {leg.number} {leg.target.name}: unusable SDP: {exc}")
                leg.send_bye(now)
                self.leg_failed(leg, 488, Outcome.FAILED, now)
                return
        if not (anchored and leg.target.needs_media):
            self.leg_answered(leg, response, now)
            return
        self.log_event(f"leg {leg.number} {leg.target.name} picked up: confirming")
        self.media.stop_early(leg.number)
        self._ringback(leg, now)
        leg.confirmation = Confirmation(
            self,
            leg,
            self.media.stream_of(leg.number),
            self.media.remote_of(leg.number),
            partial(self._confirmed, leg, response),
        )
        leg.confirmation.start(now)

    def _ringback(self, leg: OutboundLeg, now: float) -> None:
        """The caller keeps hearing ringing while a leg is confirmed: its own (a 180),
        or a generated tone once it listens to softswitch's early media."""
        if self.inbound.state not in (LegState.CALLING, LegState.RINGING):
            return
        if self.media.early_from not in (None, leg.number):
            return  # another leg's early media is what the caller hears
        listening = self.media.early_from is not None
        if not listening and not self.inbound.early_sdp_sent:
            if self.service.config.media.ringback == "generated":
                try:
                    sdp = self.media.early_sdp_for_caller()
                except (SdpError, MediaUnavailable) as exc:
                    self.log_event(f"no generated ringback: {exc}")
                    sdp = None
                if sdp is not None:
                    self.inbound.ringing(183, sdp, SDP, now)
                    listening = True
            if not listening and self.inbound.state is LegState.CALLING:
                self.inbound.ringing(180, b"", None, now)
        remote = self.media.caller_remote()
        stream = self.media.caller_stream()
        if listening and stream is not None and remote is not None:
            stream.play(audio.ringback(remote.codec), now, repeat=True)

    def _confirmed(
        self, leg: OutboundLeg, response: Response, confirmed: bool, why: str, now: float
    ) -> None:
        leg.confirmation = None
        self.log_event(f"leg {leg.number} {leg.target.name}: {why}")
        if confirmed and self.accepts_answer:
            self.leg_answered(leg, response, now)
            return
        leg.record.reason = why
        leg.send_bye(now)
        self.leg_failed(leg, 480, Outcome.NO_ANSWER, now)

    def leg_answered(self, leg: OutboundLeg, response: Response, now: float) -> None:
        self.winner = leg
        if leg.queue_member is not None and self.queue is not None:
            self.member = (self.queue.name, leg.queue_member)
            self.service.queues.answered(self, leg.queue_member, now)
            self._leave_queue(now)
        self.record.answered_at = self.service.wall(now)
        if leg.record.answered_at is None:
            leg.record.answered_at = self.record.answered_at
        leg.record.outcome = "answered"
        leg.record.status = response.status
        self.record.pattern = self.pattern
        self.record.final_status = 200
        if self.router.tags:
            self.log_event("tags: " + ", ".join(f"{k}={v}" for k, v in self.router.tags.items()))
        self.state = CallState.ANSWERED
        self.disposition = Disposition.ANSWERED
        for other in self.outbound:
            if other is not leg:
                other.abandon(now, ANSWERED_ELSEWHERE)
                self.media.close_leg(other.number)
        self.log_event(f"answered by leg {leg.number} {leg.target.name}")
        self.service.emit("answered", self, leg)
        body, content_type = response.body, response.headers.get("content-type")
        if self.media.anchored_leg(leg.number):
            if not self.answered_here:
                body = self.media.sdp_for_caller(leg.number, body, early=False)
                content_type = SDP if body else None
            streams = self.media.bridge(leg.number)
            if streams is not None:
                for stream in streams:
                    stream.listen(None, self._rtp_stopped)
        if not self.answered_here:
            self.inbound.answer(body, content_type, now)
            return
        # The caller was answered long ago (a menu, a queue): connect it now.
        self.record.bridged_at = self.service.wall(now)
        self.state = CallState.BRIDGED
        self.log_event("bridged")
        self.service.emit("bridged", self)

    def _rtp_stopped(self, now: float) -> None:
        timeout = self.service.config.media.rtp_timeout
        self.hangup(None, now, f"no RTP for {timeout:g} s")

    def inbound_confirmed(self, ack: Request, now: float) -> None:
        self.media.caller_ack_sdp(ack.body)
        if self.winner is not None and self.winner.ack_deferred:
            self.winner.send_ack(ack.body, ack.headers.get("content-type"))
        if self.state is CallState.ANSWERED:
            self.record.bridged_at = self.service.wall(now)
            self.state = CallState.BRIDGED
            self.log_event("bridged")
            self.service.emit("bridged", self)

    def leg_failed(self, leg: OutboundLeg, status: int, outcome: Outcome, now: float) -> None:
        self.release(leg)
        self.media.close_leg(leg.number)
        if leg.queue_member is not None:
            self._queue_leg_failed(leg, status, outcome, now)
            return
        leg.result = LegResult(leg.target.name, status, outcome)
        leg.record.status, leg.record.outcome = status, outcome.value
        leg.record.ended_at = self.service.wall(now)
        self.log_event(f"leg {leg.number} {leg.target.name} failed: {status} ({outcome.value})")
        self.service.emit("leg_failed", self, leg, status)
        if self.state is not CallState.ROUTING:
            self._maybe_end(now)
            return
        if self.router.stops_hunt(status):
            for other in self.dialing:
                if other is not leg and other.result is None:
                    other.abandon(now, None)
                    other.result = LegResult(other.target.name, 487, Outcome.NO_ANSWER)
        if any(other.result is None for other in self.dialing):
            return
        results = [other.result for other in self.dialing if other.result is not None]
        self._act(self._route(partial(self.router.next, results)), now)

    def _queue_leg_failed(
        self, leg: OutboundLeg, status: int, outcome: Outcome, now: float
    ) -> None:
        leg.result = LegResult(leg.target.name, status, outcome)
        leg.record.status, leg.record.outcome = status, outcome.value
        leg.record.ended_at = self.service.wall(now)
        self.log_event(f"leg {leg.number} queue member {leg.queue_member}: {status}")
        if self.state is not CallState.ROUTING or self.queue is None:
            self._maybe_end(now)
            return
        member = leg.queue_member
        ringing = [other for other in self.outbound if other.queue_member == member
                   and other.state in (LegState.CALLING, LegState.RINGING, LegState.ANSWERED)]
        if not ringing and member is not None:
            self.service.queues.no_answer(self, member, now)

    def leg_finished(self, leg: OutboundLeg, now: float) -> None:
        self._maybe_end(now)

    # ---- caller events -----------------------------------------------------------

    def cancelled_by_caller(self, now: float) -> None:
        if self.state is not CallState.ROUTING:
            return  # already answered: the CANCEL has no effect (§9.2)
        self._mark_end(now)
        self.log_event("cancelled by the caller")
        self.disposition = Disposition.CANCELLED
        self.record.final_status = 487
        self.hangup_by = "caller"
        self.state = CallState.ENDING
        self.inbound.reject(487, now)
        for leg in self.outbound:
            leg.abandon(now, None)
        self._maybe_end(now)

    def hangup(self, by: Leg | None, now: float, why: str) -> None:
        """End the call from ``by``'s side (None: softswitch itself, e.g. draining)."""
        if self.state in (CallState.ENDING, CallState.ENDED):
            self._maybe_end(now)
            return
        self._mark_end(now)
        if self.hangup_by is None:
            self.hangup_by = (
                "caller" if by is self.inbound else "softswitch" if by is None else "callee"
            )
        self.log_event(f"hangup by {self.hangup_by} ({why})")
        was_routing = self.state is CallState.ROUTING
        self.state = CallState.ENDING
        self._stop_menu()
        self._leave_queue(now)
        if was_routing:
            hung_up = by is self.inbound and self.answered_here
            self.disposition = Disposition.CANCELLED if hung_up else Disposition.FAILED
            self.inbound.reject(503, now, "Service Unavailable")
        if by is not self.inbound:
            self.inbound.send_bye(now)
        for leg in self.outbound:
            if leg is by:
                continue
            if leg.dialog is not None and leg.state in (LegState.ANSWERED, LegState.CONFIRMED):
                leg.send_bye(now)
            else:
                leg.abandon(now, None)
        self._maybe_end(now)

    # ---- in-dialog requests ------------------------------------------------------

    def send_in_dialog(
        self, leg: Leg, method: str, now: float, body: bytes = b"", content_type: str | None = None
    ) -> ClientTransaction:
        assert leg.dialog is not None
        transport = leg.transport
        request = leg.dialog.create_request(
            method,
            self.endpoint.via(transport),
            self.endpoint.contact(transport) if method in ("INVITE", "UPDATE") else None,
        )
        if body and content_type:
            request.headers.set("content-type", content_type)
            request.body = body
        transaction = self.endpoint.send_request(
            request, leg.destination_in_dialog(), transport, now
        )
        self.track(transaction, leg)
        return transaction

    def dialog_request(
        self, leg: Leg, request: Request, txn: ServerTransaction | None, now: float
    ) -> None:
        assert leg.dialog is not None
        if request.method == "ACK":
            leg.ack_received(request, now)
            return
        assert txn is not None
        if not leg.dialog.accept_remote_cseq(request):
            self.endpoint.respond(txn, request.response(500, "CSeq Out of Order"), now)
            return
        if request.method == "BYE":
            self.endpoint.respond(txn, request.response(200), now)
            confirming = isinstance(leg, OutboundLeg) and leg.confirmation is not None
            leg.state = LegState.ENDED
            leg.close()
            if confirming:
                # Hung up before being connected: as if it had not answered.
                assert isinstance(leg, OutboundLeg)
                self.log_event(f"leg {leg.number} {leg.target.name} hung up before the bridge")
                leg.record.reason = "hung up before being connected"
                self.leg_failed(leg, 480, Outcome.NO_ANSWER, now)
            else:
                self.hangup(leg, now, "BYE")
            return
        if request.method == "OPTIONS":
            self.endpoint.respond(txn, request.response(200), now)
            return
        bridged = self.state in (CallState.BRIDGED, CallState.ANSWERED)
        if request.method == "INFO" and not (bridged and self._peer(leg) is not None):
            digit = parse_info(request.headers.get("content-type"), request.body)
            if digit is not None:
                self.endpoint.respond(txn, request.response(200), now)
                self.dtmf_received(leg, digit, now)
                return
        peer = self._peer(leg)
        if (
            peer is None
            or peer.dialog is None
            or self.state is not CallState.BRIDGED
            and self.state is not CallState.ANSWERED
        ):
            # Not bridged yet (or already ending): ask the peer to try again (§14.1).
            self.endpoint.respond(txn, request.response(491), now)
            return
        if request.method in ("INVITE", "UPDATE"):
            leg.dialog.update_target(request)
        try:
            body = self._relay_sdp(leg, peer, request.body)
        except SdpError as exc:
            self.endpoint.respond(txn, request.response(exc.status_code, exc.reason), now)
            return
        relayed = self.send_in_dialog(
            peer, request.method, now, body, request.headers.get("content-type")
        )
        self.relays[id(relayed)] = (txn, request)

    def _relay_sdp(self, source: Leg, target: Leg, body: bytes) -> bytes:
        """An in-dialog SDP rewritten for the other side when media is anchored."""
        if not body:
            return body
        def side(leg: Leg) -> int | None:  # CallMedia's key: None is the caller
            return leg.number if isinstance(leg, OutboundLeg) else None

        return self.media.relay_sdp(side(source), side(target), body)

    def dtmf_received(self, leg: Leg, digit: str, now: float) -> None:
        """A digit from a leg (RFC 4733 or SIP INFO), before the call is bridged."""
        if isinstance(leg, OutboundLeg) and leg.confirmation is not None:
            leg.confirmation.digit(digit, now)
            return
        if leg is self.inbound and self.menu is not None:
            self._menu_step(self.menu.digit(digit, now), now)
            return
        self.log_event(f"digit {digit} from the {'caller' if leg is self.inbound else 'callee'}",
                       logging.DEBUG)
        self.service.emit("dtmf", self, leg, digit)

    def _peer(self, leg: Leg) -> Leg | None:
        if leg is self.inbound:
            return self.winner
        return self.inbound if leg is self.winner else None

    def relayed_response(
        self, leg: Leg, transaction: ClientTransaction, response: Response, now: float
    ) -> None:
        if response.status < 200:
            return
        entry = self.relays.pop(id(transaction), None)
        self.untrack(transaction)
        if entry is None:
            return
        server_txn, original = entry
        extra: list[tuple[str, str]] = []
        if response.status < 300 and original.method in ("INVITE", "UPDATE"):
            assert leg.dialog is not None
            leg.dialog.update_target(response)
            extra.append(("Contact", self.endpoint.contact(server_txn.transport)))
        content_type = response.headers.get("content-type")
        body = response.body
        origin = self._peer(leg)
        if body and origin is not None:
            try:
                body = self._relay_sdp(leg, origin, body)
            except SdpError as exc:
                self.log_event(f"unusable SDP in a relayed {response.status}: {exc}")
        if body and content_type:
            extra.append(("Content-Type", content_type))
        answer = original.response(response.status, response.reason, extra=extra, body=body)
        self.endpoint.respond(server_txn, answer, now)
        if original.method == "INVITE" and response.status < 300:
            # The peer's 2xx is ACKed at once (its offer/answer is complete: the
            # re-INVITE carried the offer); the originator's 2xx is retransmitted
            # until its own ACK arrives.
            self._ack_relayed_invite(leg, response)
            if origin is not None:
                origin.retransmit_2xx(answer, server_txn.response_destination, now)

    def _ack_relayed_invite(self, leg: Leg, response: Response) -> None:
        assert leg.dialog is not None
        ack = leg.dialog.create_request("ACK", self.endpoint.via(leg.transport), None)
        ack.headers.set("cseq", f"{response.cseq.number} ACK")
        self.endpoint.send_stateless(ack, leg.destination_in_dialog(), leg.transport)

    def relayed_timeout(self, leg: Leg, transaction: ClientTransaction, now: float) -> None:
        entry = self.relays.pop(id(transaction), None)
        self.untrack(transaction)
        if entry is not None:
            server_txn, original = entry
            self.endpoint.respond(server_txn, original.response(408), now)
            if original.method == "INVITE" or original.method == "BYE":
                self.hangup(None, now, "peer unreachable")

    # ---- the end -----------------------------------------------------------------

    def _complete_record(self, now: float) -> None:
        record = self.record
        if record.ended_at is None:
            record.ended_at = self.service.wall(now)
        record.hangup_by = self.hangup_by
        if self.winner is not None:
            fail_safe = self.record.pattern == "fail-safe"
            record.disposition = Disposition.FAIL_SAFE if fail_safe else Disposition.ANSWERED
        else:
            record.disposition = self.disposition
        for leg in record.legs:
            if leg.ended_at is None:
                leg.ended_at = record.ended_at
        record.tags = dict(self.router.tags)
        record.billable_seconds, record.cost = price(record, self.service.config)

    def _maybe_end(self, now: float) -> None:
        """End the call once every leg is done and no transaction is awaited.

        A leg abandoned before any provisional response may not be cancelled yet
        (§9.1: CANCEL waits for a 1xx) and can take until Timer B to finish.  It does not
        hold the call up: the call ends without it (its dialogs go, it stops counting
        as a call in progress) and lingers only as that leg, which still CANCELs a late
        1xx and ACKs and BYEs a late 2xx.  The call is forgotten once it is done too.
        """
        done = (LegState.FAILED, LegState.ENDED)
        silent = [leg for leg in self.outbound if leg.awaiting_provisional]
        awaited = self.pending - {id(leg.transaction) for leg in silent}
        if self.state is CallState.ENDING:
            if self.inbound.state not in done or awaited:
                return
            if any(leg.state not in done and leg not in silent for leg in self.outbound):
                return
            self.state = CallState.ENDED
            self._stop_menu()
            self._leave_queue(now)
            if self.member is not None:
                self.service.queues.call_ended(*self.member, now)
                self.member = None
            self.media.close()
            for leg in (self.inbound, *self.outbound):
                leg.close()
                if isinstance(leg, OutboundLeg):
                    self.release(leg)
            self._complete_record(now)
            self.log_event(
                f"ended: {self.disposition}, {now - self.started:.1f} s"
                + (f", hangup by {self.hangup_by}" if self.hangup_by else "")
                + (f"; {len(silent)} silent leg(s) left to time out" if silent else "")
            )
            self.service.call_ended(self)
        if self.state is CallState.ENDED and not silent and not self.pending:
            self.service.forget(self)
            # Calls and legs point at each other; cutting the links lets reference
            # counting free a finished call at once instead of leaving cycles for the
            # garbage collector, whose full passes over many live transactions pause
            # the loop.
            for leg in (self.inbound, *self.outbound):
                leg.close()  # again: a silent leg's late 2xx may have made a dialog
                leg.detach()
            self.relays.clear()
