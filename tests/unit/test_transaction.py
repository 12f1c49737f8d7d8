"""RFC 3261 §17 transaction machines (with RFC 6026 Accepted), driven by explicit ``now``.

Every timer rule is asserted to the exact loop time: a fake owner records what the
machine sends, schedules, passes up, times out and terminates, and ``run_until``
advances time by firing each ``deadline`` in turn.  No sleeps, no clocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from softswitch.sip.message import Request, Response, parse_message
from softswitch.sip.transaction import (
    Address,
    InviteClientState,
    InviteClientTransaction,
    InviteServerState,
    InviteServerTransaction,
    NonInviteClientState,
    NonInviteClientTransaction,
    NonInviteServerState,
    NonInviteServerTransaction,
    Timers,
    Transaction,
    ack_for_non2xx,
)

TRUNK: Address = ("203.0.113.5", 5060)
PHONE: Address = ("198.51.100.7", 5060)
PHONE_NAT: Address = ("198.51.100.7", 40312)  # where RFC 3581 says to answer
RFC_TIMERS = Timers()  # T1 = 0.5 s, T2 = 4 s, T4 = 5 s (RFC 3261 Table 4)

INVITE = (
    "INVITE sip:+15551230000@trunk.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinv1;rport\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKupstream\r\n"
    "Max-Forwards: 69\r\n"
    "Route: <sip:proxy1.example.com;lr>\r\n"
    "Route: <sip:proxy2.example.com;lr>\r\n"
    'From: "Caller" <sip:+15550001111@softswitch.example.com>;tag=a1\r\n'
    "To: <sip:+15551230000@trunk.example.com>\r\n"
    "Call-ID: 3848276298220188511@softswitch.example.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:softswitch@192.0.2.10:5060>\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
)

OPTIONS = (
    "OPTIONS sip:trunk.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKopt1;rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:ping@softswitch.example.com>;tag=p1\r\n"
    "To: <sip:trunk.example.com>\r\n"
    "Call-ID: options-1@softswitch.example.com\r\n"
    "CSeq: 7 OPTIONS\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
)

# The ACK a phone sends for a non-2xx final: same branch as the INVITE (§17.1.1.3).
ACK_FOR_486 = (
    "ACK sip:+15551230000@trunk.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinv1;rport\r\n"
    "Max-Forwards: 70\r\n"
    'From: "Caller" <sip:+15550001111@softswitch.example.com>;tag=a1\r\n'
    "To: <sip:+15551230000@trunk.example.com>;tag=b2\r\n"
    "Call-ID: 3848276298220188511@softswitch.example.com\r\n"
    "CSeq: 314159 ACK\r\n"
    "Content-Length: 0\r\n"
    "\r\n"
)


def request(text: str) -> Request:
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def response(req: Request, status: int, tag: str | None = "b2") -> Response:
    return req.response(status, to_tag=tag)


@dataclass
class FakeOwner:
    """Records every call a transaction makes, stamped with the test's ``now``."""

    now: float = 0.0
    events: list[tuple[str, float, object]] = field(default_factory=list)
    sends: list[tuple[float, Request | Response, Address, str]] = field(default_factory=list)
    scheduled: list[float | None] = field(default_factory=list)
    passed_up: list[tuple[float, int]] = field(default_factory=list)
    timeouts: list[float] = field(default_factory=list)
    terminations: int = 0
    fail_sends: bool = False

    def send(self, message: Request | Response, destination: Address, transport: str) -> None:
        self.sends.append((self.now, message, destination, transport))
        self.events.append(("send", self.now, message))
        if self.fail_sends:
            self.failing.transport_error(self.now)

    def schedule(self, transaction: Transaction) -> None:
        self.scheduled.append(transaction.deadline)
        self.events.append(("schedule", self.now, transaction.deadline))

    def response_received(self, transaction: Transaction, response: Response, now: float) -> None:
        assert now == self.now
        self.passed_up.append((now, response.status))
        self.events.append(("response", now, response.status))

    def timed_out(self, transaction: Transaction, now: float) -> None:
        assert now == self.now
        self.timeouts.append(now)
        self.events.append(("timeout", now, None))

    def terminated(self, transaction: Transaction) -> None:
        assert transaction.is_terminated
        assert transaction.deadline is None
        self.terminations += 1
        self.events.append(("terminated", self.now, None))

    # -- helpers for tests -----------------------------------------------------------

    failing: Transaction = field(init=False)

    def send_times(self, kind: type | None = None) -> list[float]:
        return [t for t, m, _, _ in self.sends if kind is None or isinstance(m, kind)]

    def sent_methods(self) -> list[str]:
        return [m.method if isinstance(m, Request) else str(m.status) for _, m, _, _ in self.sends]


