"""Digest authentication, server side (softswitch.sip.digest).

The computations are pinned to the published examples: RFC 2617 §3.5 (MD5) and
RFC 7616 §3.9.1 (MD5 and SHA-256; RFC 8760 brings both to SIP).  Note that the two
RFCs spell Mufasa's password differently: "Circle Of Life" in RFC 2617, "Circle of
Life" in RFC 7616, and each published response is reproduced only with its own.
The verification tests compute expected answers with hashlib here, independently of
the module under test, or use the digest client (softswitch.sip.auth).
"""

from __future__ import annotations

import hashlib

import pytest

from softswitch.sip.auth import authorization_header, parse_challenge
from softswitch.sip.digest import (
    DigestServer,
    DigestVerdict,
    ha1,
    parse_auth_params,
    request_digest,
)
from softswitch.sip.errors import ParseError
from softswitch.sip.message import Headers, Response

# RFC 2617 §3.5
RFC2617 = {
    "username": "Mufasa", "password": "Circle Of Life", "realm": "testrealm@host.com",
    "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093", "uri": "/dir/index.html",
    "nc": "00000001", "cnonce": "0a4f113b", "method": "GET",
}
RFC2617_RESPONSE = "6629fae49393a05397450978507c4ef1"

# RFC 7616 §3.9.1
RFC7616 = {
    "username": "Mufasa", "password": "Circle of Life", "realm": "http-auth@example.org",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "uri": "/dir/index.html",
    "nc": "00000001", "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    "method": "GET",
}
RFC7616_MD5 = "8ca523f5e9506fed4657c9700eebdbec"
RFC7616_SHA256 = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"

REALM = "softswitch"
SECRET = b"test secret, not a real one"
USERS = {"alice": "alice-password", "bob": "bob-password"}
_HASHLIB = {"MD5": "md5", "SHA-256": "sha256"}


def h(algorithm: str, text: str) -> str:
    return hashlib.new(_HASHLIB[algorithm], text.encode()).hexdigest()


def lookup(username: str, algorithm: str) -> str | None:
    password = USERS.get(username)
    return None if password is None else h(algorithm, f"{username}:{REALM}:{password}")


def credentials(
    challenge: str,
    *,
    username: str = "alice",
    password: str | None = None,
    method: str = "REGISTER",
    uri: str = "sip:127.0.0.1",
    nc: str = "00000001",
    cnonce: str = "c0ffee",
    drop: tuple[str, ...] = (),
    override: dict[str, str] | None = None,
) -> str:
    """An Authorization value answering ``challenge``, computed with hashlib."""
    fields = parse_challenge(challenge)
    algorithm = fields.get("algorithm", "MD5")
    secret = USERS.get(username, "") if password is None else password
    a1 = h(algorithm, f"{username}:{fields['realm']}:{secret}")
    a2 = h(algorithm, f"{method}:{uri}")
    response = h(algorithm, f"{a1}:{fields['nonce']}:{nc}:{cnonce}:auth:{a2}")
    params = {
        "username": f'"{username}"', "realm": f'"{fields["realm"]}"',
        "nonce": f'"{fields["nonce"]}"', "uri": f'"{uri}"', "response": f'"{response}"',
        "algorithm": algorithm, "qop": "auth", "nc": nc, "cnonce": f'"{cnonce}"',
    }
    params.update(override or {})
    return "Digest " + ", ".join(f"{k}={v}" for k, v in params.items() if k not in drop)


def challenge_response(challenge: str) -> Response:
    return Response(401, "Unauthorized", Headers([("WWW-Authenticate", challenge)]))


@pytest.fixture
def server() -> DigestServer:
    return DigestServer(REALM, SECRET, nonce_lifetime=300.0)


# ------------------------------------------------------------------ RFC examples


def test_rfc2617_example() -> None:
    v = RFC2617
    a1 = ha1(v["username"], v["realm"], v["password"])
    digest = request_digest(
        "MD5", a1, method=v["method"], uri=v["uri"], nonce=v["nonce"], nc=v["nc"],
        cnonce=v["cnonce"],
    )
    assert digest == RFC2617_RESPONSE


