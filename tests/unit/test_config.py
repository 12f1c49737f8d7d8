"""softswitch.config: the lab file, the example file, and every class of bad config.

A bad config must always end in ConfigError whose lines name the file, the key
path and what was expected — never a traceback of some other exception.
"""

from __future__ import annotations

import copy
import datetime
import ipaddress
import textwrap
import wave
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from softswitch.config import (
    US_STATES,
    AgentRoute,
    Condition,
    ConditionalRoute,
    Config,
    ConfigError,
    DialExtension,
    DialRoute,
    GeoLocation,
    GeoRoute,
    Listen,
    MenuRoute,
    Pattern,
    QueueRoute,
    QueueStrategy,
    ReceivingNumber,
    RouteRef,
    RoutingSettings,
    calling_code,
    load_config,
    parse_config,
)

PROJECT = Path(__file__).resolve().parents[2]
LAB = PROJECT / "conf" / "lab.yaml"
EXAMPLE = PROJECT / "conf" / "softswitch.yaml"


@pytest.fixture(scope="module")
def lab() -> Config:
    return load_config(LAB)


# --------------------------------------------------------------------------
# conf/lab.yaml is LAB.md


def test_lab_sip_and_trunk(lab: Config) -> None:
    assert [str(listen) for listen in lab.sip.listen] == [
        "udp:127.0.0.1:5060",
        "tcp:127.0.0.1:5060",
    ]
    assert (lab.sip.timers.t1, lab.sip.timers.t2, lab.sip.timers.t4) == (0.5, 4.0, 5.0)
    assert lab.drain_limit == 30.0
    assert [trunk.name for trunk in lab.trunks] == ["lab"]
    assert lab.trunks[0].outbound_proxy is None and lab.trunks[0].credentials is None


@pytest.mark.parametrize(
    ("name", "number", "label", "uri"),
    [
        ("R1", "+14155550101", "Lab R1", "sip:+14155550101@127.0.0.1:5071"),
        ("R2", "+14155550102", "Lab R2", "sip:+14155550102@127.0.0.1:5072"),
        ("R3", "+14155550103", "Lab R3", "sip:+14155550103@127.0.0.1:5073"),
        ("R4", "+14155550104", "Lab R4 desk", "sip:+14155550104@127.0.0.1:5074"),
        (
            "R1-unreachable",
            "+14155550109",
            "Lab R1 (unreachable)",
            "sip:+14155550109@127.0.0.1:5079",
        ),
    ],
)
def test_lab_receiving_numbers(lab: Config, name: str, number: str, label: str, uri: str) -> None:
    receiving = lab.receiving_numbers[name]
    assert (receiving.name, receiving.number, receiving.label, receiving.uri) == (
        name,
        number,
        label,
        uri,
    )
    assert receiving.trunk is None


def test_lab_r4_extension_and_whisper(lab: Config) -> None:
    r4 = lab.receiving_numbers["R4"]
    assert r4.dial_extension == DialExtension(digits="12#", delay=1.0)
    assert r4.whisper == PROJECT / "conf" / "audio" / "lab-whisper.wav"


def _dial(
    numbers: tuple[str, ...],
    pattern: Pattern = Pattern.SIMULTANEOUS,
    ring: float | None = None,
    no_answer: DialRoute | None = None,
) -> DialRoute:
    return DialRoute.model_validate(
        {"dial": numbers, "pattern": pattern, "ring_timeout": ring, "no_answer": no_answer}
    )


R123 = ("R1", "R2", "R3")


@pytest.mark.parametrize(
    ("number", "route"),
    [
        ("+18005550100", _dial(("R1",), ring=5)),
        ("+18005550101", _dial(R123, Pattern.SIMULTANEOUS, 5)),
        ("+18005550102", _dial(R123, Pattern.ROUND_ROBIN, 2)),
        ("+18005550103", _dial(R123, Pattern.SEQUENTIAL, 2)),
        ("+18005550104", _dial(R123, Pattern.LEAST_CONNECTED)),
        ("+18005550105", _dial(("R1",), ring=2, no_answer=_dial(("R2",)))),
        ("+18005550106", _dial(("R4",))),
        ("+18005550107", _dial(("R1-unreachable",))),
        ("+18005550108", _dial(("R4",))),
        ("+18005550109", _dial(("R1-closed",), no_answer=_dial(("R2",)))),
        ("+18005550110", AgentRoute(agent="alice", fallback=_dial(("R1",)))),
        ("+18005550111", MenuRoute(menu="lab-menu")),
        ("+18005550112", QueueRoute(queue="lab-queue")),
        ("+18005550113", GeoRoute(geo_router="lab-geo")),
        ("+18005550114", ConditionalRoute(conditional_router="lab-rules")),
    ],
)
def test_lab_tracking_routes(lab: Config, number: str, route: object) -> None:
    tracking = lab.tracking_number(number)
    assert tracking is not None and tracking.number == number
    assert tracking.route == route


def test_lab_tracking_extras(lab: Config) -> None:
    assert lab.tracking_numbers["+18005550107"].fail_safe == "R3"
    assert (
        lab.tracking_numbers["+18005550108"].whisper
        == PROJECT / "conf/audio/lab-tracking-whisper.wav"
    )
    closed = lab.receiving_numbers["R1-closed"]
    assert (closed.number, closed.uri, closed.hours) == (
        "+14155550101",
        "sip:+14155550101@127.0.0.1:5071",
        "lab-closed",
    )
    schedule = lab.schedules["lab-closed"]
    monday_noon = datetime.datetime(2025, 6, 2, 12, tzinfo=datetime.UTC)
    assert not schedule.is_open(monday_noon)