def run_until(owner: FakeOwner, tx: Transaction, limit: float) -> None:
    """Advance time: fire each deadline in turn, up to and including ``limit``."""
    while tx.deadline is not None and tx.deadline <= limit:
        owner.now = tx.deadline
        tx.handle_timer(owner.now)
    owner.now = limit


def at(owner: FakeOwner, now: float) -> float:
    owner.now = now
    return now


def ict(
    transport: str = "udp", timers: Timers = RFC_TIMERS, start: float = 0.0
) -> tuple[FakeOwner, InviteClientTransaction]:
    owner = FakeOwner(now=start)
    tx = InviteClientTransaction(owner, request(INVITE), TRUNK, transport, timers, start)
    tx.start(start)
    return owner, tx


def nict(
    transport: str = "udp", timers: Timers = RFC_TIMERS, start: float = 0.0
) -> tuple[FakeOwner, NonInviteClientTransaction]:
    owner = FakeOwner(now=start)
    tx = NonInviteClientTransaction(owner, request(OPTIONS), TRUNK, transport, timers, start)
    tx.start(start)
    return owner, tx


def ist(
    transport: str = "udp", timers: Timers = RFC_TIMERS
) -> tuple[FakeOwner, InviteServerTransaction]:
    owner = FakeOwner()
    req = request(INVITE)
    key = (req.branch, "192.0.2.10:5060", "INVITE")
    tx = InviteServerTransaction(
        owner, req, PHONE, transport, timers, 0.0, key=key, response_destination=PHONE_NAT
    )
    return owner, tx


def nist(
    transport: str = "udp", timers: Timers = RFC_TIMERS
) -> tuple[FakeOwner, NonInviteServerTransaction]:
    owner = FakeOwner()
    req = request(OPTIONS)
    key = (req.branch, "192.0.2.10:5060", "OPTIONS")
    tx = NonInviteServerTransaction(
        owner, req, PHONE, transport, timers, 0.0, key=key, response_destination=PHONE_NAT
    )
    return owner, tx


# --- INVITE client transaction (RFC 3261 §17.1.1, RFC 6026 §7.2) -----------------------


def test_invite_client_key_and_initial_timers() -> None:
    owner, tx = ict()
    assert tx.key == ("z9hG4bKinv1", "INVITE")
    assert tx.state is InviteClientState.CALLING
    assert tx.armed_timers == {"A": 0.5, "B": 32.0}
    assert tx.deadline == 0.5
    assert owner.sends[0][1:] == (tx.request, TRUNK, "udp")
    assert owner.scheduled == [0.5]


def test_invite_client_unanswered_over_udp_retransmits_then_times_out_at_32() -> None:
    owner, tx = ict()
    run_until(owner, tx, 100.0)
    assert owner.send_times() == [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert owner.sent_methods() == ["INVITE"] * 7
    assert owner.timeouts == [32.0]
    assert owner.terminations == 1
    assert tx.state is InviteClientState.TERMINATED
    assert tx.armed_timers == {} and tx.deadline is None
    # The owner heard every deadline change, the last one (None) before terminated().
    assert owner.scheduled == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5, 32.0, None]
    assert [e[0] for e in owner.events[-3:]] == ["timeout", "schedule", "terminated"]


def test_invite_client_start_time_shifts_the_whole_schedule() -> None:
    owner, tx = ict(start=1000.0)
    assert tx.armed_timers == {"A": 1000.5, "B": 1032.0}
    run_until(owner, tx, 2000.0)
    assert owner.send_times() == [1000, 1000.5, 1001.5, 1003.5, 1007.5, 1015.5, 1031.5]
    assert owner.timeouts == [1032.0]


def test_invite_client_custom_t1_changes_schedule() -> None:
    owner, tx = ict(timers=Timers(t1=0.25, t2=4.0, t4=5.0))
    run_until(owner, tx, 100.0)
    assert owner.send_times() == [0, 0.25, 0.75, 1.75, 3.75, 7.75, 15.75]
    assert owner.timeouts == [16.0]


