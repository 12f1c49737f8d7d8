"""The registrar (softswitch.sip.registrar, RFC 3261 §10.3), driven by ``now``.

Phones are played by REGISTER texts built as a phone writes them (conftest's
``request`` builder) and answer challenges with the digest client
(softswitch.sip.auth.authorization_header), so every registration here is a real
challenge/response round trip.
"""

from __future__ import annotations

import itertools
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from softswitch.sip.auth import authorization_header, parse_challenge
from softswitch.sip.digest import ha1
from softswitch.sip.message import Request, Response, parse_message
from softswitch.sip.registrar import Binding, RegisterOutcome, Registrar, RegistrarPolicy

REALM = "softswitch"
DOMAIN = "sip:127.0.0.1"
PASSWORDS = {"alice": "alice-secret", "bob": "bob-secret"}
NAT = ("203.0.113.7", 40000)  # the public address a phone behind NAT sends from
OTHER_HOST = ("198.51.100.9", 5060)

_ids = itertools.count(1)


def credentials(agent: str, algorithm: str) -> str | None:
    """alice has both hashes; bob only an MD5 ``ha1`` (as config allows)."""
    password = PASSWORDS.get(agent)
    if password is None or (agent == "bob" and algorithm != "MD5"):
        return None
    return ha1(agent, REALM, password, algorithm)


def make_registrar(**policy: Any) -> Registrar:
    return Registrar(REALM, credentials, RegistrarPolicy(**policy), secret=b"registrar test")


@pytest.fixture
def reg() -> Registrar:
    return make_registrar()


