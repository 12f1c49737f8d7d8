"""The registrar for agents' phones (RFC 3261 §10.3), sans-IO.

Theory of operation
-------------------
``Registrar.handle(request, source, transport, now)`` takes one REGISTER (already
parsed and through the endpoint's UAS checks: URI scheme, Require) and returns a
:class:`RegisterOutcome`: the response, how long to hold it back (a source that keeps
failing authentication is slowed down), and the bindings the request added or
removed.  The caller (the B2BUA) sends the response after ``delay`` on its timer
queue, calls :meth:`Registrar.expire` at :meth:`Registrar.next_expiry`, and reaches an
agent through :meth:`Registrar.contacts`.  Time is the ``now`` it is given.

The steps of §10.3, in order:

1. The Request-URI names our domain.  Any host is ours unless an ``is_local`` check is
   given (the loopback lab registers to ``sip:127.0.0.1``): otherwise 404.
2. Require is the endpoint's (§8.2.2.3, 420).  The address-of-record is the user part
   of the To URI, the agent's name; no user part is a 400.
3. Authentication (§22.4, :mod:`.digest`).  No credentials: 401 with one challenge per
   algorithm the agent has a hash for.  A nonce that is old but answered with the right
   password: 401 ``stale=true``.  Wrong credentials: 401 again with a fresh nonce
   (§22.1: the UAS re-challenges; the phone then gives up or asks its user), counted
   as a failure of the source host (see *Throttling*).
4. Authorisation: the authenticated user must be the AOR (no third-party
   registration between agents): otherwise 403.
5. The AOR is a known agent: an unknown name never authenticates (the lookup has no
   hash), so it gets 401s like a wrong password and a 404 would only tell a scanner
   which names exist.
6. ``Contact: *`` only alone and with ``Expires: 0`` (else 400); it removes every
   binding of the AOR.
7. Per contact: the ``expires`` parameter, else the Expires header, else
   ``default_expires`` (a malformed value counts as 3600, §20.19); 0 removes the
   binding; an interval above 0, below an hour and below ``min_expires`` refuses the
   whole request with 423 and Min-Expires; above ``max_expires`` it is shortened.
   For a contact already bound with the same Call-ID, a CSeq not above the stored one
   means the request is out of order: the update is aborted and, since updates are
   all-or-nothing, the request fails with 500 (§10.3 step 7 and its last paragraph).
   A different Call-ID (the phone restarted) replaces the binding.  Contacts are
   matched with the URI comparison of §19.1.4.
8. 200 with every current binding as a Contact with ``;expires=`` its remaining
   seconds.  No Date header: the core reads no wall clock, and phones do not need it.

Where a call to the agent goes
------------------------------
A binding keeps the address the REGISTER came from (``source``: the socket address,
which the endpoint also writes into the Via as ``received``/``rport``, RFC 3581) and
its transport.  Calls to an agent behind NAT go to ``source``, not to the (private)
Contact host; a phone registered over TCP is reached over the connection it opened,
which the edge finds by that same address.

Throttling
----------
Failures are counted per source host (IP) over a sliding ``window``.  From
``slow_after`` failures on, the answer to each further failure is held back one
second more (the ``slow_after + 1``-th waits 1 s, the next 2 s, ...).  The failure
that reaches ``block_after`` starts a block: for ``block_for`` seconds every REGISTER
from that host is answered 403 without looking at its credentials.  Only failed
attempts are delayed; challenges and successes never are.  A success does not clear
the host's failures: behind one NAT a phone that registers every minute would
otherwise give a guesser on the same address unlimited attempts; the failures age out
of the window instead.  Records of quiet hosts are dropped (:meth:`forget_failures`,
also run by ``handle`` once per window), so memory is bounded by the failure rate.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote

from .digest import DigestServer, DigestVerdict
from .errors import ParseError, SipError
from .message import Request, Response
from .transaction import Address
from .uri import SipUri, is_digits, parse_uri

_ONE_HOUR = 3600  # §10.3: 423 only for an interval below one hour
_MALFORMED_EXPIRES = 3600  # §20.19: malformed values SHOULD be treated as 3600
_MAX_DELTA = 2**32 - 1  # §20.19 delta-seconds
_Q_VALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")  # §25.1 qvalue
# §19.1.4: a URI with one of these parameters never matches one without it.
_SIGNIFICANT_PARAMS = frozenset({"user", "ttl", "method", "maddr", "transport"})


@dataclass(frozen=True, slots=True)
class RegistrarPolicy:
    """The registrar's limits (built from ``config.RegistrarSettings`` by the B2BUA)."""

    min_expires: int = 60
    max_expires: int = 3600
    default_expires: int = 3600
    nonce_lifetime: float = 300.0
    window: float = 60.0
    slow_after: int = 3
    block_after: int = 10
    block_for: float = 300.0
    max_contacts: int = 10  # per agent: an authenticated phone cannot grow memory forever
    # Challenges in this order.  RFC 8760 prefers SHA-256 first; phones that read only
    # the first challenge and know only MD5 (SIPp 3.6, older devices) need MD5 first.
    algorithms: tuple[str, ...] = ("SHA-256", "MD5")

    def __post_init__(self) -> None:
        if not 0 < self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError("expected 0 < min_expires <= default_expires <= max_expires")
        if not 0 < self.slow_after <= self.block_after:
            raise ValueError("expected 0 < slow_after <= block_after")
        if not self.algorithms or set(self.algorithms) - {"SHA-256", "MD5"}:
            raise ValueError("algorithms: expected SHA-256 and/or MD5")
        if min(self.nonce_lifetime, self.window, self.block_for) <= 0 or self.max_contacts < 1:
            raise ValueError("nonce_lifetime, window, block_for and max_contacts must be positive")


