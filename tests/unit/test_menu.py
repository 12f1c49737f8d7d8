"""softswitch.routing.menu: the IVR state machine fed keys and time (issue #5).

Every script below is a list of inputs with what the session answers and its next
deadline.  The menu: a 4 s prompt, a 2 s invalid prompt, 5 s to press a key, keys 1
and 2, one retry and a default (unless a row's menu says otherwise).  So with no
key the prompt plays at 0 and 9 and the default is taken at 18.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from softswitch.config import DialRoute, Menu
from softswitch.routing.menu import Chosen, MenuAction, MenuSession, Play, StopPlaying

AUDIO = Path(__file__).resolve().parents[2] / "conf" / "audio"
PROMPT = AUDIO / "lab-menu.wav"
INVALID = AUDIO / "lab-whisper.wav"
PROMPT_SECONDS = 4.0
INVALID_SECONDS = 2.0


def menu(**changes: Any) -> Menu:
    fields: dict[str, Any] = {
        "name": "main",
        "prompt": PROMPT,
        "keys": {1: {"dial": "R1"}, "2": {"dial": "R2"}},
        "timeout": 5,
        "retries": 1,
        "invalid_prompt": INVALID,
        "default": {"dial": "R9"},
    }
    fields.update(changes)
    return Menu.model_validate(fields)


def show(action: MenuAction) -> str:
    if isinstance(action, Play):
        name = {PROMPT: "prompt", INVALID: "invalid"}[action.path]
        return f"{name}@{action.at:g}"
    if isinstance(action, StopPlaying):
        return "stop"
    assert isinstance(action, Chosen)
    if action.route is None:
        where = "hang up"
    else:
        assert isinstance(action.route, DialRoute)
        where = "+".join(action.route.numbers)
    return f"{where} key={action.key}: {action.why}"


def feed(session: MenuSession, step: str) -> list[MenuAction]:
    """``start T``, ``tick T`` or ``key K T``."""
    kind, *args = step.split()
    if kind == "start":
        return session.start(float(args[0]))
    if kind == "tick":
        return session.tick(float(args[0]))
    assert kind == "key", step
    return session.digit(args[0], float(args[1]))


Script = list[tuple[str, str, float | None]]  # input, actions shown, deadline after it

SCRIPTS: dict[str, tuple[dict[str, Any], Script]] = {
    "key during the prompt stops it": ({}, [
        ("start 0", "prompt@0", 4.0),
        ("key 1 2.5", "stop | R1 key=1: key 1", None),
    ]),
    "key after the prompt, within the timeout": ({}, [
        ("start 0", "prompt@0", 4.0),
        ("tick 4", "", 9.0),
        ("key 2 7", "R2 key=2: key 2", None),
    ]),
    "key at the prompt's end, before its tick, still barges in": ({}, [
        ("start 0", "prompt@0", 4.0),
        ("key 1 4", "stop | R1 key=1: key 1", None),
    ]),
    "key after the prompt ended, its tick not yet run": ({}, [
        ("start 0", "prompt@0", 4.0),
        ("key 1 4.25", "R1 key=1: key 1", None),
    ]),
    "key at exactly the timeout is on time": ({}, [
        ("start 0", "prompt@0", 4.0),
        ("tick 4", "", 9.0),
        ("key 1 9", "R1 key=1: key 1", None),
    ]),
    "wrong key: invalid prompt, then the prompt again": ({}, [
        ("start 0", "prompt@0", 4.0),
        ("key 7 1", "stop | invalid@1", 3.0),
        ("tick 3", "prompt@3", 7.0),
        ("tick 7", "", 12.0),
        ("key 1 8", "R1 key=1: key 1", None),
    ]),
    "wrong key while waiting: nothing to stop": ({}, [
        ("start 0", "prompt@0", 4.0),
        ("tick 4", "", 9.0),
        ("key 7 6", "invalid@6", 8.0),
        ("tick 8", "prompt@8", 12.0),
    ]),
    "wrong key without an invalid prompt: the prompt at once": ({"invalid_prompt": None}, [
        ("start 0", "prompt@0", 4.0),
        ("key 7 1", "stop | prompt@1", 5.0),
        ("tick 5", "", 10.0),
        ("tick 10", "R9 key=None: no key after 2 prompts", None),
    ]),
    "a key barges into the invalid prompt": ({}, [
        ("start 0", "prompt@0", 4.0),
        ("key 7 1", "stop | invalid@1", 3.0),
        ("key 2 2", "stop | R2 key=2: key 2", None),
    ]),
    "a wrong key during the invalid prompt uses the last retry": ({}, [
        ("start 0", "prompt@0", 4.0),
        ("key 7 1", "stop | invalid@1", 3.0),
        ("key 8 2", "stop | R9 key=8: key 8 not in the menu after 2 prompts", None),
    ]),
    "timeout, the prompt again, timeout, default": ({}, [
        ("start 0", "prompt@0", 4.0),
        ("tick 4", "", 9.0),
        ("tick 9", "prompt@9", 13.0),
        ("tick 13", "", 18.0),
        ("tick 18", "R9 key=None: no key after 2 prompts", None),
    ]),
    "no default: hang up": ({"default": None}, [
        ("start 0", "prompt@0", 4.0),
        ("tick 4", "", 9.0),
        ("tick 9", "prompt@9", 13.0),
        ("tick 13", "", 18.0),
        ("tick 18", "hang up key=None: no key after 2 prompts; no default, hang up", None),
    ]),
    "wrong key with no retry left: default, no invalid prompt": ({}, [
        ("start 0", "prompt@0", 4.0),
        ("tick 4", "", 9.0),
        ("tick 9", "prompt@9", 13.0),
        ("key 5 10", "stop | R9 key=5: key 5 not in the menu after 2 prompts", None),
    ]),
    "retries 0: one prompt only": ({"retries": 0}, [
        ("start 0", "prompt@0", 4.0),
        ("tick 4", "", 9.0),
        ("tick 9", "R9 key=None: no key after 1 prompt", None),
    ]),
    "retries 2: three prompts": ({"retries": 2}, [
        ("start 0", "prompt@0", 4.0),
        ("tick 4", "", 9.0),
        ("tick 9", "prompt@9", 13.0),
        ("tick 13", "", 18.0),
        ("tick 18", "prompt@18", 22.0),
        ("tick 22", "", 27.0),
        ("tick 27", "R9 key=None: no key after 3 prompts", None),
    ]),
    "a tick before the deadline does nothing": ({}, [
        ("start 0", "prompt@0", 4.0),
        ("tick 3.999", "", 4.0),
        ("tick 4", "", 9.0),
        ("tick 8.999", "", 9.0),
    ]),
    "a late tick runs every due step on the exact schedule": ({}, [
        ("start 0", "prompt@0", 4.0),
        ("tick 14", "prompt@9", 18.0),
        ("tick 60", "R9 key=None: no key after 2 prompts", None),
    ]),
    "keys after the end are ignored": ({}, [
        ("start 0", "prompt@0", 4.0),
        ("key 1 1", "stop | R1 key=1: key 1", None),
        ("key 2 1.5", "", None),
        ("tick 100", "", None),
    ]),
    "keys before the start are ignored": ({}, [
        ("key 1 0", "", None),
        ("start 0", "prompt@0", 4.0),
    ]),
    "timeout with a fractional prompt length": ({"timeout": 0.25}, [
        ("start 10.5", "prompt@10.5", 14.5),
        ("tick 14.5", "", 14.75),
        ("tick 14.75", "prompt@14.75", 18.75),
    ]),
}


@pytest.mark.parametrize("name", SCRIPTS)
def test_script(name: str) -> None:
    changes, script = SCRIPTS[name]
    session = MenuSession(menu(**changes), PROMPT_SECONDS, INVALID_SECONDS)
    seen = []
    for step, _, _ in script:
        actions = feed(session, step)
        seen.append((step, " | ".join(show(a) for a in actions), session.deadline))
    assert seen == script
    assert session.done == (script[-1][2] is None)


def test_chosen_route_is_the_menus_own() -> None:
    config = menu()
    session = MenuSession(config, PROMPT_SECONDS)
    session.start(0.0)
    [chosen] = session.digit("2", 5.0)
    assert chosen == Chosen(config.keys["2"], "2", "key 2")


def test_trace() -> None:
    session = MenuSession(menu(), PROMPT_SECONDS, INVALID_SECONDS)
    session.start(0.0)
    session.digit("7", 1.0)
    session.tick(3.0)
    session.tick(7.0)
    session.tick(12.0)
    session.digit("1", 13.0)
    assert session.trace == [
        "prompt 1 of 2",
        "key 7 during the prompt",
        "key 7 not in the menu",
        "invalid prompt",
        "prompt 2 of 2",
        "prompt ended; waiting 5 s for a key",
        "no key within 5 s",
        "chosen: no key after 2 prompts",
        "key 1 after the end, ignored",
    ]


def test_zero_length_invalid_prompt_goes_straight_back() -> None:
    session = MenuSession(menu(), PROMPT_SECONDS)  # invalid prompt length unknown: 0 s
    session.start(0.0)
    assert session.digit("9", 1.0) == [StopPlaying(), Play(INVALID, 1.0)]
    assert session.deadline == 1.0
    assert session.tick(1.0) == [Play(PROMPT, 1.0)]
    assert session.deadline == 5.0


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: (s.start(0.0), s.start(1.0)), RuntimeError),
        (lambda s: s.digit("12", 0.0), ValueError),
        (lambda s: s.digit("", 0.0), ValueError),
    ],
)
def test_misuse(call: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        call(MenuSession(menu(), PROMPT_SECONDS))


def test_negative_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="lengths"):
        MenuSession(menu(), -1.0)
    with pytest.raises(ValueError, match="lengths"):
        MenuSession(menu(), 1.0, -0.5)