def test_lab_agents_menu_queue(lab: Config) -> None:
    assert lab.agents["alice"].password == "alice-lab-secret"
    assert lab.agents["bob"].password == "bob-lab-secret"
    menu = lab.menus["lab-menu"]
    assert menu.prompt == PROJECT / "conf/audio/lab-menu.wav"
    assert dict(menu.keys) == {
        "1": _dial(("R1",)),
        "2": _dial(("R2",)),
        "3": QueueRoute(queue="lab-queue"),
    }
    assert (menu.timeout, menu.retries, menu.default) == (5.0, 1, _dial(("R3",)))
    queue = lab.queues["lab-queue"]
    assert queue.members == ("alice", "bob") and queue.strategy is QueueStrategy.ROUND_ROBIN
    assert (queue.ring_timeout, queue.max_wait, queue.no_answer) == (10.0, 60.0, _dial(("R3",)))
    assert queue.hold_music == PROJECT / "conf/audio/lab-hold.wav"


def test_lab_geo_and_conditional_routers(lab: Config) -> None:
    geo = lab.geo_routers["lab-geo"]
    assert [(loc.name, loc.state, loc.route) for loc in geo.locations] == [
        ("west", "CA", _dial(("R1",))),
        ("east", "NY", _dial(("R2",))),
    ]
    assert all(loc.latitude is None and loc.longitude is None for loc in geo.locations)
    assert (geo.out_of_area, geo.max_distance_km) == (_dial(("R3",)), None)
    rules = lab.conditional_routers["lab-rules"]
    assert [(rule.caller_prefixes, dict(rule.headers), rule.route) for rule in rules.rules] == [
        (("+1415",), {}, _dial(("R1",))),
        ((), {"x-lab-route": "^r2$"}, _dial(("R2",))),
    ]
    assert rules.default == _dial(("R3",))
    assert lab.routing == RoutingSettings(max_depth=8, final_status=480, max_calls=0)


def test_lab_loads_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert (
        load_config(LAB).receiving_numbers["R4"].whisper == PROJECT / "conf/audio/lab-whisper.wav"
    )


@pytest.mark.parametrize(
    ("name", "hz", "seconds"),
    [
        ("lab-whisper.wav", 1000, 1.0),
        ("lab-tracking-whisper.wav", 1500, 1.0),
        ("lab-menu.wav", None, 2.0),
        ("lab-hold.wav", None, 3.0),
    ],
)
def test_lab_audio_files(name: str, hz: int | None, seconds: float) -> None:
    with wave.open(str(PROJECT / "conf" / "audio" / name)) as audio:
        assert (audio.getframerate(), audio.getnchannels(), audio.getsampwidth()) == (8000, 1, 2)
        assert audio.getnframes() == int(seconds * 8000)
        frames = audio.readframes(audio.getnframes())
    if hz is not None:
        samples = [
            int.from_bytes(frames[i : i + 2], "little", signed=True)
            for i in range(0, len(frames), 2)
        ]
        rising = sum(1 for a, b in zip(samples, samples[1:], strict=False) if a < 0 <= b)
        assert abs(rising - hz * seconds) <= 1  # one upward zero crossing per cycle


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.trunks[0].credentials is not None
    assert config.trunks[0].outbound_proxy == "sip:198.51.100.17:5060"
    assert config.tracking_number("+1 (800) 555-0198") is not None
    assert set(config.geo_routers) == {"by-region"} and set(config.conditional_routers) == {
        "after-hours"
    }


# --------------------------------------------------------------------------
# Model behaviour


def test_tracking_number_lookup_any_form(lab: Config) -> None:
    for form in ("+18005550100", "18005550100", "tel:+1-800-555-0100", "%2B18005550100"):
        assert lab.tracking_number(form) is lab.tracking_numbers["+18005550100"]
    assert lab.tracking_number("+18005550199") is None
    assert lab.tracking_number("not-a-number") is None


@pytest.mark.parametrize(
    ("ip", "trunk"),
    [
        ("127.0.0.1", "lab"),
        ("127.8.9.10", "lab"),
        ("::1", "lab"),
        ("[::1]", "lab"),
        ("::ffff:127.0.0.1", "lab"),
        ("10.0.0.1", None),
        ("::2", None),
        ("garbage", None),
        ("", None),
    ],
)
def test_trunk_for(lab: Config, ip: str, trunk: str | None) -> None:
    found = lab.trunk_for(ip)
    assert (found.name if found else None) == trunk


def test_trunk_for_does_not_mix_address_families() -> None:
    # 127.0.0.1's 32 bits are "inside" ::/96 bit-wise; the families must differ.
    config = parse_config('trunks: [{name: v6, networks: ["::/96"]}]\n')
    assert config.trunk_for("127.0.0.1") is None
    assert config.trunk_for("::7f00:1") is not None


def test_config_is_immutable(lab: Config) -> None:
    with pytest.raises(pydantic.ValidationError):
        lab.drain_limit = 1.0
    with pytest.raises(TypeError):
        lab.receiving_numbers["R9"] = lab.receiving_numbers["R1"]  # type: ignore[index]
    assert isinstance(lab.model_dump()["receiving_numbers"], dict)


