"""Anchored media in the B2BUA on a fake wire and a fake clock (issue #4).

The media engine is replaced by a recorder (``FakeEngine``): the test sees which
streams a call opens, where it aims them (from SDP), what it asks them to play or
send and when, and feeds digits and RTP timeouts back as the real engine would.
The SIP side is the same fake wire as ``test_b2bua.py``, with the lab config:
+1 800 555 0106 dials R4 (dial extension ``12#`` 1 s after answer, whisper 1.0 s of
1000 Hz); 0108 adds the tracking number's whisper (1500 Hz).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from test_b2bua import CALLER, ZERO, Scenario  # type: ignore[import-not-found]

from softswitch.b2bua.service import B2BUA
from softswitch.config import Config, load_config, parse_config
from softswitch.media import audio
from softswitch.media.dtmf import EventPacket, TelephoneEvent
from softswitch.media.streams import DtmfCallback, MediaUnavailable, Remote, SilenceCallback
from softswitch.sip.endpoint import EndpointConfig
from softswitch.sip.sdp import SessionDescription

PROJECT = Path(__file__).resolve().parents[2]
R4 = ("127.0.0.1", 5074)
R1 = ("127.0.0.1", 5071)
EXTENSION = "+18005550106"
TRACKING_WHISPER = "+18005550108"
LOCAL = {"udp": ("127.0.0.1", 5060), "tcp": ("127.0.0.1", 5060)}


class FakeStream:
    def __init__(self, engine: FakeEngine, port: int) -> None:
        self.engine = engine
        self.local = ("127.0.0.1", port)
        self.remote: Remote | None = None
        self.other: FakeStream | None = None
        self.plays: list[tuple[int, float, bool]] = []  # (frames, at, repeat)
        self.playing = False
        self.events: list[tuple[list[EventPacket], float]] = []
        self.timeout: float | None = None
        self.on_dtmf: DtmfCallback | None = None
        self.on_silence: SilenceCallback | None = None
        self.closed = False

    def set_remote(self, remote: Remote) -> None:
        self.remote = remote

    def relay_to(self, other: Any) -> None:
        self.other = other

    def play(self, frames: Sequence[bytes], at: float, repeat: bool = False) -> float:
        self.plays.append((len(frames), at, repeat))
        self.playing = True
        return at + (len(frames) - 1) * 0.02

    def stop_playing(self) -> None:
        self.playing = False

    def send_events(self, packets: Sequence[EventPacket], at: float) -> None:
        self.events.append((list(packets), at))

    def watch(self, timeout: float) -> None:
        self.timeout = timeout

    def listen(self, on_dtmf: DtmfCallback | None, on_silence: SilenceCallback | None) -> None:
        self.on_dtmf = on_dtmf
        self.on_silence = on_silence

    def close(self) -> None:
        self.closed = True
        self.playing = False


class FakeEngine:
    host = "127.0.0.1"

    def __init__(self, ports: int = 100) -> None:
        self.streams: list[FakeStream] = []
        self.ports = ports

    def stats(self) -> dict[str, int]:
        return {"rtp_streams": sum(not s.closed for s in self.streams)}

    def open(self) -> FakeStream:
        if len(self.streams) >= self.ports:
            raise MediaUnavailable("no free RTP port pair")
        stream = FakeStream(self, 20000 + 2 * len(self.streams))
        self.streams.append(stream)
        return stream


def r4_sdp(port: int = 8000, events: bool = True, direction: str | None = None) -> bytes:
    formats = "0 101" if events else "0"
    lines = [
        "v=0", "o=r4 5 5 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
        f"m=audio {port} RTP/AVP {formats}", "a=rtpmap:0 PCMU/8000",
    ]
    if events:
        lines += ["a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-16"]
    if direction:
        lines.append(f"a={direction}")
    return ("\r\n".join(lines) + "\r\n").encode()


CALLER_SDP = (
    b"v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 6000 RTP/AVP 18 0 8 101\r\na=rtpmap:18 G729/8000\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
)


def scenario_factory(lab_config: Config, sip: Any) -> Any:
    """make(number, config, engine) -> (Scenario, FakeEngine): a B2BUA with fake media."""

    def make(number: str = EXTENSION, config: Config | None = None,
             engine: FakeEngine | None = None) -> tuple[Scenario, FakeEngine]:
        engine = engine or FakeEngine()
        b2bua = B2BUA(config or lab_config, EndpointConfig(local=dict(LOCAL)), media=engine)
        from conftest import Wire  # type: ignore[import-not-found]

        s = Scenario(b2bua, Wire(b2bua.endpoint), sip, number)
        s.offer = CALLER_SDP
        return s, engine

    return make


@pytest.fixture
def media_scenario(lab_config: Config, sip: Any) -> Any:
    return scenario_factory(lab_config, sip)


def answer_r4(s: Scenario, at: float, body: bytes | None = None, status: int = 200) -> list[Any]:
    leg = s.leg(R4)
    host, port = leg.destination
    data = s.sip.response_to(leg.msg, status, to_tag="r4-tag", contact=f"<sip:r4@{host}:{port}>",
                             body=r4_sdp() if body is None else body)
    return s.wire.deliver(data, R4, at=at)


def ok_to_caller(s: Scenario) -> list[Any]:
    return [x for x in s.to_caller() if x.status == 200 and x.msg.cseq.method == "INVITE"]


def finish(s: Scenario, engine: FakeEngine) -> None:
    s.wire.run_out()
    assert s.b2bua.stats() == ZERO
    assert all(stream.closed for stream in engine.streams), "an RTP port was not given back"


# ---------------------------------------------------------------- 0106: extension + whisper


def test_extension_then_whisper_then_bridge(media_scenario: Any) -> None:
    s, engine = media_scenario()
    s.invite(0.0)
    invite = s.leg(R4).msg
    offer = SessionDescription.parse(invite.body)
    audio_section = offer.audio
    assert audio_section is not None
    # Anchored: softswitch's address and port, the caller's G.711 and events only.
    assert offer.address_of(audio_section) == "127.0.0.1"
    assert audio_section.port == 20000
    assert [c.name for c in audio_section.codecs] == ["PCMU", "PCMA", "telephone-event"]
    assert [c.payload_type for c in audio_section.codecs] == [0, 8, 101]
    s.answer(s.leg(R4), 180, 0.1)
    assert s.caller_statuses() == [100, 180]

    sent = answer_r4(s, 2.0)
    assert [x.method for x in sent if x.destination == R4] == ["ACK"]
    assert not ok_to_caller(s), "the caller is connected only after the whisper"
    leg_stream = engine.streams[0]
    assert leg_stream.remote == Remote("127.0.0.1", 8000, 8001, True, "PCMU", 0, 101)

    # (1) The extension 12# is handed to the stream at answer + 1 s, as RFC 4733 events.
    packets, at = leg_stream.events[0]
    assert at == pytest.approx(3.0)
    digits = [TelephoneEvent.parse(p.payload).digit for p in packets if p.marker]
    assert digits == ["1", "2", "#"]
    # (2) Whisper once the digits (0.6 s with their gaps) are done.
    s.wire.advance(3.59)
    assert leg_stream.plays == []
    s.wire.advance(3.61)
    whisper = audio.frames(PROJECT / "conf/audio/lab-whisper.wav", "PCMU")
    assert leg_stream.plays == [(len(whisper), pytest.approx(3.6), False)]
    end = 3.6 + (len(whisper) - 1) * 0.02 + 0.02
    s.wire.advance(end - 0.005)
    assert not ok_to_caller(s)
    # (3) No screening: (4) bridge.  The caller's 200 carries softswitch's SDP.
    s.wire.advance(end + 0.001)
    oks = ok_to_caller(s)
    assert len(oks) == 1
    answer = SessionDescription.parse(oks[0].msg.body)
    caller_stream = engine.streams[1]
    assert answer.audio is not None and answer.audio.port == caller_stream.local[1] == 20002
    assert [c.name for c in answer.audio.codecs] == ["PCMU", "telephone-event"]
    assert caller_stream.remote is not None and caller_stream.remote.port == 6000
    assert caller_stream.other is leg_stream and leg_stream.other is caller_stream
    assert caller_stream.timeout == leg_stream.timeout == 60.0

    s.ack_2xx(oks[0], end + 0.1)
    bye = s.caller_request("BYE", 20.0, oks[0].msg.to.tag)
    s.answer([x for x in bye if x.method == "BYE"][0], 200, 20.1)
    assert s.b2bua.calls == {}
    finish(s, engine)


def test_extension_by_sip_info_when_r4_offers_no_telephone_event(media_scenario: Any) -> None:
    s, engine = media_scenario()
    s.invite(0.0)
    answer_r4(s, 1.0, r4_sdp(events=False))
    assert engine.streams[0].events == []
    infos: list[Any] = []
    for t in (2.0, 2.2, 2.4):
        sent = s.wire.advance(t + 0.001)
        infos += [x for x in sent if x.method == "INFO" and x.destination == R4]
        for info in infos[-1:]:
            s.answer(info, 200, t + 0.01)
    assert [x.msg.body for x in infos] == [
        b"Signal=1\r\nDuration=100\r\n", b"Signal=2\r\nDuration=100\r\n",
        b"Signal=#\r\nDuration=100\r\n",
    ]
    assert all(x.msg.headers.get("content-type") == "application/dtmf-relay" for x in infos)
    s.wire.advance(4.0)
    s.cancel(4.1)
    finish(s, engine)


def test_tracking_whisper_replaces_the_receiving_numbers(media_scenario: Any) -> None:
    s, engine = media_scenario(TRACKING_WHISPER)
    s.invite(0.0)
    answer_r4(s, 1.0)
    s.wire.advance(2.7)
    tracking = audio.frames(PROJECT / "conf/audio/lab-tracking-whisper.wav", "PCMU")
    assert engine.streams[0].plays == [(len(tracking), pytest.approx(2.6), False)]
    s.cancel(2.8)
    finish(s, engine)


# ---------------------------------------------------------------- hangups at every step


def test_caller_cancel_during_the_whisper_byes_r4(media_scenario: Any) -> None:
    s, engine = media_scenario()
    s.invite(0.0)
    answer_r4(s, 1.0)
    s.wire.advance(2.8)  # whisper playing
    sent = s.cancel(3.0)
    assert 487 in s.caller_statuses(sent)
    byes = [x for x in sent if x.method == "BYE" and x.destination == R4]
    assert len(byes) == 1
    assert not engine.streams[0].playing
    s.answer(byes[0], 200, 3.1)
    assert not ok_to_caller(s)
    finish(s, engine)


def test_r4_hangs_up_during_the_extension_the_caller_gets_a_final_answer(
    media_scenario: Any,
) -> None:
    s, engine = media_scenario()
    s.invite(0.0)
    answer_r4(s, 1.0)
    leg = s.leg(R4).msg
    data = s.sip.request("BYE", "sip:127.0.0.1:5060", source=R4, call_id=leg.call_id,
                         from_uri=str(leg.to.uri), from_tag="r4-tag", to_uri=str(leg.from_.uri),
                         to_tag=leg.from_.tag, cseq=2)
    sent = s.wire.deliver(data, R4, at=1.5)
    assert [x.status for x in sent if x.destination == R4] == [200]
    assert s.caller_statuses(sent) == [480]
    s.ack_non2xx([x for x in sent if x.status == 480][0], 1.6)
    assert engine.streams[0].closed, "its stream (and the events scheduled on it) is gone"
    s.wire.advance(10.0)
    assert engine.streams[0].plays == [], "no whisper for a leg that hung up"
    finish(s, engine)


def test_rtp_timeout_ends_a_bridged_call(media_scenario: Any) -> None:
    s, engine = media_scenario()
    s.invite(0.0)
    answer_r4(s, 1.0)
    s.wire.advance(4.0)
    ok = ok_to_caller(s)[0]
    s.ack_2xx(ok, 4.1)
    callback = engine.streams[1].on_silence
    assert callback is not None
    callback(70.0)
    sent = s.wire.take()
    byes = [x for x in sent if x.method == "BYE"]
    assert sorted(x.destination for x in byes) == [CALLER, R4]
    for bye in byes:
        s.answer(bye, 200, 70.1, to=bye.destination) if bye.destination == R4 else None
    finish(s, engine)


# ---------------------------------------------------------------- screening


SCREENED = """
trunks: [{name: lab, networks: ["127.0.0.0/8"]}]
receiving_numbers:
  R4:
    number: "+1 415 555 0104"
    uri: "sip:+14155550104@127.0.0.1:5074"
    whisper: conf/audio/lab-whisper.wav
    screening: {key: "1", timeout: 5}
  R1: {number: "+1 415 555 0101", uri: "sip:+14155550101@127.0.0.1:5071"}