@dataclass(frozen=True, slots=True)
class Binding:
    """One contact of an agent (§10.2.1): where and until when to reach it."""

    aor: str  # the agent name (user part of the To URI)
    contact: str  # the Contact URI as text, with its URI parameters
    expires_at: float
    call_id: str
    cseq: int
    source: Address  # where the REGISTER came from (RFC 3581): calls to the agent go there
    transport: str  # "udp" | "tcp": over TCP, through the connection from ``source``
    registered_at: float  # the last REGISTER that created or refreshed it
    q: float | None = None


@dataclass(frozen=True, slots=True)
class RegisterOutcome:
    response: Response
    delay: float = 0.0  # seconds to hold the response back (a source that keeps failing)
    added: tuple[Binding, ...] = ()  # created or refreshed, as they are now
    removed: tuple[Binding, ...] = ()  # gone: un-registered, or found expired
    username: str | None = None  # the authenticated agent, if any
    detail: str = ""  # why, for the log


@dataclass
class _Failures:
    """Failed authentications of one source host."""

    times: deque[float] = field(default_factory=deque)
    blocked_until: float | None = None


@dataclass(frozen=True, slots=True)
class _Wanted:
    uri: SipUri
    expires: int  # as requested, before clamping
    q: float | None


class Registrar:
    """Bindings of agents to their phones, kept up to date by REGISTER (§10.3)."""

    def __init__(
        self,
        realm: str,
        credentials: Callable[[str, str], str | None],
        policy: RegistrarPolicy,
        secret: bytes,
        is_local: Callable[[str], bool] | None = None,
    ) -> None:
        """``credentials(agent, algorithm)`` gives the agent's HA1 hex for "MD5" or
        "SHA-256", or None; ``secret`` keys the nonces and To tags (random per process
        is right: a nonce from before a restart is then answered ``stale=true``)."""
        self.policy = policy
        self._credentials = credentials
        self._secret = secret
        self._is_local = is_local
        self._digest = DigestServer(realm, secret, policy.nonce_lifetime)
        self._bindings: dict[str, list[Binding]] = {}
        self._failures: dict[str, _Failures] = {}
        self._last_forget: float | None = None

    # ------------------------------------------------------------------ REGISTER

    def handle(
        self, request: Request, source: Address, transport: str, now: float
    ) -> RegisterOutcome:
        """Answer one REGISTER (§10.3); see the module docstring for the steps."""
        if self._last_forget is None or now - self._last_forget >= self.policy.window:
            self.forget_failures(now)
        uri = request.uri
        if not isinstance(uri, SipUri):
            return self._answer(request, 416, None, "Request-URI is not a SIP URI")
        if self._is_local is not None and not self._is_local(uri.host_address):
            return self._answer(
                request, 404, "Not Found (domain not served here)", f"domain {uri.host}"
            )
        to_uri = request.to.uri
        aor = to_uri.user_unescaped if isinstance(to_uri, SipUri) else None
        if not aor:
            return self._answer(
                request, 400, "Bad Request (To has no user part)", "To has no user part"
            )
        host = source[0]
        if self._blocked(host, now):
            return self._answer(
                request, 403, "Forbidden (too many failed authentications)", f"{host} is blocked"
            )

        result = self._digest.verify(
            request.method, request.headers.get("authorization"), self._credentials, now
        )
        if result.verdict is DigestVerdict.MISSING:
            return self._challenge(request, aor, now, stale=False, detail=result.reason)
        if result.verdict is DigestVerdict.STALE:
            return self._challenge(request, aor, now, stale=True, detail=result.reason)
        if result.verdict is DigestVerdict.INVALID:
            return self._failed(request, aor, host, result.reason, now)
        username = result.username
        if username != aor:
            return self._answer(
                request, 403, "Forbidden (credentials of another agent)",
                f"{username!r} may not register {aor!r}", username=username,
            )
        if not _names_request_uri(result.uri or "", request):
            return self._answer(
                request, 400, "Bad Request (digest uri is not the Request-URI)",
                f"digest uri {result.uri!r}", username=username,
            )
        try:
            return self._update(request, aor, source, transport, now)
        except SipError as exc:
            return self._answer(request, exc.status_code, exc.reason, exc.detail, username=aor)

    def _update(
        self, request: Request, aor: str, source: Address, transport: str, now: float
    ) -> RegisterOutcome:
        """§10.3 steps 6-8 for an authenticated request: all or nothing."""
        stored = self._bindings.get(aor, [])
        live = [b for b in stored if b.expires_at > now]
        removed = [b for b in stored if b.expires_at <= now]
        wanted = _requested(request, self.policy.default_expires)
        call_id, cseq = request.call_id, request.cseq.number
        if wanted is None:  # Contact: *
            for binding in live:
                _check_order(binding, call_id, cseq)
            removed += live
            new: list[Binding] = []
            added: list[Binding] = []
        else:
            floor = min(self.policy.min_expires, _ONE_HOUR)
            brief = [w.expires for w in wanted if 0 < w.expires < floor]
            if brief:
                return self._answer(
                    request, 423, None, f"expires {min(brief)} below {self.policy.min_expires}",
                    extra=[("Min-Expires", str(self.policy.min_expires))], username=aor,
                )
            new, added = list(live), []
            for w in wanted:
                old = _find(live, w.uri)
                if old is not None:
                    _check_order(old, call_id, cseq)
                current = _find(new, w.uri)
                if current is not None:
                    new.remove(current)
                    if current in added:
                        added.remove(current)
                if w.expires == 0:
                    if old is not None and old not in removed:
                        removed.append(old)
                    continue
                binding = Binding(
                    aor=aor,
                    contact=str(w.uri),
                    expires_at=now + min(w.expires, self.policy.max_expires),
                    call_id=call_id,
                    cseq=cseq,
                    source=source,
                    transport=transport.lower(),
                    registered_at=now,
                    q=w.q,
                )
                new.append(binding)
                added.append(binding)
            if len(new) > self.policy.max_contacts:
                return self._answer(
                    request, 403, "Forbidden (too many contacts)",
                    f"{len(new)} contacts, at most {self.policy.max_contacts}", username=aor,
                )
        if new:
            self._bindings[aor] = new
        else:
            self._bindings.pop(aor, None)
        contacts = [
            f"<{b.contact}>;expires={max(1, round(b.expires_at - now))}"
            + (f";q={b.q:g}" if b.q is not None else "")
            for b in self.contacts(aor, now)
        ]
        return RegisterOutcome(
            request.response(
                200, to_tag=self._to_tag(request), extra=[("Contact", c) for c in contacts]
            ),
            added=tuple(added),
            removed=tuple(removed),
            username=aor,
            detail=f"{len(added)} added, {len(removed)} removed, {len(contacts)} bound",
        )

    # ------------------------------------------------------------------ answers

    def _answer(
        self,
        request: Request,
        status: int,
        reason: str | None,
        detail: str,
        *,
        extra: list[tuple[str, str]] | None = None,
        delay: float = 0.0,
        username: str | None = None,
    ) -> RegisterOutcome:
        response = request.response(status, reason, to_tag=self._to_tag(request), extra=extra or ())
        return RegisterOutcome(response, delay=delay, username=username, detail=detail)

    def _challenge(
        self, request: Request, aor: str, now: float, *, stale: bool, detail: str,
        delay: float = 0.0,
    ) -> RegisterOutcome:
        # Offer only the algorithms the agent has a hash for, or a phone that picks
        # SHA-256 could never log in with an MD5-only ``ha1``.  For an unknown name
        # offer them all (the cost: an agent with only an MD5 hash is recognisable).
        # The order is the policy's (RFC 8760 §2.4: most preferred first).
        offered = self.policy.algorithms
        algorithms = [a for a in offered if self._credentials(aor, a) is not None]
        challenges = self._digest.challenges(now, stale=stale, algorithms=algorithms or offered)
        return self._answer(
            request, 401, None, detail,
            extra=[("WWW-Authenticate", c) for c in challenges], delay=delay,
        )

    def _to_tag(self, request: Request) -> str:
        # Stable per Call-ID, so no random source is needed (a REGISTER makes no dialog).
        mac = hmac.new(self._secret, b"to-tag:" + request.call_id.encode(), hashlib.sha256)
        return mac.hexdigest()[:16]

    # ------------------------------------------------------------------ throttling

    def _failed(
        self, request: Request, aor: str, host: str, reason: str, now: float
    ) -> RegisterOutcome:
        record = self._failures.setdefault(host, _Failures())
        _slide(record.times, now - self.policy.window)
        record.times.append(now)
        count = len(record.times)
        if count >= self.policy.block_after:
            record.times.clear()
            record.blocked_until = now + self.policy.block_for
            return self._answer(
                request, 403, "Forbidden (too many failed authentications)",
                f"{reason}; {count} failures from {host}: blocked for {self.policy.block_for} s",
            )
        delay = float(max(0, count - self.policy.slow_after))
        return self._challenge(
            request, aor, now, stale=False, detail=f"{reason} (failure {count} from {host})",
            delay=delay,
        )

    def _blocked(self, host: str, now: float) -> bool:
        record = self._failures.get(host)
        if record is None or record.blocked_until is None:
            return False
        if now < record.blocked_until:
            return True
        record.blocked_until = None
        return False

    def forget_failures(self, now: float) -> int:
        """Drop the records of hosts with no failure in the window and no block.

        Returns how many were dropped."""
        self._last_forget = now
        quiet: list[str] = []
        for host, record in self._failures.items():
            _slide(record.times, now - self.policy.window)
            if not record.times and (record.blocked_until is None or record.blocked_until <= now):
                quiet.append(host)
        for host in quiet:
            del self._failures[host]
        return len(quiet)

    # ------------------------------------------------------------------ bindings

    def contacts(self, aor: str, now: float) -> list[Binding]:
        """The agent's unexpired bindings, most recently registered first."""
        live = [b for b in self._bindings.get(aor, ()) if b.expires_at > now]
        return sorted(live, key=lambda b: b.registered_at, reverse=True)

    def bindings(self, now: float) -> list[Binding]:
        """Every unexpired binding, by agent, most recent first."""
        return [b for aor in sorted(self._bindings) for b in self.contacts(aor, now)]

    def expire(self, now: float) -> list[Binding]:
        """Remove and return the bindings whose time is up (``expires_at <= now``)."""
        expired: list[Binding] = []
        for aor in list(self._bindings):
            kept: list[Binding] = []
            for binding in self._bindings[aor]:
                (expired if binding.expires_at <= now else kept).append(binding)
            if kept:
                self._bindings[aor] = kept
            else:
                del self._bindings[aor]
        return sorted(expired, key=lambda b: b.expires_at)

    def next_expiry(self) -> float | None:
        """When the next binding expires (maybe already past: call :meth:`expire`)."""
        return min(
            (b.expires_at for bs in self._bindings.values() for b in bs), default=None
        )


