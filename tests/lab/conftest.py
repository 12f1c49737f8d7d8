"""The lab on one machine: softswitch on ``conf/lab.yaml`` and real SIPp peers.

Every test here starts softswitch on the lab contract's addresses (UDP and TCP
127.0.0.1:5060, see ``../shared/LAB.md``) and plays the caller and the receiving
numbers (R1 on 127.0.0.1:5071 ...) with SIPp.  Tests judge by SIPp's exit status
(0: every call successful) and its counters (``-trace_stat``, ``-trace_counts``),
never by softswitch's log lines.

Everything is bounded: softswitch must answer an OPTIONS within 10 s of starting,
every SIPp process runs with ``-timeout`` and under a subprocess timeout, and
whatever a test started is killed in teardown (SIGTERM, then SIGKILL).  Traffic
stays on 127.0.0.1.

SIPp is a hard requirement: when ``sipp`` is missing the lab tests fail (the
project rule: a missing tool is a failure, never a skip).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAB_CONFIG = ROOT / "conf" / "lab.yaml"
SCENARIOS = Path(__file__).resolve().parent / "sipp"
TORTURE = ROOT.parent / "shared" / "sip-torture"

HOST = "127.0.0.1"
SOFTSWITCH_PORT = 5060
SOFTSWITCH = (HOST, SOFTSWITCH_PORT)
R1_PORT, R2_PORT, R3_PORT = 5071, 5072, 5073

STARTUP_LIMIT = 10.0  # softswitch must answer OPTIONS this soon after starting
PORT_WAIT = 60.0  # how long to wait for another lab run to free the lab's ports
STATS_MARK = "softswitch: stats "


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/lab is a lab test (the modules say so too)."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.lab)


# ---------------------------------------------------------------- SIP over a socket


def options_request(local: tuple[str, int], target: tuple[str, int], call_id: str) -> bytes:
    host, port = local
    return (
        f"OPTIONS sip:{target[0]}:{target[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-lab-{uuid.uuid4().hex};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:lab@{host}>;tag={uuid.uuid4().hex[:10]}\r\n"
        f"To: <sip:{target[0]}:{target[1]}>\r\n"
        f"Call-ID: {call_id}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Accept: application/sdp\r\n"
        "Content-Length: 0\r\n"
        "\r\n"
    ).encode()


def status_of(data: bytes) -> int | None:
    """The status code of a SIP response, or None for anything else."""
    line = data.split(b"\r\n", 1)[0].split()
    if len(line) >= 2 and line[0] == b"SIP/2.0" and line[1].isdigit():
        return int(line[1])
    return None


def header_value(data: bytes, name: str, compact: str | None = None) -> str | None:
    names = {name.lower()} | ({compact} if compact else set())
    for line in data.decode("utf-8", "replace").split("\r\n")[1:]:
        if not line:
            break
        key, _, value = line.partition(":")
        if key.strip().lower() in names:
            return value.strip()
    return None


def send_options(
    target: tuple[str, int] = SOFTSWITCH, timeout: float = 1.0, sock: socket.socket | None = None
) -> int | None:
    """Send one OPTIONS over UDP; the final status code, or None if nothing came."""
    own = sock is None
    if sock is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((HOST, 0))
    try:
        call_id = f"lab-options-{uuid.uuid4().hex}"
        sock.sendto(options_request(sock.getsockname(), target, call_id), target)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data, _ = sock.recvfrom(65535)
            except TimeoutError:
                return None
            status = status_of(data)
            final = status is not None and status >= 200
            if final and header_value(data, "call-id", "i") == call_id:
                return status
        return None
    finally:
        if own:
            sock.close()


def wait_ports_free(ports: list[tuple[str, int]], limit: float = PORT_WAIT) -> None:
    """Another lab run (or a benchmark) may hold the lab's ports: wait, then fail clearly."""
    deadline = time.monotonic() + limit
    while True:
        busy = [f"{kind}:{port}" for kind, port in ports if not _port_free(kind, port)]
        if not busy:
            return
        if time.monotonic() > deadline:
            pytest.fail(
                f"lab ports {', '.join(busy)} on {HOST} are still in use after {limit:.0f} s "
                "(another softswitch, SIPp or benchmark is running); the lab needs them free"
            )
        time.sleep(0.2)


