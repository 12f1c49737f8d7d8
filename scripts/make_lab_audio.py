"""Generate the lab's audio files (conf/audio/lab-*.wav) with the standard library.

The committed files are this script's output; running it again rewrites them
byte for byte (no randomness, no timestamps in WAV files).  All files are 8000 Hz,
mono, 16-bit PCM: the telephone band, so G.711 transcoding is exact in rate.

    python scripts/make_lab_audio.py [--out-dir conf/audio]

- lab-whisper.wav: 1.0 s of 1000 Hz (R4's receiving whisper, +1 800 555 0106)
- lab-tracking-whisper.wav: 1.0 s of 1500 Hz (the tracking whisper of 0108)
- lab-menu.wav: 2.0 s, three rising notes then silence (0111's menu prompt)
- lab-hold.wav: 3.0 s, two alternating soft tones that loop cleanly (0112's hold music)

Whisper tones run at full length with no fade so that a test measuring "1.0 s of
1000 Hz" finds exactly 8000 samples of it; the menu and hold notes have 10 ms
ramps so they do not click.
"""

from __future__ import annotations

import argparse
import logging
import math
import wave
from collections.abc import Iterable
from pathlib import Path

RATE = 8000  # samples per second (G.711 telephone audio)
AMPLITUDE = 0.5  # of full scale: -6 dBFS, loud enough, far from clipping
RAMP = 0.010  # seconds of fade in/out on musical notes

log = logging.getLogger("make_lab_audio")


def tone(
    frequency: float, seconds: float, *, ramp: float = 0.0, level: float = AMPLITUDE
) -> list[int]:
    """A sine tone as 16-bit samples; ``ramp`` seconds of linear fade at each end."""
    count = round(seconds * RATE)
    ramp_count = round(ramp * RATE)
    samples = []
    for n in range(count):
        gain = 1.0
        if ramp_count:
            gain = min(1.0, n / ramp_count, (count - 1 - n) / ramp_count)
        value = level * gain * math.sin(2 * math.pi * frequency * n / RATE)
        samples.append(round(value * 32767))
    return samples


def silence(seconds: float) -> list[int]:
    return [0] * round(seconds * RATE)


def write_wav(path: Path, samples: Iterable[int]) -> None:
    frames = b"".join(sample.to_bytes(2, "little", signed=True) for sample in samples)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(frames)
    log.info("wrote %s (%d samples)", path, len(frames) // 2)


def menu_prompt() -> list[int]:
    # C5 E5 G5, 0.4 s each with 0.1 s gaps, then 0.5 s of silence: 2.0 s in all.
    samples: list[int] = []
    for frequency in (523.25, 659.25, 783.99):
        samples += tone(frequency, 0.4, ramp=RAMP) + silence(0.1)
    return samples + silence(0.5)


def hold_music() -> list[int]:
    # A4 and E5 (a fifth) alternating, 0.45 s notes and 0.05 s gaps, six notes:
    # 3.0 s that start and end in silence, so looping never clicks.
    samples: list[int] = []
    for frequency in (440.0, 659.25) * 3:
        samples += tone(frequency, 0.45, ramp=RAMP, level=0.3) + silence(0.05)
    return samples


def main() -> None:
    default = Path(__file__).resolve().parent.parent / "conf" / "audio"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out-dir", type=Path, default=default, help=f"default: {default}")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    write_wav(out_dir / "lab-whisper.wav", tone(1000.0, 1.0))
    write_wav(out_dir / "lab-tracking-whisper.wav", tone(1500.0, 1.0))
    write_wav(out_dir / "lab-menu.wav", menu_prompt())
    write_wav(out_dir / "lab-hold.wav", hold_music())


if __name__ == "__main__":
    main()