# ---------------------------------------------------------------------- helpers


def _requested(request: Request, default_expires: int) -> list[_Wanted] | None:
    """The contacts a REGISTER asks for, or None for ``Contact: *`` (§10.3 step 6)."""
    values = request.headers.values("contact")
    header = request.headers.get("expires")
    if "*" in values:
        if len(values) != 1 or header is None or _delta_seconds(header) != 0:
            raise SipError(
                400, "Bad Request (Contact * needs Expires: 0 and no other contact)",
                "Contact * misused",
            )
        return None
    fallback = _delta_seconds(header) if header is not None else default_expires
    wanted = []
    for contact in request.contacts:
        if not isinstance(contact.uri, SipUri):
            raise SipError(400, "Bad Request (Contact is not a SIP URI)", str(contact.uri)[:80])
        expires_param = contact.param("expires")
        q_text = contact.param("q")
        if q_text is not None and not _Q_VALUE.fullmatch(q_text):
            raise SipError(400, "Bad Request (malformed q)", f"q={q_text[:20]}")
        wanted.append(
            _Wanted(
                uri=contact.uri,
                expires=fallback if expires_param is None else _delta_seconds(expires_param),
                q=None if q_text is None else float(q_text),
            )
        )
    return wanted


def _delta_seconds(text: str) -> int:
    text = text.strip()
    if not is_digits(text):
        return _MALFORMED_EXPIRES
    return min(int(text), _MAX_DELTA)


