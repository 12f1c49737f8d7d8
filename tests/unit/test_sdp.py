"""SDP parsing, serialising and the offer/answer helpers (softswitch.sip.sdp).

Data: the bodies in ``tests/data/sdp`` (see its README.txt: SIPp and baresip bodies
captured on loopback, carrier, PBX and phone bodies written in their style, and the
examples of RFC 4566), and small inline bodies for the errors.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from softswitch.sip.errors import SipError
from softswitch.sip.sdp import (
    ANCHORABLE,
    Codec,
    Media,
    NotAcceptable,
    Origin,
    SdpError,
    SessionDescription,
    anchored,
    answer_codecs,
    default_offer,
    restrict,
    with_direction,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "sdp"
FILES = sorted(p.name for p in DATA.glob("*.sdp"))

ORIGIN = Origin("softswitch", "42", 42, "IN", "IP4", "192.0.2.1")


def data_file(name: str) -> bytes:
    return (DATA / name).read_bytes()


def sdp(name: str) -> SessionDescription:
    return SessionDescription.parse(data_file(name))


def body(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


def audio_of(sd: SessionDescription) -> Media:
    audio = sd.audio
    assert audio is not None
    return audio


# SIPp's offer, the smallest complete body, for edits in the error tests.
SIPP = [
    "v=0",
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1",
    "s=-",
    "c=IN IP4 127.0.0.1",
    "t=0 0",
    "m=audio 6004 RTP/AVP 0",
    "a=rtpmap:0 PCMU/8000",
]


def edited(index: int, line: str | None, lines: list[str] = SIPP) -> bytes:
    """SIPp's offer with line ``index`` (0-based) replaced, or removed when None."""
    out = list(lines)
    if line is None:
        del out[index]
    else:
        out[index] = line
    return body(*out)


# --------------------------------------------------------------------------- round trips


def test_enough_captured_bodies() -> None:
    assert len(FILES) >= 8
    assert {"sipp_uac_pcmu.sdp", "sipp_uas_answer.sdp", "baresip_offer.sdp"} <= set(FILES)


def test_every_data_file_has_its_provenance() -> None:
    readme = (DATA / "README.txt").read_text()
    assert [name for name in FILES if name not in readme] == []


@pytest.mark.parametrize("name", FILES)
def test_round_trip_is_byte_exact(name: str) -> None:
    data = data_file(name)
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    assert bytes(SessionDescription.parse(data)) == data


@pytest.mark.parametrize("name", FILES)
def test_lf_line_ends_and_trailing_blank_lines_are_accepted(name: str) -> None:
    data = data_file(name)
    assert bytes(SessionDescription.parse(data.replace(b"\r\n", b"\n"))) == data
    assert bytes(SessionDescription.parse(data + b"\r\n")) == data
    assert bytes(SessionDescription.parse(data.removesuffix(b"\r\n"))) == data


@pytest.mark.parametrize("name", FILES)
def test_every_truncation_parses_or_raises_sdp_error(name: str) -> None:
    # Whatever arrives, the parser answers with a value or an SdpError, never a crash.
    data = data_file(name)
    for end in range(len(data)):
        try:
            SessionDescription.parse(data[:end])
        except SdpError:
            pass


def test_sipp_offer_fields() -> None:
    sd = sdp("sipp_uac_pcmu.sdp")
    assert sd.origin == Origin("user1", "53655765", 2353687637, "IN", "IP4", "127.0.0.1")
    assert sd.session_name == "-"
    assert sd.connection == "127.0.0.1"
    assert sd.timing == [("t", "0 0")]
    assert sd.attributes == []
    assert sd.media == [
        Media("audio", 6004, "RTP/AVP", ["0"], None, [("rtpmap", "0 PCMU/8000")], [])
    ]