@dataclass
class Phone:
    """A softphone: one Call-ID for all its REGISTERs, CSeq counting up (§10.2)."""

    sip: types.SimpleNamespace
    user: str = "alice"
    password: str | None = None
    contact: str = "<sip:alice@192.168.1.10:5060>"
    source: tuple[str, int] = NAT
    transport: str = "udp"
    call_id: str = field(default_factory=lambda: f"reg-{next(_ids)}@phone")
    cseq: int = 0
    last_challenge: Response | None = None

    def build(
        self,
        *,
        contact: str | None = None,
        expires: int | str | None = None,
        authorization: str | None = None,
        to_user: str | None = None,
        uri: str = DOMAIN,
        cseq: int | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Request:
        self.cseq = self.cseq + 1 if cseq is None else cseq
        extra = list(headers)
        if expires is not None:
            extra.append(("Expires", str(expires)))
        if authorization is not None:
            extra.append(("Authorization", authorization))
        aor = f"sip:{to_user or self.user}@127.0.0.1"
        data = self.sip.request(
            "REGISTER", uri, source=self.source, transport=self.transport.upper(),
            call_id=self.call_id, cseq=self.cseq, from_uri=aor, to_uri=aor,
            contact=self.contact if contact is None else contact, headers=extra,
        )
        msg = parse_message(data)
        assert isinstance(msg, Request)
        return msg

    def send(self, reg: Registrar, now: float, **kw: Any) -> RegisterOutcome:
        request = self.build(**kw)
        outcome = reg.handle(request, self.source, self.transport, now)
        if outcome.response.status == 401:
            self.last_challenge = outcome.response
        return outcome

    def answer(self, challenge: Response, uri: str = DOMAIN) -> str:
        _, value = authorization_header(
            challenge, "REGISTER", uri, self.user,
            self.password if self.password is not None else PASSWORDS.get(self.user, "x"),
            cnonce=f"cn{next(_ids)}",
        )
        return value

    def register(self, reg: Registrar, now: float, **kw: Any) -> RegisterOutcome:
        """The usual exchange: REGISTER, 401, REGISTER with credentials."""
        first = self.send(reg, now, **kw)
        assert first.response.status == 401, first
        return self.send(reg, now, authorization=self.answer(first.response), **kw)


@pytest.fixture
def phone(sip: types.SimpleNamespace) -> Phone:
    return Phone(sip)


def contact_values(response: Response) -> list[str]:
    return response.headers.values("contact")


def expires_of(response: Response) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in contact_values(response):
        uri, _, params = value.partition(">")
        for param in params.split(";"):
            if param.startswith("expires="):
                out[uri.lstrip("<")] = int(param.split("=", 1)[1])
    return out


# ------------------------------------------------------------------ challenge


def test_register_is_challenged_then_accepted(reg: Registrar, phone: Phone) -> None:
    first = phone.send(reg, now=10.0)
    assert first.response.status == 401 and first.delay == 0 and first.username is None
    assert first.response.to.tag  # §8.2.6.2
    challenges = first.response.headers.get_all("www-authenticate")
    assert [parse_challenge(c)["algorithm"] for c in challenges] == ["SHA-256", "MD5"]
    assert reg.contacts("alice", 10.0) == []

    ok = phone.send(reg, now=10.5, authorization=phone.answer(first.response))
    assert ok.response.status == 200, ok.response.reason
    assert ok.username == "alice" and ok.removed == ()
    (binding,) = ok.added
    assert binding == Binding(
        aor="alice", contact="sip:alice@192.168.1.10:5060", expires_at=10.5 + 3600,
        call_id=phone.call_id, cseq=2, source=NAT, transport="udp", registered_at=10.5,
    )
    assert reg.contacts("alice", 11.0) == [binding]
    assert expires_of(ok.response) == {"sip:alice@192.168.1.10:5060": 3600}


def test_md5_only_agent_is_offered_md5_only(reg: Registrar, sip: types.SimpleNamespace) -> None:
    bob = Phone(sip, user="bob", contact="<sip:bob@10.0.0.2>")
    first = bob.send(reg, now=0.0)
    challenges = first.response.headers.get_all("www-authenticate")
    assert [parse_challenge(c)["algorithm"] for c in challenges] == ["MD5"]
    ok = bob.send(reg, now=0.0, authorization=bob.answer(first.response))
    assert ok.response.status == 200 and ok.username == "bob"


def test_wrong_password_is_challenged_again_and_never_binds(
    reg: Registrar, sip: types.SimpleNamespace
) -> None:
    thief = Phone(sip, password="guess")
    first = thief.send(reg, now=0.0)
    again = thief.send(reg, now=0.0, authorization=thief.answer(first.response))
    assert again.response.status == 401 and again.username is None and again.added == ()
    assert "wrong response" in again.detail
    fresh = parse_challenge(again.response.headers.get("www-authenticate") or "")
    assert fresh["nonce"] != parse_challenge(first.response.headers.get("www-authenticate")
                                             or "")["nonce"]
    assert reg.bindings(0.0) == []


def test_unknown_agent_fails_like_a_wrong_password(
    reg: Registrar, sip: types.SimpleNamespace
) -> None:
    # No 404 before authentication: that would tell a scanner which agents exist.
    mallory = Phone(sip, user="mallory", contact="<sip:m@10.0.0.66>")
    first = mallory.send(reg, now=0.0)
    assert first.response.status == 401
    assert len(first.response.headers.get_all("www-authenticate")) == 2
    again = mallory.send(reg, now=0.0, authorization=mallory.answer(first.response))
    assert again.response.status == 401 and reg.bindings(0.0) == []


def test_credentials_of_another_agent_are_forbidden(reg: Registrar, phone: Phone) -> None:
    first = phone.send(reg, now=0.0, to_user="bob")
    outcome = phone.send(reg, now=0.0, to_user="bob", authorization=phone.answer(first.response))
    assert outcome.response.status == 403 and outcome.username == "alice"
    assert reg.bindings(0.0) == []


def test_stale_nonce_gets_stale_true_and_the_retry_succeeds(
    reg: Registrar, phone: Phone
) -> None:
    first = phone.send(reg, now=0.0)
    late = phone.send(reg, now=300.5, authorization=phone.answer(first.response))
    assert late.response.status == 401 and late.delay == 0
    challenge = parse_challenge(late.response.headers.get("www-authenticate") or "")
    assert challenge["stale"] == "true"
    ok = phone.send(reg, now=301.0, authorization=phone.answer(late.response))
    assert ok.response.status == 200


def test_digest_uri_must_be_the_request_uri(reg: Registrar, phone: Phone) -> None:
    first = phone.send(reg, now=0.0)
    elsewhere = phone.answer(first.response, uri="sip:other.example")
    outcome = phone.send(reg, now=0.0, authorization=elsewhere)
    assert outcome.response.status == 400 and reg.bindings(0.0) == []
    # The same URI spelt differently (§19.1.4: host case) is the same resource.
    first = phone.send(reg, now=0.0)
    respelt = phone.answer(first.response, uri="SIP:127.0.0.1;x-vendor=1")
    assert phone.send(reg, now=0.0, authorization=respelt).response.status == 200


# ------------------------------------------------------------------ contacts


def test_two_phones_of_one_agent(reg: Registrar, sip: types.SimpleNamespace) -> None:
    desk = Phone(sip, contact="<sip:alice@192.168.1.10:5060>", source=NAT)
    mobile = Phone(sip, contact="<sip:alice@10.1.2.3:5062;transport=tcp>",
                   source=OTHER_HOST, transport="tcp")
    desk.register(reg, now=0.0)
    ok = mobile.register(reg, now=5.0)
    assert ok.response.status == 200
    assert expires_of(ok.response) == {
        "sip:alice@192.168.1.10:5060": 3595, "sip:alice@10.1.2.3:5062;transport=tcp": 3600,
    }
    latest, older = reg.contacts("alice", 6.0)  # most recent first
    assert latest.contact == "sip:alice@10.1.2.3:5062;transport=tcp"
    assert latest.transport == "tcp" and latest.source == OTHER_HOST
    assert older.contact == "sip:alice@192.168.1.10:5060" and older.source == NAT
    assert older.transport == "udp"


def test_several_contacts_in_one_register(reg: Registrar, phone: Phone) -> None:
    ok = phone.register(
        reg, now=0.0,
        contact="<sip:alice@10.0.0.1>;expires=600;q=0.7, <sip:alice@10.0.0.2>;q=1",
    )
    assert ok.response.status == 200 and len(ok.added) == 2
    by_contact = {b.contact: b for b in reg.contacts("alice", 1.0)}
    assert by_contact["sip:alice@10.0.0.1"].expires_at == 600.0
    assert by_contact["sip:alice@10.0.0.1"].q == 0.7
    assert by_contact["sip:alice@10.0.0.2"].expires_at == 3600.0
    assert any(";q=0.7" in v for v in contact_values(ok.response))


def test_query_without_contact_lists_the_bindings(reg: Registrar, phone: Phone) -> None:
    phone.register(reg, now=0.0)
    query = phone.register(reg, now=100.0, contact="")
    assert query.response.status == 200 and query.added == () and query.removed == ()
    assert expires_of(query.response) == {"sip:alice@192.168.1.10:5060": 3500}


def test_refresh_moves_the_expiry(reg: Registrar, phone: Phone) -> None:
    phone.register(reg, now=0.0, expires=600)
    refresh = phone.register(reg, now=500.0, expires=600)
    (binding,) = refresh.added
    assert binding.expires_at == 1100.0 and binding.registered_at == 500.0
    assert reg.contacts("alice", 1000.0) == [binding]


def test_contacts_match_by_sip_uri_equivalence(reg: Registrar, phone: Phone) -> None:
    phone.register(reg, now=0.0, contact="<sip:alice@PHONE.example:5060;Transport=UDP>")
    phone.register(reg, now=1.0, contact="<sip:alice@phone.example:5060;transport=udp;ob>")
    assert len(reg.contacts("alice", 2.0)) == 1
    # A port, or a transport parameter on one side only, makes another contact.
    phone.register(reg, now=2.0, contact="<sip:alice@phone.example;transport=udp>")
    phone.register(reg, now=3.0, contact="<sip:alice@phone.example:5060>")
    assert len(reg.contacts("alice", 4.0)) == 3


def test_too_many_contacts(sip: types.SimpleNamespace) -> None:
    reg = make_registrar(max_contacts=2)
    phone = Phone(sip)
    phone.register(reg, now=0.0, contact="<sip:alice@10.0.0.1>, <sip:alice@10.0.0.2>")
    outcome = phone.register(reg, now=1.0, contact="<sip:alice@10.0.0.3>")
    assert outcome.response.status == 403 and len(reg.contacts("alice", 1.0)) == 2


# ------------------------------------------------------------------ expires


def test_expires_header_and_parameter(reg: Registrar, phone: Phone) -> None:
    phone.register(reg, now=0.0, expires=120, contact="<sip:alice@10.0.0.1>, "
                   "<sip:alice@10.0.0.2>;expires=300")
    by_contact = {b.contact: b.expires_at for b in reg.contacts("alice", 1.0)}
    assert by_contact == {"sip:alice@10.0.0.1": 120.0, "sip:alice@10.0.0.2": 300.0}


def test_expires_above_the_maximum_is_clamped(sip: types.SimpleNamespace) -> None:
    reg = make_registrar(default_expires=1800, max_expires=1800)
    phone = Phone(sip)
    ok = phone.register(reg, now=0.0, expires=99999)
    assert ok.response.status == 200 and ok.added[0].expires_at == 1800.0
    assert expires_of(ok.response) == {"sip:alice@192.168.1.10:5060": 1800}


def test_malformed_expires_counts_as_an_hour(reg: Registrar, phone: Phone) -> None:
    ok = phone.register(reg, now=0.0, expires="soon")  # §20.19
    assert ok.added[0].expires_at == 3600.0


@pytest.mark.parametrize(
    ("expires", "contact"),
    [(30, None), (None, "<sip:alice@10.0.0.1>;expires=59, <sip:alice@10.0.0.2>")],
)
def test_interval_too_brief(
    reg: Registrar, phone: Phone, expires: int | None, contact: str | None
) -> None:
    outcome = phone.register(reg, now=0.0, expires=expires, contact=contact)
    assert outcome.response.status == 423
    assert outcome.response.headers.get("min-expires") == "60"
    assert reg.bindings(0.0) == []  # the whole request is refused


def test_unregister_one_contact(reg: Registrar, phone: Phone) -> None:
    phone.register(reg, now=0.0, contact="<sip:alice@10.0.0.1>, <sip:alice@10.0.0.2>")
    gone = phone.register(reg, now=10.0, contact="<sip:alice@10.0.0.1>;expires=0")
    assert gone.response.status == 200
    assert [b.contact for b in gone.removed] == ["sip:alice@10.0.0.1"]
    assert [b.contact for b in reg.contacts("alice", 11.0)] == ["sip:alice@10.0.0.2"]
    assert list(expires_of(gone.response)) == ["sip:alice@10.0.0.2"]


def test_unregister_all_with_star(reg: Registrar, sip: types.SimpleNamespace) -> None:
    desk, mobile = Phone(sip), Phone(sip, contact="<sip:alice@10.9.9.9>")
    desk.register(reg, now=0.0)
    mobile.register(reg, now=1.0)
    gone = desk.register(reg, now=2.0, contact="*", expires=0)
    assert gone.response.status == 200 and len(gone.removed) == 2
    assert contact_values(gone.response) == []
    assert reg.contacts("alice", 2.0) == [] and reg.next_expiry() is None


@pytest.mark.parametrize(
    ("contact", "expires"),
    [("*", None), ("*", 60), ("*, <sip:alice@10.0.0.1>", 0)],
    ids=["no-expires", "expires-60", "with-another-contact"],
)
def test_star_misused(reg: Registrar, phone: Phone, contact: str, expires: int | None) -> None:
    phone.register(reg, now=0.0)
    outcome = phone.register(reg, now=1.0, contact=contact, expires=expires)
    assert outcome.response.status == 400 and len(reg.contacts("alice", 1.0)) == 1


# ------------------------------------------------------------------ time


def test_bindings_expire_exactly_on_time(reg: Registrar, sip: types.SimpleNamespace) -> None:
    short = Phone(sip, contact="<sip:alice@10.0.0.1>")
    long = Phone(sip, contact="<sip:alice@10.0.0.2>")
    short.register(reg, now=10.0, expires=60)
    long.register(reg, now=20.0, expires=120)
    assert reg.next_expiry() == 70.0
    assert len(reg.contacts("alice", 69.999)) == 2
    assert reg.expire(69.999) == []
    assert [b.contact for b in reg.contacts("alice", 70.0)] == ["sip:alice@10.0.0.2"]
    (expired,) = reg.expire(70.0)
    assert expired.contact == "sip:alice@10.0.0.1" and expired.expires_at == 70.0
    assert reg.next_expiry() == 140.0
    assert len(reg.bindings(139.0)) == 1 and reg.bindings(140.0) == []
    assert [b.contact for b in reg.expire(500.0)] == ["sip:alice@10.0.0.2"]
    assert reg.next_expiry() is None and reg.expire(600.0) == []


def test_an_expired_binding_is_reported_removed_by_the_next_register(
    reg: Registrar, sip: types.SimpleNamespace
) -> None:
    old = Phone(sip, contact="<sip:alice@10.0.0.1>")
    old.register(reg, now=0.0, expires=60)
    outcome = Phone(sip, contact="<sip:alice@10.0.0.2>").register(reg, now=100.0)
    assert [b.contact for b in outcome.removed] == ["sip:alice@10.0.0.1"]
    assert reg.expire(100.0) == []


# ------------------------------------------------------------------ NAT and TCP


def test_binding_keeps_the_address_the_register_came_from(
    reg: Registrar, phone: Phone
) -> None:
    # Contact says 192.168.1.10:5060 (behind NAT); the packets came from NAT.
    phone.register(reg, now=0.0)
    (binding,) = reg.contacts("alice", 0.0)
    assert binding.source == NAT and binding.contact == "sip:alice@192.168.1.10:5060"


def test_tcp_registration_is_reached_over_tcp(reg: Registrar, sip: types.SimpleNamespace) -> None:
    phone = Phone(sip, transport="tcp", source=("203.0.113.8", 51234))
    phone.register(reg, now=0.0)
    (binding,) = reg.contacts("alice", 0.0)
    assert binding.transport == "tcp" and binding.source == ("203.0.113.8", 51234)


# ------------------------------------------------------------------ ordering (§10.3 step 7)


def test_out_of_order_register_fails_with_500(reg: Registrar, phone: Phone) -> None:
    phone.register(reg, now=0.0, expires=600)  # CSeq 1 (401) and 2 (200)
    phone.cseq = 10
    phone.register(reg, now=1.0, expires=600)  # CSeq 12 bound
    # A delayed un-REGISTER from before (CSeq 5, then 6 with credentials).
    challenge = phone.send(reg, now=2.0, expires=0, cseq=5)
    assert challenge.response.status == 401
    late = phone.send(reg, now=2.0, expires=0, cseq=6,
                      authorization=phone.answer(challenge.response))
    assert late.response.status == 500 and late.removed == ()
    (binding,) = reg.contacts("alice", 3.0)
    assert binding.cseq == 12 and binding.expires_at == 601.0
    star = phone.register(reg, now=3.0, contact="*", expires=0, cseq=7)
    assert star.response.status == 500 and len(reg.contacts("alice", 3.0)) == 1


def test_a_new_call_id_replaces_the_binding_whatever_its_cseq(
    reg: Registrar, sip: types.SimpleNamespace
) -> None:
    before = Phone(sip, cseq=100)
    before.register(reg, now=0.0)
    rebooted = Phone(sip)  # same contact, new Call-ID, CSeq from 1
    ok = rebooted.register(reg, now=50.0)
    assert ok.response.status == 200
    (binding,) = reg.contacts("alice", 50.0)
    assert binding.call_id == rebooted.call_id and binding.registered_at == 50.0


# ------------------------------------------------------------------ malformed


def test_to_without_user_is_a_bad_request(reg: Registrar, phone: Phone) -> None:
    request = phone.build()
    request.headers.set("to", "<sip:127.0.0.1>")
    request.invalidate()
    outcome = reg.handle(request, phone.source, "udp", 0.0)
    assert outcome.response.status == 400 and "To" in outcome.response.reason


@pytest.mark.parametrize(
    "contact", ["<tel:+14155550100>", "<sip:alice@10.0.0.1>;q=2", "<sip:alice@10.0.0.1>;q=x"]
)
def test_bad_contact_is_a_bad_request(reg: Registrar, phone: Phone, contact: str) -> None:
    outcome = phone.register(reg, now=0.0, contact=contact)
    assert outcome.response.status == 400 and reg.bindings(0.0) == []


def test_foreign_domain_when_locality_is_checked(sip: types.SimpleNamespace) -> None:
    reg = Registrar(REALM, credentials, RegistrarPolicy(), b"s",
                    is_local=lambda host: host in ("127.0.0.1", "softswitch.example"))
    phone = Phone(sip)
    assert phone.send(reg, 0.0, uri="sip:elsewhere.example").response.status == 404
    assert phone.send(reg, 0.0, uri="sip:softswitch.example").response.status == 401


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError):
        RegistrarPolicy(min_expires=120, default_expires=60)
    with pytest.raises(ValueError):
        RegistrarPolicy(slow_after=5, block_after=4)
    with pytest.raises(ValueError):
        RegistrarPolicy(window=0)


