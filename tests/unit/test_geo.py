"""The geo router's placing of callers, distances and nearest-location choice.

The shipped tables are checked as data (every row parses, no duplicates, in range,
every state present) by reading the CSVs directly, independently of geo.py's loader,
and then end to end through the public functions.
"""

from __future__ import annotations

import csv
import io
from importlib import resources

import pytest

from softswitch.routing.geo import (
    EARTH_RADIUS_KM,
    NON_GEOGRAPHIC,
    Location,
    caller_location,
    distance_km,
    nearest,
    state_location,
    us_state_codes,
)

US_STATES_AND_DC = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE "
    "NV NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY".split()
)
CANADA = frozenset("AB BC MB NB NL NS NT NU ON PE QC SK YT".split())


def table(filename: str) -> list[dict[str, str]]:
    text = resources.files("softswitch.routing").joinpath("data", filename).read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def point(lat: float, lon: float, name: str = "") -> Location:
    return Location(lat, lon, name, name)


# --- placing callers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "region", "lat", "lon"),
    [
        ("+14155550100", "CA", 37.77, -122.42),  # San Francisco
        ("+12125550100", "NY", 40.71, -74.01),  # Manhattan
        ("+16465550100", "NY", 40.71, -74.01),  # Manhattan overlay
        ("+13125550100", "IL", 41.88, -87.63),  # Chicago
        ("+13055550100", "FL", 25.76, -80.19),  # Miami
        ("+17135550100", "TX", 29.76, -95.37),  # Houston
        ("+12025550100", "DC", 38.90, -77.04),  # Washington
        ("+12065550100", "WA", 47.61, -122.33),  # Seattle
        ("+14165550100", "ON", 43.65, -79.38),  # Toronto
        ("+16045550100", "BC", 49.28, -123.12),  # Vancouver
        ("+15145550100", "QC", 45.50, -73.57),  # Montreal
        ("+18765550100", "JAM", 18.02, -76.80),  # Kingston, Jamaica
        ("+17875550100", "PRI", 18.47, -66.11),  # San Juan
    ],
)
def test_nanp_callers_are_placed_by_area_code(
    number: str, region: str, lat: float, lon: float
) -> None:
    found = caller_location(number)
    assert found is not None
    assert found.region == region
    assert found.source == f"area code {number[2:5]} ({region})"
    # Within 25 km of the city: the table is approximate by design.
    assert distance_km(found, point(lat, lon)) < 25


@pytest.mark.parametrize(
    ("number", "code", "country", "lat", "lon"),
    [
        ("+442071234567", "44", "United Kingdom", 51.51, -0.13),
        ("+33142685300", "33", "France", 48.86, 2.35),
        ("+4930123456", "49", "Germany", 52.52, 13.40),
        ("+5215512345678", "52", "Mexico", 19.43, -99.13),
        ("+35312345678", "353", "Ireland", 53.35, -6.26),
        ("+61212345678", "61", "Australia", -35.28, 149.13),
        ("+79161234567", "7", "Russia", 55.76, 37.62),
    ],
)
def test_international_callers_are_placed_by_country_code(
    number: str, code: str, country: str, lat: float, lon: float
) -> None:
    found = caller_location(number)
    assert found is not None
    assert (found.region, found.source) == (code, f"country code {code} ({country})")
    assert distance_km(found, point(lat, lon)) < 25


@pytest.mark.parametrize("code", sorted(NON_GEOGRAPHIC))
def test_non_geographic_nanp_codes_cannot_be_placed(code: str) -> None:
    assert caller_location(f"+1{code}5550100") is None


@pytest.mark.parametrize(
    "number",
    [
        "+15555550100",  # 555 is not an area code
        "+1210555010",  # NANP number one digit short
        "+142155501000",  # NANP number one digit long
        "+6901234567",  # 690 (Tokelau): a real code, not in the table
        "+2991234567",  # Greenland: a real code, not in the table
        "+8881234567",  # 888: not a country in the table
    ],
)
def test_unknown_numbers_cannot_be_placed(number: str) -> None:
    assert caller_location(number) is None