@pytest.mark.parametrize(("algorithm", "expected"), [("MD5", RFC7616_MD5),
                                                     ("SHA-256", RFC7616_SHA256)])
def test_rfc7616_examples(algorithm: str, expected: str) -> None:
    v = RFC7616
    a1 = ha1(v["username"], v["realm"], v["password"], algorithm)
    digest = request_digest(
        algorithm, a1, method=v["method"], uri=v["uri"], nonce=v["nonce"], nc=v["nc"],
        cnonce=v["cnonce"],
    )
    assert digest == expected


def test_ha1_is_the_hash_of_user_realm_password() -> None:
    assert ha1("alice", REALM, "pw") == hashlib.md5(b"alice:softswitch:pw").hexdigest()
    assert ha1("alice", REALM, "pw", "SHA-256") == hashlib.sha256(
        b"alice:softswitch:pw"
    ).hexdigest()


@pytest.mark.parametrize("algorithm", ["MD5-sess", "SHA-256-sess", "SHA-512-256", ""])
def test_ha1_refuses_other_algorithms(algorithm: str) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        ha1("alice", REALM, "pw", algorithm)


@pytest.mark.parametrize(
    ("vector", "algorithm", "expected"),
    [(RFC2617, "MD5", RFC2617_RESPONSE), (RFC7616, "MD5", RFC7616_MD5),
     (RFC7616, "SHA-256", RFC7616_SHA256)],
)
def test_server_computes_the_rfc_responses(
    vector: dict[str, str], algorithm: str, expected: str
) -> None:
    # The RFC's nonce was not minted here, so the best a right answer gets is STALE
    # (retry with our nonce); a wrong one would be INVALID.
    v = vector
    server = DigestServer(v["realm"], SECRET)
    header = (
        f'Digest username="{v["username"]}", realm="{v["realm"]}", nonce="{v["nonce"]}", '
        f'uri="{v["uri"]}", algorithm={algorithm}, qop=auth, nc={v["nc"]}, '
        f'cnonce="{v["cnonce"]}", response="{expected}"'
    )

    def rfc_lookup(username: str, alg: str) -> str | None:
        return ha1(username, v["realm"], v["password"], alg) if username == "Mufasa" else None

    assert server.verify(v["method"], header, rfc_lookup, 0.0).verdict is DigestVerdict.STALE
    wrong = header.replace(expected, "0" * len(expected))
    assert server.verify(v["method"], wrong, rfc_lookup, 0.0).verdict is DigestVerdict.INVALID


# ------------------------------------------------------------------ challenges


def test_challenges_offer_sha256_first_then_md5(server: DigestServer) -> None:
    values = server.challenges(now=0.0)
    assert len(values) == 2
    fields = [parse_challenge(v) for v in values]
    assert [f["algorithm"] for f in fields] == ["SHA-256", "MD5"]
    for f in fields:
        assert f["realm"] == REALM and f["qop"] == "auth" and f["nonce"]
        assert "stale" not in f
    assert 'qop="auth"' in values[0]


def test_every_challenge_has_a_fresh_nonce(server: DigestServer) -> None:
    nonces = {parse_challenge(server.challenges(now=5.0)[0])["nonce"] for _ in range(50)}
    assert len(nonces) == 50


def test_stale_challenge_says_so(server: DigestServer) -> None:
    for value in server.challenges(now=0.0, stale=True):
        assert parse_challenge(value)["stale"] == "true"


def test_challenge_for_a_subset_of_algorithms(server: DigestServer) -> None:
    (value,) = server.challenges(now=0.0, algorithms=["MD5"])
    assert parse_challenge(value)["algorithm"] == "MD5"
    with pytest.raises(ValueError):
        server.challenges(now=0.0, algorithms=["SHA-512-256"])
    with pytest.raises(ValueError):
        DigestServer(REALM, SECRET, algorithms=("MD5-sess",))


# ------------------------------------------------------------------ verification


