"""Digest authentication, the server side (RFC 3261 §22.4, RFC 2617, RFC 7616, RFC 8760).

Theory of operation
-------------------
A :class:`DigestServer` challenges with one ``WWW-Authenticate`` value per algorithm,
the most preferred first (SHA-256 before MD5: RFC 8760 §2.4, RFC 7616 §3.7), and
verifies the ``Authorization`` a client sends back.  It stores no password: the
caller's ``lookup(username, algorithm)`` returns the stored HA1 (RFC 2617 §3.2.2.2,
``H(username:realm:password)``) for that algorithm.

Nonces are stateless: a nonce is the time it was minted (the ``now`` the caller
passed), a counter that makes every nonce unique, and an HMAC of both under the
server's secret.  Only the nonce counts (``nc``) of nonces that were used are kept,
to refuse replays, and they are dropped once their nonce has expired, so memory is
bounded by the rate of successful authentications times the nonce lifetime.

Choices
-------
* ``qop=auth`` is required.  RFC 8760 §2.4 requires qop with SHA-256, and without it
  (the RFC 2069 form) there is no ``nc``, so nothing stops a replay within the nonce
  lifetime.  ``auth-int`` and the ``-sess`` algorithms are not offered nor accepted.
* ``stale=true`` only when the response is right for the nonce it names (RFC 2617
  §3.2.1: the client knows the password) and that nonce is expired, from the future,
  or not minted with our secret (e.g. before a restart with a new secret): the phone
  then retries with the new nonce without asking its user.  A wrong response is
  INVALID whatever the nonce.
* No ``opaque``: it carries nothing a stateless nonce does not already carry.
* Checking that the ``uri`` parameter names the Request-URI is the caller's job
  (RFC 2617 §3.2.2.5): :attr:`DigestResult.uri` hands it over.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from .errors import ParseError
from .uri import parse_params, quote_string, unquote_string

# Algorithm names as RFC 7616 §3.3 spells them -> hash.  No "-sess" variants.
HASHES: dict[str, Callable[[bytes], hashlib._Hash]] = {
    "MD5": hashlib.md5,
    "SHA-256": hashlib.sha256,
}

_NONCE_PAYLOAD = struct.Struct(">dQ")  # minted at (loop time), counter
_NONCE_MAC_BYTES = 16


def parse_auth_params(text: str, *, what: str) -> dict[str, str]:
    """The ``auth-param`` list after the scheme of a challenge or of credentials.

    ``realm="a", qop=auth`` -> ``{"realm": "a", "qop": "auth"}``: names lower-cased,
    quoted-strings unquoted (RFC 3261 §25.1 ``digest-cln``/``dig-resp``).  A malformed
    list raises :class:`ParseError`.
    """
    params = parse_params(";" + _commas_to_semicolons(text), what=what)
    return {
        k.lower(): (unquote_string(v) if v and v.startswith('"') else v or "") for k, v in params
    }


def _commas_to_semicolons(text: str) -> str:
    """The list separators (commas outside quoted-strings) turned into ``;``."""
    out: list[str] = []
    quoted = escaped = False
    for c in text:
        if escaped:
            escaped = False
        elif quoted and c == "\\":
            escaped = True  # quoted-pair: the next character is literal (§25.1)
        elif c == '"':
            quoted = not quoted
        out.append(";" if c == "," and not quoted else c)
    return "".join(out)


def _hasher(algorithm: str) -> Callable[[bytes], hashlib._Hash]:
    try:
        return HASHES[algorithm.upper()]
    except KeyError:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}") from None


def ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """``H(username:realm:password)`` in hex (RFC 2617 §3.2.2.2, RFC 7616 §3.4.2)."""
    return _hasher(algorithm)(f"{username}:{realm}:{password}".encode()).hexdigest()


def request_digest(
    algorithm: str,
    ha1_hex: str,
    *,
    method: str,
    uri: str,
    nonce: str,
    nc: str,
    cnonce: str,
    qop: str = "auth",
) -> str:
    """``KD(HA1, nonce:nc:cnonce:qop:H(method:uri))`` in hex (RFC 2617 §3.2.2.1)."""
    h = _hasher(algorithm)
    ha2 = h(f"{method}:{uri}".encode()).hexdigest()
    return h(f"{ha1_hex}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode()).hexdigest()


class DigestVerdict(Enum):
    """What :meth:`DigestServer.verify` found."""

    OK = "ok"
    MISSING = "missing"  # no credentials: challenge (RFC 3261 §22.1)
    STALE = "stale"  # right password, old nonce: challenge with stale=true (RFC 2617 §3.2.1)
    INVALID = "invalid"  # wrong, malformed or replayed credentials: a failed attempt


@dataclass(frozen=True, slots=True)
class DigestResult:
    verdict: DigestVerdict
    username: str | None
    reason: str  # for logs: why, e.g. "nonce replayed (nc 00000001 already seen)"
    uri: str | None = None  # the ``uri`` parameter; the caller matches it to the Request-URI


class DigestServer:
    """Challenges and verifies digest credentials for one realm."""

    def __init__(
        self,
        realm: str,
        secret: bytes,
        nonce_lifetime: float = 300.0,
        algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
    ) -> None:
        if not algorithms:
            raise ValueError("no digest algorithm")
        for name in algorithms:
            if name not in HASHES:
                raise ValueError(f"unsupported digest algorithm {name!r}")
        if not secret:
            raise ValueError("an empty secret would let anyone mint nonces")
        self.realm = realm
        self.nonce_lifetime = nonce_lifetime
        self.algorithms = algorithms
        self._secret = secret
        self._minted = 0
        self._highest_nc: dict[str, int] = {}  # nonce -> highest nc accepted
        self._nc_expiry: list[tuple[float, str]] = []  # heap of (nonce expiry, nonce)

    # ------------------------------------------------------------------ challenges

    def challenges(
        self, now: float, stale: bool = False, algorithms: Sequence[str] | None = None
    ) -> list[str]:
        """``WWW-Authenticate`` values, one per algorithm, in the order of
        ``algorithms`` (RFC 8760 §2.4: most preferred first; default: this server's)."""
        wanted = self.algorithms if algorithms is None else tuple(algorithms)
        unknown = [a for a in wanted if a not in self.algorithms]
        if unknown or not wanted:
            raise ValueError(f"cannot challenge with {list(wanted)}; offered: {self.algorithms}")
        nonce = self._mint(now)
        tail = ", stale=true" if stale else ""
        return [
            f"Digest realm={quote_string(self.realm)}, nonce=\"{nonce}\", "
            f'algorithm={name}, qop="auth"{tail}'
            for name in wanted
        ]

    def _mint(self, now: float) -> str:
        self._minted += 1
        payload = _NONCE_PAYLOAD.pack(now, self._minted)
        return _b64(payload + self._mac(payload))

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:_NONCE_MAC_BYTES]

    def _minted_at(self, nonce: str) -> float | None:
        """When we minted ``nonce``, or None if it is not one of ours."""
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            return None
        # The decoder skips characters outside its alphabet: only the canonical
        # spelling counts, or "nonce!" would be a second nonce with its own nc record.
        if len(raw) != _NONCE_PAYLOAD.size + _NONCE_MAC_BYTES or _b64(raw) != nonce:
            return None
        payload, mac = raw[: _NONCE_PAYLOAD.size], raw[_NONCE_PAYLOAD.size :]
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        minted_at: float = _NONCE_PAYLOAD.unpack(payload)[0]
        return minted_at

    # ------------------------------------------------------------------ verification

    def verify(
        self,
        method: str,
        authorization: str | None,
        lookup: Callable[[str, str], str | None],
        now: float,
    ) -> DigestResult:
        """Check an ``Authorization`` value (RFC 2617 §3.2.2, RFC 7616 §3.4)."""
        self.purge(now)
        if authorization is None:
            return DigestResult(DigestVerdict.MISSING, None, "no credentials")
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme.lower() != "digest":
            return _invalid(None, f"unsupported authentication scheme {scheme[:20]!r}")
        try:
            fields = parse_auth_params(rest, what="credentials")
        except ParseError as exc:
            return _invalid(None, f"malformed credentials: {exc.detail}")
        username = fields.get("username")
        if not username:
            return _invalid(None, "no username")
        missing = [k for k in ("realm", "nonce", "uri", "response") if not fields.get(k)]
        if missing:
            return _invalid(username, f"missing {', '.join(missing)}")
        uri, nonce = fields["uri"], fields["nonce"]
        if fields["realm"] != self.realm:
            return _invalid(username, f"realm {fields['realm'][:40]!r} is not {self.realm!r}")
        algorithm = fields.get("algorithm", "MD5").upper()  # MD5 when absent (RFC 2617 §3.2.1)
        if algorithm not in self.algorithms:
            return _invalid(username, f"algorithm {algorithm[:20]!r} not offered")
        qop = fields.get("qop")
        if qop != "auth":
            return _invalid(username, f"qop {qop!r} instead of auth")
        cnonce, nc = fields.get("cnonce"), fields.get("nc", "")
        if not cnonce:
            return _invalid(username, "no cnonce")
        if len(nc) != 8 or not all(c in "0123456789abcdefABCDEF" for c in nc):
            return _invalid(username, f"nc {nc[:20]!r} is not 8 hex digits")
        stored = lookup(username, algorithm)
        if stored is None:
            return _invalid(username, f"unknown user or no {algorithm} hash for it")
        expected = request_digest(
            algorithm, stored.lower(), method=method, uri=uri, nonce=nonce, nc=nc, cnonce=cnonce
        )
        if not hmac.compare_digest(expected, fields["response"].lower()):
            return _invalid(username, "wrong response (bad password?)", uri)
        minted_at = self._minted_at(nonce)
        if minted_at is None:
            return DigestResult(DigestVerdict.STALE, username, "nonce not minted here", uri)
        if not minted_at <= now <= minted_at + self.nonce_lifetime:
            return DigestResult(DigestVerdict.STALE, username, "nonce expired", uri)
        count = int(nc, 16)
        highest = self._highest_nc.get(nonce)
        if highest is None:
            heapq.heappush(self._nc_expiry, (minted_at + self.nonce_lifetime, nonce))
        elif count <= highest:
            return _invalid(username, f"nonce replayed (nc {nc} not above {highest:08x})", uri)
        self._highest_nc[nonce] = count
        return DigestResult(DigestVerdict.OK, username, "ok", uri)

    def purge(self, now: float) -> None:
        """Forget the nonce counts of expired nonces (they are stale from now on)."""
        while self._nc_expiry and self._nc_expiry[0][0] < now:
            _, nonce = heapq.heappop(self._nc_expiry)
            del self._highest_nc[nonce]

    @property
    def tracked_nonces(self) -> int:
        """How many nonces have their ``nc`` remembered (bounded by the purge)."""
        return len(self._highest_nc)


def _invalid(username: str | None, reason: str, uri: str | None = None) -> DigestResult:
    return DigestResult(DigestVerdict.INVALID, username, reason, uri)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