@pytest.mark.parametrize(
    "caller_id",
    [
        "",
        "anonymous",
        "Anonymous <sip:anonymous@anonymous.invalid>",
        "+",
        "+1",
        "14155550100",  # not canonical: no "+"
        "+1 415 555 0100",  # not canonical: separators
        "+04155550100",  # leading zero
        "+1415555010012345",  # more than 15 digits
        "+123456",  # fewer than 7
        "+1４１５5550100",  # full-width digits
        "+14155550100\n",
        "sip:+14155550100@example.com",
        None,
        14155550100,
    ],
)
def test_garbage_caller_id_gives_none_not_an_exception(caller_id: object) -> None:
    assert caller_location(caller_id) is None  # type: ignore[arg-type]


# --- states ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "lat", "lon"),
    [("CA", 37.2, -119.5), ("TX", 31.5, -99.3), ("NY", 43.0, -75.5), ("DC", 38.9, -77.0)],
)
def test_state_location(state: str, lat: float, lon: float) -> None:
    found = state_location(state)
    assert found.region == state
    assert distance_km(found, point(lat, lon)) < 50


def test_state_codes_are_case_insensitive() -> None:
    assert state_location("ca") == state_location("CA") == state_location(" CA ")


@pytest.mark.parametrize("state", ["XX", "", "California", "ON", "PR", "JAM"])
def test_unknown_state_is_a_clear_error(state: str) -> None:
    with pytest.raises(ValueError, match="unknown US state") as error:
        state_location(state)
    assert repr(state) in str(error.value)


def test_us_state_codes_are_the_50_states_and_dc() -> None:
    assert us_state_codes() == US_STATES_AND_DC


# --- distances and the nearest place ---------------------------------------------

NYC = point(40.7128, -74.0060, "New York")
LA = point(34.0522, -118.2437, "Los Angeles")
LONDON = point(51.5074, -0.1278, "London")
PARIS = point(48.8566, 2.3522, "Paris")
SYDNEY = point(-33.8688, 151.2093, "Sydney")


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        (NYC, LA, 3936),
        (LONDON, PARIS, 344),
        (LONDON, NYC, 5570),
        (SYDNEY, LONDON, 16994),
    ],
)
def test_distance_is_the_great_circle_distance(a: Location, b: Location, km: float) -> None:
    assert distance_km(a, b) == pytest.approx(km, rel=0.02)
    assert distance_km(b, a) == pytest.approx(distance_km(a, b))


def test_distance_edge_cases() -> None:
    assert distance_km(NYC, NYC) == 0.0
    # Antipodes: half the circumference, without a math domain error.
    assert distance_km(point(0, 0), point(0, 180)) == pytest.approx(EARTH_RADIUS_KM * 3.14159265)
    # Across the antimeridian is short, not most of the way round.
    assert distance_km(point(0, 179.5), point(0, -179.5)) == pytest.approx(111.2, abs=0.5)


def test_distance_between_table_cities() -> None:
    nyc, la = caller_location("+12125550100"), caller_location("+12135550100")
    assert nyc is not None and la is not None
    assert distance_km(nyc, la) == pytest.approx(3936, rel=0.02)


def test_nearest_picks_the_closest_place() -> None:
    stores = [("la", LA), ("nyc", NYC), ("london", LONDON)]
    caller = caller_location("+12155550100")  # Philadelphia
    assert caller is not None
    name, km = nearest(caller, stores)
    assert name == "nyc"
    assert km == pytest.approx(distance_km(caller, NYC))
    assert nearest(PARIS, stores)[0] == "london"
    assert nearest(point(36.17, -115.14), stores)[0] == "la"  # Las Vegas


