"""What the B2BUA asks of the media layer: the vocabulary between a call and its RTP.

The call (``softswitch/b2bua``) is driven by ``now`` on the endpoint's clock and
never touches a socket; the media layer (``softswitch/media/relay.py``) owns the
sockets and runs on the same loop clock.  Between them sits this small protocol:
a call opens a :class:`MediaStream` per anchored leg, tells it where the peer's RTP
is (from SDP), what to generate toward the peer (a G.711 player, RFC 4733 events)
and where to relay what arrives, and closes it when the leg ends.  The stream calls
back when a DTMF digit arrives or when its peer's RTP stops.

Times passed in (``at``) are loop times, the same clock as the SIP core's ``now``,
so "send the extension 1 s after the 200 OK" is ``at=now + 1.0`` in the call's code
and exactly that on the wire.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .dtmf import EventPacket


class MediaUnavailable(Exception):
    """No RTP port could be opened (the configured range is used up or unusable)."""


@dataclass(frozen=True, slots=True)
class Remote:
    """Where a leg's peer receives RTP, from its SDP (c= and m=), and what it sends."""

    host: str
    port: int
    rtcp_port: int  # a=rtcp (RFC 3605), else port + 1
    sending: bool  # the peer's direction lets it send (sendrecv/sendonly): watched for timeout
    codec: str  # "PCMU" or "PCMA": what softswitch's own audio toward the peer is in
    payload_type: int  # its payload type
    event_payload_type: int | None  # telephone-event, if the peer accepts it


DtmfCallback = Callable[[str, float], None]
"""``(digit, now)``: a digit arrived (RFC 4733; SIP INFO digits come through SIP)."""
SilenceCallback = Callable[[float], None]
"""``(now)``: the peer's RTP stopped for longer than the RTP timeout."""


class MediaStream(Protocol):
    """One anchored leg: an RTP/RTCP port pair on softswitch's media address."""

    @property
    def local(self) -> tuple[str, int]:
        """softswitch's RTP address for this leg, to be written into its SDP."""
        ...

    def set_remote(self, remote: Remote) -> None:
        """The peer's SDP (offer or answer) arrived or changed; RTP latches anew
        onto the first source that sends (symmetric RTP)."""
        ...

    def relay_to(self, other: MediaStream | None) -> None:
        """Forward RTP and RTCP arriving here to ``other``'s peer (None: stop)."""
        ...

    def play(self, frames: Sequence[bytes], at: float, repeat: bool = False) -> float:
        """Send G.711 frames to the peer from loop time ``at``, one every 20 ms on an
        absolute grid; returns when the last frame is due (``repeat``: loop until
        stopped, and the return value is one pass)."""
        ...

    def stop_playing(self) -> None: ...

    def send_events(self, packets: Sequence[EventPacket], at: float) -> None:
        """Send RFC 4733 telephone-event packets, each at ``at + packet.at``."""
        ...

    def watch(self, timeout: float) -> None:
        """Start the RTP timeout (0: never), e.g. once the call is bridged."""
        ...

    def listen(self, on_dtmf: DtmfCallback | None, on_silence: SilenceCallback | None) -> None:
        """Callbacks for digits received and for the RTP timeout (None: not wanted)."""
        ...

    def close(self) -> None:
        """Stop everything and give the ports back; idempotent."""
        ...


class MediaEngine(Protocol):
    """Hands out streams; one per process, configured from ``media:``."""

    def open(self) -> MediaStream:
        """A new stream on a free port pair; raises :class:`MediaUnavailable`."""
        ...

    def stats(self) -> dict[str, int]:
        """``rtp_streams``, ``rtp_ports_active``, ``rtp_packets_relayed``,
        ``rtp_packets_lost`` (see the metrics)."""
        ...


__all__ = [
    "DtmfCallback",
    "MediaEngine",
    "MediaStream",
    "MediaUnavailable",
    "Remote",
    "SilenceCallback",
]
