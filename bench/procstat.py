"""/proc and port helpers shared by the benchmarks (bench/run.py, bench/media.py).

Standard library only; Linux /proc.  Imported by file name: the benchmarks run as
scripts (``.venv/bin/python bench/run.py``), so this directory is on sys.path.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

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