@pytest.mark.parametrize(
    ("text", "listen"),
    [
        ("udp:127.0.0.1:5060", Listen(transport="udp", host="127.0.0.1", port=5060)),
        ("TCP:0.0.0.0:5061", Listen(transport="tcp", host="0.0.0.0", port=5061)),
        ("tcp:[::1]:5060", Listen(transport="tcp", host="::1", port=5060)),
        ("udp:sbc.example.com:5060", Listen(transport="udp", host="sbc.example.com", port=5060)),
        ("udp:127.0.0.1:0", Listen(transport="udp", host="127.0.0.1", port=0)),
    ],
)
def test_listen_parse(text: str, listen: Listen) -> None:
    assert Listen.parse(text) == listen
    assert Listen.parse(str(listen)) == listen


@pytest.mark.parametrize(
    "text",
    [
        "127.0.0.1:5060",
        "sctp:127.0.0.1:5060",
        "udp:127.0.0.1",
        "udp::5060",
        "udp:::1:5060",
        "tcp:[::1]5060",
        "tcp:[nothost]:5060",
        "udp:127.0.0.1:65536",
        "udp:127.0.0.1:http",
        "udp:a b:5060",
    ],
)
def test_listen_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match='expected "udp:HOST:PORT"'):
        Listen.parse(text)


def test_schedule_is_open() -> None:
    config = parse_config(
        textwrap.dedent("""
        schedules:
          office:
            timezone: America/New_York
            weekly:
              - {days: [mon, tue, wed, thu, fri], start: "09:00", end: 17:30}
              - {days: [sat], start: "22:00", end: "24:00"}
            exceptions:
              - {date: 2025-12-25}
              - {date: 2025-12-27, open: true, start: "10:00", end: "11:00"}
    """)
    )
    office = config.schedules["office"]
    new_york = datetime.timezone(datetime.timedelta(hours=-5))  # EST, December

    def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime.datetime:
        return datetime.datetime(2025, 12, day, hour, minute, second, tzinfo=new_york)

    assert office.weekly[0].end == datetime.time(17, 30)  # unquoted 17:30 is YAML base 60
    assert office.is_open(at(22, 9))  # Monday opening
    assert not office.is_open(at(22, 17, 30))  # end is exclusive
    assert not office.is_open(at(25, 12))  # Thursday, closed by exception
    assert office.is_open(at(27, 10, 30)) and not office.is_open(at(27, 23))
    assert office.is_open(at(20, 23, 59, 59))  # "24:00" runs to midnight
    assert office.is_open(datetime.datetime(2025, 12, 22, 14, 0, tzinfo=datetime.UTC))  # 09:00 EST
    with pytest.raises(ValueError, match="aware"):
        office.is_open(datetime.datetime(2025, 12, 22, 12, 0))


def test_shorthands() -> None:
    config = parse_config(
        textwrap.dedent("""
        receiving_numbers:
          R1: {number: 14155550101, uri: "sip:r1@127.0.0.1", dial_extension: "1 2 3 w #"}
        routes:
          main: {dial: R1}
        tracking_numbers:
          18005550100: {route: {route: main}}
    """)
    )
    assert config.receiving_numbers["R1"].number == "+14155550101"
    assert config.receiving_numbers["R1"].dial_extension == DialExtension(digits="123w#")
    assert config.routes["main"] == _dial(("R1",))
    assert config.tracking_numbers["+18005550100"].route == RouteRef.model_validate(
        {"route": "main"}
    )


def test_routing_settings_and_hunt_stop() -> None:
    config = parse_config(
        BASE
        + "routing: {max_depth: 3, final_status: 486, max_calls: 100}\n"
        + "routes:\n  a: {dial: R1, hunt_stop: 486}\n  b: {dial: R1, hunt_stop: []}\n"
    )
    assert config.routing == RoutingSettings(max_depth=3, final_status=486, max_calls=100)
    assert config.routes["a"] == _dial(("R1",)).model_copy(update={"hunt_stop": (486,)})
    assert isinstance(config.routes["b"], DialRoute) and config.routes["b"].hunt_stop == ()
    assert _dial(("R1",)).hunt_stop == (600, 603, 604, 606)
    assert parse_config(BASE + "routing:\n").routing == RoutingSettings()


def test_geo_router_model() -> None:
    config = parse_config(
        BASE
        + textwrap.dedent("""
        geo_routers:
          stores:
            locations:
              - {name: san-francisco, latitude: 37.77, longitude: -122.42, route: {dial: [R1]}}
              - {name: new-york, state: ny, route: {dial: [R2]}}
              - {name: null-island, latitude: 0, longitude: 180, route: {dial: [R2]}}
            out_of_area: {dial: [R1]}
            max_distance_km: 1500
    """)
    )
    stores = config.geo_routers["stores"]
    assert stores.locations[0] == GeoLocation(
        name="san-francisco", latitude=37.77, longitude=-122.42, route=_dial(("R1",))
    )
    assert stores.locations[1].state == "NY"  # held in upper case
    assert (stores.locations[2].latitude, stores.locations[2].longitude) == (0.0, 180.0)
    assert stores.max_distance_km == 1500.0
    assert len(US_STATES) == 51 and {"CA", "NY", "DC"} <= US_STATES and "PR" not in US_STATES