tracking_numbers:
  "+1 800 555 0106": {route: {dial: [R4, R1], pattern: sequential}}
"""


@pytest.fixture
def screened() -> Config:
    return parse_config(SCREENED, "screened.yaml", PROJECT / "conf")


def test_screening_no_key_moves_on_to_the_next_number(media_scenario: Any, screened: Config
                                                      ) -> None:
    s, engine = media_scenario(config=screened)
    s.invite(0.0)
    answer_r4(s, 1.0)
    stream = engine.streams[0]
    assert stream.on_dtmf is not None, "a key pressed during the whisper counts"
    whisper_end = 1.0 + len(audio.frames(PROJECT / "conf/audio/lab-whisper.wav", "PCMU")) * 0.02
    s.wire.advance(whisper_end + 4.9)
    assert s.invites_to(R1) == []
    sent = s.wire.advance(whisper_end + 5.1)
    assert [x.destination for x in sent if x.method == "BYE"] == [R4]
    assert [x.destination for x in sent if x.method == "INVITE"] == [R1]
    s.cancel(whisper_end + 6)
    finish(s, engine)


@pytest.mark.parametrize("how", ["rtp", "info"])
def test_screening_key_1_connects(media_scenario: Any, screened: Config, how: str) -> None:
    s, engine = media_scenario(config=screened)
    s.invite(0.0)
    answer_r4(s, 1.0)
    s.wire.advance(2.5)
    if how == "rtp":
        callback = engine.streams[0].on_dtmf
        assert callback is not None
        callback("1", 2.5)
        s.wire.take()  # what the engine's after_event flush would send
    else:
        leg = s.leg(R4).msg
        data = s.sip.request("INFO", "sip:127.0.0.1:5060", source=R4, call_id=leg.call_id,
                             from_uri=str(leg.to.uri), from_tag="r4-tag",
                             to_uri=str(leg.from_.uri), to_tag=leg.from_.tag, cseq=2,
                             body=b"Signal=1\r\nDuration=160\r\n",
                             content_type="application/dtmf-relay")
        sent = s.wire.deliver(data, R4, at=2.5)
        assert [x.status for x in sent if x.destination == R4] == [200]
    assert len(ok_to_caller(s)) == 1
    assert s.invites_to(R1) == []
    s.ack_2xx(ok_to_caller(s)[0], 2.6)
    s.b2bua.hangup_all(3.0, "test")
    for bye in [x for x in s.wire.take() if x.method == "BYE"]:
        if bye.destination == R4:
            s.answer(bye, 200, 3.1)
    finish(s, engine)


def test_screening_wrong_key_is_no_answer(media_scenario: Any, screened: Config) -> None:
    s, engine = media_scenario(config=screened)
    s.invite(0.0)
    answer_r4(s, 1.0)
    callback = engine.streams[0].on_dtmf
    assert callback is not None
    callback("2", 1.5)
    sent = s.wire.take()
    assert [x.destination for x in sent if x.method == "BYE"] == [R4]
    assert [x.destination for x in sent if x.method == "INVITE"] == [R1]
    assert not ok_to_caller(s)
    s.cancel(2.0)
    finish(s, engine)


# ---------------------------------------------------------------- relay mode and SDP


def relay_config(lab: Path = PROJECT / "conf" / "lab.yaml") -> Config:
    text = lab.read_text().replace("  mode: direct", "  mode: relay")
    return parse_config(text, "lab.yaml", PROJECT / "conf")


def test_relay_mode_anchors_a_plain_call_and_rewrites_a_hold(media_scenario: Any) -> None:
    s, engine = media_scenario("+18005550100", relay_config())
    s.invite(0.0)
    leg = s.leg(R1)
    assert SessionDescription.parse(leg.msg.body).audio.port == 20000  # type: ignore[union-attr]
    s.answer(leg, 200, 1.0, sdp_port=7000)
    ok = ok_to_caller(s)[0]
    assert SessionDescription.parse(ok.msg.body).audio.port == 20002  # type: ignore[union-attr]
    s.ack_2xx(ok, 1.1)
    hold = CALLER_SDP.replace(b"o=caller 1 1", b"o=caller 1 2") + b"a=sendonly\r\n"
    sent = s.caller_request("INVITE", 5.0, ok.msg.to.tag, body=hold)
    reinvite = [x for x in sent if x.method == "INVITE" and x.destination == R1][0]
    relayed = SessionDescription.parse(reinvite.msg.body)
    assert relayed.audio is not None and relayed.audio.port == 20000
    assert relayed.audio.direction(relayed) == "sendonly"
    assert relayed.origin.version == 2  # a new SDP toward R1: o= version + 1
    assert engine.streams[1].remote is not None and engine.streams[1].remote.sending
    s.caller_request("BYE", 6.0, ok.msg.to.tag)
    s.wire.run_out()
    assert all(stream.closed for stream in engine.streams)


def test_late_offer_softswitch_offers_and_takes_the_answer_from_the_ack(
    media_scenario: Any,
) -> None:
    s, engine = media_scenario()
    s.offer = b""
    s.invite(0.0)
    offer = SessionDescription.parse(s.leg(R4).msg.body)
    assert offer.audio is not None
    assert [c.name for c in offer.audio.codecs] == ["PCMU", "PCMA", "telephone-event"]
    answer_r4(s, 1.0)
    s.wire.advance(4.0)
    ok = ok_to_caller(s)[0]
    ours = SessionDescription.parse(ok.msg.body)
    assert ours.audio is not None and ours.audio.port == 20002
    ack_answer = r4_sdp(port=6100).replace(b"o=r4", b"o=caller")
    s.caller_request("ACK", 4.1, ok.msg.to.tag, cseq=1, uri=str(ok.msg.contacts[0].uri),
                     body=ack_answer)
    remote = engine.streams[1].remote
    assert remote is not None and remote.port == 6100
    s.cancel(4.2)
    s.b2bua.hangup_all(5.0, "test")
    for bye in [x for x in s.wire.take() if x.method == "BYE" and x.destination == R4]:
        s.answer(bye, 200, 5.1)
    finish(s, engine)


def test_no_free_rtp_port_turns_to_the_fail_safe_or_503(media_scenario: Any) -> None:
    s, engine = media_scenario(engine=FakeEngine(ports=0))
    sent = s.invite(0.0)
    assert s.invites_to(R4) == []
    assert s.caller_statuses(sent) == [100, 503]
    finish(s, engine)


def test_lab_config_media_section(lab_config: Config) -> None:
    assert lab_config.media.ports == (20000, 29999)
    assert lab_config.media.mode == "direct"
    loaded = load_config(PROJECT / "conf" / "lab.yaml")
    assert loaded.receiving_numbers["R4"].dial_extension is not None