def test_baresip_attributes_in_order_with_property_attributes() -> None:
    sd = sdp("baresip_offer.sdp")
    assert sd.attributes == [("tool", "baresip 1.0.0")]
    audio = audio_of(sd)
    names = [name for name, _ in audio.attributes]
    assert names[:8] == ["rtpmap"] * 4 + ["fmtp", "rtpmap", "fmtp", "sendrecv"]
    assert ("sendrecv", None) in audio.attributes
    assert ("rtcp-rsize", None) in audio.attributes
    assert audio.attribute("label") == "1"
    assert audio.attribute("sendrecv") is None


def test_rfc4566_example_keeps_its_other_lines() -> None:
    sd = sdp("rfc4566_example.sdp")
    assert sd.other_lines == [
        ("i", "A Seminar on the session description protocol"),
        ("u", "http://www.example.com/seminars/sdp.pdf"),
        ("e", "j.doe@example.com (Jane Doe)"),
    ]
    assert sd.connection == "224.2.17.12/127"
    assert sd.timing == [("t", "2873397496 2873404696")]


def test_repeat_zone_key_and_port_count() -> None:
    sd = sdp("rfc4566_repeat_zone_key.sdp")
    assert sd.timing == [
        ("t", "3034423619 3042462419"),
        ("r", "604800 3600 0 90000"),
        ("r", "7d 1h 0 25h"),
    ]
    assert sd.other_lines == [
        ("p", "+1 617 555-6011"),
        ("z", "2882844526 -1h 2898848070 0"),
        ("k", "prompt"),
    ]
    assert sd.media[0].other_lines == [("i", "Audio of the seminar"), ("k", "clear:secret")]
    assert (sd.media[1].port, sd.media[1].port_count) == (49170, 2)


def test_out_of_order_lines_are_written_in_rfc_order() -> None:
    data = body(
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "a=sendrecv",
        "b=AS:64",
        "t=0 0",
        "c=IN IP4 192.0.2.1",
        "m=audio 4000 RTP/AVP 0",
        "a=ptime:20",
        "b=AS:64",
        "c=IN IP4 192.0.2.2",
    )
    ordered = body(
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "b=AS:64",
        "t=0 0",
        "a=sendrecv",
        "m=audio 4000 RTP/AVP 0",
        "c=IN IP4 192.0.2.2",
        "b=AS:64",
        "a=ptime:20",
    )
    assert bytes(SessionDescription.parse(data)) == ordered


def test_trailing_white_space_is_kept_and_tolerated() -> None:
    data = body(*SIPP[:5], "m=audio 6004 RTP/AVP 0 ", "a=rtpmap:0 PCMU/8000 ", "a=rtcp:6005 ")
    audio = audio_of(SessionDescription.parse(data))
    assert (audio.codecs, audio.rtcp_port) == ([Codec(0, "PCMU", 8000)], 6005)
    assert audio.attributes[0] == ("rtpmap", "0 PCMU/8000 ")


def test_empty_attribute_value_is_not_a_property() -> None:
    data = edited(6, "a=label:")
    assert audio_of(SessionDescription.parse(data)).attributes == [("label", "")]
    assert bytes(SessionDescription.parse(data)) == data


# --------------------------------------------------------------------------- errors