@pytest.mark.parametrize("index", [0, 1], ids=["SHA-256", "MD5"])
def test_the_digest_client_authenticates(server: DigestServer, index: int) -> None:
    challenge = server.challenges(now=10.0)[index]
    name, value = authorization_header(
        challenge_response(challenge), "REGISTER", "sip:127.0.0.1", "alice", "alice-password",
        cnonce="abc123",
    )
    assert name == "Authorization"
    result = server.verify("REGISTER", value, lookup, now=11.0)
    assert result.verdict is DigestVerdict.OK, result.reason
    assert result.username == "alice" and result.uri == "sip:127.0.0.1"


def test_missing_credentials(server: DigestServer) -> None:
    result = server.verify("REGISTER", None, lookup, now=0.0)
    assert result.verdict is DigestVerdict.MISSING and result.username is None


def test_nonce_is_good_for_its_lifetime_then_stale(server: DigestServer) -> None:
    challenge = server.challenges(now=100.0)[0]
    at_end = credentials(challenge, cnonce="one")
    assert server.verify("REGISTER", at_end, lookup, now=400.0).verdict is DigestVerdict.OK
    late = credentials(challenge, cnonce="two", nc="00000002")
    result = server.verify("REGISTER", late, lookup, now=400.001)
    assert result.verdict is DigestVerdict.STALE and result.username == "alice"
    # stale=true only for the right password (RFC 2617 §3.2.1)
    wrong = credentials(challenge, password="guess", nc="00000003")
    assert server.verify("REGISTER", wrong, lookup, now=400.001).verdict is DigestVerdict.INVALID


def test_nonce_from_the_future_is_stale(server: DigestServer) -> None:
    # A loop clock that restarted while the secret stayed the same.
    challenge = server.challenges(now=1000.0)[0]
    result = server.verify("REGISTER", credentials(challenge), lookup, now=5.0)
    assert result.verdict is DigestVerdict.STALE


def test_replayed_nonce_count_is_refused(server: DigestServer) -> None:
    challenge = server.challenges(now=0.0)[0]
    first = credentials(challenge, nc="00000001", cnonce="a")
    assert server.verify("REGISTER", first, lookup, now=1.0).verdict is DigestVerdict.OK
    replay = server.verify("REGISTER", first, lookup, now=2.0)
    assert replay.verdict is DigestVerdict.INVALID and "replayed" in replay.reason
    # A phone reusing the nonce counts up (RFC 7616 §3.4): accepted.
    second = credentials(challenge, nc="00000002", cnonce="b")
    assert server.verify("REGISTER", second, lookup, now=3.0).verdict is DigestVerdict.OK
    lower = credentials(challenge, nc="00000002", cnonce="c")
    assert server.verify("REGISTER", lower, lookup, now=4.0).verdict is DigestVerdict.INVALID


def test_nonce_records_are_dropped_when_the_nonce_expires(server: DigestServer) -> None:
    for i in range(5):
        challenge = server.challenges(now=float(i))[0]
        assert server.verify("REGISTER", credentials(challenge), lookup, now=float(i)).verdict \
            is DigestVerdict.OK
    assert server.tracked_nonces == 5
    server.purge(now=302.5)  # nonces minted at 0, 1, 2 have expired
    assert server.tracked_nonces == 2
    server.verify("REGISTER", None, lookup, now=400.0)  # verify purges too
    assert server.tracked_nonces == 0


def test_nonce_minted_with_another_secret(server: DigestServer) -> None:
    # After a restart with a new secret: right password -> STALE (retry silently),
    # wrong password -> INVALID.
    other = DigestServer(REALM, b"another secret").challenges(now=0.0)[0]
    right = server.verify("REGISTER", credentials(other), lookup, now=1.0)
    assert right.verdict is DigestVerdict.STALE and right.reason == "nonce not minted here"
    wrong = server.verify("REGISTER", credentials(other, password="x"), lookup, now=1.0)
    assert wrong.verdict is DigestVerdict.INVALID


def test_a_respelt_nonce_is_not_ours(server: DigestServer) -> None:
    # The base64 decoder would skip the "!": the nonce must be the one we minted,
    # character for character, or it would get an nc record of its own.
    challenge = server.challenges(now=0.0)[0]
    nonce = parse_challenge(challenge)["nonce"]
    respelt = challenge.replace(nonce, nonce + "!")
    result = server.verify("REGISTER", credentials(respelt), lookup, now=1.0)
    assert result.verdict is DigestVerdict.STALE