def test_condition_model() -> None:
    config = parse_config(
        BASE
        + textwrap.dedent("""
        schedules: {office: {timezone: America/New_York}}
        conditional_routers:
          c:
            rules:
              - {caller_prefixes: "+1 415", route: {dial: [R1]}}
              - {caller_regex: '^\\+44', route: {dial: [R1]}}
              - caller_country: 44
                caller_area_codes: [212, "646"]
                tracking_numbers: "1 (800) 555-0100"
                schedule: office
                open: false
                headers: {X-Campaign: "^spring", User-Agent: Acme}
                route: {dial: [R2]}
              - {caller_country: ["1", "+353"], route: {dial: [R2]}}
            default: {dial: [R2]}
    """)
    )
    rules = config.conditional_routers["c"].rules
    assert rules[0].caller_prefixes == ("+1415",)
    assert rules[1].caller_regex == r"^\+44"
    assert rules[1].caller_pattern is not None and rules[1].caller_pattern.search("+447700900")
    assert rules[2].caller_country == ("44",)
    assert rules[2].caller_area_codes == ("212", "646")
    assert rules[2].tracking_numbers == ("+18005550100",)
    assert (rules[2].schedule, rules[2].open) == ("office", False)
    assert dict(rules[2].headers) == {"x-campaign": "^spring", "user-agent": "Acme"}
    assert set(rules[2].header_patterns) == {"x-campaign", "user-agent"}
    assert rules[2].header_patterns["x-campaign"].search("spring-2025")
    assert rules[3].caller_country == ("1", "353")
    assert rules[0].caller_pattern is None and dict(rules[0].header_patterns) == {}
    with pytest.raises(TypeError):
        rules[2].headers["x-other"] = "x"  # type: ignore[index]
    dumped = rules[2].model_dump(by_alias=True, exclude_defaults=True)
    assert Condition.model_validate(dumped) == rules[2]  # compiled patterns compare too


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("+14155550100", "1"),
        ("+442079460000", "44"),
        ("+35312345678", "353"),
        ("+79161234567", "7"),
        ("1 800 555 0100", "1"),
    ],
)
def test_calling_code(number: str, code: str) -> None:
    assert calling_code(number) == code


def test_calling_code_rejects_non_numbers() -> None:
    with pytest.raises(ValueError, match="expected an E.164 number"):
        calling_code("anonymous")


def test_models_build_from_python_names() -> None:
    receiving = ReceivingNumber(name="R1", number="+1 415 555 0101", uri="sip:r1@127.0.0.1")
    assert receiving.number == "+14155550101"
    # Python code may use the field names where YAML uses the aliases (dial:, route:);
    # mypy needs the pydantic plugin to know that.
    assert DialRoute(numbers=("R1",)) == _dial(("R1",))  # type: ignore[call-arg]
    assert RouteRef(name="main") == RouteRef.model_validate({"route": "main"})  # type: ignore[call-arg]


# --------------------------------------------------------------------------
# Bad configs: every class of problem, reported with file, key path, expectation

BASE = """\
trunks:
  - name: lab
    networks: ["127.0.0.0/8"]
receiving_numbers:
  R1: {number: "+14155550101", uri: "sip:+14155550101@127.0.0.1:5071"}
  R2: {number: "+14155550102", uri: "sip:+14155550102@127.0.0.1:5072"}
tracking_numbers:
  "+18005550100": {route: {dial: [R1]}}
"""


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    problems = caught.value.problems
    assert str(caught.value) == "\n".join(problems)
    assert problems and all(line.startswith(f"{path}: ") for line in problems)
    assert all("; expected " in line for line in problems)
    return problems


def _geo(locations: str, extra: str = "") -> str:
    return (
        BASE
        + f"geo_routers: {{g: {{locations: [{locations}], out_of_area: {{dial: [R2]}}{extra}}}}}\n"
    )


def _rules(*rules: str, extra: str = "") -> str:
    return (
        BASE
        + extra
        + f"conditional_routers: {{c: {{rules: [{', '.join(rules)}], default: {{dial: [R2]}}}}}}\n"
    )