# ------------------------------------------------------------------ throttling


def fail(reg: Registrar, sip: types.SimpleNamespace, now: float,
         source: tuple[str, int] = NAT) -> RegisterOutcome:
    thief = Phone(sip, password="guess", source=source)
    first = thief.send(reg, now)
    assert first.response.status == 401 and first.delay == 0  # challenges are never slowed
    return thief.send(reg, now, authorization=thief.answer(first.response))


def test_failures_are_slowed_down_one_second_more_each(
    reg: Registrar, sip: types.SimpleNamespace
) -> None:
    delays = [fail(reg, sip, now=float(i)).delay for i in range(6)]
    assert delays == [0, 0, 0, 1, 2, 3]  # slow_after=3
    # Another host is not slowed; a success from the slowed host is not either.
    assert fail(reg, sip, now=6.0, source=OTHER_HOST).delay == 0
    ok = Phone(sip).register(reg, now=7.0)
    assert ok.response.status == 200 and ok.delay == 0
    # ... and does not clear the host's record: the next failure waits longer.
    assert fail(reg, sip, now=8.0).delay == 4


def test_failures_leave_the_window(reg: Registrar, sip: types.SimpleNamespace) -> None:
    for i in range(4):
        fail(reg, sip, now=float(i))
    assert fail(reg, sip, now=30.0).delay == 2
    # window=60: the failures at 0..3 are gone at 63, the one at 30 is not.
    assert fail(reg, sip, now=63.0).delay == 0
    assert fail(reg, sip, now=64.0).delay == 0
    assert fail(reg, sip, now=65.0).delay == 1


