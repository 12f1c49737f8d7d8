"""URIs, name-addr/addr-spec and Via values (softswitch.sip.uri).

Examples come from RFC 3261 §19.1.3 (example SIP URIs), RFC 3966 (tel), RFC 4475
§3.1.1.3/§3.1.1.9/§3.3.2 (escapes, ``;`` in the user part, unknown schemes) and
RFC 5118 (IPv6 references).
"""

from __future__ import annotations

import pytest

from softswitch.sip.errors import ParseError
from softswitch.sip.uri import (
    AbsoluteUri,
    NameAddr,
    SipUri,
    TelUri,
    Via,
    parse_name_addr,
    parse_params,
    parse_uri,
    parse_via,
    quote_string,
    split_commas,
    unquote_string,
)

# --------------------------------------------------------------------------- SIP URIs

# text -> (scheme, user, password, host, port, params, headers); str() gives text back.
SIP_URIS = {
    # RFC 3261 §19.1.3
    "sip:alice@atlanta.com": ("sip", "alice", None, "atlanta.com", None, (), None),
    "sip:alice:secretword@atlanta.com;transport=tcp": (
        "sip",
        "alice",
        "secretword",
        "atlanta.com",
        None,
        (("transport", "tcp"),),
        None,
    ),
    "sips:alice@atlanta.com?subject=project%20x&priority=urgent": (
        "sips",
        "alice",
        None,
        "atlanta.com",
        None,
        (),
        "subject=project%20x&priority=urgent",
    ),
    "sip:+1-212-555-1212:1234@gateway.com;user=phone": (
        "sip",
        "+1-212-555-1212",
        "1234",
        "gateway.com",
        None,
        (("user", "phone"),),
        None,
    ),
    "sips:1212@gateway.com": ("sips", "1212", None, "gateway.com", None, (), None),
    "sip:alice@192.0.2.4": ("sip", "alice", None, "192.0.2.4", None, (), None),
    "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com": (
        "sip",
        None,
        None,
        "atlanta.com",
        None,
        (("method", "REGISTER"),),
        "to=alice%40atlanta.com",
    ),
    "sip:alice;day=tuesday@atlanta.com": (
        "sip",
        "alice;day=tuesday",
        None,
        "atlanta.com",
        None,
        (),
        None,
    ),
    # ports, flag parameters, several parameters
    "sip:bob@biloxi.example.com:5070": ("sip", "bob", None, "biloxi.example.com", 5070, (), None),
    "sip:proxy.example.com:0;lr": (
        "sip",
        None,
        None,
        "proxy.example.com",
        0,
        (("lr", None),),
        None,
    ),
    "sip:p.example.com:65535;lr;maddr=239.255.255.1;ttl=15": (
        "sip",
        None,
        None,
        "p.example.com",
        65535,
        (("lr", None), ("maddr", "239.255.255.1"), ("ttl", "15")),
        None,
    ),
    "sip:host_with-dash.example.com": (
        "sip",
        None,
        None,
        "host_with-dash.example.com",
        None,
        (),
        None,
    ),
    # IPv6 references (RFC 5118 §4.1, §4.3, §4.4, §4.9, §4.10)
    "sip:[2001:db8::10]": ("sip", None, None, "[2001:db8::10]", None, (), None),
    "sip:user@[2001:db8::10]:5070;transport=tcp": (
        "sip",
        "user",
        None,
        "[2001:db8::10]",
        5070,
        (("transport", "tcp"),),
        None,
    ),
    "sip:[2001:db8::10:5070]": ("sip", None, None, "[2001:db8::10:5070]", None, (), None),
    "sip:user@[::ffff:192.0.2.1]": ("sip", "user", None, "[::ffff:192.0.2.1]", None, (), None),
    "sip:user@[2001:db8::192.0.2.1]": (
        "sip",
        "user",
        None,
        "[2001:db8::192.0.2.1]",
        None,
        (),
        None,
    ),
    "sip:[::1]:5060;maddr=[::1]": ("sip", None, None, "[::1]", 5060, (("maddr", "[::1]"),), None),
    # escapes and odd user parts (RFC 4475 §3.1.1.2, §3.1.1.3, §3.1.1.4, §3.1.1.9)
    "sip:sips%3Auser%40example.com@example.net": (
        "sip",
        "sips%3Auser%40example.com",
        None,
        "example.net",
        None,
        (),
        None,
    ),
    "sip:user;par=u%40example.net@example.com": (
        "sip",
        "user;par=u%40example.net",
        None,
        "example.com",
        None,
        (),
        None,
    ),
    "sip:null-%00-null@example.com": ("sip", "null-%00-null", None, "example.com", None, (), None),
    "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com": (  # noqa: E501
        "sip",
        "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*",
        "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)",
        "example.com",
        None,
        (),
        None,
    ),
    "sip:user:@example.com": ("sip", "user", "", "example.com", None, (), None),
}