BROKEN: list[tuple[str, str, list[str]]] = [
    # (case, YAML, fragments that must appear in one problem line)
    ("yaml syntax", "trunks: [\n  {name: lab\n", ["line 3", "expected valid YAML"]),
    (
        "duplicate yaml key",
        BASE + "trunks: []\n",
        ['key "trunks" appears twice', "first at line 1"],
    ),
    ("top level list", "- a\n- b\n", ["top level is a list", "expected a mapping"]),
    ("empty file", "", ["top level is empty"]),
    (
        "unknown key with suggestion",
        BASE.replace('uri: "sip:+14155550101', 'ring_timout: 5, uri: "sip:+14155550101'),
        [
            "receiving_numbers.R1.ring_timout: unknown key (did you mean ring_timeout?)",
            "expected one of:",
        ],
    ),
    (
        "unknown top-level key",
        BASE + "tracking_number: {}\n",
        ["tracking_number: unknown key (did you mean tracking_numbers?)"],
    ),
    (
        "unknown key inside a route",
        BASE.replace("{dial: [R1]}", "{dial: [R1], patern: sequential}"),
        ['tracking_numbers["+18005550100"].route.patern: unknown key (did you mean pattern?)'],
    ),
    (
        "wrong type",
        BASE.replace("R1: {number", "R1: {label: [a], number"),
        ["receiving_numbers.R1.label: got a list; expected a string"],
    ),
    (
        "duration not positive",
        BASE.replace("R1: {number", "R1: {ring_timeout: -2, number"),
        ["receiving_numbers.R1.ring_timeout: got -2; expected a number of seconds > 0"],
    ),
    (
        "duration not a number",
        BASE + "drain_limit: soon\n",
        ['drain_limit: got "soon"; expected a number of seconds > 0'],
    ),
    (
        "bool is not a duration",
        BASE + "drain_limit: yes\n",
        ["drain_limit: got true; expected a number of seconds > 0"],
    ),
    (
        "bad receiving number",
        BASE.replace('"+14155550101"', '"+1 415 CALL"'),
        ['receiving_numbers.R1.number: "+1 415 CALL" contains letters', "expected an E.164 number"],
    ),
    (
        "bad tracking number key",
        BASE.replace('"+18005550100"', '"800-FLOWERS"'),
        ['tracking_numbers["800-FLOWERS"]: "800-FLOWERS" contains letters'],
    ),
    (
        "duplicate tracking number",
        BASE + '  "+1 (800) 555-0100": {route: {dial: [R2]}}\n',
        [
            'tracking_numbers["+18005550100"]: "+18005550100" and "+1 (800) 555-0100" are both',
            "expected each tracking number once",
        ],
    ),
    (
        "route without a kind",
        BASE.replace("{dial: [R1]}", "{pattern: sequential}"),
        [
            'tracking_numbers["+18005550100"].route: got a mapping with pattern',
            "exactly one of the keys dial, route",
        ],
    ),
    (
        "route with two kinds",
        BASE.replace("{dial: [R1]}", "{dial: [R1], queue: q}"),
        ["got a mapping with dial, queue"],
    ),
    (
        "route not a mapping",
        BASE.replace("{dial: [R1]}", "R1"),
        ['route: got "R1"; expected a route'],
    ),
    (
        "bad pattern",
        BASE.replace("{dial: [R1]}", "{dial: [R1], pattern: random}"),
        ["route.pattern: got \"random\"; expected one of 'simultaneous'"],
    ),
    (
        "empty dial list",
        BASE.replace("{dial: [R1]}", "{dial: []}"),
        ["route.dial: got an empty list"],
    ),
    (
        "dial list repeats",
        BASE.replace("{dial: [R1]}", "{dial: [R1, R1]}"),
        ['"R1" is listed twice'],
    ),
    (
        "unknown receiving number",
        BASE.replace("{dial: [R1]}", "{dial: [R1, R9]}"),
        [
            'tracking_numbers["+18005550100"].route.dial[1]: unknown receiving number "R9"; '
            "expected one of: R1, R2"
        ],
    ),
    (
        "unknown number in no_answer chain",
        BASE.replace(
            "{dial: [R1]}", "{dial: [R1], no_answer: {dial: [R2], no_answer: {dial: [R7]}}}"
        ),
        ['route.no_answer.no_answer.dial[0]: unknown receiving number "R7"'],
    ),
    (
        "unknown fail_safe",
        BASE.replace("{route: {dial: [R1]}}", "{route: {dial: [R1]}, fail_safe: R5}"),
        ['tracking_numbers["+18005550100"].fail_safe: unknown receiving number "R5"'],
    ),
    (
        "unknown hours",
        BASE.replace("R1: {number", "R1: {hours: weekdays, number"),
        [
            'receiving_numbers.R1.hours: unknown schedule "weekdays"; '
            "expected a defined schedule (there are none)"
        ],
    ),
    (
        "unknown trunk",
        BASE.replace('uri: "sip:+14155550102@127.0.0.1:5072"', "trunk: carrier"),
        ['receiving_numbers.R2.trunk: unknown trunk "carrier"; expected one of: lab'],
    ),
    (
        "unknown named route",
        BASE.replace("{dial: [R1]}", "{route: main}"),
        ['route.route: unknown route "main"; expected a defined route (there are none)'],
    ),
    (
        "unknown agent, menu, queue",
        BASE + "routes:\n  a: {agent: zoe}\n  m: {menu: main}\n  q: {queue: sales}\n",
        [
            'routes.a.agent: unknown agent "zoe"',
            'routes.m.menu: unknown menu "main"',
            'routes.q.queue: unknown queue "sales"',
        ],
    ),
    (
        "route cycle",
        BASE + "routes:\n  a: {route: b}\n  b: {dial: [R1], no_answer: {route: a}}\n",
        ["routes.a: the route leads back to itself (a → b → a)"],
    ),
    ("route refers to itself", BASE + "routes:\n  a: {route: a}\n", ["(a → a)"]),
    (
        "both uri and trunk",
        BASE.replace(
            'uri: "sip:+14155550102@127.0.0.1:5072"', 'uri: "sip:x@192.0.2.1", trunk: lab'
        ),
        ["receiving_numbers.R2: has both uri and trunk; expected exactly one of uri"],
    ),
    (
        "neither uri nor trunk",
        BASE.replace(', uri: "sip:+14155550102@127.0.0.1:5072"', ""),
        ["receiving_numbers.R2: has neither uri nor trunk"],
    ),
    (
        "uri host is a name",
        BASE.replace("127.0.0.1:5072", "pbx.example.com:5072"),
        ["receiving_numbers.R2.uri: got", "expected a URI whose host is an IP address"],
    ),
    (
        "uri with an unsupported transport",
        BASE.replace("127.0.0.1:5072", "127.0.0.1:5072;transport=sctp"),
        ["receiving_numbers.R2.uri: got", "expected transport=udp or transport=tcp"],
    ),
    (
        "bad uri",
        BASE.replace('"sip:+14155550102@127.0.0.1:5072"', '"tel:+14155550102"'),
        ['receiving_numbers.R2.uri: got "tel:+14155550102"; expected a sip: or sips: URI'],
    ),
    (
        "missing audio file",
        BASE.replace("R1: {number", "R1: {whisper: audio/nope.wav, number"),
        [
            'receiving_numbers.R1.whisper: audio file "audio/nope.wav" not found',
            "expected the path of an existing audio file",
        ],
    ),
    (
        "missing required key",
        BASE.replace("{route: {dial: [R1]}}", "{label: x}"),
        ['tracking_numbers["+18005550100"].route: required key is missing'],
    ),
    (
        "name repeated inside entry",
        BASE.replace("R1: {number", "R1: {name: R1, number"),
        ["receiving_numbers.R1.name: the name is the entry's key"],
    ),
    (
        "bad listen",
        BASE + 'sip: {listen: ["udp:::1:5060"]}\n',
        [
            'sip.listen[0]: "udp:::1:5060" has an IPv6 address without brackets',
            'expected "udp:HOST:PORT"',
        ],
    ),
    (
        "duplicate listen",
        BASE + 'sip: {listen: ["udp:127.0.0.1:5060", "UDP:127.0.0.1:5060"]}\n',
        ['sip.listen: "udp:127.0.0.1:5060" is listed twice'],
    ),
    (
        "timers out of order",
        BASE + "sip: {timers: {t1: 5, t2: 1}}\n",
        ["sip.timers: t2 (1.0) is less than t1 (5.0)"],
    ),
    (
        "bad limit",
        BASE + "sip: {limits: {max_headers: 0}}\n",
        ["sip.limits.max_headers: got 0; expected a whole number > 0"],
    ),
    (
        "bad log level",
        BASE + "log_level: loud\n",
        ["log_level: got \"loud\"; expected one of 'debug'"],
    ),
    (
        "bad network",
        BASE.replace('"127.0.0.0/8"', '"127.0.0.1/8"'),
        ['trunks[0].networks[0]: got "127.0.0.1/8", which has host bits set'],
    ),
    (
        "not a network",
        BASE.replace('"127.0.0.0/8"', '"localhost"'),
        ['trunks[0].networks[0]: got "localhost"; expected an address'],
    ),
    (
        "duplicate trunk",
        BASE.replace("trunks:\n", "trunks:\n  - {name: lab, networks: [10.0.0.0/8]}\n"),
        ['trunks: "lab" is listed twice'],
    ),
    (
        "bad timezone",
        BASE + "schedules: {s: {timezone: Mars/Olympus}}\n",
        ['schedules.s.timezone: got "Mars/Olympus"; expected an IANA time zone'],
    ),
    (
        "bad time",
        BASE + 'schedules: {s: {weekly: [{days: [mon], start: "9am", end: "17:00"}]}}\n',
        ['schedules.s.weekly[0].start: got "9am"; expected a time "HH:MM"'],
    ),
    (
        "bad day",
        BASE + 'schedules: {s: {weekly: [{days: [monday], start: "09:00", end: "17:00"}]}}\n',
        ["schedules.s.weekly[0].days[0]: got \"monday\"; expected one of 'mon'"],
    ),
    (
        "interval ends before it starts",
        BASE + 'schedules: {s: {weekly: [{days: [mon], start: "22:00", end: "06:00"}]}}\n',
        ["schedules.s.weekly[0]: end 06:00 is not after start 22:00"],
    ),
    (
        "bad date",
        BASE + "schedules: {s: {exceptions: [{date: someday}]}}\n",
        ['schedules.s.exceptions[0].date: got "someday"; expected a date like 2025-12-25'],
    ),
    (
        "digits written as a number",
        BASE.replace("R1: {number", "R1: {dial_extension: {digits: 123}, number"),
        [
            "receiving_numbers.R1.dial_extension.digits: got the number 123; "
            "expected a quoted string of DTMF digits"
        ],
    ),
    (
        "bad dtmf",
        BASE.replace("R1: {number", 'R1: {dial_extension: "12x", number'),
        ['receiving_numbers.R1.dial_extension.digits: got "12x"; expected DTMF digits'],
    ),
    (
        "agent with both secrets",
        BASE + "agents: {zoe: {password: a, ha1: 0123456789abcdef0123456789abcdef}}\n",
        ["agents.zoe: has both password and ha1; expected exactly one of password or ha1"],
    ),
    (
        "bad ha1",
        BASE + "agents: {zoe: {ha1: abc}}\n",
        ['agents.zoe.ha1: got "abc"; expected 32 hex digits'],
    ),
    (
        "bad menu key",
        BASE + f"menus: {{m: {{prompt: {LAB}, keys: {{'12': {{dial: [R1]}}}}}}}}\n",
        ['menus.m.keys: got "12"; expected one keypad key'],
    ),
    (
        "queue member unknown",
        BASE + "agents: {zoe: {password: a}}\nqueues: {q: {members: [zoe, yan]}}\n",
        ['queues.q.members[1]: unknown agent or receiving number "yan"; expected one of: zoe, R1'],
    ),
    (
        "old geo router shape",
        BASE
        + "geo_routers: {g: {regions: [{prefixes: ['+44'], route: {dial: [R1]}}],"
        + " default: {dial: [R2]}}}\n",
        [
            "geo_routers.g.locations: required key is missing",
            "geo_routers.g.regions: unknown key; expected one of: locations, out_of_area",
        ],
    ),
    (
        "geo location with both lat/long and state",
        _geo("{name: a, latitude: 1, longitude: 2, state: NY, route: {dial: [R1]}}"),
        [
            "geo_routers.g.locations[0]: has both latitude/longitude and state; "
            "expected either latitude and longitude, or state"
        ],
    ),
    (
        "geo location with neither",
        _geo("{name: a, route: {dial: [R1]}}"),
        ["geo_routers.g.locations[0]: has neither latitude/longitude nor state"],
    ),
    (
        "geo location latitude without longitude",
        _geo("{name: a, latitude: 1, route: {dial: [R1]}}"),
        [
            "geo_routers.g.locations[0]: has latitude without longitude; "
            "expected both latitude and longitude"
        ],
    ),
    (
        "geo latitude out of range",
        _geo("{name: a, latitude: 91, longitude: 2, route: {dial: [R1]}}"),
        [
            "geo_routers.g.locations[0].latitude: got 91; "
            "expected a latitude in decimal degrees, -90 to 90"
        ],
    ),
    (
        "geo longitude not a number",
        _geo("{name: a, latitude: 1, longitude: east, route: {dial: [R1]}}"),
        ['geo_routers.g.locations[0].longitude: got "east"; expected a longitude'],
    ),
    (
        "bad state",
        _geo("{name: a, state: PR, route: {dial: [R1]}}"),
        ['geo_routers.g.locations[0].state: got "PR"; expected a two-letter US state or DC code'],
    ),
    (
        "duplicate location name",
        _geo(
            "{name: a, state: NY, route: {dial: [R1]}}, {name: a, state: CA, route: {dial: [R2]}}"
        ),
        ['geo_routers.g.locations: "a" is listed twice; expected each name once'],
    ),
    (
        "no locations",
        _geo(""),
        ["geo_routers.g.locations: got an empty list; expected at least one entry"],
    ),
    (
        "bad max distance",
        _geo("{name: a, state: NY, route: {dial: [R1]}}", ", max_distance_km: 0"),
        ["geo_routers.g.max_distance_km: got 0; expected a distance in kilometres > 0"],
    ),
    (
        "unknown receiving number in geo router",
        _geo("{name: a, state: NY, route: {dial: [R9]}}").replace(
            "out_of_area: {dial: [R2]}", "out_of_area: {dial: [R8]}"
        ),
        [
            'geo_routers.g.locations[0].route.dial[0]: unknown receiving number "R9"',
            'geo_routers.g.out_of_area.dial[0]: unknown receiving number "R8"',
        ],
    ),
    (
        "bad regex",
        _rules("{caller_regex: '(+44', route: {dial: [R1]}}"),
        [
            'conditional_routers.c.rules[0].caller_regex: got "(+44", which is not a valid '
            "regular expression (nothing to repeat at position 1); "
            "expected a Python regular expression"
        ],
    ),
    (
        "bad header regex",
        _rules("{headers: {X-Campaign: '[spring'}, route: {dial: [R1]}}"),
        [
            'conditional_routers.c.rules[0].headers.x-campaign: got "[spring", which is not '
            "a valid regular expression"
        ],
    ),
    (
        "bad header name",
        _rules("{headers: {'X Campaign': spring}, route: {dial: [R1]}}"),
        ['conditional_routers.c.rules[0].headers: got "X Campaign"; expected a SIP header name'],
    ),
    (
        "header named twice",
        _rules("{headers: {X-Campaign: a, x-campaign: b}, route: {dial: [R1]}}"),
        [
            'conditional_routers.c.rules[0].headers: "X-Campaign" and "x-campaign" are the '
            "same header; expected each header once"
        ],
    ),
    (
        "empty rule",
        _rules("{route: {dial: [R1]}}"),
        [
            "conditional_routers.c.rules[0]: got a rule with no condition; "
            "expected at least one condition (caller_prefixes,",
            "; use default for the catch-all",
        ],
    ),
    (
        "open alone is no condition",
        _rules("{open: false, route: {dial: [R1]}}"),
        ["conditional_routers.c.rules[0]: got a rule with no condition"],
    ),
    (
        "open without schedule",
        _rules("{caller_prefixes: ['+1'], open: false, route: {dial: [R1]}}"),
        [
            "conditional_routers.c.rules[0]: has open without schedule; "
            "expected schedule: NAME with open"
        ],
    ),
    (
        "empty condition list",
        _rules("{caller_prefixes: [], route: {dial: [R1]}}"),
        ["conditional_routers.c.rules[0].caller_prefixes: got an empty list"],
    ),
    (
        "bad caller prefix",
        _rules("{caller_prefixes: ['0044'], route: {dial: [R1]}}"),
        [
            'conditional_routers.c.rules[0].caller_prefixes[0]: got "0044"; '
            "expected an E.164 number prefix"
        ],
    ),
    (
        "country code that is not one",
        _rules("{caller_country: ['12', '4', 'uk'], route: {dial: [R1]}}"),
        [
            'caller_country[0]: got "12", which is not a country calling code '
            "(numbers starting +12 have code 1); expected an ITU country calling code",
            'caller_country[1]: got "4", which is not a country calling code; expected',
            'caller_country[2]: got "uk"; expected an ITU country calling code of 1 to 3 digits',
        ],
    ),
    (
        "bad area code",
        _rules("{caller_area_codes: ['21', 112], route: {dial: [R1]}}"),
        [
            'caller_area_codes[0]: got "21"; expected a NANP area code: 3 digits, the first 2-9',
            "caller_area_codes[1]: got 112; expected a NANP area code",
        ],
    ),
    (
        "bad tracking number in rule",
        _rules("{tracking_numbers: ['800-FLOWERS'], route: {dial: [R1]}}"),
        ['rules[0].tracking_numbers[0]: "800-FLOWERS" contains letters'],
    ),
    (
        "unknown tracking number in rule",
        _rules("{tracking_numbers: ['+1 800 555 0199'], route: {dial: [R1]}}"),
        [
            "conditional_routers.c.rules[0].tracking_numbers[0]: unknown tracking number "
            '"+18005550199"; expected a number defined under tracking_numbers'
        ],
    ),
    (
        "unknown schedule in a rule",
        _rules("{schedule: x, route: {dial: [R1]}}"),
        ['conditional_routers.c.rules[0].schedule: unknown schedule "x"'],
    ),
    (
        "unknown route in a rule",
        _rules(
            "{caller_prefixes: ['+1'], route: {dial: [R9]}}",
            "{schedule: s, route: {route: nope}}",
            extra="schedules: {s: {}}\n",
        ),
        [
            'conditional_routers.c.rules[0].route.dial[0]: unknown receiving number "R9"',
            'conditional_routers.c.rules[1].route.route: unknown route "nope"',
        ],
    ),
    (
        "bad hunt_stop",
        BASE.replace("{dial: [R1]}", "{dial: [R1], hunt_stop: [603, 200, 700, busy]}"),
        [
            "route.hunt_stop[1]: got 200; expected a SIP final status other than 2xx, 300-699",
            "route.hunt_stop[2]: got 700; expected a SIP final status",
            'route.hunt_stop[3]: got "busy"; expected a SIP final status',
        ],
    ),
    (
        "hunt_stop repeats",
        BASE.replace("{dial: [R1]}", "{dial: [R1], hunt_stop: [603, 603]}"),
        ["route.hunt_stop: 603 is listed twice; expected each status once"],
    ),
    (
        "final_status 200",
        BASE + "routing: {final_status: 200}\n",
        ["routing.final_status: got 200; expected a SIP failure status, 400-699"],
    ),
    (
        "bad routing limits",
        BASE + "routing: {max_depth: 0, max_calls: -1, max_dept: 3}\n",
        [
            "routing.max_depth: got 0; expected a whole number > 0",
            "routing.max_calls: got -1; expected a whole number >= 0",
            "routing.max_dept: unknown key (did you mean max_depth?)",
        ],
    ),
]


