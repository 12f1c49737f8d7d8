"""Every audio file a config names, decoded before any call needs it.

The config model checks that audio files exist; whether they can be decoded is
only known by decoding them, which is PyAV's work and too heavy for the model.  So
``softswitch check``, start-up and every reload call :func:`load_audio`: it decodes
each file into G.711 frames (cached for the calls) and turns a file that cannot be
decoded into a :class:`~softswitch.config.ConfigError` line naming the config file,
the key and what was expected — never a failure in the middle of a call.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..config import Config, ConfigError
from . import audio


def audio_files(config: Config) -> Iterator[tuple[str, Path]]:
    """(key path, file) for every audio file of the config."""
    for name, number in config.receiving_numbers.items():
        if number.whisper is not None:
            yield f"receiving_numbers.{name}.whisper", number.whisper
    for key, tracking in config.tracking_numbers.items():
        if tracking.whisper is not None:
            yield f'tracking_numbers["{key}"].whisper', tracking.whisper
    for name, menu in config.menus.items():
        yield f"menus.{name}.prompt", menu.prompt
        if menu.invalid_prompt is not None:
            yield f"menus.{name}.invalid_prompt", menu.invalid_prompt
    for name, queue in config.queues.items():
        if queue.hold_music is not None:
            yield f"queues.{name}.hold_music", queue.hold_music
        if queue.announce is not None:
            for index, prompt in enumerate(queue.announce.prompts):
                yield f"queues.{name}.announce.prompts[{index}]", prompt


def load_audio(config: Config, source: str) -> int:
    """Decode every audio file of ``config`` (read from ``source``) in both G.711
    laws; returns how many files there are, raises ConfigError listing the bad ones."""
    problems: list[str] = []
    files = 0
    for key, path in audio_files(config):
        files += 1
        try:
            for codec in ("PCMU", "PCMA"):
                audio.frames(path, codec)
        except audio.AudioError as exc:
            problems.append(
                f"{source}: {key}: {exc}; expected an audio file softswitch can decode "
                "(WAV, or another format PyAV reads)"
            )
    if problems:
        raise ConfigError(problems)
    return files
