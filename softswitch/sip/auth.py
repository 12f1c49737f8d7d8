"""Digest authentication as a client (RFC 3261 §22.2–22.4, RFC 2617, RFC 8760).

When a carrier answers an outbound INVITE with 401 (WWW-Authenticate) or 407
(Proxy-Authenticate), the UAC re-sends it once with Authorization or
Proxy-Authorization computed from the trunk's credentials.  The server side (the
registrar's challenges) and the parameter reader both sides share are in
:mod:`softswitch.sip.digest`.
"""

from __future__ import annotations

from .digest import HASHES, parse_auth_params
from .message import Response


class DigestChallengeError(ValueError):
    """The challenge cannot be answered (unknown scheme, algorithm or qop)."""


def parse_challenge(value: str) -> dict[str, str]:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DigestChallengeError(f"unsupported authentication scheme {scheme!r}")
    return parse_auth_params(rest, what="challenge")


def digest_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None,
    nc: str,
    cnonce: str,
) -> str:
    """``response`` of RFC 2617 §3.2.2.1 (and RFC 8760 for SHA-256)."""
    try:
        hasher = HASHES[algorithm.upper()]
    except KeyError:
        raise DigestChallengeError(f"unsupported algorithm {algorithm!r}") from None

    def h(text: str) -> str:
        return hasher(text.encode()).hexdigest()

    ha1 = h(f"{username}:{realm}:{password}")
    ha2 = h(f"{method}:{uri}")
    if qop:
        return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return h(f"{ha1}:{nonce}:{ha2}")


def authorization_header(
    challenge_response: Response,
    method: str,
    uri: str,
    username: str,
    password: str,
    *,
    cnonce: str,
) -> tuple[str, str]:
    """The (header name, value) answering the 401/407 ``challenge_response``."""
    proxy = challenge_response.status == 407
    value = challenge_response.headers.get("proxy-authenticate" if proxy else "www-authenticate")
    if value is None:
        raise DigestChallengeError("no challenge in the response")
    challenge = parse_challenge(value)
    realm = challenge.get("realm", "")
    nonce = challenge.get("nonce", "")
    algorithm = challenge.get("algorithm") or "MD5"
    offered = [q.strip() for q in challenge.get("qop", "").split(",") if q.strip()]
    if offered and "auth" not in offered:
        raise DigestChallengeError(f"unsupported qop {offered}")
    qop = "auth" if offered else None
    nc = "00000001"
    response = digest_response(
        algorithm=algorithm,
        username=username,
        realm=realm,
        password=password,
        method=method,
        uri=uri,
        nonce=nonce,
        qop=qop,
        nc=nc,
        cnonce=cnonce,
    )
    parts = [
        f'username="{username}"',
        f'realm="{realm}"',
        f'nonce="{nonce}"',
        f'uri="{uri}"',
        f'response="{response}"',
        f"algorithm={algorithm}",
    ]
    if qop:
        parts += [f"qop={qop}", f"nc={nc}", f'cnonce="{cnonce}"']
    if "opaque" in challenge:
        parts.append(f'opaque="{challenge["opaque"]}"')
    return ("Proxy-Authorization" if proxy else "Authorization"), "Digest " + ", ".join(parts)