def test_nearest_with_state_locations() -> None:
    stores = [("west", state_location("CA")), ("east", state_location("NY"))]
    boston = caller_location("+16175550100")
    seattle = caller_location("+12065550100")
    assert boston is not None and seattle is not None
    assert nearest(boston, stores)[0] == "east"
    assert nearest(seattle, stores)[0] == "west"


def test_nearest_ties_go_to_the_first_in_order() -> None:
    twin = point(NYC.latitude, NYC.longitude, "twin")
    assert nearest(NYC, [("a", twin), ("b", NYC)]) == ("a", 0.0)
    assert nearest(NYC, [("b", NYC), ("a", twin)]) == ("b", 0.0)
    # Equidistant on either side of the caller.
    assert nearest(point(0, 0), [("east", point(0, 1)), ("west", point(0, -1))])[0] == "east"
    assert nearest(point(0, 0), [("west", point(0, -1)), ("east", point(0, 1))])[0] == "west"


def test_nearest_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one location"):
        nearest(NYC, [])


# --- the shipped tables ----------------------------------------------------------


def in_range(row: dict[str, str]) -> bool:
    return -90 <= float(row["latitude"]) <= 90 and -180 <= float(row["longitude"]) <= 180


def test_area_code_table() -> None:
    rows = table("nanp_area_codes.csv")
    assert list(rows[0]) == ["area_code", "region", "latitude", "longitude"]
    codes = [row["area_code"] for row in rows]
    assert len(codes) == len(set(codes)), "duplicate area codes"
    assert 150 <= len(rows) <= 500
    for row in rows:
        code, region = row["area_code"], row["region"]
        assert len(code) == 3 and code.isdigit() and code[0] in "23456789", row
        assert code not in NON_GEOGRAPHIC, row
        assert in_range(row), row
        # Two letters: a US state/DC or Canadian province; three: another NANP member.
        assert region in US_STATES_AND_DC | CANADA or (len(region) == 3 and region.isupper()), row
        found = caller_location(f"+1{code}5550100")
        assert found is not None, row
        assert (found.latitude, found.longitude) == (
            float(row["latitude"]),
            float(row["longitude"]),
        )
    us_regions = {row["region"] for row in rows} & US_STATES_AND_DC
    assert us_regions == US_STATES_AND_DC, "every state and DC has an area code"
    assert {row["region"] for row in rows} >= {"ON", "QC", "BC", "AB", "MB", "NS"}


def test_us_state_table() -> None:
    rows = table("us_states.csv")
    assert list(rows[0]) == ["state", "name", "latitude", "longitude"]
    states = [row["state"] for row in rows]
    assert len(states) == len(set(states)) == 51
    assert set(states) == US_STATES_AND_DC
    for row in rows:
        assert in_range(row), row
        assert row["name"], row
    # Every US region the area-code table uses can also be a configured location.
    nanp_us = {row["region"] for row in table("nanp_area_codes.csv")} - CANADA
    nanp_us = {region for region in nanp_us if len(region) == 2}
    assert nanp_us <= set(states)


def test_country_table() -> None:
    rows = table("countries.csv")
    assert list(rows[0]) == ["calling_code", "country", "latitude", "longitude"]
    codes = [row["calling_code"] for row in rows]
    assert len(codes) == len(set(codes)), "duplicate calling codes"
    assert len(rows) >= 60
    assert "1" not in codes, "NANP is placed by area code"
    for row in rows:
        code = row["calling_code"]
        assert 1 <= len(code) <= 3 and code.isdigit() and code[0] != "0", row
        assert in_range(row), row
        assert row["country"], row
        found = caller_location(f"+{code}{'1' * (10 - len(code))}")
        assert found is not None and found.region == code, row
    # E.164 calling codes are prefix-free; a table that is not would be ambiguous.
    for code in codes:
        assert not [other for other in codes if other != code and other.startswith(code)], code