@pytest.mark.parametrize("text", sorted(SIP_URIS))
def test_sip_uri_fields_and_round_trip(text: str) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    scheme, user, password, host, port, params, headers = SIP_URIS[text]
    assert (uri.scheme, uri.user, uri.password, uri.host, uri.port) == (
        scheme,
        user,
        password,
        host,
        port,
    )
    assert (uri.params, uri.headers) == (params, headers)
    assert str(uri) == text
    assert parse_uri(str(uri)) == uri


def test_sip_uri_helpers() -> None:
    uri = parse_uri("SIP:Alice%20Smith@[2001:db8::1]:5061;Transport=TLS;lr")
    assert isinstance(uri, SipUri)
    assert uri.scheme == "sip"  # schemes are case-insensitive
    assert str(uri) == "sip:Alice%20Smith@[2001:db8::1]:5061;Transport=TLS;lr"
    assert uri.user_unescaped == "Alice Smith"
    assert uri.host_address == "2001:db8::1"
    assert uri.transport == "tls"
    assert uri.param("TRANSPORT") == "TLS" and uri.param("lr") is None
    assert uri.has_param("LR") and not uri.has_param("maddr")
    assert (
        str(uri.with_param("transport", "udp"))
        == "sip:Alice%20Smith@[2001:db8::1]:5061;lr;transport=udp"
    )
    assert parse_uri("sips:h.example.com").transport == "tls"  # type: ignore[union-attr]
    assert parse_uri("sip:h.example.com").transport == "udp"  # type: ignore[union-attr]


# --------------------------------------------------------------------------- other schemes


@pytest.mark.parametrize(
    ("text", "number", "params"),
    [
        ("tel:+1-201-555-0123", "+1-201-555-0123", ()),
        ("tel:7042;phone-context=example.com", "7042", (("phone-context", "example.com"),)),
        ("tel:863-1234;phone-context=+1-914-555", "863-1234", (("phone-context", "+1-914-555"),)),
        (
            "tel:+358-555-1234567;postd=pp22;isub=1411",
            "+358-555-1234567",
            (("postd", "pp22"), ("isub", "1411")),
        ),
    ],
)
def test_tel_uri(text: str, number: str, params: tuple[tuple[str, str | None], ...]) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, TelUri)
    assert (uri.scheme, uri.number, uri.params) == ("tel", number, params)
    assert str(uri) == text


@pytest.mark.parametrize(
    ("text", "scheme", "rest"),
    [
        (
            "nobodyKnowsThisScheme:totallyopaquecontent",
            "nobodyKnowsThisScheme",
            "totallyopaquecontent",
        ),
        ("soap.beep://192.0.2.103:3002", "soap.beep", "//192.0.2.103:3002"),
        ("mailto:joe@example.com", "mailto", "joe@example.com"),
        ("urn:service:sos", "urn", "service:sos"),
        ("im:user@example.com", "im", "user@example.com"),
        ("x-1+2.3:anything;goes?here", "x-1+2.3", "anything;goes?here"),
    ],
)
def test_unknown_schemes_are_absolute_uris(text: str, scheme: str, rest: str) -> None:
    uri = parse_uri(text)
    assert uri == AbsoluteUri(scheme, rest)
    assert str(uri) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        ":",
        "sip",
        "alice@atlanta.com",
        "1sip:alice@atlanta.com",
        "s_p:x",
        "-sip:x",
        "sip:",
        "sip:@atlanta.com",
        "sip:alice@",
        "sip:alice@:5060",
        "sip:alice@atlanta.com:",
        "sip:alice@atlanta.com:65536",
        "sip:alice@atlanta.com:123456",
        "sip:alice@atlanta.com:50a",
        "sip:alice@atlanta.com:-1",
        "sip:alice@atlanta.com:²",
        "sip:alice@atlanta.com:٥٠٦٠",
        "sip:alice @atlanta.com",
        "sip:alice@atlanta.com ",
        " sip:alice@atlanta.com",
        "sip:alice@atl\tanta.com",
        "sip:alice@atlanta.com\r\n",
        "<sip:alice@atlanta.com>",
        'sip:"alice"@atlanta.com',
        "sip:alice@atl<anta.com",
        "sip:alice@2001:db8::1",
        "sip:[2001:db8::1",
        "sip:[2001:db8::zz]",
        "sip:[2001:db8:::1]",
        "sip:[192.0.2.1]",
        "sip:[]",
        "sip:[2001:db8::1]5060",
        "sip:[2001:db8::1]:x",
        "sip:alice@atl/anta.com",
        "sip:alice@atl!anta.com",
        "sip:alice@atlanta.com;",
        "sip:alice@atlanta.com;;lr",
        "sip:alice@atlanta.com;=x",
        "sip:alice@atlanta.com;maddr=",
        "sip:alice@atlanta.com;lr x",
        'sip:example.com;x="ab"',
        "tel:",
        "tel:;phone-context=x",
        "tel:+1;",
    ],
)
def test_rejected_uris(text: str) -> None:
    with pytest.raises(ParseError) as info:
        parse_uri(text)
    assert info.value.status_code == 400