def test_invite_client_provisional_stops_a_and_b() -> None:
    owner, tx = ict()
    run_until(owner, tx, 0.6)
    tx.receive_response(response(tx.request, 180), at(owner, 0.8))
    assert tx.state is InviteClientState.PROCEEDING
    assert owner.passed_up == [(0.8, 180)]
    assert tx.armed_timers == {} and tx.deadline is None
    assert owner.scheduled[-1] is None
    tx.receive_response(response(tx.request, 183), at(owner, 5.0))
    assert owner.passed_up == [(0.8, 180), (5.0, 183)]
    tx.handle_timer(at(owner, 120.0))
    assert owner.send_times() == [0, 0.5]
    assert owner.timeouts == []
    assert tx.state is InviteClientState.PROCEEDING


def test_invite_client_cancelled_but_never_answered_is_destroyed_64_t1_later() -> None:
    """§9.1: no final response 64*T1 after the CANCEL: the transaction is given up."""
    owner, tx = ict()
    tx.receive_response(response(tx.request, 180), at(owner, 0.2))
    tx.cancel_sent(at(owner, 10.0))
    assert tx.deadline == 42.0
    run_until(owner, tx, 41.9)
    assert owner.timeouts == []
    run_until(owner, tx, 42.0)
    assert owner.timeouts == [42.0]
    assert tx.state is InviteClientState.TERMINATED


def test_invite_client_cancel_after_a_final_response_changes_nothing() -> None:
    owner, tx = ict()
    tx.receive_response(response(tx.request, 486), at(owner, 0.2))
    deadline = tx.deadline
    tx.cancel_sent(at(owner, 0.3))
    assert tx.deadline == deadline and tx.state is InviteClientState.COMPLETED


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_invite_client_2xx_enters_accepted_with_timer_m(transport: str) -> None:
    owner, tx = ict(transport)
    tx.receive_response(response(tx.request, 180), at(owner, 1.0))
    ok = response(tx.request, 200)
    tx.receive_response(ok, at(owner, 3.0))
    assert tx.state is InviteClientState.ACCEPTED
    assert tx.armed_timers == {"M": 3.0 + 32.0}  # Timer M = 64*T1, both transports
    assert owner.passed_up == [(1.0, 180), (3.0, 200)]
    # 2xx retransmissions (and other forks' 2xx) go up: the TU ACKs them.
    tx.receive_response(ok, at(owner, 3.5))
    tx.receive_response(response(tx.request, 200, tag="fork2"), at(owner, 4.0))
    assert owner.passed_up == [(1.0, 180), (3.0, 200), (3.5, 200), (4.0, 200)]
    # Anything else in Accepted is absorbed.
    tx.receive_response(response(tx.request, 180), at(owner, 5.0))
    tx.receive_response(response(tx.request, 486), at(owner, 5.0))
    assert len(owner.passed_up) == 4
    assert owner.sent_methods() == ["INVITE"]  # no ACK for a 2xx from the transaction
    run_until(owner, tx, 34.9)
    assert tx.state is InviteClientState.ACCEPTED
    run_until(owner, tx, 35.0)
    assert tx.state is InviteClientState.TERMINATED
    assert owner.timeouts == [] and owner.terminations == 1


def test_invite_client_2xx_straight_from_calling() -> None:
    owner, tx = ict()
    tx.receive_response(response(tx.request, 200), at(owner, 0.2))
    assert tx.state is InviteClientState.ACCEPTED
    assert tx.armed_timers == {"M": 32.2}
    run_until(owner, tx, 10.0)
    assert owner.send_times() == [0]  # Timer A stopped