def _check_order(binding: Binding, call_id: str, cseq: int) -> None:
    """§10.3 step 7: same Call-ID and a CSeq not above the stored one: out of order."""
    if binding.call_id == call_id and cseq <= binding.cseq:
        raise SipError(
            500, "Server Internal Error (out-of-order REGISTER)",
            f"CSeq {cseq} not above {binding.cseq} for {binding.contact}",
        )


def _find(bindings: list[Binding], uri: SipUri) -> Binding | None:
    for binding in bindings:
        stored = parse_uri(binding.contact)
        if isinstance(stored, SipUri) and same_sip_uri(stored, uri):
            return binding
    return None


def same_sip_uri(a: SipUri, b: SipUri) -> bool:
    """SIP URI equivalence (§19.1.4): user and password case-sensitive after
    unescaping; host case-insensitive; a port only matches the same port; parameters
    present in both must agree (case-insensitively), and user, ttl, method, maddr and
    transport must be in both or neither; URI headers must agree."""
    if a.scheme != b.scheme or a.port != b.port or a.host.lower() != b.host.lower():
        return False
    if _unescaped(a.user) != _unescaped(b.user) or _unescaped(a.password) != _unescaped(
        b.password
    ):
        return False
    pa = {k.lower(): unquote(v or "").lower() for k, v in a.params}
    pb = {k.lower(): unquote(v or "").lower() for k, v in b.params}
    for name in pa.keys() | pb.keys():
        if name in pa and name in pb:
            if pa[name] != pb[name]:
                return False
        elif name in _SIGNIFICANT_PARAMS:
            return False
    return (a.headers or "") == (b.headers or "")


def _unescaped(text: str | None) -> str | None:
    return None if text is None else unquote(text)


def _names_request_uri(digest_uri: str, request: Request) -> bool:
    """RFC 2617 §3.2.2.5: the ``uri`` of the credentials is the Request-URI."""
    if digest_uri == request.raw_uri:
        return True
    try:
        parsed = parse_uri(digest_uri)
    except ParseError:
        return False
    return (
        isinstance(parsed, SipUri)
        and isinstance(request.uri, SipUri)
        and same_sip_uri(parsed, request.uri)
    )


def _slide(times: deque[float], horizon: float) -> None:
    """Drop the failures at or before ``horizon`` (older than the window)."""
    while times and times[0] <= horizon:
        times.popleft()
