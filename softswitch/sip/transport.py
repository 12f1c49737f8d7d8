"""The transport edge: the one place in softswitch/sip/ that owns sockets and a clock.

Every input (a datagram, a TCP frame, the timer) is handed to the sans-IO endpoint
with ``loop.time()``; afterwards :meth:`SipTransport.flush` sends what the core
queued and re-arms the single loop timer at the core's next deadline.  That is the
whole I/O contract.

UDP: one socket per configured address.  TCP: a listener per configured address,
one connection per peer reused in both directions (RFC 3261 §18), each with a
Content-Length framer whose buffer is bounded; connections to new peers are opened
on demand and a failure to connect is reported to the core as a transport error.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass

from .endpoint import Endpoint, Outgoing
from .errors import ParseError
from .message import StreamFramer
from .transaction import Address

log = logging.getLogger("softswitch.transport")


@dataclass(frozen=True, slots=True)
class ListenAddress:
    transport: str  # "udp" | "tcp"
    host: str
    port: int


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _peer(address: tuple[object, ...]) -> Address:
    host, port = address[0], address[1]
    assert isinstance(host, str) and isinstance(port, int)
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]  # an IPv4 peer on a dual-stack socket
    return host, port


# A UDP socket's receive buffer absorbs bursts while the loop is busy (a garbage
# collection, a burst of calls): at 300 calls/s about 2,000 datagrams arrive each
# second, and the kernel default (~208 KiB) overflows within a 0.2 s pause.  The
# kernel caps the request at net.core.rmem_max.
UDP_RECEIVE_BUFFER = 8 * 1024 * 1024


def _enlarge_receive_buffer(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
    except OSError as exc:
        log.warning("cannot enlarge the UDP receive buffer: %s", exc)
    log.debug("UDP receive buffer: %d bytes", sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, edge: SipTransport) -> None:
        self.edge = edge
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport is not an asyncio.DatagramTransport subclass: no isinstance.
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        self.edge.received(data, _peer(addr), "udp")

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)


class _Tcp(asyncio.Protocol):
    def __init__(self, edge: SipTransport) -> None:
        self.edge = edge
        self.framer = StreamFramer(edge.endpoint.config.limits)
        self.transport: asyncio.Transport | None = None
        self.peer: Address = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer = _peer(transport.get_extra_info("peername"))
        self.edge.connections[self.peer] = self

    def data_received(self, data: bytes) -> None:
        try:
            frames = self.framer.feed(data)
        except ParseError as exc:
            log.info("closing TCP connection from %s:%s: %s", *self.peer, exc)
            self.close()
            return
        if self.framer.buffered > self.edge.tcp_buffer_bytes:
            log.info(
                "closing TCP connection from %s:%s: %d bytes buffered without a message",
                *self.peer,
                self.framer.buffered,
            )
            self.close()
            return
        if self.framer.pings:
            self.framer.pings = 0
            self.write(b"\r\n")  # RFC 5626 §4.4.1 pong
        for frame in frames:
            self.edge.received(frame, self.peer, "tcp")

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.edge.connections.get(self.peer) is self:
            del self.edge.connections[self.peer]


class SipTransport:
    def __init__(self, endpoint: Endpoint, tcp_buffer_bytes: int = 262144) -> None:
        self.endpoint = endpoint
        self.tcp_buffer_bytes = tcp_buffer_bytes
        self.loop = asyncio.get_running_loop()
        self.udp: dict[int, _Udp] = {}  # address family -> socket used for sending
        self.servers: list[asyncio.Server] = []
        self.udp_transports: list[asyncio.DatagramTransport] = []
        self.connections: dict[Address, _Tcp] = {}
        self._connecting: dict[Address, list[bytes]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.errors = 0

    async def start(self, addresses: list[ListenAddress]) -> None:
        for address in addresses:
            if address.transport == "udp":
                transport, protocol = await self.loop.create_datagram_endpoint(
                    lambda: _Udp(self),
                    local_addr=(address.host, address.port),
                    family=_family(address.host),
                )
                _enlarge_receive_buffer(transport)
                self.udp_transports.append(transport)
                self.udp.setdefault(_family(address.host), protocol)
            else:
                server = await self.loop.create_server(
                    lambda: _Tcp(self),
                    address.host,
                    address.port,
                    family=_family(address.host),
                    reuse_address=True,
                )
                self.servers.append(server)
            host = f"[{address.host}]" if ":" in address.host else address.host
            log.info("listening on %s:%s:%s", address.transport, host, address.port)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for transport in self.udp_transports:
            transport.close()
        for connection in list(self.connections.values()):
            connection.close()
        for server in self.servers:
            server.close()
            await server.wait_closed()

    # ---- the I/O contract ------------------------------------------------------------

    def received(self, data: bytes, source: Address, transport: str) -> None:
        try:
            self.endpoint.receive(data, source, transport, self.loop.time())
        except Exception:  # a bug: log it with the datagram and keep serving
            self.errors += 1
            log.exception(
                "internal error handling %d bytes from %s:%s over %s: %r",
                len(data),
                *source,
                transport,
                data[:2000],
            )
        self.flush()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        try:
            self.endpoint.run_timers(self.loop.time())
        except Exception:
            self.errors += 1
            log.exception("internal error running timers")
        self.flush()

    def flush(self) -> None:
        for out in self.endpoint.take_outgoing():
            self._send(out)
        deadline = self.endpoint.next_deadline()
        if deadline != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._timer_at = deadline
            if deadline is not None:
                self._timer = self.loop.call_at(deadline, self._on_timer)

    def _send(self, out: Outgoing) -> None:
        host, port = out.destination
        if out.transport == "udp":
            protocol = self.udp.get(_family(host))
            if protocol is None or protocol.transport is None:
                log.warning("no UDP socket for %s; dropped %d bytes", host, len(out.data))
                return
            protocol.transport.sendto(out.data, (host, port))
            return
        connection = self.connections.get(out.destination)
        if connection is not None:
            connection.write(out.data)
            return
        queued = self._connecting.get(out.destination)
        if queued is not None:
            queued.append(out.data)
            return
        self._connecting[out.destination] = [out.data]
        self.loop.create_task(self._connect(out.destination))

    async def _connect(self, destination: Address) -> None:
        host, port = destination
        try:
            _, protocol = await asyncio.wait_for(
                self.loop.create_connection(lambda: _Tcp(self), host, port), timeout=5.0
            )
        except (TimeoutError, OSError) as exc:
            log.info("cannot connect to tcp:%s:%s: %s", host, port, exc)
            self._connecting.pop(destination, None)
            self.endpoint.transport_error(destination, "tcp", self.loop.time())
            self.flush()
            return
        for data in self._connecting.pop(destination, []):
            protocol.write(data)