ERRORS = {
    "empty": (b"", "empty body"),
    "garbage": (b"hello world\r\n", "line 1 'hello world': expected v=0, this is not an SDP"),
    "sip message": (
        b"INVITE sip:bob@example.com SIP/2.0\r\n\r\n",
        "line 1 'INVITE sip:bob@example.com SIP/2.0': expected v=0",
    ),
    "no v=": (edited(0, None), "line 1 'o=user1"),
    "v=1": (edited(0, "v=1"), "unsupported SDP version"),
    "no o=": (edited(1, None), "line 2 's=-': expected o= (the origin)"),
    "o= short": (edited(1, "o=user1 1 IN IP4 127.0.0.1"), "line 2 'o=user1 1 IN IP4"),
    "o= version": (edited(1, "o=- 1 two IN IP4 127.0.0.1"), "numeric id and version"),
    "no s=": (edited(2, None), "line 3 'c=IN IP4 127.0.0.1': expected s= (the session name)"),
    "only v=": (b"v=0\r\n", "the body ends before o="),
    "no t=": (edited(4, None), "no t= line before line 5 'm=audio 6004"),
    "t= words": (edited(4, "t=now later"), "line 5 't=now later': expected t=<start"),
    "second s=": (edited(4, "s=again", SIPP + ["t=0 0"]), "line 5 's=again': a second s="),
    "r= alone": (edited(3, "r=7d 1h 0 25h"), "line 4 'r=7d 1h 0 25h': r= must follow"),
    "no '='": (edited(4, "t 0 0"), "line 5 is 't 0 0', expected <type>=<value>"),
    "blank line": (edited(5, ""), "line 6 is an empty line"),
    "unknown type": (edited(4, "x=1", SIPP + ["t=0 0"]), "line 5 'x=1': unknown type 'x'"),
    "upper case type": (edited(2, "S=-"), "line 3 'S=-': unknown type 'S'"),
    "m= port too big": (edited(5, "m=audio 70000 RTP/AVP 0"), "line 6 'm=audio 70000"),
    "m= port text": (edited(5, "m=audio six RTP/AVP 0"), "bad port 'six'"),
    "m= port negative": (edited(5, "m=audio -1 RTP/AVP 0"), "bad port '-1'"),
    "m= no formats": (edited(5, "m=audio 6004 RTP/AVP"), "line 6 'm=audio 6004 RTP/AVP':"),
    "c= nettype": (edited(3, "c=ATM NSAP 127.0.0.1"), "line 4 'c=ATM NSAP 127.0.0.1'"),
    "c= family": (edited(3, "c=IN IP4 2001:db8::1"), "'2001:db8::1' is not an IP4 address"),
    "c= twice": (edited(4, "c=IN IP4 127.0.0.2", SIPP[:4] + SIPP[3:]), "a second c="),
    "no c=": (edited(3, None), "m=audio 6004 has no c= line and the session has none"),
    "u= in media": (
        edited(6, "u=http://example.com/"),
        "line 7 'u=http://example.com/': u= is not allowed in a media section",
    ),
    "rtpmap": (edited(6, "a=rtpmap:0 PCMU"), "line 7 'a=rtpmap:0 PCMU': expected a=rtpmap"),
    "rtpmap pt": (edited(6, "a=rtpmap:300 PCMU/8000"), "line 7 'a=rtpmap:300"),
    "fmtp": (edited(6, "a=fmtp:"), "line 7 'a=fmtp:': expected a=fmtp"),
    "ptime": (edited(6, "a=ptime:twenty"), "line 7 'a=ptime:twenty': expected a=ptime"),
    "maxptime": (edited(6, "a=maxptime:0"), "expected a=maxptime:<milliseconds>"),
    "rtcp": (edited(6, "a=rtcp:99999"), "line 7 'a=rtcp:99999': expected a=rtcp"),
    "attribute name": (edited(6, "a=:x"), "line 7 'a=:x': expected a=<name>"),
    "non UTF-8": (b"v=0\r\ns=caf\xe9\r\n", "not UTF-8 text (byte 10)"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_parse_errors_name_the_line(case: str) -> None:
    data, message = ERRORS[case]
    with pytest.raises(SdpError) as info:
        SessionDescription.parse(data)
    assert message in str(info.value)
    assert isinstance(info.value, SipError)
    assert (info.value.status_code, info.value.reason) == (400, "Bad SDP")
    assert not isinstance(info.value, NotAcceptable)


def test_non_utf8_is_an_sdp_error_not_a_unicode_error() -> None:
    data = edited(2, "s=session").replace(b"session", b"\xff\xfe")
    with pytest.raises(SdpError) as info:
        SessionDescription.parse(data)
    assert not isinstance(info.value, UnicodeDecodeError)
    assert info.value.__cause__ is None
    assert info.value.detail == "not UTF-8 text (byte 53)"


def test_a_rejected_stream_needs_no_connection() -> None:
    # RFC 4566 §5.7 asks a c= of every stream in use; port 0 is not in use.
    data = body(*SIPP[:3], *SIPP[4:6], "c=IN IP4 127.0.0.1", "m=video 0 RTP/AVP 31")
    sd = SessionDescription.parse(data)
    assert [sd.address_of(m) for m in sd.media] == ["127.0.0.1", None]


# --------------------------------------------------------------------------- codecs


def test_static_payload_types_without_rtpmap() -> None:
    example = sdp("rfc4566_example.sdp")
    assert example.media[0].codecs == [Codec(0, "PCMU", 8000)]
    assert sdp("rfc4566_repeat_zone_key.sdp").media[1].codecs == [Codec(31, "H261", 90000)]
    data = edited(5, "m=audio 6004 RTP/AVP 8 3 9 18 13", SIPP[:6])
    assert audio_of(SessionDescription.parse(data)).codecs == [
        Codec(8, "PCMA", 8000),
        Codec(3, "GSM", 8000),
        Codec(9, "G722", 8000),
        Codec(18, "G729", 8000),
        Codec(13, "CN", 8000),
    ]


def test_dynamic_payload_types_from_rtpmap_and_fmtp() -> None:
    codecs = audio_of(sdp("baresip_offer.sdp")).codecs
    assert codecs == [
        Codec(0, "PCMU", 8000),
        Codec(8, "PCMA", 8000),
        Codec(9, "G722", 8000),
        Codec(96, "opus", 48000, 2, "stereo=1;sprop-stereo=1;maxaveragebitrate=28000"),
        Codec(101, "telephone-event", 8000, None, "0-15"),
    ]
    cisco = audio_of(sdp("cisco_cube_g729_offer.sdp")).codecs
    assert cisco[0] == Codec(18, "G729", 8000, None, "annexb=no")


def test_rtpmap_overrides_the_static_table() -> None:
    data = edited(6, "a=rtpmap:0 L16/16000", SIPP)
    assert audio_of(SessionDescription.parse(data)).codecs == [Codec(0, "L16", 16000)]


def test_formats_that_name_no_codec_are_left_out() -> None:
    # A dynamic type without rtpmap names nothing; t38 is not a payload type.
    data = edited(5, "m=audio 6004 RTP/AVP 0 97", SIPP)
    assert [c.payload_type for c in audio_of(SessionDescription.parse(data)).codecs] == [0]
    fax = SessionDescription.parse(edited(5, "m=image 6004 udptl t38", SIPP[:6]))
    assert fax.media[0].codecs == []
    assert fax.media[0].formats == ["t38"]


def test_ptime_maxptime_and_rtcp_port() -> None:
    twilio = audio_of(sdp("carrier_twilio_offer.sdp"))
    assert (twilio.ptime, twilio.maxptime, twilio.rtcp_port) == (20, 150, None)
    freeswitch = audio_of(sdp("freeswitch_answer.sdp"))
    assert (freeswitch.ptime, freeswitch.maxptime, freeswitch.rtcp_port) == (20, None, 24681)
    assert audio_of(sdp("linphone_offer_ipv6.sdp")).rtcp_port == 7079
    assert audio_of(sdp("sipp_uac_pcmu.sdp")).ptime is None
    fractional = SessionDescription.parse(edited(6, "a=ptime:30.0"))
    assert audio_of(fractional).ptime == 30


# --------------------------------------------------------------------------- session views


def test_audio_is_the_first_audio_stream_in_use() -> None:
    freeswitch = sdp("freeswitch_answer.sdp")
    assert freeswitch.audio is freeswitch.media[0]
    data = body(*SIPP[:5], "m=audio 0 RTP/AVP 0", "m=video 5000 RTP/AVP 31", *SIPP[5:])
    sd = SessionDescription.parse(data)
    assert sd.audio is sd.media[2]
    assert SessionDescription.parse(body(*SIPP[:5], "m=video 5000 RTP/AVP 31")).audio is None


def test_address_of_prefers_the_media_connection() -> None:
    bandwidth = sdp("carrier_bandwidth_answer.sdp")
    assert bandwidth.connection is None
    assert bandwidth.address_of(audio_of(bandwidth)) == "203.0.113.72"
    twilio = sdp("carrier_twilio_offer.sdp")
    assert twilio.address_of(audio_of(twilio)) == "198.51.100.17"
    data = edited(6, "c=IN IP4 192.0.2.99", SIPP)
    sd = SessionDescription.parse(data)
    assert (sd.connection, sd.address_of(audio_of(sd))) == ("127.0.0.1", "192.0.2.99")
    ipv6 = sdp("baresip_offer_ipv6.sdp")
    assert ipv6.address_of(audio_of(ipv6)) == "fd00::2"


def test_direction_media_level_over_session_level() -> None:
    example = sdp("rfc4566_example.sdp")  # a=recvonly at session level only
    assert [m.direction(example) for m in example.media] == ["recvonly", "recvonly"]
    assert example.media[0].direction(None) == "sendrecv"
    assert with_direction(example.media[0], "sendonly").direction(example) == "sendonly"
    polycom = sdp("polycom_hold_sendonly.sdp")
    assert audio_of(polycom).direction(polycom) == "sendonly"
    freeswitch = sdp("freeswitch_reinvite_inactive.sdp")
    assert audio_of(freeswitch).direction(freeswitch) == "inactive"
    sipp = sdp("sipp_uac_pcmu.sdp")
    assert audio_of(sipp).direction(sipp) == "sendrecv"


def test_with_direction_replaces_in_place_and_copies() -> None:
    sd = sdp("baresip_offer.sdp")
    audio = audio_of(sd)
    held = with_direction(audio, "sendonly")
    assert held.attributes[7] == ("sendonly", None)
    assert [a for a in held.attributes if a[0] != "sendonly"] == [
        a for a in audio.attributes if a[0] != "sendrecv"
    ]
    assert audio.attributes[7] == ("sendrecv", None)  # the original is untouched
    directions = [("sendonly", None), ("ptime", "20"), ("inactive", None)]
    several = Media("audio", 1, "RTP/AVP", ["0"], None, directions)
    assert with_direction(several, "recvonly").attributes == [("recvonly", None), ("ptime", "20")]
    sipp = audio_of(sdp("sipp_uac_pcmu.sdp"))
    assert with_direction(sipp, "inactive").attributes[-1] == ("inactive", None)
    with pytest.raises(ValueError, match="hold"):
        with_direction(sipp, "hold")


# --------------------------------------------------------------------------- restrict


def test_restrict_keeps_anchorable_codecs_in_offer_order() -> None:
    sd = sdp("baresip_offer.sdp")
    audio = audio_of(sd)
    before = bytes(sd)
    kept = restrict(audio)
    assert [c.name for c in kept.codecs] == ["PCMU", "PCMA", "telephone-event"]
    assert kept.formats == ["0", "8", "101"]
    assert ("rtpmap", "96 opus/48000/2") not in kept.attributes
    assert ("rtpmap", "9 G722/8000") not in kept.attributes
    assert [value for name, value in kept.attributes if name == "fmtp"] == ["101 0-15"]
    assert kept.ptime == 20 and ("sendrecv", None) in kept.attributes
    assert bytes(sd) == before  # a copy: the offer is untouched


def test_restrict_follows_the_offer_order_not_the_names() -> None:
    polycom = audio_of(sdp("polycom_hold_sendonly.sdp"))  # 9 0 8 101
    assert restrict(polycom, ("telephone-event", "PCMA", "pcmu")).formats == ["0", "8", "101"]
    assert ANCHORABLE == ("PCMU", "PCMA", "telephone-event")


def test_restrict_drops_feedback_of_removed_formats() -> None:
    video = sdp("linphone_offer_ipv6.sdp").media[1]
    vp8 = restrict(video, ("VP8",))
    assert [a for a in vp8.attributes if a[0] == "rtcp-fb"] == [
        ("rtcp-fb", "* trr-int 1000"),
        ("rtcp-fb", "96 nack pli"),
        ("rtcp-fb", "96 ccm fir"),
    ]
    assert ("fmtp", "97 profile-level-id=42801F") not in vp8.attributes


def test_restrict_keeps_every_telephone_event_rate() -> None:
    audio = audio_of(sdp("linphone_offer_ipv6.sdp"))
    assert restrict(audio).formats == ["0", "8", "101", "99", "100"]


def test_g729_only_offer_is_not_acceptable() -> None:
    audio = audio_of(sdp("cisco_cube_g729_offer.sdp"))
    with pytest.raises(NotAcceptable) as info:
        restrict(audio)
    assert (info.value.status_code, info.value.reason) == (488, "Not Acceptable Here")
    assert info.value.warn_code == 305
    assert "G729" in str(info.value)
    assert isinstance(info.value, SdpError)


def test_telephone_event_alone_is_not_acceptable() -> None:
    audio = audio_of(sdp("carrier_twilio_offer.sdp"))
    with pytest.raises(NotAcceptable):
        restrict(audio, ("telephone-event",))


# --------------------------------------------------------------------------- anchored

HERE = Origin("softswitch", "7", 8, "IN", "IP4", "203.0.113.5")


def test_anchored_rewrites_both_levels_port_rtcp_and_origin() -> None:
    answer = sdp("freeswitch_answer.sdp")
    assert bytes(anchored(answer, "203.0.113.5", 40000, HERE)) == body(
        "v=0",
        "o=softswitch 7 8 IN IP4 203.0.113.5",
        "s=FreeSWITCH",
        "c=IN IP4 203.0.113.5",
        "t=0 0",
        "m=audio 40000 RTP/AVP 0 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
        "a=rtcp:40001 IN IP4 203.0.113.5",
        "m=video 0 RTP/AVP 99 34",
    )
    cisco = anchored(sdp("cisco_cube_g729_offer.sdp"), "203.0.113.5", 40000, HERE)
    assert cisco.connection == "203.0.113.5"
    assert audio_of(cisco).connection == "203.0.113.5"


def test_anchored_to_ipv6_writes_ip6() -> None:
    twilio = anchored(sdp("carrier_twilio_offer.sdp"), "2001:db8::5", 40000, HERE)
    assert b"c=IN IP6 2001:db8::5\r\n" in bytes(twilio)
    assert b"a=rtcp" not in bytes(twilio)  # none before, none added


def test_anchored_from_ipv6_with_ice_to_ipv4() -> None:
    sd = anchored(sdp("linphone_offer_ipv6.sdp"), "203.0.113.5", 40000, HERE)
    data = bytes(sd).decode()
    assert "c=IN IP4 203.0.113.5\r\n" in data and "IP6" not in data
    assert "a=ice-" not in data and "a=candidate" not in data
    assert "a=rtcp:40001\r\n" in data
    assert [(m.kind, m.port) for m in sd.media] == [("audio", 40000), ("video", 0)]
    assert sd.media[1].rtcp_port is None  # a rejected stream has no transport
    assert ("b", "AS:380") in sd.other_lines


def test_anchored_drops_the_other_sides_transport() -> None:
    sd = anchored(sdp("baresip_offer_ipv6.sdp"), "203.0.113.5", 40000, HERE)
    names = [name for name, _ in audio_of(sd).attributes]
    assert "ssrc" not in names and "rtcp-mux" not in names
    assert "rtcp-rsize" in names and "ptime" in names
    keys = anchored(sdp("rfc4566_repeat_zone_key.sdp"), "203.0.113.5", 40000, HERE)
    assert b"k=" not in bytes(keys)
    assert b"m=video 0 RTP/AVP 31\r\n" in bytes(keys)  # no /2 on a rejected stream


def test_anchored_adds_a_session_connection_when_only_media_had_one() -> None:
    sd = anchored(sdp("carrier_bandwidth_answer.sdp"), "203.0.113.5", 40000, HERE)
    assert sd.connection == "203.0.113.5"
    assert audio_of(sd).connection == "203.0.113.5"
    assert b"c=IN IP4 203.0.113.72" not in bytes(sd)


def test_anchored_without_rtcp_omits_it() -> None:
    sd = anchored(sdp("freeswitch_answer.sdp"), "203.0.113.5", 40000, HERE, rtcp=False)
    assert audio_of(sd).rtcp_port is None
    assert b"a=rtcp" not in bytes(sd)


def test_anchored_leaves_the_original_alone() -> None:
    original = sdp("linphone_offer_ipv6.sdp")
    before = bytes(original)
    anchored(original, "203.0.113.5", 40000, HERE)
    assert bytes(original) == before


def test_anchored_needs_an_audio_stream_and_a_port() -> None:
    video = SessionDescription.parse(body(*SIPP[:5], "m=video 5000 RTP/AVP 31"))
    with pytest.raises(NotAcceptable) as info:
        anchored(video, "203.0.113.5", 40000, HERE)
    assert info.value.warn_code == 304
    for port in (0, 65535):
        with pytest.raises(ValueError, match="RTP port"):
            anchored(sdp("sipp_uac_pcmu.sdp"), "203.0.113.5", port, HERE)


def test_anchored_restricted_offer_parses_back() -> None:
    sd = sdp("asterisk_offer.sdp")
    audio = audio_of(sd)
    sd.media[0] = restrict(audio)
    data = bytes(anchored(sd, "203.0.113.5", 40000, HERE))
    again = SessionDescription.parse(data)
    assert [c.name for c in audio_of(again).codecs] == ["PCMU", "PCMA", "telephone-event"]
    assert bytes(again) == data


# --------------------------------------------------------------------------- answers


def test_answer_codecs_match_by_encoding() -> None:
    offer = audio_of(sdp("asterisk_offer.sdp"))
    answer = audio_of(sdp("freeswitch_answer.sdp"))
    assert [c.name for c in answer_codecs(offer, answer)] == ["PCMU", "telephone-event"]


def test_answer_codecs_ignore_payload_type_numbers() -> None:
    offer = audio_of(sdp("carrier_twilio_offer.sdp"))  # telephone-event is 101
    data = body(*SIPP[:5], "m=audio 6000 RTP/AVP 18 8 96", "a=rtpmap:96 telephone-event/8000")
    answer = audio_of(SessionDescription.parse(data))
    assert answer_codecs(offer, answer) == [
        Codec(8, "PCMA", 8000),
        Codec(96, "telephone-event", 8000),
    ]


def test_answer_codecs_match_clock_rate_and_channels() -> None:
    offer = audio_of(sdp("linphone_offer_ipv6.sdp"))
    data = body(
        *SIPP[:5],
        "m=audio 6000 RTP/AVP 111 112 113",
        "a=rtpmap:111 OPUS/48000/2",  # the offer's opus/48000/2: names are case-insensitive
        "a=rtpmap:112 opus/48000",  # one channel: not the offer's
        "a=rtpmap:113 telephone-event/32000",  # a rate the offer does not have
    )
    answer = audio_of(SessionDescription.parse(data))
    assert answer_codecs(offer, answer) == [Codec(111, "OPUS", 48000, 2)]


# --------------------------------------------------------------------------- own offers


def test_default_offer_bytes() -> None:
    assert bytes(default_offer("192.0.2.1", 30000, ORIGIN)) == body(
        "v=0",
        "o=softswitch 42 42 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=audio 30000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
    )


def test_default_offer_ipv6_and_ptime() -> None:
    origin = Origin.create("2001:db8::1", 9)
    offer = default_offer("2001:db8::1", 30000, origin, ptime=30)
    data = bytes(offer)
    assert b"o=- 9 9 IN IP6 2001:db8::1\r\n" in data
    assert b"c=IN IP6 2001:db8::1\r\n" in data
    assert b"a=ptime:30\r\n" in data
    parsed = SessionDescription.parse(data)
    assert parsed == offer
    assert restrict(audio_of(parsed)) == audio_of(parsed)


def test_next_version() -> None:
    following = ORIGIN.next_version()
    assert following == Origin("softswitch", "42", 43, "IN", "IP4", "192.0.2.1")
    assert ORIGIN.version == 42
    assert following.next_version().version == 44
    assert b"o=softswitch 42 43 IN IP4" in bytes(default_offer("192.0.2.1", 30000, following))