# --------------------------------------------------------------------------- name-addr


@pytest.mark.parametrize(
    ("text", "display", "display_name", "uri", "params", "rendered"),
    [
        ("<sip:bob@biloxi.com>", None, None, "sip:bob@biloxi.com", (), "<sip:bob@biloxi.com>"),
        (
            "Bob <sip:bob@biloxi.com>;tag=a6c85cf",
            "Bob",
            "Bob",
            "sip:bob@biloxi.com",
            (("tag", "a6c85cf"),),
            "Bob <sip:bob@biloxi.com>;tag=a6c85cf",
        ),
        (
            '"Bob B." <sips:bob@biloxi.com>',
            '"Bob B."',
            "Bob B.",
            "sips:bob@biloxi.com",
            (),
            '"Bob B." <sips:bob@biloxi.com>',
        ),
        (
            '"caller"<sip:caller@example.com>;tag=323',
            '"caller"',
            "caller",
            "sip:caller@example.com",
            (("tag", "323"),),
            '"caller" <sip:caller@example.com>;tag=323',
        ),
        (
            "  The   Operator\t<sip:operator@cs.columbia.edu> ; tag = 287447 ",
            "The Operator",
            "The Operator",
            "sip:operator@cs.columbia.edu",
            (("tag", "287447"),),
            "The Operator <sip:operator@cs.columbia.edu>;tag=287447",
        ),
        (
            '"\\"quoted\\" \\\\ name" <sip:q@example.com>',
            '"\\"quoted\\" \\\\ name"',
            '"quoted" \\ name',
            "sip:q@example.com",
            (),
            '"\\"quoted\\" \\\\ name" <sip:q@example.com>',
        ),
        # addr-spec: parameters after the URI belong to the header field (§20.10)
        (
            "sip:caller@example.net;tag=141334",
            None,
            None,
            "sip:caller@example.net",
            (("tag", "141334"),),
            "<sip:caller@example.net>;tag=141334",
        ),
        (
            "sip:user@example.com;unknownparam",
            None,
            None,
            "sip:user@example.com",
            (("unknownparam", None),),
            "<sip:user@example.com>;unknownparam",
        ),
        (
            "<sip:user@example.com;unknownparam>",
            None,
            None,
            "sip:user@example.com;unknownparam",
            (),
            "<sip:user@example.com;unknownparam>",
        ),
        (
            "tel:+12125551212;tag=x",
            None,
            None,
            "tel:+12125551212",
            (("tag", "x"),),
            "<tel:+12125551212>;tag=x",
        ),
        (
            "<sip:u@example.com?Route=%3Csip:sip.example.com%3E>;expires=60",
            None,
            None,
            "sip:u@example.com?Route=%3Csip:sip.example.com%3E",
            (("expires", "60"),),
            "<sip:u@example.com?Route=%3Csip:sip.example.com%3E>;expires=60",
        ),
        (
            '<sip:a@[2001:db8::1]:5060>;+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";reg-id=1',
            None,
            None,
            "sip:a@[2001:db8::1]:5060",
            (
                ("+sip.instance", '"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"'),
                ("reg-id", "1"),
            ),
            '<sip:a@[2001:db8::1]:5060>;+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";reg-id=1',
        ),
        (
            "<mailto:joe@example.com>",
            None,
            None,
            "mailto:joe@example.com",
            (),
            "<mailto:joe@example.com>",
        ),
    ],
)
def test_name_addr(
    text: str,
    display: str | None,
    display_name: str | None,
    uri: str,
    params: tuple[tuple[str, str | None], ...],
    rendered: str,
) -> None:
    addr = parse_name_addr(text)
    assert addr.display == display
    assert addr.display_name == display_name
    assert str(addr.uri) == uri
    assert addr.params == params
    assert str(addr) == rendered
    assert parse_name_addr(str(addr)) == addr


