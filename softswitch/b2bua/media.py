"""The media side of one call: which legs are anchored, their SDP and their streams.

Theory of operation
-------------------
A leg is *anchored* when softswitch must be in its media path — the receiving
number has a dial extension, a whisper or screening (or the tracking number has a
whisper) — or when ``media.mode`` is ``relay``.  Otherwise SDP passes through
untouched and RTP flows between caller and receiving number directly.

For an anchored leg the offer sent to the receiving number is the caller's offer
restricted to what softswitch can relay and generate (PCMU, PCMA, telephone-event;
RFC 3264 §5.1), with softswitch's address and the leg's own port, and the caller's
payload type numbers kept so that relayed packets need no translation.  When the
caller sent no offer (a late offer), softswitch makes its own.  The receiving
number's answer (in a 18x or the 200) tells the leg's stream where to send; the
caller gets an answer (or, after a late offer, an offer) built from its own offer
and the codecs the receiving number chose, with softswitch's address and the
caller-side stream's port.  In-dialog offers and answers (re-INVITE, UPDATE, hold
with ``a=sendonly``/``inactive``) are rewritten the same way in both directions,
each side keeping its own ``o=`` line whose version grows with every new SDP
(RFC 3264 §8).

Early media of the anchored leg whose SDP reached the caller is relayed one way
(receiving number → caller) until that leg answers; from bridge on, both ways.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import MediaSettings
from ..media.streams import MediaEngine, MediaStream, MediaUnavailable, Remote
from ..sip.sdp import (
    ANCHORABLE,
    Media,
    Origin,
    SdpError,
    SessionDescription,
    anchored,
    answer_codecs,
    default_offer,
    restrict,
    with_direction,
)

SDP = "application/sdp"
G711 = ("PCMU", "PCMA")
_PCMU = ("PCMU", "telephone-event")


@dataclass(slots=True)
class Side:
    """softswitch's SDP toward one leg: its stream and its own o= line."""

    stream: MediaStream
    origin: Origin
    sent: bool = False  # an SDP went to that side: the next one has a new o= version
    remote: Remote | None = None  # from that side's last SDP
    answer: tuple[SessionDescription, Media] | None = None  # a leg's answer and its audio

    def aim(self, sd: SessionDescription, media: Media) -> None:
        """That side's SDP says where its RTP goes: tell the stream."""
        self.remote = _remote(sd, media)
        self.stream.set_remote(self.remote)


def _remote(sd: SessionDescription, media: Media) -> Remote:
    """Where the peer of ``sd`` receives RTP and what softswitch may send it."""
    host = sd.address_of(media) or ""
    codecs = media.codecs
    audio = next((c for c in codecs if c.name.upper() in G711), None)
    event = next((c for c in codecs if c.name.lower() == "telephone-event"), None)
    direction = media.direction(sd)
    return Remote(
        host=host,
        port=media.port if host and host not in ("0.0.0.0", "::") else 0,
        rtcp_port=media.rtcp_port or media.port + 1,
        sending=direction in ("sendrecv", "sendonly"),
        codec=audio.name.upper() if audio is not None else "PCMU",
        payload_type=audio.payload_type if audio is not None else 0,
        event_payload_type=event.payload_type if event is not None else None,
    )


