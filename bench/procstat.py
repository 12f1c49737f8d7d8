"""/proc, port, probe and child-process helpers shared by the benchmarks
(bench/run.py, bench/media.py).

Standard library only; Linux /proc.  Imported by file name: the benchmarks run as
scripts (``.venv/bin/python bench/run.py``), so this directory is on sys.path.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


def _proc_children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
            except OSError:
                continue
            kids.extend(int(x) for x in text.split())
    except OSError:
        pass
    return kids


def proc_tree(pid: int) -> list[int]:
    """pid and all its descendants (a SUT that forks workers is counted whole)."""
    seen: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo.extend(_proc_children(p))
    return seen


def cpu_ticks(pid: int, tree: bool = True) -> int:
    """utime+stime of pid (all threads) and, if ``tree``, its descendants, in ticks."""
    total = 0
    for p in proc_tree(pid) if tree else [pid]:
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    return total


def status_kib(pid: int, key: str) -> int:
    """Sum of a /proc/<pid>/status kB field (VmHWM, VmRSS) over the process tree."""
    total = 0
    for p in proc_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total


def udp_port_bound(port: int) -> bool:
    """Is some socket bound to UDP port ``port`` (any address), per /proc/net/udp{,6}?"""
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            if int(line.split()[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def port_free(port: int) -> bool:
    if udp_port_bound(port):
        return False
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def options_probe(port: int, local_port: int, timeout: float) -> str | None:
    """Send OPTIONS to the SUT until any SIP response comes; return its status line."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((HOST, local_port))
        s.settimeout(0.25)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            tag = uuid.uuid4().hex[:12]
            msg = (
                f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {HOST}:{local_port};branch=z9hG4bK{tag};rport\r\n"
                f"Max-Forwards: 70\r\n"
                f"From: <sip:bench@{HOST}:{local_port}>;tag={tag}\r\n"
                f"To: <sip:{HOST}:{port}>\r\n"
                f"Call-ID: bench-probe-{tag}@{HOST}\r\n"
                f"CSeq: 1 OPTIONS\r\n"
                f"Contact: <sip:bench@{HOST}:{local_port}>\r\n"
                f"Content-Length: 0\r\n\r\n"
            )
            s.sendto(msg.encode(), (HOST, port))
            try:
                data, _ = s.recvfrom(65535)
            except TimeoutError:
                continue
            line = data.split(b"\r\n", 1)[0].decode(errors="replace")
            if line.startswith("SIP/2.0"):
                return line
        return None
    finally:
        s.close()


def stop(proc: subprocess.Popen[Any] | None, name: str, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; only ever our own child."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        print(f"  ({name} ignored SIGTERM; killing pid {proc.pid})", file=sys.stderr)
        proc.kill()
        proc.wait(timeout=grace)
    except ProcessLookupError:
        pass
