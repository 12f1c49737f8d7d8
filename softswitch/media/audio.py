"""Audio for prompts, whispers, hold music and ringback, as ready-to-send G.711 frames.

Theory of operation
-------------------

Telephone audio is 8000 Hz mono; G.711 (PCMU, PCMA) turns each 16-bit sample into
one byte, and an RTP packet carries 20 ms of it: 160 samples, 160 bytes, RTP
timestamp advancing by 160 (RFC 3551 §4.5.14 and §4.2's default packetisation).

A file is decoded once, whatever its format (anything FFmpeg reads: WAV of any
rate, width or channel count, MP3, Ogg, ...), by PyAV, resampled to 8000 Hz mono
signed 16-bit (``decode_pcm``), then encoded with FFmpeg's G.711 encoders, the
ones ``aiortc.codecs.g711`` uses (``encode``).  The frames are cached for the
life of the process, keyed by the file's resolved path, its modification time and
the codec (``frames``), so a call playing a prompt only indexes a tuple, and an
edited file is decoded afresh.  ``softswitch check``, startup and reload decode
every configured file up front (``media/files.py``) so that a bad file fails there
rather than in a live call.

Frames go out on an absolute grid (``frame_time``): frame n at ``start + n*0.020``
in loop time with timestamp ``first + n*160``.  A sender that wakes late sends
what is due and catches up; it never drifts the way ``sleep(0.02)`` in a loop does.

Generated tones (``tone``, ``ringback``) need no file.

Nothing here touches sockets, an event loop or a clock.
"""

from __future__ import annotations

import array
import functools
import math
import sys
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av

RATE = 8000  # samples per second, G.711 (RFC 3551 §4.5.14)
FRAME_SAMPLES = 160  # 20 ms at 8000 Hz: one RTP packet
FRAME_SECONDS = FRAME_SAMPLES / RATE  # 0.020
_SAMPLE_BYTES = 2  # signed 16-bit little-endian
_TIMESTAMP_MODULUS = 2**32  # RTP timestamps are 32-bit and wrap (RFC 3550 §5.1)

_ENCODERS: dict[str, Literal["pcm_mulaw", "pcm_alaw"]] = {
    "PCMU": "pcm_mulaw",  # G.711 μ-law, RTP payload type 0
    "PCMA": "pcm_alaw",  # G.711 A-law, RTP payload type 8
}
# What a zero sample encodes to (G.711 Tables 1 and 2): μ-law complements its code, so
# +0 is 0xFF; A-law codes +0 as 0x80 and inverts the even bits (XOR 0x55): 0xD5.
_SILENCE = {"PCMU": 0xFF, "PCMA": 0xD5}

# Levels.  A sine at 0 dBm0 (the "digital milliwatt") peaks 3.17 dB below the
# largest value G.711 can code (ITU-T G.711 §3 / Table 5; 3.14 dB for A-law, the
# difference is inaudible), taken here as 16-bit full scale.
_DBM0_PEAK = 10 ** (-3.17 / 20)


def _peak(dbm0: float) -> float:
    """The peak, as a fraction of full scale, of a sine at ``dbm0``."""
    return _DBM0_PEAK * 10 ** (dbm0 / 20)


# North American ringback (the precise tone plan, ANSI T1.401; ITU-T E.180 lists
# it for the US): 440 Hz + 480 Hz at -19 dBm0 each, 2 s on, 4 s off.
RINGBACK_FREQUENCIES = (440.0, 480.0)
RINGBACK_ON = 2.0
RINGBACK_OFF = 4.0
RINGBACK_LEVEL = 2 * _peak(-19.0)  # peak of the sum of the two tones, for tone()


