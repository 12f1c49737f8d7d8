"""The IETF torture corpus over the wire: softswitch answers what it can and stays up.

Every file listed in ../shared/sip-torture/INDEX.tsv (RFC 4475 and RFC 5118) is sent
to softswitch over UDP from one socket.  Afterwards softswitch must still answer
OPTIONS with 200, and nothing may have escaped its core as an exception.
(What each message must be answered with is the unit tests' business:
tests/unit/test_torture_*.py.)
"""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from torture_corpus import TORTURE, index_rows

if TYPE_CHECKING:
    from conftest import Softswitch

pytestmark = pytest.mark.lab

SOFTSWITCH = ("127.0.0.1", 5060)


def torture_files() -> list[Path]:
    return [TORTURE / row["file"] for row in index_rows()]


def drain(sock: socket.socket, quiet: float) -> list[bytes]:
    """Everything that arrives until nothing has for ``quiet`` seconds."""
    got: list[bytes] = []
    sock.settimeout(quiet)
    while True:
        try:
            data, _ = sock.recvfrom(65535)
        except TimeoutError:
            return got
        got.append(data)


def test_torture_corpus_over_udp_leaves_softswitch_up(softswitch: Softswitch) -> None:
    files = torture_files()
    assert len(files) >= 50
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        for path in files:
            sock.sendto(path.read_bytes(), SOFTSWITCH)
            time.sleep(0.01)  # one at a time, as a trunk would
            drain(sock, 0.02)
        drain(sock, 0.5)
    assert softswitch.proc.poll() is None, softswitch.tail()
    assert softswitch.options(timeout=2.0) == 200, softswitch.tail()
    log = softswitch.log_text()
    assert "Traceback" not in log, softswitch.tail(80)
    assert "internal error" not in log.lower(), softswitch.tail(80)
