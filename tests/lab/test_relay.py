"""The RTP relay (softswitch/media/relay.py) on real loopback sockets.

Two anchored streams with a peer socket each: packets relay both ways; a peer that
sends from another port than its SDP said is latched onto (symmetric RTP) and a
third party is ignored; RTCP is relayed; after softswitch played its own frames to
a peer, relayed packets continue softswitch's SSRC, sequence and timestamps; a
silent stream calls back; every port goes back to the pool.  Ports 41000-41019.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from softswitch.media.relay import RelayEngine, RelayStream
from softswitch.media.streams import Remote

pytestmark = pytest.mark.lab

HOST = "127.0.0.1"
PORTS = (41000, 41019)


def rtp(seq: int, ts: int, ssrc: int, payload: bytes = b"\xff" * 160, pt: int = 0) -> bytes:
    return struct.pack("!BBHII", 0x80, pt, seq, ts, ssrc) + payload


def header(data: bytes) -> tuple[int, int, int, int]:
    """(marker, seq, timestamp, ssrc)"""
    b1, seq, ts, ssrc = struct.unpack_from("!xBHII", data)
    return b1 >> 7, seq, ts, ssrc


class Peer:
    def __init__(self) -> None:
        self.rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtp.bind((HOST, 0))
        self.rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.rtcp.bind((HOST, 0))
        for s in (self.rtp, self.rtcp):
            s.setblocking(False)

    @property
    def port(self) -> int:
        return int(self.rtp.getsockname()[1])

    def remote(self, port: int | None = None) -> Remote:
        return Remote(HOST, port or self.port, self.rtcp.getsockname()[1], True, "PCMU", 0, 101)

    async def receive(self, sock: socket.socket | None = None, count: int = 1,
                      timeout: float = 2.0) -> list[bytes]:
        loop = asyncio.get_running_loop()
        got: list[bytes] = []
        deadline = loop.time() + timeout
        while len(got) < count and loop.time() < deadline:
            try:
                got.append((sock or self.rtp).recv(2048))
            except BlockingIOError:
                await asyncio.sleep(0.005)
        return got

    def close(self) -> None:
        self.rtp.close()
        self.rtcp.close()


@pytest.fixture
async def engine() -> AsyncIterator[RelayEngine]:
    relay = RelayEngine(asyncio.get_running_loop(), HOST, PORTS)
    yield relay
    relay.close()
    assert len(relay.free) == (PORTS[1] - PORTS[0] + 1) // 2, "a port was not given back"


@pytest.fixture
def peers() -> AsyncIterator[tuple[Peer, Peer]]:
    a, b = Peer(), Peer()
    yield a, b
    a.close()
    b.close()


def pair(engine: RelayEngine, a: Peer, b: Peer) -> tuple[RelayStream, RelayStream]:
    sa, sb = engine.open(), engine.open()
    assert sa.local[1] % 2 == 0 and sb.local[1] == sa.local[1] + 2
    sa.set_remote(a.remote(port=1))  # the SDP names a port the peer does not send from
    sb.set_remote(b.remote())
    sa.relay_to(sb)
    sb.relay_to(sa)
    return sa, sb


async def test_relay_both_ways_with_latching(engine: RelayEngine, peers: tuple[Peer, Peer]
                                             ) -> None:
    a, b = peers
    sa, sb = pair(engine, a, b)
    a.rtp.sendto(rtp(1, 160, 0xAAAA), sa.local)
    got = await b.receive()
    assert [header(x)[1:] for x in got] == [(1, 160, 0xAAAA)], "relayed unchanged"
    b.rtp.sendto(rtp(7, 800, 0xBBBB), sb.local)
    got = await a.receive()
    assert [header(x)[3] for x in got] == [0xBBBB], "sent to where A really sends from"
    stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stranger.sendto(rtp(99, 0, 0xDEAD), sa.local)
    stranger.close()
    assert await b.receive(timeout=0.2) == []
    assert sa.dropped == 1
    a.rtcp.sendto(b"\x80\xc8\x00\x06" + bytes(24), (HOST, sa.local[1] + 1))
    assert len(await b.receive(b.rtcp)) == 1, "RTCP relayed"


async def test_relayed_packets_continue_softswitchs_own_stream(
    engine: RelayEngine, peers: tuple[Peer, Peer]
) -> None:
    a, b = peers
    sa, sb = pair(engine, a, b)
    sb.relay_to(None)
    sa.relay_to(None)
    loop = asyncio.get_running_loop()
    end = sb.play([b"\x00" * 160] * 5, loop.time())
    whisper = await b.receive(count=5)
    assert len(whisper) == 5
    heads = [header(x) for x in whisper]
    assert heads[0][0] == 1 and {h[3] for h in heads} == {heads[0][3]}
    assert [h[2] - heads[0][2] for h in heads] == [0, 160, 320, 480, 640]
    await asyncio.sleep(max(0.0, end - loop.time()) + 0.1)  # 0.1 s of silence: 5 frames
    sa.relay_to(sb)
    for n in range(3):
        a.rtp.sendto(rtp(5000 + n, 90000 + 160 * n, 0xAAAA), sa.local)
    bridged = [header(x) for x in await b.receive(count=3)]
    ssrc = heads[0][3]
    assert [h[3] for h in bridged] == [ssrc] * 3, "one SSRC across the switch"
    assert [h[1] for h in bridged] == [(heads[-1][1] + 1 + n) & 0xFFFF for n in range(3)]
    gap = bridged[0][2] - heads[-1][2]
    assert gap % 160 == 0 and 160 * 5 <= gap <= 160 * 9, gap  # the time that passed
    assert [h[2] - bridged[0][2] for h in bridged] == [0, 160, 320]
    assert [h[0] for h in bridged] == [1, 0, 0], "marker on the first relayed packet"


async def test_silence_calls_back_once(engine: RelayEngine, peers: tuple[Peer, Peer]) -> None:
    a, b = peers
    sa, _ = pair(engine, a, b)
    fired: list[float] = []
    sa.listen(None, fired.append)
    sa.watch(1.0)
    await asyncio.sleep(2.6)
    assert len(fired) == 1


async def test_telephone_event_is_reported_once(engine: RelayEngine,
                                                peers: tuple[Peer, Peer]) -> None:
    a, b = peers
    sa, _ = pair(engine, a, b)
    digits: list[str] = []
    sa.listen(lambda digit, now: digits.append(digit), None)
    for duration, end in ((400, 0), (800, 0), (800, 1), (800, 1), (800, 1)):
        payload = struct.pack("!BBH", 5, (end << 7) | 10, duration)
        a.rtp.sendto(rtp(1, 8000, 0xAAAA, payload, pt=101), sa.local)
    await b.receive(count=5)
    assert digits == ["5"]


async def test_loss_is_counted_from_sequence_gaps(engine: RelayEngine,
                                                  peers: tuple[Peer, Peer]) -> None:
    a, b = peers
    sa, _ = pair(engine, a, b)
    for seq in (65534, 65535, 1, 2):  # 0 is missing, across the wrap
        a.rtp.sendto(rtp(seq, seq * 160, 0xAAAA), sa.local)
    assert len(await b.receive(count=4)) == 4
    assert sa.lost == 1
    assert engine.stats()["rtp_packets_lost"] == 1
    assert engine.stats()["rtp_packets_relayed"] == 4
