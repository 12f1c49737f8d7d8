"""The layer rules of DESIGN.md, enforced by reading imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "softswitch"


def imported(path: Path, root: Path = PACKAGE.parent) -> set[str]:
    """Absolute names of every module a file imports (relative imports resolved)."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
    return names


def forbidden(names: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes))


RULES = {
    # sans-IO core: no event loop, sockets or clock; nothing from the layers above
    "sip": (
        "asyncio",
        "socket",
        "time",
        "softswitch.b2bua",
        "softswitch.media",
        "softswitch.routing",
        "softswitch.app",
    ),
    # pure routing: decisions only
    "routing": ("asyncio", "socket", "softswitch.sip", "softswitch.media", "softswitch.b2bua"),
    # calls drive the core; sockets belong to the transport edge
    "b2bua": ("socket",),
    # records are values, a store and rating: no event loop, no calls, no HTTP
    "records": ("asyncio", "socket", "softswitch.b2bua", "softswitch.api"),
    # the management API sees the system only through softswitch.control
    "api": ("socket", "softswitch.sip", "softswitch.records.store"),
    # packets, codecs, audio files: no event loop, sockets or SIP; relay.py is the edge
    "media": (
        "asyncio",
        "socket",
        "softswitch.sip",
        "softswitch.b2bua",
        "softswitch.routing",
        "softswitch.app",
    ),
}

# The one module of a layer that owns the event loop and sockets (DESIGN.md).
EDGES = {"sip": "transport.py", "media": "relay.py"}
EDGE_MAY = ("asyncio", "socket")


@pytest.mark.parametrize("layer", sorted(RULES))
def test_layer_imports(layer: str) -> None:
    files = sorted((PACKAGE / layer).glob("*.py"))
    assert files, f"no modules found in softswitch/{layer}"
    problems = {}
    for f in files:
        rules = RULES[layer]
        if f.name == EDGES.get(layer):
            rules = tuple(r for r in rules if r not in EDGE_MAY)
        if bad := forbidden(imported(f), rules):
            problems[f.name] = bad
    assert problems == {}


def test_the_rule_sees_a_violation(tmp_path: Path) -> None:
    # The checker itself must notice a forbidden import, relative or absolute.
    sample = tmp_path / "softswitch" / "sip" / "probe.py"
    sample.parent.mkdir(parents=True)
    sample.write_text("import asyncio\nfrom ..routing import plan\n")
    assert forbidden(imported(sample, tmp_path), RULES["sip"]) == ["asyncio", "softswitch.routing"]
