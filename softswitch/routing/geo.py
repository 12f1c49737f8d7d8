"""Where a caller is, from the caller ID, and which configured location is nearest.

Theory
------
The geo router sends a caller to the nearest of the configured locations (a store, an
office), each given as a latitude/longitude or as a US state.  The only thing we know
about the caller is the number, so the caller is placed from its prefix:

* **NANP numbers** (country code 1, ``+1 NPA NXX XXXX``): the three digits after the
  ``1`` are the area code (NPA), and a geographic area code belongs to one state,
  province or NANP country.  ``data/nanp_area_codes.csv`` places each area code at its
  principal city.  Non-geographic codes (toll-free 8XX, premium 900, personal
  communications 5XX, …; :data:`NON_GEOGRAPHIC`) say nothing about where the caller
  is, and neither does an area code missing from the table: both give ``None``.
* **Other numbers**: the ITU-T E.164 country calling code (one to three digits;
  the assignments are prefix-free, so at most one listed code matches) picks a row
  of ``data/countries.csv``, placed at the country's capital.

A caller who cannot be placed — withheld or malformed caller ID, a non-geographic or
unknown area code, a country not in the table — gives ``None``, never an exception:
the router then follows its "out of area" route.  Number portability and mobile
phones mean an area code is where the number was issued, not where the caller is;
the tables are approximate by design (see ``data/README.md`` for their provenance).

Distances are great-circle distances by the haversine formula on a sphere of the
IUGG mean Earth radius; the error against the ellipsoid (≤ 0.5 %) is far below the
error of placing a caller at a city.

The tables are read once, on first use, through :mod:`importlib.resources` (they are
package data) and cached.  A malformed shipped table is a bug in the package and
raises :class:`GeoDataError` naming the file, line and problem.

This module is part of the pure routing layer: standard library only.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType

__all__ = [
    "EARTH_RADIUS_KM",
    "NON_GEOGRAPHIC",
    "GeoDataError",
    "Location",
    "caller_location",
    "distance_km",
    "nearest",
    "state_location",
    "us_state_codes",
]

# IUGG mean Earth radius R1 = (2a + b) / 3 of the WGS 84 ellipsoid, in km.
EARTH_RADIUS_KM = 6371.0088

# NANP area codes that are not tied to a place (NANPA "non-geographic" and reserved
# NPAs).  A caller from one of these cannot be placed.
NON_GEOGRAPHIC: frozenset[str] = frozenset(
    # Toll-free service (in use and reserved for it).
    "800 833 844 855 866 877 888 822 880 881 882 883 884 885 886 887 889 "
    # Premium-rate services.
    "900 "
    # Personal communications services (5XX).
    "500 521 522 523 524 525 526 527 528 529 533 544 566 577 588 "
    # Interexchange carrier services; US government.
    "700 710 "
    # Canadian non-geographic services.
    "600 622 633 644 655 677 688 "
    # Inbound international.
    "456".split()
)

_PACKAGE = "softswitch.routing"
_DATA = "data"

# Canonical E.164: "+", no leading zero, 7 to 15 digits (as softswitch.sip.e164
# writes every number).  ASCII digits only: re's \d would accept other scripts.
_CANONICAL = re.compile(r"\+[1-9][0-9]{6,14}")
_NANP_DIGITS = 11  # "1" + NPA (3) + NXX (3) + XXXX (4)


class GeoDataError(Exception):
    """A shipped geo table is malformed (a packaging bug, not a caller problem)."""


@dataclass(frozen=True, slots=True)
class Location:
    """A point on Earth and what it stands for.

    ``region`` is a US state / DC or Canadian province code (``"CA"``, ``"ON"``), the
    ISO 3166-1 alpha-3 code of another NANP member (``"JAM"``), or the ITU calling code
    of a country outside the NANP (``"44"``).  ``source`` says in words where the point
    came from (``"area code 415 (CA)"``) for call records and explanations.
    """

    latitude: float
    longitude: float
    region: str
    source: str


def caller_location(e164: str) -> Location | None:
    """Place a caller from the caller ID, or ``None`` when it cannot be placed.

    ``e164`` is the canonical form ``+<digits>`` (``"+14155550100"`` → area code 415,
    ``"+442071234567"`` → country code 44).  Withheld, malformed, non-geographic and
    unknown numbers give ``None``; no input raises.
    """
    if not isinstance(e164, str) or _CANONICAL.fullmatch(e164) is None:
        return None
    digits = e164[1:]
    if digits[0] == "1":
        if len(digits) != _NANP_DIGITS:
            return None
        npa = digits[1:4]
        if npa in NON_GEOGRAPHIC:
            return None
        return _area_codes().get(npa)
    countries = _countries()
    for length in (3, 2, 1):
        found = countries.get(digits[:length])
        if found is not None:
            return found
    return None


def state_location(state: str) -> Location:
    """The point of a US state or DC, by its USPS code (``"CA"``; case-insensitive).

    Raises :class:`ValueError` naming the code for anything else.
    """
    code = state.strip().upper() if isinstance(state, str) else ""
    found = _states().get(code)
    if found is None:
        raise ValueError(
            f"unknown US state {state!r}; expected the two-letter USPS code of one of "
            "the 50 states or DC, like 'CA' or 'DC'"
        )
    return found


def us_state_codes() -> frozenset[str]:
    """The USPS codes :func:`state_location` accepts: the 50 states and DC."""
    return frozenset(_states())


def distance_km(a: Location, b: Location) -> float:
    """Great-circle distance between two points in km (haversine formula)."""
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat = lat2 - lat1
    dlon = math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    # min(): rounding can push h a hair above 1 for antipodal points.
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def nearest(caller: Location, places: Sequence[tuple[str, Location]]) -> tuple[str, float]:
    """The name of the place nearest to ``caller`` and its distance in km.

    Equally near places go to the first in ``places`` order, so the configured order
    breaks ties.  Raises :class:`ValueError` when ``places`` is empty.
    """
    if not places:
        raise ValueError("no places to choose from; a geo router needs at least one location")
    best_name, best_distance = places[0][0], distance_km(caller, places[0][1])
    for name, place in places[1:]:
        distance = distance_km(caller, place)
        if distance < best_distance:
            best_name, best_distance = name, distance
    return best_name, best_distance


# --- the shipped tables -----------------------------------------------------------


def _rows(filename: str, header: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    """Data rows of a shipped CSV with their line numbers, after checking the header."""
    text = resources.files(_PACKAGE).joinpath(_DATA, filename).read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(text))
    first = next(reader, None)
    if first is None or tuple(first) != header:
        raise GeoDataError(f"{filename}: header is {first!r}; expected {','.join(header)}")
    rows: list[tuple[int, list[str]]] = []
    for row in reader:
        if not row:
            continue
        if len(row) != len(header):
            raise GeoDataError(
                f"{filename} line {reader.line_num}: {len(row)} fields; "
                f"expected {len(header)} ({','.join(header)})"
            )
        rows.append((reader.line_num, [field.strip() for field in row]))
    return rows


def _point(filename: str, line: int, latitude: str, longitude: str) -> tuple[float, float]:
    try:
        lat, lon = float(latitude), float(longitude)
    except ValueError:
        raise GeoDataError(
            f"{filename} line {line}: coordinates {latitude!r}, {longitude!r} are not numbers"
        ) from None
    # Comparisons are False for NaN, so NaN is rejected with out-of-range values.
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise GeoDataError(
            f"{filename} line {line}: ({lat}, {lon}) is outside latitude [-90, 90], "
            "longitude [-180, 180]"
        )
    return lat, lon


def _add(table: dict[str, Location], filename: str, line: int, key: str, value: Location) -> None:
    if key in table:
        raise GeoDataError(f"{filename} line {line}: {key!r} is listed twice")
    table[key] = value


@cache
def _area_codes() -> Mapping[str, Location]:
    filename = "nanp_area_codes.csv"
    table: dict[str, Location] = {}
    for line, (code, region, lat, lon) in _rows(
        filename, ("area_code", "region", "latitude", "longitude")
    ):
        if not (len(code) == 3 and code.isascii() and code.isdigit() and code[0] in "23456789"):
            raise GeoDataError(f"{filename} line {line}: {code!r} is not a NANP area code")
        if code in NON_GEOGRAPHIC:
            raise GeoDataError(f"{filename} line {line}: {code} is a non-geographic code")
        latitude, longitude = _point(filename, line, lat, lon)
        place = Location(latitude, longitude, region, f"area code {code} ({region})")
        _add(table, filename, line, code, place)
    return MappingProxyType(table)


@cache
def _states() -> Mapping[str, Location]:
    filename = "us_states.csv"
    table: dict[str, Location] = {}
    for line, (state, name, lat, lon) in _rows(
        filename, ("state", "name", "latitude", "longitude")
    ):
        latitude, longitude = _point(filename, line, lat, lon)
        place = Location(latitude, longitude, state, f"state {state} ({name})")
        _add(table, filename, line, state, place)
    return MappingProxyType(table)


@cache
def _countries() -> Mapping[str, Location]:
    filename = "countries.csv"
    table: dict[str, Location] = {}
    for line, (code, country, lat, lon) in _rows(
        filename, ("calling_code", "country", "latitude", "longitude")
    ):
        # Code 1 (NANP) is placed by area code, never as a country.
        if not (1 <= len(code) <= 3 and code.isascii() and code.isdigit()) or code[0] in "01":
            raise GeoDataError(f"{filename} line {line}: {code!r} is not a non-NANP calling code")
        latitude, longitude = _point(filename, line, lat, lon)
        place = Location(latitude, longitude, code, f"country code {code} ({country})")
        _add(table, filename, line, code, place)
    return MappingProxyType(table)
