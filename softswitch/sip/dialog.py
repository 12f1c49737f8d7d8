"""Dialogs (RFC 3261 §12): the state two user agents share between INVITE and BYE.

A dialog is identified by Call-ID, local tag and remote tag.  It remembers the remote
target (the peer's Contact), the route set (Record-Route, reversed for the UAC), and
the CSeq numbers in both directions, and builds in-dialog requests (§12.2.1.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from .errors import SipError
from .message import Headers, Request, Response
from .uri import NameAddr, SipUri, parse_name_addr, parse_uri

DialogId = tuple[str, str, str]  # (Call-ID, local tag, remote tag)


class DialogState(Enum):
    """§12: early (after a 1xx with a tag) or confirmed (after a 2xx)."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(slots=True)
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # From (UAC) / To (UAS) value without tag, as a name-addr
    remote_uri: str
    remote_target: SipUri
    route_set: list[str] = field(default_factory=list)
    local_cseq: int = 0
    remote_cseq: int | None = None
    state: DialogState = DialogState.CONFIRMED

    @property
    def id(self) -> DialogId:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def as_uac(cls, request: Request, response: Response) -> Dialog:
        """§12.1.2: the UAC's dialog from its request and a 1xx/2xx with a To tag."""
        tag = response.to.tag
        if tag is None:
            raise SipError(400, "Bad Request", "response without a To tag")
        return cls(
            call_id=request.call_id,
            local_tag=request.from_.tag or "",
            remote_tag=tag,
            local_uri=_without_tag(request.from_),
            remote_uri=_without_tag(response.to),
            remote_target=_target(response),
            route_set=[str(r) for r in reversed(response.record_route)],
            local_cseq=request.cseq.number,
            state=DialogState.CONFIRMED if response.status >= 200 else DialogState.EARLY,
        )

    @classmethod
    def as_uas(cls, request: Request, local_tag: str) -> Dialog:
        """§12.1.1: the UAS's dialog from the INVITE it answers."""
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_.tag or "",
            local_uri=_without_tag(request.to),
            remote_uri=_without_tag(request.from_),
            remote_target=_target(request),
            route_set=[str(r) for r in request.record_route],
            remote_cseq=request.cseq.number,
        )

    def update_target(self, message: Request | Response) -> None:
        """A target refresh (re-INVITE, UPDATE, their 2xx) moves the remote target (§12.2)."""
        if message.headers.get("contact") is not None:
            self.remote_target = _target(message)

    def accept_remote_cseq(self, request: Request) -> bool:
        """§12.2.2: a CSeq lower than the last one is out of order (answer 500)."""
        number = request.cseq.number
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_cseq is not None and number <= self.remote_cseq:
            return False
        self.remote_cseq = number
        return True

    def create_request(self, method: str, via: str, contact: str | None) -> Request:
        """§12.2.1.1 with loose routing: Request-URI is the remote target."""
        if method not in ("ACK", "CANCEL"):
            self.local_cseq += 1
        headers = Headers()
        headers.set("via", via)
        headers.set("max-forwards", "70")
        headers.set("from", f"{self.local_uri};tag={self.local_tag}")
        headers.set("to", f"{self.remote_uri};tag={self.remote_tag}")
        headers.set("call-id", self.call_id)
        headers.set("cseq", f"{self.local_cseq} {method}")
        if self.route_set:
            headers.set_all("route", self.route_set)
        if contact is not None:
            headers.set("contact", contact)
        return Request(method, self.remote_target, headers)

    @property
    def next_hop(self) -> SipUri:
        """Where in-dialog requests go: the first route, else the remote target (§8.1.2)."""
        if self.route_set:
            uri = parse_name_addr(self.route_set[0]).uri
            if isinstance(uri, SipUri):
                return uri
        return self.remote_target


def _without_tag(address: NameAddr) -> str:
    kept = tuple((k, v) for k, v in address.params if k.lower() != "tag")
    return str(NameAddr(address.uri, address.display, kept))


def _target(message: Request | Response) -> SipUri:
    contacts = message.contacts
    if not contacts:
        raise SipError(400, "Bad Request", "no Contact to reach the peer at")
    uri = contacts[0].uri
    if not isinstance(uri, SipUri):
        uri = parse_uri(str(uri))
        if not isinstance(uri, SipUri):
            raise SipError(416, "Unsupported URI Scheme", "Contact is not a SIP URI")
    return uri
