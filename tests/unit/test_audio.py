"""softswitch.media.audio: files decoded to 8000 Hz mono, G.711 frames, tones, the
20 ms grid and the cache.

Frequencies are measured with a Goertzel filter and G.711 is decoded with the
reference expansion of ITU-T G.711 (as in the public-domain Sun ``g711.c``), both
written here so that the tests do not check PyAV against itself.  WAV files of other
rates, widths and channel counts are written with the standard library's ``wave``.
"""

from __future__ import annotations

import array
import math
import os
import sys
import wave
from collections.abc import Sequence
from pathlib import Path

import pytest

from softswitch.media import audio
from softswitch.media.audio import (
    FRAME_SAMPLES,
    AudioError,
    decode_pcm,
    encode,
    frame_time,
    frames,
    ringback,
    silence,
    tone,
)

PROJECT = Path(__file__).resolve().parents[2]
LAB_AUDIO = PROJECT / "conf" / "audio"
FULL_SCALE = 32767


# --- helpers ---------------------------------------------------------------------------


def samples(pcm: bytes) -> list[int]:
    values = array.array("h", pcm)
    if sys.byteorder == "big":
        values.byteswap()
    return values.tolist()


def amplitude(values: Sequence[int], frequency: float, rate: int = 8000) -> float:
    """The amplitude of one frequency in ``values`` (Goertzel): A for A*sin(2*pi*f*t)."""
    coefficient = 2 * math.cos(2 * math.pi * frequency / rate)
    s1 = s2 = 0.0
    for x in values:
        s1, s2 = x + coefficient * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coefficient * s1 * s2
    return 2 * math.sqrt(max(power, 0.0)) / len(values)


def ulaw_to_linear(code: int) -> int:
    # G.711 μ-law expansion: complement, then sign, 3-bit segment, 4-bit step, bias 0x84.
    code = ~code & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 0x07)
    return 0x84 - magnitude if code & 0x80 else magnitude - 0x84


def alaw_to_linear(code: int) -> int:
    # G.711 A-law expansion: even bits inverted, then sign (1 = positive), segment, step.
    code ^= 0x55
    magnitude = (code & 0x0F) << 4
    segment = (code >> 4) & 0x07
    if segment == 0:
        magnitude += 8
    else:
        magnitude = (magnitude + 0x108) << (segment - 1)
    return magnitude if code & 0x80 else -magnitude


def expand(encoded: Sequence[bytes], codec: str) -> list[int]:
    decode = ulaw_to_linear if codec == "PCMU" else alaw_to_linear
    return [decode(byte) for frame in encoded for byte in frame]


def sine_pcm(frequencies: Sequence[float], seconds: float, level: float = 0.5) -> bytes:
    count = round(seconds * 8000)
    values = array.array(
        "h",
        (
            round(
                level * FULL_SCALE * sum(math.sin(2 * math.pi * f * n / 8000) for f in frequencies)
            )
            for n in range(count)
        ),
    )
    if sys.byteorder == "big":
        values.byteswap()
    return values.tobytes()


def write_wav(
    path: Path,
    rate: int,
    channels: int,
    width: int,
    seconds: float,
    frequencies: Sequence[float],
    level: float = 0.5,
) -> Path:
    """A PCM WAV; channel c carries a sine at frequencies[c % len(frequencies)]."""
    peak = (1 << (8 * width - 1)) - 1
    steps = [2 * math.pi * frequencies[c % len(frequencies)] / rate for c in range(channels)]
    data = bytearray()
    for n in range(round(seconds * rate)):
        for step in steps:
            value = round(level * peak * math.sin(step * n))
            if width == 1:
                data.append(value + 128)  # 8-bit WAV is unsigned, 128 is zero
            else:
                data += value.to_bytes(width, "little", signed=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(bytes(data))
    return path


# --- decoding files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "seconds", "frequency"),
    [
        ("lab-whisper.wav", 1.0, 1000.0),  # scripts/make_lab_audio.py: 1.0 s of 1000 Hz
        ("lab-tracking-whisper.wav", 1.0, 1500.0),
        ("lab-menu.wav", 2.0, None),
        ("lab-hold.wav", 3.0, None),
    ],
)
def test_lab_audio_decodes_to_its_length(
    name: str, seconds: float, frequency: float | None
) -> None:
    pcm = decode_pcm(LAB_AUDIO / name)
    assert len(pcm) == round(seconds * 8000) * 2  # 8000 Hz mono s16 in: nothing to resample
    assert len(frames(LAB_AUDIO / name, "PCMU")) == round(seconds * 50)
    if frequency is not None:
        values = samples(pcm)
        assert amplitude(values, frequency) == pytest.approx(0.5 * FULL_SCALE, rel=0.01)
        assert amplitude(values, frequency * 0.7) < 0.01 * FULL_SCALE