@pytest.mark.parametrize(
    ("text", "fragments"), [(t, f) for _, t, f in BROKEN], ids=[c for c, _, _ in BROKEN]
)
def test_broken_config(tmp_path: Path, text: str, fragments: list[str]) -> None:
    problems = _problems(tmp_path, text)
    for fragment in fragments:
        assert any(fragment in line for line in problems), (fragment, problems)


def test_base_of_broken_configs_is_valid() -> None:
    parse_config(BASE)


def test_every_problem_is_reported(tmp_path: Path) -> None:
    text = (
        BASE.replace("R1: {number", "R1: {ring_timeout: 0, colour: red, number")
        + "drain_limit: -1\n"
    )
    problems = _problems(tmp_path, text)
    assert len(problems) == 3, problems


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError, match=f"{missing}: file not found; expected"):
        load_config(missing)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory; expected"):
        load_config(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"log_level: \xe9\n")
    with pytest.raises(ConfigError, match="is not UTF-8; expected"):
        load_config(path)


def test_parse_config_names_its_source() -> None:
    with pytest.raises(ConfigError, match=r"^inline: drain_limit: got 0"):
        parse_config("drain_limit: 0\n", source="inline")


def test_relative_audio_resolves_against_config_dir(tmp_path: Path) -> None:
    (tmp_path / "sounds").mkdir()
    (tmp_path / "sounds" / "w.wav").write_bytes(b"RIFF")
    path = tmp_path / "c.yaml"
    path.write_text(
        BASE.replace("R1: {number", "R1: {whisper: sounds/w.wav, number"), encoding="utf-8"
    )
    assert (
        load_config(path).receiving_numbers["R1"].whisper
        == (tmp_path / "sounds" / "w.wav").resolve()
    )