def test_invite_client_non2xx_sends_ack_passes_up_once_and_waits_timer_d() -> None:
    owner, tx = ict()
    run_until(owner, tx, 1.0)
    busy = response(tx.request, 486)
    tx.receive_response(busy, at(owner, 1.2))
    assert tx.state is InviteClientState.COMPLETED
    assert tx.armed_timers == {"D": 1.2 + 32.0}  # Timer D = 32 s on UDP
    assert owner.passed_up == [(1.2, 486)]
    ack = owner.sends[-1]
    assert ack[0] == 1.2 and ack[2:] == (TRUNK, "udp")
    assert bytes(ack[1]) == bytes(ack_for_non2xx(tx.request, busy))
    # A retransmitted final response is answered with the ACK again, not passed up.
    tx.receive_response(busy, at(owner, 1.7))
    tx.receive_response(busy, at(owner, 2.7))
    assert owner.sent_methods() == ["INVITE", "INVITE", "ACK", "ACK", "ACK"]
    assert owner.send_times(Request)[-3:] == [1.2, 1.7, 2.7]
    assert owner.passed_up == [(1.2, 486)]
    # No INVITE retransmission after the final response; Timer D ends it quietly.
    run_until(owner, tx, 33.1)
    assert tx.state is InviteClientState.COMPLETED
    run_until(owner, tx, 33.2)
    assert tx.state is InviteClientState.TERMINATED
    assert owner.sent_methods().count("INVITE") == 2
    assert owner.timeouts == [] and owner.terminations == 1


def test_invite_client_non2xx_after_provisional() -> None:
    owner, tx = ict()
    tx.receive_response(response(tx.request, 183), at(owner, 0.1))
    tx.receive_response(response(tx.request, 603), at(owner, 9.0))
    assert tx.state is InviteClientState.COMPLETED
    assert owner.passed_up == [(0.1, 183), (9.0, 603)]
    assert owner.sent_methods() == ["INVITE", "ACK"]
    # A late provisional or 2xx in Completed is absorbed.
    tx.receive_response(response(tx.request, 180), at(owner, 9.5))
    tx.receive_response(response(tx.request, 200), at(owner, 9.5))
    assert owner.passed_up == [(0.1, 183), (9.0, 603)]
    assert owner.sent_methods() == ["INVITE", "ACK"]


def test_invite_client_over_tcp_never_retransmits_and_timer_d_is_zero() -> None:
    owner, tx = ict("tcp")
    assert tx.armed_timers == {"B": 32.0}  # no Timer A on a reliable transport
    run_until(owner, tx, 20.0)
    assert owner.send_times() == [0]
    assert owner.sends[0][3] == "tcp"
    tx.receive_response(response(tx.request, 404), at(owner, 20.0))
    assert tx.state is InviteClientState.COMPLETED
    assert tx.armed_timers == {"D": 20.0}  # Timer D = 0 on TCP
    assert owner.sent_methods() == ["INVITE", "ACK"]
    tx.handle_timer(20.0)
    assert tx.state is InviteClientState.TERMINATED
    assert owner.terminations == 1 and owner.timeouts == []


def test_invite_client_over_tcp_times_out_with_timer_b() -> None:
    owner, tx = ict("tcp")
    run_until(owner, tx, 100.0)
    assert owner.send_times() == [0]
    assert owner.timeouts == [32.0]


def test_ack_for_non2xx_is_byte_exact() -> None:
    invite = request(INVITE)
    busy = invite.response(486, to_tag="b2")
    ack = ack_for_non2xx(invite, busy)
    assert bytes(ack) == (
        b"ACK sip:+15551230000@trunk.example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKinv1;rport\r\n"
        b"Max-Forwards: 70\r\n"
        b"Route: <sip:proxy1.example.com;lr>\r\n"
        b"Route: <sip:proxy2.example.com;lr>\r\n"
        b'From: "Caller" <sip:+15550001111@softswitch.example.com>;tag=a1\r\n'
        b"To: <sip:+15551230000@trunk.example.com>;tag=b2\r\n"
        b"Call-ID: 3848276298220188511@softswitch.example.com\r\n"
        b"CSeq: 314159 ACK\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n"
    )
    # It parses back and matches the INVITE's transaction (same branch, one Via).
    parsed = parse_message(bytes(ack))
    assert isinstance(parsed, Request)
    assert parsed.method == "ACK" and parsed.branch == invite.branch
    assert len(parsed.vias) == 1 and parsed.to.tag == "b2"
    assert parsed.cseq.number == 314159 and parsed.cseq.method == "ACK"


def test_ack_for_non2xx_without_route() -> None:
    invite = request(OPTIONS.replace("OPTIONS", "INVITE"))
    ack = ack_for_non2xx(invite, invite.response(503, to_tag="x"))
    assert "Route" not in ack.headers
    assert ack.headers.get("to") == "<sip:trunk.example.com>;tag=x"
    assert ack.raw_uri == "sip:trunk.example.com"