def test_name_addr_tag_and_with_param() -> None:
    addr = parse_name_addr("Bob <sip:bob@biloxi.com>;TAG=x;q=0.7")
    assert addr.tag == "x" and addr.param("Q") == "0.7"
    tagged = addr.with_param("tag", "y")
    assert tagged.tag == "y" and str(tagged) == "Bob <sip:bob@biloxi.com>;q=0.7;tag=y"
    assert NameAddr(parse_uri("sip:a@b")).tag is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        '"Bob <sip:bob@biloxi.com>',
        '"Bob" sip:bob@biloxi.com',
        '"Bob"',
        "Bob <sip:bob@biloxi.com",
        "Bell, Alexander <sip:a.g.bell@bell-tel.com>",
        "Bob@Home <sip:bob@biloxi.com>",
        "<sip:bob@biloxi.com>>",
        "<sip:bob@biloxi.com> junk",
        "<sip:bob@biloxi.com>;",
        "<sip:bob@biloxi.com>;;tag=1",
        "<sip:bob@biloxi.com>;tag=",
        "< sip:bob@biloxi.com >",
        "<sip:bob @biloxi.com>",
        "<>",
        "<bob>",
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
        "sip:a@b,sip:c@d",
        "sip:a@b;tag=1;",
        "sip:a@b ;",
        "bob",
    ],
)
def test_rejected_addresses(text: str) -> None:
    with pytest.raises(ParseError):
        parse_name_addr(text)


# ----------------------------------------------------------------- params, quotes, commas


def test_parse_params_with_lws_and_quotes() -> None:
    assert parse_params("", what="x") == ()
    assert parse_params(' ; lr ;\tq = 0.5; x="a;b,\\"c"', what="x") == (
        ("lr", None),
        ("q", "0.5"),
        ("x", '"a;b,\\"c"'),
    )
    for bad in (";", ";;a", ";a=", "; =b", "a", ";a b", ';a="open'):
        with pytest.raises(ParseError):
            parse_params(bad, what="x")


@pytest.mark.parametrize(
    "text", ["", "plain", 'with "quotes"', "back\\slash", '\\"both\\"', "ümlaut"]
)
def test_quote_round_trip(text: str) -> None:
    quoted = quote_string(text)
    assert quoted.startswith('"') and quoted.endswith('"')
    assert unquote_string(quoted) == text
    assert parse_name_addr(f"{quoted} <sip:a@b>").display_name == text


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("a, b ,c", ["a", "b", "c"]),
        ('"Smith, John" <sip:j@x>, <sip:k@y>', ['"Smith, John" <sip:j@x>', "<sip:k@y>"]),
        ('"esc \\" , still" <sip:j@x>,x', ['"esc \\" , still" <sip:j@x>', "x"]),
        ("<sip:a@b;x=1,2>, <sip:c@d>", ["<sip:a@b;x=1,2>", "<sip:c@d>"]),
        ("single", ["single"]),
        ("a,,b", ["a", "", "b"]),
    ],
)
def test_split_commas(value: str, parts: list[str]) -> None:
    assert split_commas(value) == parts


def test_split_commas_unterminated_quote() -> None:
    with pytest.raises(ParseError):
        split_commas('"open, <sip:a@b>')


# --------------------------------------------------------------------------- Via