class AudioError(Exception):
    """A file that cannot be played; the message names the file and says why."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _codec(codec: str) -> str:
    """The canonical name; SDP encoding names are case-insensitive (RFC 4566 §6)."""
    name = codec.upper()
    if name not in _ENCODERS:
        raise ValueError(f"codec {codec!r} is not PCMU or PCMA")
    return name


def _samples(frame: av.AudioFrame) -> bytes:
    # A plane's buffer may be padded past the last sample: keep only the samples.
    return bytes(frame.planes[0])[: frame.samples * _SAMPLE_BYTES]


def decode_pcm(path: Path) -> bytes:
    """The audio of ``path`` as 8000 Hz mono signed 16-bit little-endian PCM.

    The first audio stream is decoded and resampled (FFmpeg's swresample through
    ``av.AudioResampler``: rate conversion, channels mixed down, any sample width).
    Raises AudioError: "not found", "not a file", "cannot read: ...",
    "cannot decode: ...", "no audio stream", "empty (no audio samples)".
    """
    if not path.exists():
        raise AudioError(path, "not found")
    if not path.is_file():
        raise AudioError(path, "not a file")
    chunks: list[bytes] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError(path, "no audio stream")
            resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            for frame in container.decode(container.streams.audio[0]):
                chunks.extend(_samples(out) for out in resampler.resample(frame))
            chunks.extend(_samples(out) for out in resampler.resample(None))
    except av.FFmpegError as error:
        raise AudioError(path, f"cannot decode: {error.strerror or error}") from error
    except OSError as error:
        raise AudioError(path, f"cannot read: {error.strerror or error}") from error
    pcm = b"".join(chunks)
    if not pcm:
        raise AudioError(path, "empty (no audio samples)")
    return pcm


def encode(pcm: bytes, codec: str) -> tuple[bytes, ...]:
    """8000 Hz mono s16le PCM as G.711 frames of 160 bytes, the last one padded
    with silence.  ``codec`` is "PCMU" or "PCMA" (any case).  No PCM, no frames."""
    name = _codec(codec)
    if len(pcm) % _SAMPLE_BYTES:
        raise ValueError(f"PCM of {len(pcm)} bytes is not whole 16-bit samples")
    short = -(len(pcm) // _SAMPLE_BYTES) % FRAME_SAMPLES
    padded = pcm + bytes(short * _SAMPLE_BYTES)  # zero samples encode to G.711 silence
    if not padded:
        return ()
    context = av.CodecContext.create(_ENCODERS[name], "w")
    context.format = "s16"
    context.layout = "mono"
    context.sample_rate = RATE
    context.time_base = Fraction(1, RATE)
    frame = av.AudioFrame(format="s16", layout="mono", samples=len(padded) // _SAMPLE_BYTES)
    frame.planes[0].update(padded)
    frame.sample_rate = RATE
    frame.pts = 0
    packets = context.encode(frame) + context.encode(None)
    encoded = b"".join(bytes(packet) for packet in packets)
    return tuple(
        encoded[offset : offset + FRAME_SAMPLES] for offset in range(0, len(encoded), FRAME_SAMPLES)
    )


def _file_key(path: Path) -> tuple[Path, int]:
    try:
        resolved = path.resolve(strict=True)
        return resolved, resolved.stat().st_mtime_ns
    except FileNotFoundError as error:
        raise AudioError(path, "not found") from error
    except OSError as error:
        raise AudioError(path, f"cannot read: {error.strerror or error}") from error


# Keyed by modification time, so an edited file is decoded again; the superseded
# entries age out of the LRU.  Failures are not cached: a fixed file plays next time.
@functools.lru_cache(maxsize=64)
def _decoded(path: Path, mtime_ns: int) -> bytes:
    return decode_pcm(path)


@functools.lru_cache(maxsize=128)
def _encoded(path: Path, mtime_ns: int, codec: str) -> tuple[bytes, ...]:
    return encode(_decoded(path, mtime_ns), codec)


def frames(path: Path, codec: str) -> tuple[bytes, ...]:
    """The G.711 frames of a file, decoded once per (resolved path, mtime, codec)
    for the process; the same tuple object every time while the file is unchanged."""
    name = _codec(codec)
    resolved, mtime_ns = _file_key(path)
    return _encoded(resolved, mtime_ns, name)


def tone(
    frequencies: Sequence[float], seconds: float, codec: str, level: float = 0.3
) -> tuple[bytes, ...]:
    """G.711 frames of a sum of sines lasting ``seconds`` (rounded to the sample).

    ``level`` is the peak of the sum as a fraction of full scale: each of the n
    frequencies gets ``level / n``, so the sum never clips.  Every sine starts at
    phase zero on sample 0.
    """
    name = _codec(codec)
    if not frequencies:
        raise ValueError("a tone needs at least one frequency")
    for frequency in frequencies:
        if not 0 < frequency < RATE / 2:
            raise ValueError(f"{frequency} Hz is not between 0 and {RATE // 2} Hz (Nyquist)")
    if not 0 < level <= 1:
        raise ValueError(f"tone level {level} is not in (0, 1]")
    if seconds < 0:
        raise ValueError(f"tone length {seconds} s is negative")
    amplitude = level * 32767 / len(frequencies)
    steps = [2 * math.pi * frequency / RATE for frequency in frequencies]
    samples = array.array(
        "h",
        (
            round(amplitude * sum(math.sin(step * n) for step in steps))
            for n in range(round(seconds * RATE))
        ),
    )
    if sys.byteorder == "big":
        samples.byteswap()
    return encode(samples.tobytes(), name)


def silence(codec: str) -> bytes:
    """One 20 ms frame of G.711 silence: 160 bytes of 0xFF (PCMU) or 0xD5 (PCMA)."""
    return bytes([_SILENCE[_codec(codec)]]) * FRAME_SAMPLES


@functools.lru_cache(maxsize=4)
def _ringback(codec: str) -> tuple[bytes, ...]:
    ring = tone(RINGBACK_FREQUENCIES, RINGBACK_ON, codec, level=RINGBACK_LEVEL)
    return ring + (silence(codec),) * round(RINGBACK_OFF / FRAME_SECONDS)


def ringback(codec: str) -> tuple[bytes, ...]:
    """One 6 s cycle of North American ringback: 440 + 480 Hz at -19 dBm0 each for
    2 s, then 4 s of silence (300 frames).  A player loops it; it is built once."""
    return _ringback(_codec(codec))


def frame_time(start: float, n: int, first_timestamp: int) -> tuple[float, int]:
    """The absolute 20 ms grid: frame ``n`` goes out at ``start + n * 0.020`` with RTP
    timestamp ``first_timestamp + n * 160`` (mod 2**32).  Computed from ``n``, never
    accumulated, so a long stream does not drift."""
    if n < 0:
        raise ValueError(f"frame number {n} is negative")
    return start + n * FRAME_SECONDS, (first_timestamp + n * FRAME_SAMPLES) % _TIMESTAMP_MODULUS