def test_invite_client_transport_error_times_out_and_terminates() -> None:
    owner, tx = ict()
    tx.transport_error(at(owner, 0.3))
    assert owner.timeouts == [0.3]
    assert owner.terminations == 1
    assert tx.state is InviteClientState.TERMINATED
    assert owner.scheduled == [0.5, None]


def test_invite_client_failing_first_send_terminates_without_timers() -> None:
    owner = FakeOwner(fail_sends=True)
    tx = InviteClientTransaction(owner, request(INVITE), TRUNK, "udp", Timers(), 0.0)
    owner.failing = tx
    tx.start(0.0)
    assert tx.state is InviteClientState.TERMINATED
    assert tx.deadline is None
    assert owner.timeouts == [0.0] and owner.terminations == 1
    assert owner.scheduled == []  # the owner never heard of a deadline, so nothing changed
    assert owner.send_times() == [0]


def test_invite_client_start_twice_sends_once() -> None:
    owner, tx = ict()
    tx.start(0.1)
    assert owner.send_times() == [0]


# --- non-INVITE client transaction (RFC 3261 §17.1.2) ---------------------------------


def test_non_invite_client_unanswered_caps_at_t2_then_timer_f() -> None:
    owner, tx = nict()
    assert tx.key == ("z9hG4bKopt1", "OPTIONS")
    assert tx.armed_timers == {"E": 0.5, "F": 32.0}
    run_until(owner, tx, 100.0)
    assert owner.send_times() == [
        0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5,
    ]
    assert owner.timeouts == [32.0]
    assert owner.terminations == 1
    assert tx.state is NonInviteClientState.TERMINATED


def test_non_invite_client_in_proceeding_retransmits_every_t2() -> None:
    owner, tx = nict()
    tx.receive_response(response(tx.request, 100, tag=None), at(owner, 0.2))
    assert tx.state is NonInviteClientState.PROCEEDING
    assert owner.passed_up == [(0.2, 100)]
    assert tx.armed_timers == {"E": 0.5, "F": 32.0}  # E and F keep running
    run_until(owner, tx, 100.0)
    assert owner.send_times() == [0, 0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5]
    assert owner.timeouts == [32.0]


def test_non_invite_client_proceeding_after_backoff() -> None:
    owner, tx = nict(timers=Timers(t1=0.5, t2=8.0))
    run_until(owner, tx, 2.0)  # sent at 0, 0.5, 1.5; E next at 3.5
    tx.receive_response(response(tx.request, 100, tag=None), at(owner, 2.0))
    run_until(owner, tx, 20.0)
    assert owner.send_times() == [0, 0.5, 1.5, 3.5, 11.5, 19.5]


@pytest.mark.parametrize("status", [200, 404])
def test_non_invite_client_final_completes_with_timer_k(status: int) -> None:
    owner, tx = nict()
    run_until(owner, tx, 0.5)
    final = response(tx.request, status)
    tx.receive_response(final, at(owner, 0.7))
    assert tx.state is NonInviteClientState.COMPLETED
    assert tx.armed_timers == {"K": 0.7 + 5.0}  # Timer K = T4 on UDP
    assert owner.passed_up == [(0.7, status)]
    tx.receive_response(final, at(owner, 1.0))  # retransmission absorbed
    tx.receive_response(response(tx.request, 100, tag=None), at(owner, 1.0))
    assert owner.passed_up == [(0.7, status)]
    run_until(owner, tx, 5.69)
    assert tx.state is NonInviteClientState.COMPLETED
    run_until(owner, tx, 5.7)
    assert tx.state is NonInviteClientState.TERMINATED
    assert owner.send_times() == [0, 0.5]
    assert owner.timeouts == [] and owner.terminations == 1


def test_non_invite_client_over_tcp() -> None:
    owner, tx = nict("tcp")
    assert tx.armed_timers == {"F": 32.0}  # no Timer E on a reliable transport
    run_until(owner, tx, 10.0)
    assert owner.send_times() == [0]
    tx.receive_response(response(tx.request, 200), at(owner, 10.0))
    assert tx.armed_timers == {"K": 10.0}  # Timer K = 0 on TCP
    tx.handle_timer(10.0)
    assert tx.state is NonInviteClientState.TERMINATED