@pytest.mark.parametrize(
    ("rate", "channels", "width"),
    [
        (16000, 1, 2),
        (44100, 2, 2),
        (8000, 1, 1),  # 8-bit unsigned
        (48000, 2, 3),  # 24-bit
        (22050, 1, 4),  # 32-bit
        (11025, 1, 2),
    ],
)
def test_any_wav_becomes_8000_hz_mono(tmp_path: Path, rate: int, channels: int, width: int) -> None:
    path = write_wav(tmp_path / "tone.wav", rate, channels, width, 0.5, [1000.0])
    values = samples(decode_pcm(path))
    assert len(values) == pytest.approx(4000, abs=40)  # 0.5 s at 8000 Hz
    middle = values[400:3600]  # clear of the resampler's edges; 400 whole cycles
    assert amplitude(middle, 1000.0) == pytest.approx(0.5 * FULL_SCALE, rel=0.05)
    assert amplitude(middle, 700.0) < 0.01 * FULL_SCALE


def test_stereo_is_mixed_down(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "stereo.wav", 44100, 2, 2, 0.5, [600.0, 1000.0])
    middle = samples(decode_pcm(path))[400:3600]
    left, right = amplitude(middle, 600.0), amplitude(middle, 1000.0)
    assert left > 0.1 * FULL_SCALE and right > 0.1 * FULL_SCALE
    assert left == pytest.approx(right, rel=0.05)


def test_resampling_filters_instead_of_aliasing(tmp_path: Path) -> None:
    # 5000 Hz is above the 4000 Hz Nyquist of the telephone band; dropping every other
    # sample would fold it onto 3000 Hz.  A resampler low-passes it away.
    path = write_wav(tmp_path / "high.wav", 16000, 1, 2, 0.5, [5000.0])
    middle = samples(decode_pcm(path))[400:3600]
    assert amplitude(middle, 3000.0) < 0.01 * FULL_SCALE
    assert max(abs(v) for v in middle) < 0.05 * FULL_SCALE


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.wav"
    with pytest.raises(AudioError, match="not found") as caught:
        decode_pcm(path)
    assert str(caught.value) == f"{path}: not found"
    assert caught.value.path == path


def test_text_file_named_wav(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 20)
    with pytest.raises(AudioError, match="cannot decode") as caught:
        decode_pcm(path)
    assert str(caught.value).startswith(f"{path}: cannot decode: ")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="not a file"):
        decode_pcm(tmp_path)


def test_wav_without_samples(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "empty.wav", 8000, 1, 2, 0.0, [1000.0])
    with pytest.raises(AudioError, match="empty"):
        decode_pcm(path)


def test_file_without_audio_stream(tmp_path: Path) -> None:
    path = tmp_path / "captions.srt"  # FFmpeg reads SubRip as a subtitle stream
    path.write_text("1\n00:00:00,000 --> 00:00:01,000\nhello\n\n")
    with pytest.raises(AudioError, match="no audio stream"):
        decode_pcm(path)


# --- G.711 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_encode_frames_decode_back_to_the_tone(codec: str) -> None:
    pcm = sine_pcm([1000.0], 0.5)
    encoded = encode(pcm, codec)
    assert len(encoded) == 25 and {len(frame) for frame in encoded} == {FRAME_SAMPLES}
    original, expanded = samples(pcm), expand(encoded, codec)
    assert len(expanded) == len(original)
    # G.711 is logarithmic: the error grows with the sample, about 1/32 of it at most
    assert all(abs(e - o) <= abs(o) / 16 + 16 for e, o in zip(expanded, original, strict=True))
    assert amplitude(expanded, 1000.0) == pytest.approx(0.5 * FULL_SCALE, rel=0.02)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_last_frame_is_padded_with_silence(codec: str) -> None:
    encoded = encode(sine_pcm([1000.0], 0.5125), codec)  # 4100 samples
    assert len(encoded) == 26 and len(encoded[-1]) == FRAME_SAMPLES
    assert encoded[-1][100:] == silence(codec)[100:]  # 100 samples of tone, 60 of padding
    assert encoded[-1][:100] != silence(codec)[:100]


def test_encode_edges() -> None:
    assert encode(b"", "PCMU") == ()
    assert encode(bytes(2), "pcmu") == (silence("PCMU"),)  # codec names are case-insensitive
    with pytest.raises(ValueError, match="16-bit"):
        encode(b"\x00\x00\x00", "PCMU")
    with pytest.raises(ValueError, match="PCMU or PCMA"):
        encode(bytes(320), "G729")


def test_silence() -> None:
    assert silence("PCMU") == b"\xff" * 160
    assert silence("PCMA") == b"\xd5" * 160
    assert encode(bytes(320), "PCMU") == (silence("PCMU"),)
    assert encode(bytes(320), "PCMA") == (silence("PCMA"),)
    assert set(expand([silence("PCMU")], "PCMU")) == {0}
    assert set(expand([silence("PCMA")], "PCMA")) == {8}  # A-law has no zero: ±8
    with pytest.raises(ValueError):
        silence("opus")