def _port_free(kind: str, port: int) -> bool:
    """Nothing bound to (udp) or listening on (tcp) 127.0.0.1:port.

    Read from /proc/net rather than probed with bind(): a probe would hold the port
    for an instant and could make the process we are waiting for fail to bind.
    """
    table = Path(f"/proc/net/{kind}")
    if not table.exists():
        family_type = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, family_type) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, port))
            except OSError:
                return False
        return True
    wanted = {f"0100007F:{port:04X}", f"00000000:{port:04X}"}
    for line in table.read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] in wanted and (kind == "udp" or fields[3] == "0A"):  # 0A: LISTEN
            return False
    return True


# ---------------------------------------------------------------- softswitch


class Softswitch:
    """A running ``softswitch run`` process and what a test may ask of it."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    def log_text(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def options(self, timeout: float = 1.0) -> int | None:
        return send_options(SOFTSWITCH, timeout)

    def stats(self, timeout: float = 5.0) -> dict[str, int]:
        """SIGUSR1, then the JSON of the new ``stats`` log line."""
        before = self.log_text().count(STATS_MARK)
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lines = [line for line in self.log_text().splitlines() if STATS_MARK in line]
            if len(lines) > before:
                text = lines[before].split(STATS_MARK, 1)[1]
                return json.loads(text)  # type: ignore[no-any-return]
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        pytest.fail(f"softswitch wrote no stats line within {timeout} s of SIGUSR1\n{self.tail()}")

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait (bounded); the exit code, or None if it did not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(3.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5.0)

    def tail(self, lines: int = 40) -> str:
        return "softswitch log (tail):\n" + "\n".join(self.log_text().splitlines()[-lines:])


def start_softswitch(
    log_path: Path, config: Path = LAB_CONFIG, extra: list[str] | None = None
) -> Softswitch:
    wait_ports_free([("udp", SOFTSWITCH_PORT), ("tcp", SOFTSWITCH_PORT)])
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "softswitch", "run", "-c", str(config), *(extra or [])],
        cwd=ROOT,  # audio paths in lab.yaml may resolve against the working directory
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    log.close()
    handle = Softswitch(proc, log_path)
    deadline = time.monotonic() + STARTUP_LIMIT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"softswitch exited with {proc.returncode} while starting\n{handle.tail()}")
        if send_options(SOFTSWITCH, timeout=0.2) == 200:
            return handle
    handle.kill()
    pytest.fail(
        f"softswitch did not answer OPTIONS with 200 within {STARTUP_LIMIT} s\n{handle.tail()}"
    )


@pytest.fixture
def softswitch(tmp_path: Path) -> Iterator[Softswitch]:
    """softswitch on conf/lab.yaml, answering OPTIONS; killed in teardown."""
    handle = start_softswitch(tmp_path / "softswitch.log")
    try:
        yield handle
    finally:
        handle.kill()


@pytest.fixture
def lab_config_copy(tmp_path: Path) -> Callable[[dict[str, str]], Path]:
    """A copy of conf/lab.yaml in tmp_path with exact text replacements applied.

    Relative audio paths still resolve: softswitch runs with cwd at the project root.
    """

    def make(replacements: dict[str, str]) -> Path:
        text = LAB_CONFIG.read_text()
        for old, new in replacements.items():
            assert old in text, f"{old!r} is no longer in {LAB_CONFIG}"
            text = text.replace(old, new)
        path = tmp_path / "lab-copy.yaml"
        path.write_text(text)
        return path

    return make


@pytest.fixture
def softswitch_on(tmp_path: Path) -> Iterator[Callable[[Path], Softswitch]]:
    """Start softswitch on another config file (see ``lab_config_copy``); killed in teardown."""
    started: list[Softswitch] = []

    def start(config: Path) -> Softswitch:
        handle = start_softswitch(tmp_path / f"softswitch-{len(started)}.log", config)
        started.append(handle)
        return handle

    try:
        yield start
    finally:
        for handle in started:
            handle.kill()


# ---------------------------------------------------------------- SIPp


@pytest.fixture(scope="session")
def sipp() -> str:
    path = shutil.which("sipp")
    if path is None:
        where = "CI" if os.environ.get("CI") == "true" else "this machine"
        pytest.fail(
            f"sipp is not installed on {where}: the lab tests need it "
            "(Debian: apt-get install -y sip-tester). A missing tool is a failure, not a skip."
        )
    return path


@dataclass
class SippResult:
    name: str
    returncode: int
    stats: dict[str, str]  # last line of -trace_stat, column name -> value
    counts: dict[str, str]  # last line of -trace_counts, "<index>_<message>_<what>" -> value
    workdir: Path
    output: str = field(repr=False)

    def stat(self, column: str) -> int:
        return int(self.stats[column])

    def count(self, suffix: str) -> int:
        """Sum of the -trace_counts columns ending with ``suffix`` (e.g. ``_CANCEL_Recv``)."""
        return sum(int(v) for k, v in self.counts.items() if k.endswith(suffix) and v.isdigit())

    @property
    def successful(self) -> int:
        return self.stat("SuccessfulCall(C)")

    @property
    def failed(self) -> int:
        return self.stat("FailedCall(C)")

    def assert_successful(self, calls: int) -> None:
        """SIPp's verdict: exit 0 (every call successful), ``calls`` successful, none failed."""
        assert self.returncode == 0, self.report()
        assert self.successful == calls, self.report()
        assert self.failed == 0, self.report()

    def report(self) -> str:
        """What to print when an assertion about this run fails."""
        parts = [f"SIPp {self.name}: exit {self.returncode}"]
        for column in (
            "OutgoingCall(C)", "IncomingCall(C)", "SuccessfulCall(C)", "FailedCall(C)",
            "FailedMaxUDPRetrans(C)", "FailedUnexpectedMessage(C)", "FailedCallRejected(C)",
            "FailedCmdNotSent(C)", "FailedOutboundCongestion(C)", "FailedTimeoutOnRecv(C)",
            "FailedTimeoutOnSend(C)", "Retransmissions(C)", "DeadCallMsgs(C)", "CurrentCall",
        ):
            if column in self.stats:
                parts.append(f"{column}={self.stats[column]}")
        text = " ".join(parts)
        errors = self.workdir / "errors.log"
        if errors.exists():
            text += "\n" + errors.read_text("utf-8", "replace")[-3000:]
        text += "\n" + self.output[-1500:]
        return text