def test_non_invite_client_custom_timers() -> None:
    owner, tx = nict(timers=Timers(t1=0.1, t2=0.4, t4=1.0))
    assert tx.armed_timers == {"E": 0.1, "F": pytest.approx(6.4)}
    run_until(owner, tx, 1.0)
    assert owner.send_times() == pytest.approx([0, 0.1, 0.3, 0.7])
    tx.receive_response(response(tx.request, 200), at(owner, 1.0))
    assert tx.armed_timers == {"K": 2.0}


def test_non_invite_client_custom_timers_time_out() -> None:
    owner, tx = nict(timers=Timers(t1=0.25, t2=1.0, t4=2.0))
    run_until(owner, tx, 100.0)
    assert owner.send_times() == [0, 0.25, 0.75] + [1.75 + i for i in range(15)]
    assert owner.timeouts == [16.0]


# --- INVITE server transaction (RFC 3261 §17.2.1, RFC 6026 §7.1) ----------------------


def test_invite_server_proceeding_answers_retransmissions_with_last_provisional() -> None:
    owner, tx = ist()
    assert tx.state is InviteServerState.PROCEEDING
    assert tx.key == ("z9hG4bKinv1", "192.0.2.10:5060", "INVITE")
    assert tx.deadline is None
    # Before any response, a retransmitted INVITE gets nothing.
    assert tx.receive_request(request(INVITE), at(owner, 0.5)) is False
    assert owner.sends == []
    trying = tx.request.response(100)
    assert tx.respond(trying, at(owner, 0.6)) is True
    ringing = response(tx.request, 180)
    tx.respond(ringing, at(owner, 1.0))
    assert tx.state is InviteServerState.PROCEEDING
    assert tx.receive_request(request(INVITE), at(owner, 1.5)) is False
    assert [(t, m, d, tr) for t, m, d, tr in owner.sends] == [
        (0.6, trying, PHONE_NAT, "udp"),
        (1.0, ringing, PHONE_NAT, "udp"),
        (1.5, ringing, PHONE_NAT, "udp"),
    ]
    assert tx.deadline is None and owner.scheduled == []


def test_invite_server_non2xx_retransmits_with_timer_g_then_timer_h() -> None:
    owner, tx = ist()
    busy = response(tx.request, 486)
    tx.respond(busy, at(owner, 0.0))
    assert tx.state is InviteServerState.COMPLETED
    assert tx.armed_timers == {"G": 0.5, "H": 32.0}
    run_until(owner, tx, 100.0)
    assert owner.send_times() == [
        0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5,
    ]
    assert all(m is busy for _, m, _, _ in owner.sends)
    assert owner.timeouts == [32.0]  # no ACK came
    assert owner.terminations == 1
    assert tx.state is InviteServerState.TERMINATED


def test_invite_server_ack_confirms_and_timer_i_terminates() -> None:
    owner, tx = ist()
    busy = response(tx.request, 486)
    tx.respond(busy, at(owner, 10.0))
    run_until(owner, tx, 11.0)  # G fired at 10.5
    # A retransmitted INVITE in Completed is answered with the final response.
    assert tx.receive_request(request(INVITE), at(owner, 11.2)) is False
    assert owner.send_times() == [10.0, 10.5, 11.2]
    assert tx.receive_request(request(ACK_FOR_486), at(owner, 12.0)) is False
    assert tx.state is InviteServerState.CONFIRMED
    assert tx.armed_timers == {"I": 12.0 + 5.0}  # Timer I = T4 on UDP; G and H stopped
    # Confirmed absorbs ACK and INVITE retransmissions.
    assert tx.receive_request(request(ACK_FOR_486), at(owner, 13.0)) is False
    assert tx.receive_request(request(INVITE), at(owner, 13.0)) is False
    run_until(owner, tx, 16.9)
    assert tx.state is InviteServerState.CONFIRMED
    run_until(owner, tx, 17.0)
    assert tx.state is InviteServerState.TERMINATED
    assert owner.send_times() == [10.0, 10.5, 11.2]
    assert owner.timeouts == [] and owner.terminations == 1


def test_invite_server_over_tcp_no_timer_g_and_timer_i_zero() -> None:
    owner, tx = ist("tcp")
    tx.respond(response(tx.request, 480), at(owner, 0.0))
    assert tx.armed_timers == {"H": 32.0}
    run_until(owner, tx, 5.0)
    assert owner.send_times() == [0]
    tx.receive_request(request(ACK_FOR_486), at(owner, 5.0))
    assert tx.state is InviteServerState.CONFIRMED
    assert tx.armed_timers == {"I": 5.0}  # Timer I = 0 on TCP
    tx.handle_timer(5.0)
    assert tx.state is InviteServerState.TERMINATED