def _invalid_reason(server: DigestServer, header: str, method: str = "REGISTER") -> str:
    result = server.verify(method, header, lookup, now=1.0)
    assert result.verdict is DigestVerdict.INVALID
    return result.reason


def test_tampered_response(server: DigestServer) -> None:
    challenge = server.challenges(now=0.0)[0]
    good = credentials(challenge)
    response = parse_auth_params(good.partition(" ")[2], what="test")["response"]
    tampered = good.replace(response, response[:-1] + ("0" if response[-1] != "0" else "1"))
    assert "wrong response" in _invalid_reason(server, tampered)
    # The method is part of the digest: the same header does not authorize an INVITE.
    assert "wrong response" in _invalid_reason(server, good, method="INVITE")


def test_wrong_password(server: DigestServer) -> None:
    challenge = server.challenges(now=0.0)[0]
    assert "wrong response" in _invalid_reason(server, credentials(challenge, password="guess"))


def test_wrong_realm(server: DigestServer) -> None:
    challenge = server.challenges(now=0.0)[0]
    header = credentials(challenge, override={"realm": '"elsewhere"'})
    assert "realm" in _invalid_reason(server, header)


@pytest.mark.parametrize("field", ["uri", "nonce", "response", "realm", "username"])
def test_missing_parameter(server: DigestServer, field: str) -> None:
    challenge = server.challenges(now=0.0)[0]
    _invalid_reason(server, credentials(challenge, drop=(field,)))


def test_unknown_user(server: DigestServer) -> None:
    challenge = server.challenges(now=0.0)[0]
    header = credentials(challenge, username="mallory", password="whatever")
    result = server.verify("REGISTER", header, lookup, now=1.0)
    assert result.verdict is DigestVerdict.INVALID and result.username == "mallory"


def test_no_hash_for_the_algorithm() -> None:
    server = DigestServer(REALM, SECRET)
    challenge = server.challenges(now=0.0)[0]  # SHA-256

    def md5_only(username: str, algorithm: str) -> str | None:
        return lookup(username, algorithm) if algorithm == "MD5" else None

    result = server.verify("REGISTER", credentials(challenge), md5_only, now=1.0)
    assert result.verdict is DigestVerdict.INVALID and "SHA-256" in result.reason


@pytest.mark.parametrize(
    "override",
    [
        {"qop": "auth-int"},
        {"nc": "1"},
        {"nc": "0000000g"},
        {"cnonce": '""'},
        {"algorithm": "MD5-sess"},
    ],
    ids=["auth-int", "short-nc", "non-hex-nc", "empty-cnonce", "sess"],
)
def test_refused_parameters(server: DigestServer, override: dict[str, str]) -> None:
    challenge = server.challenges(now=0.0)[0]
    _invalid_reason(server, credentials(challenge, override=override))


def test_rfc2069_form_without_qop_is_refused(server: DigestServer) -> None:
    challenge = server.challenges(now=0.0)[1]  # MD5
    header = credentials(challenge, drop=("qop", "nc", "cnonce"))
    assert "qop" in _invalid_reason(server, header)


def test_algorithm_not_offered() -> None:
    server = DigestServer(REALM, SECRET, algorithms=("SHA-256",))
    md5_challenge = DigestServer(REALM, SECRET, algorithms=("MD5",)).challenges(now=0.0)[0]
    assert "not offered" in _invalid_reason(server, credentials(md5_challenge))


def test_other_scheme_and_garbage(server: DigestServer) -> None:
    assert "scheme" in _invalid_reason(server, "Basic YWxpY2U6cGFzc3dvcmQ=")
    assert "malformed" in _invalid_reason(server, 'Digest username="alice')
    assert "malformed" in _invalid_reason(server, "Digest ,,")


def test_shared_parameter_reader() -> None:
    # One reader for challenges (client) and credentials (server).
    params = parse_auth_params(' username="a\\"b", qop=auth, nc=00000001, realm="x, y"',
                               what="credentials")
    assert params == {"username": 'a"b', "qop": "auth", "nc": "00000001", "realm": "x, y"}
    with pytest.raises(ParseError):
        parse_auth_params('realm="open', what="credentials")