# --------------------------------------------------------------------------
# Robustness: any wrong value anywhere in the lab file gives ConfigError.

_WRONG_VALUES: list[Any] = [None, -1, "nonsense", [], {}, True, 1.5]


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [path] + [
            leaf for key, value in node.items() for leaf in _leaves(value, (*path, key))
        ]
    if isinstance(node, list):
        return [path] + [
            leaf for index, value in enumerate(node) for leaf in _leaves(value, (*path, index))
        ]
    return [path]


def test_any_wrong_value_is_a_config_error() -> None:
    # Every key path gets two of the wrong values (rotating, so each value is
    # tried at every depth); YAML parsing dominates the cost, so not all seven.
    original = yaml.safe_load(LAB.read_text(encoding="utf-8"))
    paths = [path for path in _leaves(original) if path]
    assert len(paths) > 100
    for index, path in enumerate(paths):
        for wrong in (_WRONG_VALUES[index % 7], _WRONG_VALUES[(index + 3) % 7]):
            data = copy.deepcopy(original)
            node = data
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = wrong
            try:
                text = yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))
                parse_config(text, source="mutated", base_dir=LAB.parent)
            except ConfigError as error:
                assert all(line.startswith("mutated: ") for line in error.problems)


def test_networks_are_ip_networks(lab: Config) -> None:
    assert lab.trunks[0].networks == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )


def test_empty_sections_are_allowed() -> None:
    # A section whose entries are all commented out reads as null.
    config = parse_config("trunks:\nagents:\nmenus:\ntracking_numbers:\nsip:\n")
    assert config.trunks == () and dict(config.agents) == {} and config.sip.listen