def test_invite_server_over_tcp_timer_h_still_applies() -> None:
    owner, tx = ist("tcp")
    tx.respond(response(tx.request, 480), at(owner, 0.0))
    run_until(owner, tx, 100.0)
    assert owner.send_times() == [0]
    assert owner.timeouts == [32.0]


def test_invite_server_custom_timers_change_timer_g() -> None:
    owner, tx = ist(timers=Timers(t1=0.25, t2=1.0, t4=2.0))
    tx.respond(response(tx.request, 500), at(owner, 0.0))
    assert tx.armed_timers == {"G": 0.25, "H": 16.0}
    run_until(owner, tx, 3.0)
    assert owner.send_times() == [0, 0.25, 0.75, 1.75, 2.75]
    tx.receive_request(request(ACK_FOR_486), at(owner, 3.0))
    assert tx.armed_timers == {"I": 5.0}


def test_invite_server_2xx_enters_accepted_with_timer_l() -> None:
    owner, tx = ist()
    tx.respond(response(tx.request, 180), at(owner, 0.0))
    ok = response(tx.request, 200)
    assert tx.respond(ok, at(owner, 2.0)) is True
    assert tx.state is InviteServerState.ACCEPTED
    assert tx.armed_timers == {"L": 2.0 + 32.0}  # Timer L = 64*T1
    # A retransmitted INVITE is absorbed: nothing sent, nothing passed up.
    assert tx.receive_request(request(INVITE), at(owner, 2.5)) is False
    assert owner.send_times() == [0, 2.0]
    # The ACK for the 2xx is the TU's.
    ack = request(ACK_FOR_486.replace("branch=z9hG4bKinv1", "branch=z9hG4bKack2"))
    assert tx.receive_request(ack, at(owner, 2.6)) is True
    assert tx.state is InviteServerState.ACCEPTED
    # The TU retransmits its 2xx through the transaction; other responses are refused.
    assert tx.respond(ok, at(owner, 3.0)) is True
    assert tx.respond(response(tx.request, 486), at(owner, 3.0)) is False
    assert tx.respond(response(tx.request, 180), at(owner, 3.0)) is False
    assert owner.send_times() == [0, 2.0, 3.0]
    run_until(owner, tx, 33.9)
    assert tx.state is InviteServerState.ACCEPTED
    run_until(owner, tx, 34.0)
    assert tx.state is InviteServerState.TERMINATED
    assert owner.timeouts == [] and owner.terminations == 1


def test_invite_server_completed_refuses_further_responses() -> None:
    owner, tx = ist()
    tx.respond(response(tx.request, 486), at(owner, 0.0))
    assert tx.respond(response(tx.request, 200), at(owner, 0.1)) is False
    assert tx.respond(response(tx.request, 500), at(owner, 0.1)) is False
    assert owner.send_times() == [0]


def test_invite_server_uses_source_when_no_response_destination() -> None:
    owner = FakeOwner()
    tx = InviteServerTransaction(owner, request(INVITE), PHONE, "udp", Timers(), 0.0, key="k")
    tx.respond(response(tx.request, 100, tag=None), 0.0)
    assert owner.sends[0][2] == PHONE
    assert tx.key == "k"


# --- non-INVITE server transaction (RFC 3261 §17.2.2) ---------------------------------


def test_non_invite_server_lifecycle_over_udp() -> None:
    owner, tx = nist()
    assert tx.state is NonInviteServerState.TRYING
    assert tx.receive_request(request(OPTIONS), at(owner, 0.1)) is False
    assert owner.sends == []  # Trying discards retransmissions
    trying = response(tx.request, 100, tag=None)
    tx.respond(trying, at(owner, 0.2))
    assert tx.state is NonInviteServerState.PROCEEDING
    tx.receive_request(request(OPTIONS), at(owner, 0.5))
    ok = response(tx.request, 200)
    assert tx.respond(ok, at(owner, 1.0)) is True
    assert tx.state is NonInviteServerState.COMPLETED
    assert tx.armed_timers == {"J": 1.0 + 32.0}  # Timer J = 64*T1 on UDP
    tx.receive_request(request(OPTIONS), at(owner, 1.5))
    assert tx.respond(response(tx.request, 500), at(owner, 1.6)) is False
    assert [(t, m) for t, m, _, _ in owner.sends] == [
        (0.2, trying), (0.5, trying), (1.0, ok), (1.5, ok),
    ]
    assert all(d == PHONE_NAT for _, _, d, _ in owner.sends)
    run_until(owner, tx, 32.9)
    assert tx.state is NonInviteServerState.COMPLETED
    run_until(owner, tx, 33.0)
    assert tx.state is NonInviteServerState.TERMINATED
    assert owner.terminations == 1 and owner.timeouts == []