# --- tones ------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_tone_frequency_and_level(codec: str) -> None:
    encoded = tone([1000.0], 0.5, codec)
    assert len(encoded) == 25
    values = expand(encoded, codec)
    assert amplitude(values, 1000.0) == pytest.approx(0.3 * FULL_SCALE, rel=0.02)
    assert amplitude(values, 1400.0) < 0.005 * FULL_SCALE


def test_dual_tone_shares_the_level() -> None:
    values = expand(tone([350.0, 440.0], 1.0, "PCMU", level=0.5), "PCMU")
    assert amplitude(values, 350.0) == pytest.approx(0.25 * FULL_SCALE, rel=0.02)
    assert amplitude(values, 440.0) == pytest.approx(0.25 * FULL_SCALE, rel=0.02)
    assert amplitude(values, 1000.0) < 0.005 * FULL_SCALE
    assert max(abs(v) for v in values) <= 0.5 * FULL_SCALE * 1.04  # never above the level


def test_tone_length_rounds_up_to_whole_frames() -> None:
    assert len(tone([1000.0], 0.51, "PCMU")) == 26  # 4080 samples
    assert tone([1000.0], 0.0, "PCMU") == ()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (([], 1.0, "PCMU"), "at least one"),
        (([4000.0], 1.0, "PCMU"), "Nyquist"),
        (([0.0], 1.0, "PCMU"), "Nyquist"),
        (([440.0], -1.0, "PCMU"), "negative"),
        (([440.0], 1.0, "GSM"), "PCMU or PCMA"),
    ],
)
def test_bad_tones(arguments: tuple[list[float], float, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tone(*arguments)
    with pytest.raises(ValueError, match="level"):
        tone([440.0], 1.0, "PCMU", level=0.0)


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_ringback_cycle(codec: str) -> None:
    cycle = ringback(codec)
    assert len(cycle) == 300  # 6 s of 20 ms frames
    assert cycle[100:] == (silence(codec),) * 200  # 4 s off
    ring = expand(cycle[:100], codec)  # 2 s on: 440 + 480 Hz at -19 dBm0 each
    per_tone = 10 ** (-3.17 / 20) * 10 ** (-19 / 20) * FULL_SCALE  # 0 dBm0 peaks -3.17 dBov
    assert amplitude(ring, 440.0) == pytest.approx(per_tone, rel=0.05)
    assert amplitude(ring, 480.0) == pytest.approx(per_tone, rel=0.05)
    assert amplitude(ring, 620.0) < 0.05 * per_tone
    assert ringback(codec) is cycle


# --- the 20 ms grid ----------------------------------------------------------------------------


def test_frame_times_are_absolute() -> None:
    grid = [frame_time(100.0, n, 1000) for n in range(3)]
    assert [timestamp for _, timestamp in grid] == [1000, 1160, 1320]
    assert [at for at, _ in grid] == pytest.approx([100.0, 100.02, 100.04], abs=1e-9)
    assert frame_time(5.0, 50_000, 0) == (5.0 + 50_000 * 0.020, 8_000_000)  # not accumulated
    assert frame_time(5.0, 50_000, 0)[0] == pytest.approx(1005.0, abs=1e-9)
    with pytest.raises(ValueError):
        frame_time(1.0, -1, 0)


def test_frame_timestamps_wrap_at_2_to_the_32() -> None:
    grid = [frame_time(0.0, n, 2**32 - 320) for n in range(4)]
    assert [timestamp for _, timestamp in grid] == [2**32 - 320, 2**32 - 160, 0, 160]
    assert frame_time(0.0, 1, 2**32 - 1)[1] == 159


# --- the cache ------------------------------------------------------------------------------


def test_frames_are_decoded_once_and_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real = audio.decode_pcm

    def counting(path: Path) -> bytes:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(audio, "decode_pcm", counting)
    path = write_wav(tmp_path / "prompt.wav", 8000, 1, 2, 0.2, [1000.0])
    (tmp_path / "sub").mkdir()

    first = frames(path, "PCMU")
    assert frames(path, "PCMU") is first
    assert frames(tmp_path / "sub" / ".." / "prompt.wav", "pcmu") is first  # resolved path
    assert len(first) == 10
    alaw = frames(path, "PCMA")
    assert alaw is not first and alaw == encode(real(path), "PCMA")
    assert calls == [path.resolve()]  # one decode for PCMU and PCMA

    # an edited file (new modification time) is decoded again
    write_wav(path, 8000, 1, 2, 0.4, [1500.0])
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    edited = frames(path, "PCMU")
    assert len(edited) == 20 and len(calls) == 2
    assert amplitude(expand(edited, "PCMU"), 1500.0) > 0.4 * FULL_SCALE


def test_frames_raise_audio_errors(tmp_path: Path) -> None:
    assert frames(LAB_AUDIO / "lab-whisper.wav", "PCMU")
    with pytest.raises(AudioError, match="not found"):
        frames(tmp_path / "missing.wav", "PCMU")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF but not really")
    with pytest.raises(AudioError, match="cannot decode"):
        frames(bad, "PCMA")
    with pytest.raises(ValueError, match="PCMU or PCMA"):
        frames(LAB_AUDIO / "lab-whisper.wav", "G722")
