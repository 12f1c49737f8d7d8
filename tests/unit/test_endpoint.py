"""The endpoint alone (RFC 3261 §8.2, §9.2, §17, §18.2.2, RFC 3581) with a recording TU.

Every message goes through ``Endpoint.receive`` as bytes from an address, every timer
through ``run_timers`` at the ``next_deadline()`` the endpoint asked for; the tests
look at what ``take_outgoing`` hands the edge: status, headers and destination.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from softswitch.sip.endpoint import Endpoint, EndpointConfig
from softswitch.sip.message import Headers, Request, Response
from softswitch.sip.transaction import (
    ClientTransaction,
    InviteServerTransaction,
    ServerTransaction,
    Transaction,
)
from softswitch.sip.uri import parse_uri, parse_via

URI = "sip:service@127.0.0.1:5060"
R1 = ("127.0.0.1", 5071)


@dataclass
class RecordingTU:
    """Records what the endpoint hands up; can answer new requests with ``auto``."""

    requests: list[tuple[Request, ServerTransaction | None, float]] = field(default_factory=list)
    cancels: list[tuple[InviteServerTransaction, float]] = field(default_factory=list)
    responses: list[tuple[ClientTransaction, Response, float]] = field(default_factory=list)
    timeouts: list[tuple[Transaction, float]] = field(default_factory=list)
    endpoint: Endpoint | None = None
    auto: int | None = None  # status to answer new requests with at once

    def on_request(self, request: Request, transaction: ServerTransaction | None,
                   now: float) -> None:
        self.requests.append((request, transaction, now))
        if self.auto is not None and transaction is not None and self.endpoint is not None:
            self.endpoint.respond(
                transaction, request.response(self.auto, to_tag="uas-tag"), now
            )

    def on_cancel(self, invite: InviteServerTransaction, now: float) -> None:
        self.cancels.append((invite, now))

    def on_response(self, transaction: ClientTransaction, response: Response,
                    now: float) -> None:
        self.responses.append((transaction, response, now))

    def on_timeout(self, transaction: Transaction, now: float) -> None:
        self.timeouts.append((transaction, now))


@pytest.fixture
def tu() -> RecordingTU:
    return RecordingTU()


@pytest.fixture
def endpoint(tu: RecordingTU) -> Endpoint:
    ep = Endpoint(EndpointConfig(local={"udp": ("127.0.0.1", 5060), "tcp": ("127.0.0.1", 5060)}),
                  tu, rng=random.Random(1))
    tu.endpoint = ep
    return ep


@pytest.fixture
def wire(endpoint: Endpoint, wire_for: Any) -> Any:
    return wire_for(endpoint)


def zero_stats(endpoint: Endpoint) -> dict[str, int]:
    return {"client_transactions": 0, "server_transactions": 0, "dialogs": 0, "timers": 0}


def only(sent: list[Any]) -> Any:
    assert len(sent) == 1, sent
    return sent[0]


# ------------------------------------------------------------------- §8.2 checks


def test_options_is_answered_200_with_allow(wire: Any, sip: Any, tu: RecordingTU) -> None:
    out = only(wire.deliver(sip.request("OPTIONS", URI)))
    assert out.status == 200
    allow = {m.strip() for m in (out.msg.headers.get("allow") or "").split(",")}
    assert {"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"} <= allow
    assert out.msg.headers.get("accept") == "application/sdp"
    assert out.msg.to.tag is not None
    assert out.destination == sip.CALLER
    assert tu.requests == []


def test_unknown_method_is_501(wire: Any, sip: Any, tu: RecordingTU) -> None:
    out = only(wire.deliver(sip.request("FOOBAR", URI)))
    assert out.status == 501
    assert tu.requests == []


@pytest.mark.parametrize("method", ["REGISTER", "MESSAGE", "SUBSCRIBE"])
def test_known_but_not_allowed_is_405_with_allow(wire: Any, sip: Any, method: str,
                                                 tu: RecordingTU) -> None:
    out = only(wire.deliver(sip.request(method, URI)))
    assert out.status == 405
    allow = [m.strip() for m in (out.msg.headers.get("allow") or "").split(",")]
    assert "INVITE" in allow and method not in allow
    assert tu.requests == []


def test_unknown_uri_scheme_is_416(wire: Any, sip: Any, tu: RecordingTU) -> None:
    out = only(wire.deliver(sip.request("INVITE", "nobodyKnowsThisScheme:totallyopaque",
                                        to_uri="sip:service@127.0.0.1")))
    assert out.status == 416
    assert tu.requests == []


def test_unknown_require_is_420_listing_the_tags(wire: Any, sip: Any, tu: RecordingTU) -> None:
    out = only(wire.deliver(sip.request(
        "INVITE", URI, headers=[("Require", "foo, bar"), ("Require", "baz")])))
    assert out.status == 420
    unsupported = [t.strip() for t in out.msg.headers.values("unsupported")]
    assert unsupported == ["foo", "bar", "baz"]
    assert tu.requests == []


def test_invite_with_non_sdp_body_is_415_with_accept(wire: Any, sip: Any,
                                                     tu: RecordingTU) -> None:
    out = only(wire.deliver(sip.request("INVITE", URI, body=b"hello",
                                        content_type="text/plain")))
    assert out.status == 415
    assert out.msg.headers.get("accept") == "application/sdp"
    assert tu.requests == []


def test_accept_without_sdp_is_406(wire: Any, sip: Any, tu: RecordingTU) -> None:
    out = only(wire.deliver(sip.request("INVITE", URI, headers=[("Accept", "text/plain")])))
    assert out.status == 406
    assert tu.requests == []


def test_accept_with_sdp_among_others_reaches_the_tu(wire: Any, sip: Any,
                                                     tu: RecordingTU) -> None:
    wire.deliver(sip.request("INVITE", URI, headers=[("Accept", "text/plain, application/sdp")],
                             body=sip.sdp()))
    assert [r.method for r, _, _ in tu.requests] == ["INVITE"]


def test_in_dialog_request_without_dialog_is_481(wire: Any, sip: Any, tu: RecordingTU) -> None:
    out = only(wire.deliver(sip.request("BYE", URI, to_tag="nosuchdialog")))
    assert out.status == 481
    assert out.msg.to.tag == "nosuchdialog"  # the request's tag, not a second one
    assert (out.msg.headers.get("to") or "").count("tag=") == 1
    assert tu.requests == []


def test_stray_response_is_dropped(wire: Any, sip: Any, endpoint: Endpoint,
                                   tu: RecordingTU) -> None:
    data = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnothing\r\n"
        b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>;tag=2\r\n"
        b"Call-ID: stray@test\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
    )
    assert wire.deliver(data, R1) == []
    assert tu.responses == []
    assert endpoint.stats() == zero_stats(endpoint)


def test_retransmitted_invite_is_absorbed_and_provisional_resent(
    wire: Any, sip: Any, endpoint: Endpoint, tu: RecordingTU
) -> None:
    invite = sip.request("INVITE", URI, branch="z9hG4bK-retx", body=sip.sdp())
    assert wire.deliver(invite) == []  # the TU has not answered yet
    assert len(tu.requests) == 1
    # Retransmission before any response: absorbed, nothing to re-send.
    assert wire.deliver(invite, at=0.5) == []
    request, txn, _ = tu.requests[0]
    assert txn is not None
    endpoint.respond(txn, request.response(180, to_tag="uas"), wire.now)
    ringing = only(wire.take())
    assert ringing.status == 180
    again = only(wire.deliver(invite, at=1.0))
    assert again.data == ringing.data
    assert len(tu.requests) == 1


# ------------------------------------------------------ §18.2.2 and RFC 3581


def test_rport_and_received_are_stamped(wire: Any, sip: Any, tu: RecordingTU) -> None:
    tu.auto = 486
    via = "SIP/2.0/UDP pc33.example.com:5066;branch=z9hG4bK-nat;rport"
    out = only(wire.deliver(sip.request("INVITE", URI, via=via), ("192.0.2.7", 40123)))
    assert out.status == 486
    assert out.destination == ("192.0.2.7", 40123)
    top = parse_via(out.msg.headers.values("via")[0])
    assert top.received == "192.0.2.7"
    assert top.rport == "40123"
    assert top.branch == "z9hG4bK-nat"
    # The TU saw the stamped Via too.
    assert tu.requests[0][0].top_via.received == "192.0.2.7"


def test_rport_without_received_when_host_matches(wire: Any, sip: Any,
                                                  tu: RecordingTU) -> None:
    tu.auto = 486
    via = "SIP/2.0/UDP 192.0.2.7:5066;branch=z9hG4bK-same;rport"
    out = only(wire.deliver(sip.request("INVITE", URI, via=via), ("192.0.2.7", 40123)))
    top = parse_via(out.msg.headers.values("via")[0])
    assert top.received is None
    assert top.rport == "40123"
    assert out.destination == ("192.0.2.7", 40123)


def test_response_without_rport_goes_to_sent_by_port(wire: Any, sip: Any,
                                                     tu: RecordingTU) -> None:
    tu.auto = 486
    via = "SIP/2.0/UDP pc33.example.com:5066;branch=z9hG4bK-norport"
    out = only(wire.deliver(sip.request("INVITE", URI, via=via), ("192.0.2.7", 40123)))
    top = parse_via(out.msg.headers.values("via")[0])
    assert top.received == "192.0.2.7"
    assert not top.has_rport
    assert out.destination == ("192.0.2.7", 5066)


def test_response_without_rport_or_port_goes_to_5060(wire: Any, sip: Any,
                                                     tu: RecordingTU) -> None:
    tu.auto = 486
    via = "SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK-noport"
    out = only(wire.deliver(sip.request("INVITE", URI, via=via), ("192.0.2.7", 40123)))
    assert out.destination == ("192.0.2.7", 5060)


def test_tcp_response_goes_to_the_source(wire: Any, sip: Any, tu: RecordingTU) -> None:
    tu.auto = 486
    via = "SIP/2.0/TCP pc33.example.com:5066;branch=z9hG4bK-tcp"
    out = only(wire.deliver(sip.request("INVITE", URI, via=via), ("192.0.2.7", 40123), "tcp"))
    assert out.transport == "tcp"
    assert out.destination == ("192.0.2.7", 40123)


# ------------------------------------------------------------------ §9.2 CANCEL


def test_cancel_matching_the_invite_is_200_and_tells_the_tu(
    wire: Any, sip: Any, endpoint: Endpoint, tu: RecordingTU
) -> None:
    invite = sip.request("INVITE", URI, branch="z9hG4bK-c1", call_id="c1")
    wire.deliver(invite)
    _, txn, _ = tu.requests[0]
    cancel = sip.request("CANCEL", URI, branch="z9hG4bK-c1", call_id="c1", contact=None)
    out = only(wire.deliver(cancel, at=0.2))
    assert out.status == 200
    assert out.msg.cseq.method == "CANCEL"
    assert [(c, t) for c, t in tu.cancels] == [(txn, 0.2)]
    # The INVITE itself is the TU's to answer (487); the endpoint did not.
    assert responses_for(wire.log, "INVITE") == []


def test_cancel_with_unknown_branch_is_481(wire: Any, sip: Any, tu: RecordingTU) -> None:
    wire.deliver(sip.request("INVITE", URI, branch="z9hG4bK-c2", call_id="c2"))
    out = only(wire.deliver(sip.request("CANCEL", URI, branch="z9hG4bK-other", call_id="c2")))
    assert out.status == 481
    assert tu.cancels == []


def responses_for(log: list[Any], method: str) -> list[Any]:
    return [s for s in log if s.is_response and s.msg.cseq.method == method]


# ------------------------------------------------------------------ malformed


def test_malformed_request_is_400_with_warning(wire: Any, sip: Any, tu: RecordingTU) -> None:
    data = sip.request("INVITE", URI, max_forwards="seventy", branch="z9hG4bK-bad")
    out = only(wire.deliver(data, ("127.0.0.1", 40000)))
    assert out.status == 400
    assert (out.msg.headers.get("warning") or "").startswith("399 ")
    assert out.destination == ("127.0.0.1", 40000)  # rport in the Via
    assert out.msg.top_via.rport == "40000"
    assert tu.requests == []


def test_malformed_request_without_rport_goes_to_sent_by(wire: Any, sip: Any) -> None:
    via = "SIP/2.0/UDP pc33.example.com:5070;branch=z9hG4bK-bad2"
    data = sip.request("INVITE", URI, via=via, max_forwards="x")
    out = only(wire.deliver(data, ("192.0.2.9", 40000)))
    assert out.status == 400
    assert out.destination == ("192.0.2.9", 5070)
    assert out.msg.top_via.received == "192.0.2.9"


def test_malformed_request_over_tcp_goes_to_source(wire: Any, sip: Any) -> None:
    via = "SIP/2.0/TCP pc33.example.com:5070;branch=z9hG4bK-bad3"
    data = sip.request("INVITE", URI, via=via, cseq_method="BYE")
    out = only(wire.deliver(data, ("192.0.2.9", 40001), "tcp"))
    assert out.status == 400
    assert out.destination == ("192.0.2.9", 40001) and out.transport == "tcp"


@pytest.mark.parametrize("data", [
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\nCSeq: one INVITE\r\n"
    b"Content-Length: 0\r\n\r\n",
    b"SIP/2.0 999 Nope\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKx\r\n\r\n",
    b"SIP/2.0 200 OK\r\n: no name\r\n\r\n",
    b"\x00\x01garbage",
    b"",
])
def test_malformed_responses_and_garbage_are_not_answered(wire: Any, data: bytes,
                                                          endpoint: Endpoint) -> None:
    assert wire.deliver(data) == []
    assert endpoint.stats() == zero_stats(endpoint)


# --------------------------------------------------------------- timers (§17)


def client_request(endpoint: Endpoint, method: str, branch: str) -> Request:
    headers = Headers()
    headers.set("via", endpoint.via("udp", branch))
    headers.set("max-forwards", "70")
    headers.set("from", "<sip:softswitch@127.0.0.1>;tag=ss")
    headers.set("to", "<sip:r1@127.0.0.1:5071>")
    headers.set("call-id", f"{branch}@test")
    headers.set("cseq", f"1 {method}")
    headers.set("contact", "<sip:127.0.0.1:5060>")
    return Request(method, parse_uri("sip:r1@127.0.0.1:5071"), headers)


def test_client_invite_timer_a_and_b(wire: Any, endpoint: Endpoint, tu: RecordingTU) -> None:
    txn = endpoint.send_request(client_request(endpoint, "INVITE", "z9hG4bK-a"), R1, "udp", 0.0)
    sent = wire.take() + wire.run_out()
    assert [s.time for s in sent] == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert len({s.data for s in sent}) == 1 and all(s.destination == R1 for s in sent)
    assert tu.timeouts == [(txn, 32.0)]
    assert endpoint.stats() == zero_stats(endpoint)


def test_client_invite_over_tcp_is_sent_once_and_times_out(
    wire: Any, endpoint: Endpoint, tu: RecordingTU
) -> None:
    txn = endpoint.send_request(client_request(endpoint, "INVITE", "z9hG4bK-tcp"), R1, "tcp", 0.0)
    sent = wire.take() + wire.run_out()
    assert [s.time for s in sent] == [0.0]
    assert tu.timeouts == [(txn, 32.0)]


def test_client_non_invite_timer_e_and_f(wire: Any, endpoint: Endpoint,
                                         tu: RecordingTU) -> None:
    txn = endpoint.send_request(client_request(endpoint, "BYE", "z9hG4bK-e"), R1, "udp", 0.0)
    sent = wire.take() + wire.run_out()
    assert [s.time for s in sent] == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5,
                                      31.5]
    assert tu.timeouts == [(txn, 32.0)]
    assert endpoint.stats() == zero_stats(endpoint)


def test_client_non_invite_proceeding_resets_timer_e_to_t2(
    wire: Any, sip: Any, endpoint: Endpoint, tu: RecordingTU
) -> None:
    request = client_request(endpoint, "BYE", "z9hG4bK-e2")
    endpoint.send_request(request, R1, "udp", 0.0)
    wire.take()
    wire.deliver(sip.response_to(request, 100), R1, at=0.2)
    sent = wire.advance(12.0)
    # E fires at 0.5 (now in Proceeding: next interval T2), then every 4 s.
    assert [s.time for s in sent] == [0.5, 4.5, 8.5]
    wire.deliver(sip.response_to(request, 200, to_tag="r1"), R1, at=12.0)
    assert [r.status for _, r, _ in tu.responses] == [100, 200]
    assert wire.advance(16.99) == []
    assert endpoint.stats()["client_transactions"] == 1
    wire.advance(17.0)  # Timer K = T4 after the final response
    assert endpoint.stats() == zero_stats(endpoint)


def test_client_invite_non2xx_is_acked_and_timer_d(wire: Any, sip: Any, endpoint: Endpoint,
                                                   tu: RecordingTU) -> None:
    request = client_request(endpoint, "INVITE", "z9hG4bK-d")
    endpoint.send_request(request, R1, "udp", 0.0)
    wire.take()
    busy = sip.response_to(request, 486, to_tag="r1")
    ack = only(wire.deliver(busy, R1, at=0.25))
    assert ack.method == "ACK" and ack.destination == R1
    assert ack.msg.top_via.branch == "z9hG4bK-d"  # the INVITE's branch (§17.1.1.3)
    assert ack.msg.to.tag == "r1"
    assert ack.msg.cseq.number == 1
    # A retransmitted 486 gets the same ACK and does not reach the TU again.
    assert only(wire.deliver(busy, R1, at=1.0)).data == ack.data
    assert [r.status for _, r, _ in tu.responses] == [486]
    assert wire.advance(32.24) == []
    assert endpoint.stats()["client_transactions"] == 1
    wire.advance(32.25)  # Timer D = 32 s after the 486
    assert endpoint.stats() == zero_stats(endpoint)


def test_client_invite_2xx_goes_to_tu_with_retransmissions_until_timer_m(
    wire: Any, sip: Any, endpoint: Endpoint, tu: RecordingTU
) -> None:
    request = client_request(endpoint, "INVITE", "z9hG4bK-m")
    endpoint.send_request(request, R1, "udp", 0.0)
    wire.take()
    ok = sip.response_to(request, 200, to_tag="r1", contact="<sip:r1@127.0.0.1:5071>")
    assert wire.deliver(ok, R1, at=0.25) == []  # ACK for 2xx is the TU's job
    assert wire.deliver(ok, R1, at=1.0) == []
    assert [r.status for _, r, _ in tu.responses] == [200, 200]
    assert wire.advance(32.24) == []  # no Timer A retransmission after the 2xx
    assert endpoint.stats()["client_transactions"] == 1
    wire.advance(32.25)  # Timer M = 64*T1
    assert endpoint.stats() == zero_stats(endpoint)


def test_server_invite_non2xx_timer_g_and_h(wire: Any, sip: Any, endpoint: Endpoint,
                                            tu: RecordingTU) -> None:
    tu.auto = 486
    first = only(wire.deliver(sip.request("INVITE", URI, branch="z9hG4bK-g")))
    sent = wire.run_out()
    assert [s.time for s in sent] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert all(s.data == first.data for s in sent)
    assert len(tu.timeouts) == 1 and tu.timeouts[0][1] == 32.0  # Timer H
    assert endpoint.stats() == zero_stats(endpoint)


def test_server_invite_ack_stops_g_then_timer_i(wire: Any, sip: Any, endpoint: Endpoint,
                                                tu: RecordingTU) -> None:
    tu.auto = 486
    invite = sip.request("INVITE", URI, branch="z9hG4bK-i", call_id="i")
    busy = only(wire.deliver(invite))
    assert [s.time for s in wire.advance(1.6)] == [0.5, 1.5]
    ack = sip.request("ACK", URI, branch="z9hG4bK-i", call_id="i", to_tag=busy.msg.to.tag)
    assert wire.deliver(ack, at=2.0) == []
    assert [r.method for r, _, _ in tu.requests] == ["INVITE"]  # ACK for non-2xx absorbed
    assert wire.deliver(ack, at=3.0) == []  # Confirmed absorbs ACK retransmissions
    assert wire.deliver(invite, at=3.5) == []  # Confirmed absorbs INVITEs too
    assert wire.advance(6.99) == []
    assert endpoint.stats()["server_transactions"] == 1
    wire.advance(7.0)  # Timer I = T4 after the ACK
    assert endpoint.stats() == zero_stats(endpoint)
    assert tu.timeouts == []


def test_server_invite_retransmission_in_completed_resends_final(
    wire: Any, sip: Any, tu: RecordingTU
) -> None:
    tu.auto = 486
    invite = sip.request("INVITE", URI, branch="z9hG4bK-c")
    busy = only(wire.deliver(invite))
    assert only(wire.deliver(invite, at=0.3)).data == busy.data
    assert len(tu.requests) == 1


def test_server_invite_2xx_timer_l_and_ack_to_tu(wire: Any, sip: Any, endpoint: Endpoint,
                                                 tu: RecordingTU) -> None:
    tu.auto = 200
    invite = sip.request("INVITE", URI, branch="z9hG4bK-l", call_id="l")
    ok = only(wire.deliver(invite))
    assert ok.status == 200
    assert wire.deliver(invite, at=0.4) == []  # Accepted absorbs the retransmission
    ack = sip.request("ACK", URI, branch="z9hG4bK-l-ack", call_id="l", to_tag=ok.msg.to.tag)
    wire.deliver(ack, at=1.0)
    assert [(r.method, t) for r, t2, t in tu.requests if t2 is None] == [("ACK", 1.0)]
    assert wire.advance(31.99) == []  # the endpoint never retransmits a 2xx itself
    assert endpoint.stats()["server_transactions"] == 1
    wire.advance(32.0)  # Timer L = 64*T1
    assert endpoint.stats() == zero_stats(endpoint)


def test_server_non_invite_timer_j(wire: Any, sip: Any, endpoint: Endpoint) -> None:
    out = only(wire.deliver(sip.request("OPTIONS", URI, branch="z9hG4bK-j")))
    assert out.status == 200
    assert only(wire.deliver(sip.request("OPTIONS", URI, branch="z9hG4bK-j"), at=5.0)).data \
        == out.data
    assert wire.advance(31.99) == []
    assert endpoint.stats()["server_transactions"] == 1
    wire.advance(32.0)  # Timer J = 64*T1
    assert endpoint.stats() == zero_stats(endpoint)


def test_server_non_invite_over_tcp_ends_at_once(wire: Any, sip: Any, endpoint: Endpoint) -> None:
    via = "SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bK-jt"
    out = only(wire.deliver(sip.request("OPTIONS", URI, via=via), ("127.0.0.1", 40000), "tcp"))
    assert out.status == 200
    assert endpoint.next_deadline() == 0.0  # Timer J = 0 on TCP
    wire.advance(0.0)
    assert endpoint.stats() == zero_stats(endpoint)


def test_stats_zero_after_mixed_traffic(wire: Any, sip: Any, endpoint: Endpoint,
                                        tu: RecordingTU) -> None:
    tu.auto = 603
    wire.deliver(sip.request("INVITE", URI))
    wire.deliver(sip.request("OPTIONS", URI))
    wire.deliver(sip.request("REGISTER", URI))
    wire.deliver(sip.request("BYE", URI, to_tag="gone"))
    endpoint.send_request(client_request(endpoint, "INVITE", "z9hG4bK-mix"), R1, "udp", 0.0)
    wire.run_out()
    assert endpoint.stats() == zero_stats(endpoint)


def test_unsupported_version_is_505(wire: Any, sip: Any, tu: RecordingTU) -> None:
    data = sip.request("OPTIONS", URI).replace(b" SIP/2.0\r\n", b" SIP/3.0\r\n", 1)
    out = only(wire.deliver(data))
    assert out.status == 505
    assert out.destination == sip.CALLER
    assert tu.requests == []