def test_non_invite_server_final_from_trying_over_tcp() -> None:
    owner, tx = nist("tcp")
    tx.respond(response(tx.request, 404), at(owner, 4.0))
    assert tx.state is NonInviteServerState.COMPLETED
    assert tx.armed_timers == {"J": 4.0}  # Timer J = 0 on TCP
    tx.handle_timer(4.0)
    assert tx.state is NonInviteServerState.TERMINATED


def test_non_invite_server_custom_t1_changes_timer_j() -> None:
    owner, tx = nist(timers=Timers(t1=0.1))
    tx.respond(response(tx.request, 200), at(owner, 0.0))
    assert tx.armed_timers == {"J": pytest.approx(6.4)}


def test_server_transport_error_times_out_and_terminates() -> None:
    owner, tx = nist()
    tx.transport_error(at(owner, 0.4))
    assert owner.timeouts == [0.4] and owner.terminations == 1
    assert tx.state is NonInviteServerState.TERMINATED


# --- rules every machine keeps --------------------------------------------------------


def test_late_loop_does_not_burst_retransmissions() -> None:
    owner, tx = ict()
    tx.handle_timer(at(owner, 10.0))  # Timer A was due at 0.5; 1.5, 3.5, 7.5 are past
    assert owner.send_times() == [0, 10.0]
    assert tx.armed_timers == {"A": 11.0, "B": 32.0}


def test_overdue_timers_fire_in_time_order() -> None:
    owner, tx = ict()
    tx.handle_timer(at(owner, 40.0))  # Timer A (0.5) then Timer B (32)
    kinds = [e[0] for e in owner.events if e[0] != "schedule"]
    assert kinds == ["send", "send", "timeout", "terminated"]
    assert owner.terminations == 1


def test_timer_not_yet_due_does_nothing() -> None:
    owner, tx = ict()
    tx.handle_timer(at(owner, 0.49))
    assert owner.send_times() == [0]
    assert owner.scheduled == [0.5]  # unchanged deadline is not re-announced


def make_terminated(kind: str) -> tuple[FakeOwner, Transaction]:
    tx: Transaction
    if kind == "ict":
        owner, tx = ict()
        run_until(owner, tx, 100.0)
    elif kind == "nict":
        owner, tx = nict()
        tx.receive_response(response(tx.request, 200), at(owner, 1.0))
        run_until(owner, tx, 100.0)
    elif kind == "ist":
        owner, tx = ist()
        tx.respond(response(tx.request, 200), at(owner, 0.0))
        run_until(owner, tx, 100.0)
    else:
        owner, tx = nist()
        tx.transport_error(at(owner, 0.0))
    assert tx.is_terminated and owner.terminations == 1
    return owner, tx


@pytest.mark.parametrize("kind", ["ict", "nict", "ist", "nist"])
def test_terminated_transaction_ignores_everything(kind: str) -> None:
    owner, tx = make_terminated(kind)
    before = list(owner.events)
    now = at(owner, 200.0)
    tx.handle_timer(now)
    tx.transport_error(now)
    if isinstance(tx, (InviteClientTransaction, NonInviteClientTransaction)):
        tx.start(now)
        for status in (100, 180, 200, 486):
            tx.receive_response(response(tx.request, status), now)
    else:
        assert isinstance(tx, (InviteServerTransaction, NonInviteServerTransaction))
        assert tx.receive_request(tx.request, now) is False
        assert tx.receive_request(request(ACK_FOR_486), now) is False
        for status in (100, 200, 486):
            assert tx.respond(response(tx.request, status), now) is False
    assert owner.events == before
    assert owner.terminations == 1
    assert tx.deadline is None and tx.armed_timers == {}


def test_transactions_use_slots() -> None:
    _, tx = ict()
    with pytest.raises(AttributeError):
        tx.unexpected = 1  # type: ignore[attr-defined]
