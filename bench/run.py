#!/usr/bin/env python3
"""Call-rate benchmark: softswitch against Sippy B2BUA, on loopback, with SIPp.

For each system under test (SUT) this starts a SIPp UAS (bench/uas.xml) on
127.0.0.1:5071 (receiving number R1 of the lab), starts the SUT on its own
loopback port, then steps the call rate up with SIPp's built-in ``uac``
scenario dialling +18005550100 through the SUT.  Each step records calls
attempted, successful and failed, the SUT's CPU (utime+stime from /proc over
the step's wall time, in % of one core) and its peak RSS (VmHWM).  A SUT's
result is the highest rate whose failed calls stay under 0.5 %; stepping a SUT
stops after two failing steps in a row.

Standard library only.  Run it with the project's venv:

    .venv/bin/python bench/run.py [--sut softswitch|sippy|both] [--rates 50,100,...]
                                  [--step-seconds 10] [--port-base 15060]

It prints a Markdown table per SUT and a summary, and writes
bench/results/latest.json.  Only 127.0.0.1 is ever addressed.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from procstat import cpu_ticks, options_probe, port_free, status_kib, stop, udp_port_bound

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
UAS_XML = BENCH / "uas.xml"
SIPPY_LAUNCHER = BENCH / "sippy_b2bua.py"
LAB_CONF = ROOT / "conf" / "lab.yaml"

HOST = "127.0.0.1"
UAS_PORT = 5071  # R1 in conf/lab.yaml; +18005550100 routes there
NUMBER = "+18005550100"
LAB_PORTS = {5060, 5071, 5072, 5073, 5074}
PASS_FAILED_PCT = 0.5  # a step passes when failed calls are under this %
MIN_ACHIEVED = 0.90  # ... and SIPp really offered at least 90 % of the rate
STOP_AFTER_FAILS = 2
DEFAULT_RATES = "50,100,150,200,250,300,400,500,600,800,1000,1200,1500"
CLK_TCK = os.sysconf("SC_CLK_TCK")
UAS_COUNTS_WAIT = 1.5  # s after a step before reading the UAS's counts (dumped every 1 s)
SUT_INDEX = {"softswitch": 0, "sippy": 1}  # each SUT has its own port set


# --------------------------------------------------------------------------
# child processes


def wait_port(port: int, proc: subprocess.Popen[Any], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before binding")
        if udp_port_bound(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not bind UDP {HOST}:{port} within {timeout:.0f} s")


# --------------------------------------------------------------------------
# systems under test


@dataclass
class Ports:
    sut: int
    uac: int
    uac_media: int
    uas_media: int
    probe: int


def ports_for(index: int, base: int) -> Ports:
    b = base + 100 * index
    return Ports(sut=b, uac=b + 1, uac_media=b + 10, uas_media=b + 20, probe=b + 2)


def sut_command(name: str, port: int, workdir: Path) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    bindir = Path(sys.executable).parent
    if name == "softswitch":
        exe = bindir / "softswitch"
        if not exe.exists():
            exe = ROOT / ".venv" / "bin" / "softswitch"
        if not exe.exists():
            raise RuntimeError("softswitch console script not found: run scripts/setup first")
        if not LAB_CONF.exists():
            raise RuntimeError(f"{LAB_CONF} not found")
        return [str(exe), "run", "-c", str(LAB_CONF), "--listen", f"udp:{HOST}:{port}"], env
    if name == "sippy":
        probe = subprocess.run(
            [sys.executable, "-c", "import sippy.b2bua"], capture_output=True, timeout=60
        )
        if probe.returncode != 0:
            raise RuntimeError(
                f"{sys.executable} cannot import sippy: run scripts/setup "
                "(installs the [bench] extra) and use .venv/bin/python"
            )
        # Sippy's SipLogger traces every SIP message to stderr unless told not
        # to; a per-message trace is debugging, not service, so it is off.
        env.setdefault("SIPLOG_BEND", "none")
        return [
            sys.executable,
            str(SIPPY_LAUNCHER),
            "-f",  # foreground
            "-u",  # no RADIUS authentication
            "-A",
            "0",  # no accounting
            "-l",
            HOST,
            "-p",
            str(port),  # listen
            "-s",
            f"{HOST}:{UAS_PORT}",  # static route: every call to R1's UAS
            "-c",
            str(workdir / "b2bua.sock"),  # command socket, not /var/run
        ], env
    raise ValueError(name)


# --------------------------------------------------------------------------
# one step


@dataclass
class Step:
    rate: int
    target_calls: int
    attempted: int = 0
    successful: int = 0
    failed: int = 0
    failed_pct: float = 100.0
    achieved_rate: float = 0.0
    wall_s: float = 0.0
    cpu_pct: float = 0.0
    max_rss_mib: float = 0.0
    uac_failed: int = 0
    uas_invites: int = 0
    uas_byes: int = 0
    retransmissions: int = 0
    timeouts_on_recv: int = 0
    unexpected_msgs: int = 0
    sipp_exit: int | None = None
    passed: bool = False
    note: str = ""


def _num(row: dict[str, str], key: str) -> int:
    try:
        return int(float(row.get(key, "0") or 0))
    except ValueError:
        return 0


def _epoch(cell: str) -> float:
    # "2026-11-26\t03:23:37.174292\t1795663417.174292"
    return float(cell.split("\t")[-1])


def uas_counts(workdir: Path) -> tuple[int, int]:
    """(INVITEs, BYEs) the SIPp UAS has received so far, from its -trace_counts CSV.

    The uac alone cannot see a BYE that the SUT answered but never forwarded,
    so the UAS counts are what prove the callee's leg was torn down too.
    """
    files = sorted(workdir.glob("*_counts.csv"))
    if not files:
        return 0, 0
    with files[-1].open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter=";") if r.get("CurrentTime")]
    if not rows:
        return 0, 0
    return _num(rows[-1], "0_INVITE_Recv"), _num(rows[-1], "4_BYE_Recv")


def read_stat_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return [r for r in csv.DictReader(fh, delimiter=";") if r.get("CurrentTime")]


def achieved_rate(rows: list[dict[str, str]], target: int) -> float:
    """Calls/s SIPp actually offered: time for OutgoingCall(C) to reach target."""
    if not rows:
        return 0.0
    t0 = _epoch(rows[0]["StartTime"])
    prev_t, prev_n = 0.0, 0
    for r in rows:
        t, n = _epoch(r["CurrentTime"]) - t0, _num(r, "OutgoingCall(C)")
        if n >= target:
            if n == prev_n:
                return target / t if t > 0 else 0.0
            t_hit = prev_t + (t - prev_t) * (target - prev_n) / (n - prev_n)
            return target / t_hit if t_hit > 0 else 0.0
        prev_t, prev_n = t, n
    last = rows[-1]
    t = _epoch(last["CurrentTime"]) - t0
    return _num(last, "OutgoingCall(C)") / t if t > 0 else 0.0


def run_step(
    sut: subprocess.Popen[Any],
    ports: Ports,
    rate: int,
    seconds: float,
    hold_ms: int,
    recv_timeout_ms: int,
    workdir: Path,
    sipp: str,
) -> Step:
    n = max(1, int(round(rate * seconds)))
    step = Step(rate=rate, target_calls=n)
    stat = workdir / f"uac_{ports.sut}_{rate}.csv"
    stat.unlink(missing_ok=True)
    # The SIPp run is bounded: all calls offered in `seconds`, then each call
    # has at most a few receive timeouts; -timeout_error makes running out a
    # failure, and Python kills it a little after that in any case.
    budget = int(seconds + hold_ms / 1000 + 3 * recv_timeout_ms / 1000 + 10)
    limit = int(rate * (hold_ms / 1000 + 2 * recv_timeout_ms / 1000) + 100)
    cmd = [
        sipp,
        "-sn",
        "uac",
        f"{HOST}:{ports.sut}",
        "-s",
        NUMBER,
        "-i",
        HOST,
        "-p",
        str(ports.uac),
        "-mp",
        str(ports.uac_media),
        "-r",
        str(rate),
        "-m",
        str(n),
        "-l",
        str(limit),
        "-d",
        str(hold_ms),
        "-recv_timeout",
        str(recv_timeout_ms),
        "-timeout",
        f"{budget}s",
        "-timeout_error",
        "-buff_size",
        "1048576",
        "-nostdin",
        "-trace_stat",
        "-stf",
        str(stat),
        "-fd",
        "1",
    ]
    inv0, bye0 = uas_counts(workdir)
    ticks0, t0 = cpu_ticks(sut.pid), time.monotonic()
    uac = subprocess.Popen(
        cmd,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / f"uac_{ports.sut}_{rate}.err").open("wb"),
    )
    try:
        step.sipp_exit = uac.wait(timeout=budget + 15)
    except subprocess.TimeoutExpired:
        step.note = "SIPp uac overran its timeout; killed"
    finally:
        stop(uac, "sipp uac")
    step.wall_s = time.monotonic() - t0
    step.cpu_pct = 100.0 * (cpu_ticks(sut.pid) - ticks0) / CLK_TCK / step.wall_s
    step.max_rss_mib = status_kib(sut.pid, "VmHWM") / 1024

    # The UAS dumps its counts every second: let the last BYEs land in them.
    time.sleep(UAS_COUNTS_WAIT)
    inv1, bye1 = uas_counts(workdir)
    step.uas_invites, step.uas_byes = inv1 - inv0, bye1 - bye0

    rows = read_stat_csv(stat)
    if rows:
        last = rows[-1]
        step.attempted = _num(last, "OutgoingCall(C)")
        step.successful = _num(last, "SuccessfulCall(C)")
        step.retransmissions = _num(last, "Retransmissions(C)")
        step.timeouts_on_recv = _num(last, "FailedTimeoutOnRecv(C)")
        step.unexpected_msgs = _num(last, "FailedUnexpectedMessage(C)")
        step.achieved_rate = achieved_rate(rows, n)
    elif not step.note:
        step.note = f"no SIPp statistics (exit {step.sipp_exit})"
    # Every call that was due and did not succeed is a failure: failed
    # outright, still unfinished when SIPp gave up, or never offered. A call
    # that reached the UAS but whose BYE never did is a failure too, even when
    # the uac saw it succeed (the SUT left the callee's leg up).
    step.uac_failed = n - step.successful
    step.failed = max(step.uac_failed, step.uas_invites - step.uas_byes)
    step.failed_pct = 100.0 * step.failed / n
    if step.uas_invites > n:
        step.note = (
            f"the UAS got {step.uas_invites - n} INVITEs more than the step offered: "
            f"other traffic to {HOST}:{UAS_PORT}? (run the bench on a quiet machine)"
        )
    step.passed = step.failed_pct < PASS_FAILED_PCT and step.achieved_rate >= MIN_ACHIEVED * rate
    if step.failed_pct < PASS_FAILED_PCT and not step.passed and not step.note:
        step.note = f"SIPp offered only {step.achieved_rate:.0f} calls/s"
    if sut.poll() is not None:
        step.passed = False
        step.note = (step.note + "; " if step.note else "") + f"SUT exited ({sut.returncode})"
    return step


# --------------------------------------------------------------------------
# one SUT


@dataclass
class SutResult:
    name: str
    command: list[str]
    ports: dict[str, int]
    steps: list[Step] = field(default_factory=list)
    max_rate: int | None = None
    cpu_pct_at_max: float | None = None
    max_rss_mib: float | None = None
    options_probe: str | None = None
    stopped: str = ""
    error: str | None = None


def bench_sut(name: str, index: int, args: argparse.Namespace, sipp: str) -> SutResult:
    ports = ports_for(index, args.port_base)
    res = SutResult(name=name, command=[], ports=asdict(ports))
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    uas = sut = None
    log = None
    try:
        needed = [
            UAS_PORT,
            ports.sut,
            ports.uac,
            ports.uac_media,
            ports.uac_media + 2,
            ports.uas_media,
            ports.uas_media + 2,
            ports.probe,
        ]
        if not port_free(UAS_PORT):
            raise RuntimeError(
                f"UDP {HOST}:{UAS_PORT} (R1, where the bench's UAS must listen) is in use: "
                "stop the lab or whatever else holds it"
            )
        busy = [p for p in needed if not port_free(p)]
        if busy:
            raise RuntimeError(
                f"UDP port(s) {busy} on {HOST} are in use; choose another --port-base"
            )
        cmd, env = sut_command(name, ports.sut, workdir)
        res.command = cmd
        total_budget = int(len(args.rates) * (args.step_seconds + args.hold_ms / 1000 + 40) + 60)
        uas = subprocess.Popen(
            [
                sipp,
                "-sf",
                str(UAS_XML),
                "-i",
                HOST,
                "-p",
                str(UAS_PORT),
                "-mp",
                str(ports.uas_media),
                "-buff_size",
                "1048576",
                "-nostdin",
                "-timeout",
                f"{total_budget}s",
                "-trace_stat",
                "-stf",
                "uas.csv",
                "-trace_counts",  # per-message counts: INVITEs and BYEs received
                "-fd",
                "1",
            ],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "uas.err").open("wb"),
        )
        wait_port(UAS_PORT, uas, "SIPp UAS", 10)
        log = (RESULTS / f"{name}.log").open("wb")
        sut = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        try:
            wait_port(ports.sut, sut, name, 30)
        except RuntimeError as exc:
            log.flush()
            tail = (RESULTS / f"{name}.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{exc}; its log ends:\n{tail}") from None
        res.options_probe = options_probe(ports.sut, ports.probe, 5)
        print(
            f"\n## {name}\n\n`{' '.join(cmd)}` (pid {sut.pid}); "
            f"OPTIONS probe: {res.options_probe or 'no answer'}\n",
            flush=True,
        )
        time.sleep(1)
        fails_in_row = 0
        for rate in args.rates:
            step = run_step(
                sut,
                ports,
                rate,
                args.step_seconds,
                args.hold_ms,
                args.recv_timeout_ms,
                workdir,
                sipp,
            )
            res.steps.append(step)
            print(
                f"  {rate:>5} calls/s: {step.successful}/{step.target_calls} ok at uac, "
                f"UAS BYE {step.uas_byes}/{step.uas_invites}, "
                f"{step.failed_pct:.2f} % failed, offered {step.achieved_rate:.0f}/s, "
                f"CPU {step.cpu_pct:.0f} %, RSS {step.max_rss_mib:.1f} MiB"
                f"{' — ' + step.note if step.note else ''}",
                flush=True,
            )
            if sut.poll() is not None:
                res.stopped = f"SUT exited with status {sut.returncode}"
                break
            if uas.poll() is not None:
                res.stopped = f"SIPp UAS exited with status {uas.returncode}"
                break
            fails_in_row = 0 if step.passed else fails_in_row + 1
            if fails_in_row >= STOP_AFTER_FAILS:
                res.stopped = f"{STOP_AFTER_FAILS} failing steps in a row"
                break
            time.sleep(args.settle_seconds)
        else:
            res.stopped = "all rates done"
    except Exception as exc:  # report and go on with the next SUT
        res.error = str(exc)
        print(f"\n## {name}\n\nERROR: {exc}\n", flush=True)
    finally:
        stop(sut, name)
        stop(uas, "sipp uas")
        if log is not None:
            log.close()
        if args.keep_work:
            print(f"  (work files kept in {workdir})")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    passing = [s for s in res.steps if s.passed]
    if passing:
        best = max(passing, key=lambda s: s.rate)
        res.max_rate, res.cpu_pct_at_max = best.rate, round(best.cpu_pct, 1)
    if res.steps:
        res.max_rss_mib = round(max(s.max_rss_mib for s in res.steps), 1)
    return res


# --------------------------------------------------------------------------
# output


def table(res: SutResult) -> str:
    out = [
        "| calls/s | attempted | successful | UAS BYE/INVITE | failed | failed % "
        "| offered/s | CPU % | max RSS MiB | pass |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for s in res.steps:
        out.append(
            f"| {s.rate} | {s.attempted} | {s.successful} | {s.uas_byes}/{s.uas_invites} "
            f"| {s.failed} | {s.failed_pct:.2f} "
            f"| {s.achieved_rate:.0f} | {s.cpu_pct:.0f} | {s.max_rss_mib:.1f} "
            f"| {'yes' if s.passed else 'NO'} |"
        )
    return "\n".join(out)


def sipp_version(sipp: str) -> str:
    try:
        out = subprocess.run([sipp, "-v"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    for line in (out.stdout + out.stderr).splitlines():
        if "SIPp v" in line:
            return line.strip().rstrip(".")
    return "?"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sut", choices=["softswitch", "sippy", "both"], default="both")
    p.add_argument(
        "--rates",
        default=DEFAULT_RATES,
        help=f"comma-separated calls/s steps (default {DEFAULT_RATES})",
    )
    p.add_argument(
        "--step-seconds",
        type=float,
        default=10.0,
        help="seconds of calls per step; a step is RATE*SECONDS calls (default 10)",
    )
    p.add_argument(
        "--port-base",
        type=int,
        default=15060,
        help="first UDP port of the bench's own ports; each SUT uses "
        "BASE+100*i .. +22 (default 15060)",
    )
    p.add_argument(
        "--hold-ms",
        type=int,
        default=0,
        help="call duration between ACK and BYE, SIPp -d (default 0)",
    )
    p.add_argument(
        "--recv-timeout-ms",
        type=int,
        default=5000,
        help="SIPp -recv_timeout: a call waiting longer for a reply fails",
    )
    p.add_argument("--settle-seconds", type=float, default=2.0, help="pause between steps")
    p.add_argument(
        "--keep-work", action="store_true", help="keep SIPp's statistics and error files"
    )
    p.add_argument("--json", type=Path, default=RESULTS / "latest.json")
    a = p.parse_args(argv)
    try:
        a.rates = [int(x) for x in str(a.rates).split(",") if x.strip()]
    except ValueError:
        p.error("--rates takes integers, e.g. 50,100,200")
    if not a.rates or min(a.rates) <= 0:
        p.error("--rates needs positive integers")
    if a.step_seconds <= 0 or a.step_seconds > 300:
        p.error("--step-seconds must be in (0, 300]")
    if not 1024 <= a.port_base <= 65000 or a.port_base in LAB_PORTS:
        p.error("--port-base must be in 1024..65000")
    for i in range(2):
        ps = ports_for(i, a.port_base)
        if LAB_PORTS & {ps.sut, ps.uac, ps.probe, ps.uac_media, ps.uas_media}:
            p.error("--port-base collides with the lab's ports (5060-5074)")
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sipp = shutil.which("sipp")
    if sipp is None:
        print("sipp not found: run scripts/setup (installs sip-tester)", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    names = ["softswitch", "sippy"] if args.sut == "both" else [args.sut]
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    print(
        f"# Call-rate benchmark ({started})\n\n"
        f"{sipp_version(sipp)}; uac -> SUT -> uas on {HOST}; {args.step_seconds:g} s "
        f"of calls per step; pass = failed < {PASS_FAILED_PCT} % and offered rate >= "
        f"{MIN_ACHIEVED:.0%} of the step; {os.cpu_count()} CPUs",
        flush=True,
    )
    results = [bench_sut(name, SUT_INDEX[name], args, sipp) for name in names]

    print("\n# Results")
    for r in results:
        print(f"\n## {r.name}\n")
        if r.error:
            print(f"ERROR: {r.error}\n")
        if r.steps:
            print(table(r) + "\n")
        print(
            f"Highest rate with < {PASS_FAILED_PCT} % failed calls: "
            + (f"{r.max_rate} calls/s" if r.max_rate is not None else "none")
            + (f" (CPU {r.cpu_pct_at_max:.0f} % of one core)" if r.max_rate else "")
            + (f"; peak RSS {r.max_rss_mib} MiB" if r.max_rss_mib is not None else "")
            + (f"; stopped: {r.stopped}" if r.stopped else "")
        )
    by = {r.name: r for r in results}
    ratio = None
    print("\n# Summary\n")
    print("| SUT | max calls/s (< 0.5 % failed) | CPU % at max | peak RSS MiB |")
    print("|---|---:|---:|---:|")
    for r in results:
        print(
            f"| {r.name} | {r.max_rate if r.max_rate is not None else '—'} "
            f"| {r.cpu_pct_at_max if r.cpu_pct_at_max is not None else '—'} "
            f"| {r.max_rss_mib if r.max_rss_mib is not None else '—'} |"
        )
    if "softswitch" in by and "sippy" in by:
        a, b = by["softswitch"].max_rate, by["sippy"].max_rate
        if a is not None and b:
            ratio = round(a / b, 3)
            print(f"\nsoftswitch / sippy = {a} / {b} = {ratio:.2f}")
        else:
            print("\nsoftswitch / sippy: not computable (a SUT has no passing step)")
    doc = {
        "started": started,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "sipp": sipp_version(sipp),
        },
        "params": {
            "rates": args.rates,
            "step_seconds": args.step_seconds,
            "hold_ms": args.hold_ms,
            "recv_timeout_ms": args.recv_timeout_ms,
            "port_base": args.port_base,
            "uas": f"{HOST}:{UAS_PORT}",
            "number": NUMBER,
            "pass_failed_pct": PASS_FAILED_PCT,
            "min_offered_fraction": MIN_ACHIEVED,
        },
        "suts": {r.name: asdict(r) for r in results},
        "ratio_softswitch_over_sippy": ratio,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nJSON: {args.json}")
    return 0 if all(r.error is None for r in results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # children were already stopped by the finally blocks
        print("\ninterrupted; every process the bench started has been stopped", file=sys.stderr)
        sys.exit(130)