def _last_csv_row(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    rows = list(csv.reader(path.read_text("utf-8", "replace").splitlines(), delimiter=";"))
    rows = [r for r in rows if r]
    if len(rows) < 2:
        return {}
    return dict(zip(rows[0], rows[-1], strict=False))


class SippProcess:
    """One SIPp process with its own working directory (its trace files land there)."""

    def __init__(self, name: str, argv: list[str], workdir: Path, timeout: float) -> None:
        self.name = name
        self.argv = argv
        self.workdir = workdir
        self.timeout = timeout
        self.output_path = workdir / "output.txt"
        out = self.output_path.open("wb")
        self.proc = subprocess.Popen(
            argv, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
        )
        out.close()

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for SIPp to exit (bounded; killed when over time) and read its statistics."""
        try:
            self.proc.wait(self.timeout + 10 if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        counts = sorted(self.workdir.glob("*_counts.csv"))
        return SippResult(
            name=self.name,
            returncode=self.proc.returncode,
            stats=_last_csv_row(self.workdir / "stat.csv"),
            counts=_last_csv_row(counts[-1]) if counts else {},
            workdir=self.workdir,
            output=self.output_path.read_text("utf-8", "replace"),
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5.0)


class SippRunner:
    """Starts SIPp processes for one test and kills whatever is left in teardown."""

    def __init__(self, sipp: str, tmp_path: Path) -> None:
        self.sipp = sipp
        self.tmp_path = tmp_path
        self.processes: list[SippProcess] = []

    def start(
        self,
        name: str,
        scenario: str,
        port: int,
        *args: str,
        remote: tuple[str, int] | None = None,
        timeout: float = 30.0,
        trace_msg: bool = True,
    ) -> SippProcess:
        """Start SIPp in the background of the test.

        ``scenario`` is a built-in (``uac``, ``uas``) or a file name in tests/lab/sipp/.
        ``-timeout`` bounds SIPp itself; ``wait`` bounds the process again.
        """
        workdir = self.tmp_path / name
        workdir.mkdir()
        if scenario.endswith(".xml"):
            shutil.copy(SCENARIOS / scenario, workdir / scenario)
            scenario_args = ["-sf", scenario]
        else:
            scenario_args = ["-sn", scenario]
        argv = [
            self.sipp, *scenario_args,
            "-i", HOST, "-p", str(port),
            "-nostdin",
            "-timeout", f"{timeout:g}s", "-timeout_error",
            "-trace_stat", "-stf", "stat.csv",
            "-trace_counts",
            "-trace_err", "-error_file", "errors.log",
            "-trace_calldebug",  # <scenario>_<pid>_calldebug.log: every step of aborted calls
        ]
        if trace_msg:
            argv += ["-trace_msg", "-message_file", "messages.log"]
        argv += list(args)
        if remote is not None:
            argv.append(f"{remote[0]}:{remote[1]}")
        process = SippProcess(name, argv, workdir, timeout)
        self.processes.append(process)
        return process

    def uas(self, name: str, scenario: str = "uas", port: int = R1_PORT, *args: str,
            timeout: float = 30.0, **kw: object) -> SippProcess:
        """A receiving number, bound and listening before callers dial."""
        kind = "tcp" if "t1" in args or "tn" in args else "udp"
        wait_ports_free([(kind, port)])
        process = self.start(name, scenario, port, *args, timeout=timeout, **kw)  # type: ignore[arg-type]
        deadline = time.monotonic() + 5.0
        while _port_free(kind, port):
            if process.proc.poll() is not None or time.monotonic() > deadline:
                process.kill()
                output = process.output_path.read_text("utf-8", "replace")
                pytest.fail(f"SIPp {name} did not start on {kind}:{port}\n{output[-2000:]}")
            time.sleep(0.02)
        return process

    def run(self, name: str, scenario: str, port: int, *args: str, timeout: float = 30.0,
            **kw: object) -> SippResult:
        """A caller towards softswitch, run to the end (bounded)."""
        process = self.start(name, scenario, port, *args, remote=SOFTSWITCH, timeout=timeout,
                             **kw)  # type: ignore[arg-type]
        return process.wait()

    def kill_all(self) -> None:
        for process in self.processes:
            process.kill()


@pytest.fixture
def sipp_runner(sipp: str, tmp_path: Path) -> Iterator[SippRunner]:
    runner = SippRunner(sipp, tmp_path)
    try:
        yield runner
    finally:
        runner.kill_all()


def run_sipp(args: list[str], timeout: float, cwd: Path) -> SippResult:
    """Run SIPp with ``args`` (``-trace_stat -stf stat.csv`` added) to the end, bounded."""
    sipp = shutil.which("sipp")
    if sipp is None:
        pytest.fail("sipp is not installed (Debian: apt-get install -y sip-tester)")
    cwd.mkdir(parents=True, exist_ok=True)
    process = SippProcess(
        "sipp", [sipp, *args, "-nostdin", "-trace_stat", "-stf", "stat.csv", "-trace_counts"],
        cwd, timeout,
    )
    return process.wait(timeout)