class CallMedia:
    """SDP and streams of one call (see the module docstring)."""

    def __init__(
        self,
        engine: MediaEngine | None,
        settings: MediaSettings,
        offer_body: bytes,
        session_id: int,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.session_id = session_id
        self._offer_body = offer_body
        self._parsed = False  # the caller's offer is parsed only if a leg is anchored
        self._caller_offer: SessionDescription | None = None
        self._caller_offer_error: SdpError | None = None
        self.inbound: Side | None = None
        self.legs: dict[int, Side] = {}  # by leg number
        self.early_from: int | None = None  # the leg whose early media the caller hears
        # softswitch answered the caller itself (a voice menu, a queue): every leg is
        # anchored from then on and offered only the codec the caller's answer chose.
        self.caller_codec: str | None = None

    # ---- deciding ------------------------------------------------------------------

    def _parse_offer(self) -> None:
        if not self._parsed:
            self._parsed = True
            if self._offer_body:
                try:
                    self._caller_offer = SessionDescription.parse(self._offer_body)
                except SdpError as exc:
                    self._caller_offer_error = exc

    @property
    def caller_offer(self) -> SessionDescription | None:
        self._parse_offer()
        return self._caller_offer

    @property
    def caller_offer_error(self) -> SdpError | None:
        self._parse_offer()
        return self._caller_offer_error

    def anchors(self, needs_media: bool) -> bool:
        return self.engine is not None and (
            needs_media or self.settings.mode == "relay" or self.caller_codec is not None
        )

    def _origin(self) -> Origin:
        host = self.settings.host
        return Origin(
            "softswitch",
            str(self.session_id),
            1,
            "IN",
            "IP6" if ":" in host else "IP4",
            host,
        )

    def _open(self) -> Side:
        assert self.engine is not None
        return Side(self.engine.open(), self._origin())

    def _sdp(self, side: Side, sd: SessionDescription) -> bytes:
        """``sd`` as softswitch sends it to ``side``: its address, port and o= line."""
        if side.sent:
            side.origin = side.origin.next_version()
        side.sent = True
        host, port = side.stream.local
        return bytes(anchored(sd, host, port, side.origin))

    # ---- the outbound offer ----------------------------------------------------------

    def leg_offer(self, number: int, needs_media: bool, body: bytes) -> bytes:
        """The SDP of the INVITE for leg ``number``: the caller's as it is, or anchored.

        Raises MediaUnavailable (no port) or SdpError/NotAcceptable (nothing to anchor).
        """
        if not self.anchors(needs_media):
            return body
        if self.caller_offer_error is not None:
            raise self.caller_offer_error
        names = (self.caller_codec, "telephone-event") if self.caller_codec else ANCHORABLE
        caller_offer = None
        if self.caller_offer is not None:
            audio = self.caller_offer.audio
            if audio is None:
                raise SdpError("the caller's offer has no audio stream")
            caller_offer = self._copy_with(self.caller_offer, audio, restrict(audio, names))
        side = self._open()
        self.legs[number] = side
        host, port = side.stream.local
        if caller_offer is None:
            offer = default_offer(host, port, side.origin)
            audio = offer.audio
            assert audio is not None
            caller_offer = self._copy_with(offer, audio, restrict(audio, names))
        return self._sdp(side, caller_offer)

    def answer_here(self) -> bytes:
        """softswitch answers the caller itself: the SDP of its 200 — an answer with
        one G.711 law (and telephone-event), or softswitch's offer after a late offer.

        Raises MediaUnavailable (no engine or no port) or SdpError/NotAcceptable."""
        if self.engine is None:
            raise MediaUnavailable("media is off: softswitch cannot answer calls itself")
        if self.caller_offer_error is not None:
            raise self.caller_offer_error
        caller = self._caller_side()
        host, port = caller.stream.local
        if self.caller_offer is None:
            offer = default_offer(host, port, caller.origin)
            audio = offer.audio
            assert audio is not None
            self.caller_codec = "PCMU"
            return self._sdp(caller, self._copy_with(offer, audio, restrict(audio, _PCMU)))
        audio = self.caller_offer.audio
        if audio is None:
            raise SdpError("the caller's offer has no audio stream")
        codec = next(c.name.upper() for c in restrict(audio).codecs if c.name.upper() in G711)
        answer = restrict(audio, (codec, "telephone-event"))
        self._set_caller_remote(caller)
        self.caller_codec = codec
        return self._sdp(caller, self._copy_with(self.caller_offer, audio, answer))

    @staticmethod
    def _copy_with(sd: SessionDescription, old: Media, new: Media) -> SessionDescription:
        """A copy of ``sd`` with the media section ``old`` replaced by ``new``."""
        copy = SessionDescription.parse(bytes(sd))
        copy.media = [new if m is old else c for m, c in zip(sd.media, copy.media, strict=True)]
        return copy

    def anchored_leg(self, number: int) -> bool:
        return number in self.legs

    def stream_of(self, number: int) -> MediaStream | None:
        side = self.legs.get(number)
        return side.stream if side is not None else None

    # ---- answers from a leg ------------------------------------------------------------

    def leg_sdp(self, number: int, body: bytes) -> None:
        """A receiving number's SDP (18x or 200) says where its stream sends.

        Raises SdpError for an SDP that cannot be used (malformed, no audio)."""
        side = self.legs.get(number)
        if side is None or not body:
            return
        sd = SessionDescription.parse(body)
        audio = sd.audio
        if audio is None:
            raise SdpError("the answer has no audio stream")
        side.answer = (sd, audio)
        side.aim(sd, audio)

    def remote_of(self, number: int) -> Remote | None:
        side = self.legs.get(number)
        return side.remote if side is not None else None

    def sdp_for_caller(self, number: int, body: bytes, early: bool) -> bytes:
        """What the caller gets for leg ``number``'s SDP: the body itself when the leg is
        not anchored, else softswitch's own; ``early`` media is relayed from then on."""
        side = self.legs.get(number)
        if side is None or side.answer is None:
            return body
        caller = self._caller_side()
        if early:
            self.early_from = number
            side.stream.relay_to(caller.stream)
        return self._to_caller(caller, *side.answer)

    def _caller_side(self) -> Side:
        if self.inbound is None:
            self.inbound = self._open()
        return self.inbound

    def _to_caller(self, caller: Side, leg_sd: SessionDescription, leg_audio: Media) -> bytes:
        """An answer to the caller's offer with the codecs the leg chose (or, after a
        late offer, softswitch's offer of them)."""
        host, port = caller.stream.local
        if self.caller_offer is None:
            offer = default_offer(host, port, caller.origin)
            audio = offer.audio
            assert audio is not None
            kept = tuple(c.name for c in answer_codecs(audio, leg_audio))
            return self._sdp(caller, self._copy_with(offer, audio, restrict(audio, kept or G711)))
        offered = self.caller_offer.audio
        assert offered is not None
        kept = tuple(c.name for c in answer_codecs(offered, leg_audio))
        answered = with_direction(restrict(offered, kept or G711), leg_audio.direction(leg_sd))
        self._set_caller_remote(caller)
        return self._sdp(caller, self._copy_with(self.caller_offer, offered, answered))

    def _set_caller_remote(self, caller: Side) -> None:
        offer = self.caller_offer
        if offer is not None and offer.audio is not None and caller.remote is None:
            caller.aim(offer, offer.audio)

    def caller_remote(self) -> Remote | None:
        return self.inbound.remote if self.inbound is not None else None

    def caller_ack_sdp(self, body: bytes) -> None:
        """The caller's answer in its ACK, after softswitch offered in the 200."""
        if self.inbound is None or not body:
            return
        try:
            sd = SessionDescription.parse(body)
        except SdpError:
            return
        if sd.audio is not None:
            self.inbound.aim(sd, sd.audio)

    # ---- in-dialog offers and answers -----------------------------------------------------

    def relay_sdp(self, from_leg: int | None, to_leg: int | None, body: bytes) -> bytes:
        """An SDP from one side (``None``: the caller) rewritten for the other side."""
        source = self.inbound if from_leg is None else self.legs.get(from_leg)
        target = self.inbound if to_leg is None else self.legs.get(to_leg)
        if source is None or target is None or not body:
            return body
        sd = SessionDescription.parse(body)
        if sd.audio is not None:
            source.aim(sd, sd.audio)
        return self._sdp(target, sd)

    # ---- bridge and end ------------------------------------------------------------------

    def stop_early(self, number: int) -> None:
        """The leg answered: its audio no longer goes to the caller until the bridge."""
        side = self.legs.get(number)
        if side is not None and self.early_from == number:
            side.stream.relay_to(None)

    def bridge(self, number: int) -> tuple[MediaStream, MediaStream] | None:
        side = self.legs.get(number)
        caller = self.inbound
        if side is None or caller is None:
            return None
        caller.stream.stop_playing()
        side.stream.stop_playing()
        side.stream.relay_to(caller.stream)
        caller.stream.relay_to(side.stream)
        timeout = self.settings.rtp_timeout
        caller.stream.watch(timeout)
        side.stream.watch(timeout)
        return caller.stream, side.stream

    def caller_stream(self) -> MediaStream | None:
        return self.inbound.stream if self.inbound is not None else None

    def early_sdp_for_caller(self) -> bytes | None:
        """softswitch's own early-media SDP, for generated ringback when no leg sent any."""
        if self.caller_offer is None or self.caller_offer.audio is None:
            return None
        caller = self._caller_side()
        audio = self.caller_offer.audio
        self._set_caller_remote(caller)
        return self._sdp(caller, self._copy_with(self.caller_offer, audio, restrict(audio)))

    def close_leg(self, number: int) -> None:
        side = self.legs.pop(number, None)
        if side is not None:
            side.stream.close()
        if self.early_from == number:
            self.early_from = None

    def close(self) -> None:
        for number in list(self.legs):
            self.close_leg(number)
        if self.inbound is not None:
            self.inbound.stream.close()
            self.inbound = None
