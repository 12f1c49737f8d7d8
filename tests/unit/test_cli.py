"""The command line: check, route and version, run in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from softswitch.cli import main

LAB = str(Path(__file__).resolve().parents[2] / "conf" / "lab.yaml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "version") == (0, "softswitch 0.1.0\n", "")


def test_check_accepts_the_lab(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "-c", LAB)
    assert code == 0 and "OK" in out


def test_check_names_file_key_and_expectation(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('tracking_numbers:\n  "+18005550100": {route: {dial: [R9]}}\n')
    code, _, err = run(capsys, "check", "-c", str(bad))
    assert code == 2
    assert "bad.yaml" in err and 'tracking_numbers["+18005550100"].route.dial[0]' in err
    assert "R9" in err


def test_check_decodes_every_audio_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A whisper that exists but is no audio is a config error, not a failed call."""
    (tmp_path / "whisper.wav").write_text("this is not audio\n")
    config = tmp_path / "media.yaml"
    config.write_text(
        "receiving_numbers:\n"
        '  R4: {number: "+1 415 555 0104", uri: "sip:r4@127.0.0.1:5074", whisper: whisper.wav}\n'
    )
    code, _, err = run(capsys, "check", "-c", str(config))
    assert code == 2
    assert "media.yaml: receiving_numbers.R4.whisper:" in err
    assert "cannot decode" in err and "expected an audio file" in err


def test_route_explains_the_whole_chain(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "route", "-c", LAB, "+1 800 555 0105", "--from", "+14155550000",
                       "--at", "2026-11-26T10:00")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "tracking number +18005550105 (Lab 0105 no-answer routing)"
    assert "1. dial R1 [+18005550105.route]" in lines
    assert "2. dial R2 [+18005550105.route.no_answer]" in lines
    assert any("ring 2 s" in line for line in lines)
    assert lines[-2] == "the caller gets 480 (nothing left to try)"


def test_route_shows_hours_rules_and_headers(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "route", "-c", LAB, "18005550109", "--at", "2026-11-26T10:00Z")
    assert code == 0
    assert "schedule lab-closed (UTC): closed" in out
    assert "R1-closed: outside its hours (lab-closed closed), skipped" in out
    assert "tags: lab-closed=closed" in out
    code, out, _ = run(capsys, "route", "-c", LAB, "tel:+1-800-555-0114", "--from",
                       "+12125550000", "--header", "X-Lab-Route: r2")
    assert code == 0 and "rule 2 matched" in out and "1. dial R2" in out


def test_route_refuses_what_is_not_a_tracking_number(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "route", "-c", LAB, "+18005559999")
    assert code == 1 and "not a tracking number" in err and "404" in err
    code, _, err = run(capsys, "route", "-c", LAB, "not-a-number")
    assert code == 2


def test_route_rejects_a_bad_time(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["route", "-c", LAB, "+18005550100", "--at", "yesterday"])
    assert exit_.value.code == 2
    assert "ISO 8601" in capsys.readouterr().err