@pytest.mark.parametrize(
    ("text", "transport", "host", "port", "params", "rendered"),
    [
        (
            "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds",
            "UDP",
            "pc33.atlanta.com",
            None,
            (("branch", "z9hG4bK776asdhds"),),
            "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds",
        ),
        (
            "SIP/2.0/TCP client.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101",
            "TCP",
            "client.example.com",
            5060,
            (("branch", "z9hG4bK74bf9"), ("received", "192.0.2.101")),
            "SIP/2.0/TCP client.example.com:5060;branch=z9hG4bK74bf9;received=192.0.2.101",
        ),
        # LWS where RFC 4475 §3.1.1.1 puts it (around "/", folded)
        (
            "SIP  /   2.0\r\n  /UDP\r\n    192.0.2.2;rport;branch=390skdjuw",
            "UDP",
            "192.0.2.2",
            None,
            (("rport", None), ("branch", "390skdjuw")),
            "SIP/2.0/UDP 192.0.2.2;rport;branch=390skdjuw",
        ),
        (
            "sip/2.0/udp h.example.com ; branch = z9hG4bK1 ; rport",
            "UDP",
            "h.example.com",
            None,
            (("branch", "z9hG4bK1"), ("rport", None)),
            "SIP/2.0/UDP h.example.com;branch=z9hG4bK1;rport",
        ),
        # RFC 5118 §4.5: received with and without brackets, rport with a value
        (
            "SIP/2.0/UDP [2001:db8::9:1]:5060;received=[2001:db8::9:255];branch=z9hG4bKas3;rport=5061",  # noqa: E501
            "UDP",
            "[2001:db8::9:1]",
            5060,
            (("received", "[2001:db8::9:255]"), ("branch", "z9hG4bKas3"), ("rport", "5061")),
            "SIP/2.0/UDP [2001:db8::9:1]:5060;received=[2001:db8::9:255];branch=z9hG4bKas3;rport=5061",  # noqa: E501
        ),
        (
            "SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3",
            "UDP",
            "[2001:db8::9:1]",
            None,
            (("received", "2001:db8::9:255"), ("branch", "z9hG4bKas3")),
            "SIP/2.0/UDP [2001:db8::9:1];received=2001:db8::9:255;branch=z9hG4bKas3",
        ),
        # RFC 4475 §3.1.1.10: unknown transports
        (
            "SIP/2.0/UNKNOWN t.example.com;branch=z9hG4bKx",
            "UNKNOWN",
            "t.example.com",
            None,
            (("branch", "z9hG4bKx"),),
            "SIP/2.0/UNKNOWN t.example.com;branch=z9hG4bKx",
        ),
        (
            "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks",
            "WSS",
            "df7jal23ls0d.invalid",
            None,
            (("branch", "z9hG4bK56sdasks"),),
            "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks",
        ),
        ("SIP/2.0/UDP 192.0.2.1:5060", "UDP", "192.0.2.1", 5060, (), "SIP/2.0/UDP 192.0.2.1:5060"),
    ],
)
def test_via(
    text: str,
    transport: str,
    host: str,
    port: int | None,
    params: tuple[tuple[str, str | None], ...],
    rendered: str,
) -> None:
    via = parse_via(text)
    assert (via.transport, via.host, via.port, via.params) == (transport, host, port, params)
    assert str(via) == rendered
    assert parse_via(str(via)) == via


def test_via_helpers() -> None:
    via = parse_via("SIP/2.0/UDP h.example.com;Branch=z9hG4bK1;RPORT;received=192.0.2.1")
    assert via.branch == "z9hG4bK1"
    assert via.has_rport and via.rport is None
    assert via.received == "192.0.2.1"
    filled = via.with_param("rport", "5062")
    assert filled.rport == "5062" and filled.params[1] == ("RPORT", "5062")
    assert str(filled) == "SIP/2.0/UDP h.example.com;Branch=z9hG4bK1;RPORT=5062;received=192.0.2.1"
    assert not parse_via("SIP/2.0/UDP h").has_rport
    assert Via("TLS", "h", 5061).branch is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP ",
        "SIP/2.0 UDP h",
        "SIP/2.0/UDP/x h",
        "SIP/3.0/UDP h",
        "XIP/2.0/UDP h",
        "SIP/2.0/U@P h",
        "SIP/2.0//UDP h",
        "SIP/2.0/UDP h:",
        "SIP/2.0/UDP h:99999",
        "SIP/2.0/UDP h:port",
        "SIP/2.0/UDP h:²",
        "SIP/2.0/UDP h x",
        "SIP/2.0/UDP 2001:db8::1",
        "SIP/2.0/UDP [2001:db8::1",
        "SIP/2.0/UDP [2001:db8::1]x",
        "SIP/2.0/UDP 192.0.2.15;;,;,,",
        "SIP/2.0/UDP h;",
        "SIP/2.0/UDP h;branch=",
        "SIP/2.0/UDP h;branch=a b",
        'SIP/2.0/UDP h;received="x',
        "SIP/2.0/UDP ;branch=z9hG4bK1",
    ],
)
def test_rejected_vias(text: str) -> None:
    with pytest.raises(ParseError):
        parse_via(text)
