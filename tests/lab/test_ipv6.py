"""IPv6 listeners: softswitch answers on [::1] over UDP and TCP, next to 127.0.0.1."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import start_softswitch, status_of

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import Softswitch

pytestmark = pytest.mark.lab

PORT = 5060
LISTEN = ["--listen", "udp:127.0.0.1:5060", "--listen", "udp:[::1]:5060",
          "--listen", "tcp:[::1]:5060"]


def options(transport: str, local: tuple[str, int]) -> bytes:
    call_id = f"ipv6-{uuid.uuid4().hex}"
    return (
        f"OPTIONS sip:[::1]:{PORT} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} [{local[0]}]:{local[1]};branch=z9hG4bK{call_id};rport\r\n"
        f"From: <sip:lab@[::1]>;tag=ipv6\r\nTo: <sip:[::1]:{PORT}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


@pytest.fixture
def dual_stack(tmp_path: Path) -> Iterator[Softswitch]:
    handle = start_softswitch(tmp_path / "softswitch.log", extra=LISTEN)
    try:
        yield handle
    finally:
        handle.kill()


def test_options_over_ipv6_udp_and_tcp(dual_stack: Softswitch) -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp:
        udp.bind(("::1", 0))
        udp.settimeout(5)
        udp.sendto(options("UDP", udp.getsockname()[:2]), ("::1", PORT))
        data, source = udp.recvfrom(65535)
        assert status_of(data) == 200 and source[0] == "::1"
        assert b"rport=" in data  # the answer went back where it came from (RFC 3581)
    with socket.create_connection(("::1", PORT), timeout=5) as tcp:
        tcp.sendall(options("TCP", tcp.getsockname()[:2]))
        data = tcp.recv(65535)
        assert status_of(data) == 200  # answered on the same connection
    assert "listening on udp:[::1]:5060" in dual_stack.log_text()