def test_burst_blocks_the_host_then_lets_it_back(sip: types.SimpleNamespace) -> None:
    reg = make_registrar(slow_after=2, block_after=4, block_for=100.0)
    outcomes = [fail(reg, sip, now=float(i)) for i in range(4)]
    assert [o.response.status for o in outcomes] == [401, 401, 401, 403]
    assert [o.delay for o in outcomes] == [0, 0, 1, 0]
    blocked_at = 3.0
    # Blocked: even the right password is refused, without a challenge.
    phone = Phone(sip)
    refused = phone.send(reg, blocked_at + 50)
    assert refused.response.status == 403 and "too many" in refused.response.reason
    assert refused.response.headers.get("www-authenticate") is None
    assert phone.send(reg, blocked_at + 99.9).response.status == 403
    # Other hosts are served meanwhile.
    assert Phone(sip, source=OTHER_HOST).register(reg, blocked_at + 60).response.status == 200
    # The block ends: accepted again, and a new failure starts from zero.
    assert phone.register(reg, blocked_at + 100).response.status == 200
    assert fail(reg, sip, now=blocked_at + 101).delay == 0


def test_quiet_hosts_are_forgotten(sip: types.SimpleNamespace) -> None:
    reg = make_registrar(slow_after=2, block_after=3, block_for=100.0)
    for i in range(20):
        fail(reg, sip, now=0.0, source=(f"192.0.2.{i}", 5060))
    for _ in range(3):
        fail(reg, sip, now=0.0, source=NAT)  # blocked until 100
    assert reg.forget_failures(30.0) == 0
    assert reg.forget_failures(60.0) == 20  # window over; the blocked one stays
    assert reg.forget_failures(100.0) == 1


def test_challenges_follow_the_configured_order(phone: Phone) -> None:
    """SIPp 3.6 and older phones read only the first challenge and know only MD5."""
    for order in (("MD5", "SHA-256"), ("SHA-256", "MD5")):
        outcome = phone.send(make_registrar(algorithms=order), 0.0)
        challenges = outcome.response.headers.get_all("www-authenticate")
        assert [parse_challenge(c)["algorithm"] for c in challenges] == list(order)
