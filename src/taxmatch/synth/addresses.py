"""Real ZIP codes, synthetic streets, and the ways an address is written differently.

Every address handed out is unique (house numbers and units come from counters) unless the
caller reuses one on purpose, e.g. a new tenant moving into a home a target left.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import zipcodes

from taxmatch.synth.names import typo

# The package ships no type hints; this is the one call used.
_list_zips: Callable[[], list[dict[str, Any]]] = zipcodes.list_all

USPS_SUFFIXES: dict[str, str] = {
    "St": "Street", "Ave": "Avenue", "Rd": "Road", "Dr": "Drive", "Ln": "Lane", "Blvd": "Boulevard",
    "Ct": "Court", "Pl": "Place", "Way": "Way", "Cir": "Circle", "Ter": "Terrace", "Pkwy": "Parkway",
    "Trl": "Trail", "Hwy": "Highway",
}  # fmt: skip
_SUFFIX_CUM_WEIGHTS = tuple(itertools.accumulate((30, 20, 14, 12, 8, 3, 4, 2, 2, 2, 1, 1, 1, 1)))
DIRECTIONALS: dict[str, str] = {"N": "North", "S": "South", "E": "East", "W": "West"}
_STREET_BASES = (
    "Main", "Oak", "Maple", "Pine", "Cedar", "Elm", "Washington", "Lincoln", "Jefferson", "Park", "Lake", "Hill",
    "Church", "Mill", "River", "Sunset", "Highland", "Meadow", "Forest", "Spring", "Ridge", "Valley", "Lakeview",
    "Willow", "Cherry", "Walnut", "Chestnut", "Hickory", "Magnolia", "Dogwood", "Franklin", "Madison", "Jackson",
    "Adams", "Monroe", "Grant", "Center", "Broad", "Market", "Union", "Water", "Bridge", "Front", "High", "School",
    "College", "Prospect", "Pleasant", "Laurel", "Birch", "Spruce", "Poplar", "Aspen", "Sycamore", "Juniper",
    "Cypress", "Palm", "Mesa", "Sierra", "Vista", "Canyon", "Alamo", "Hillcrest", "Greenwood", "Fairview",
    "Riverside", "Woodland", "Orchard", "Harbor", "Bayview", "Kingston", "Belmont", "Clinton", "Rio Grande",
    "El Camino", "Santa Fe", "San Jose", "Los Robles", "Las Palmas", "Martin Luther King Jr", "Cesar Chavez", "1st",
    "2nd", "3rd", "4th", "5th", "6th", "7th", "8th", "9th", "10th", "12th", "14th", "21st"
)  # fmt: skip
_STREETS_PER_ZIP = 48
_ZIPS_IN_POOL = 300


@dataclass(frozen=True, slots=True)
class Addr:
    """An address in parts, so that it can be rendered in several styles."""

    number: str
    predir: str
    name: str
    suffix: str
    unit: str
    po_box: str
    city: str
    state: str
    zip: str

    def street(self, spelled: bool = False) -> str:
        if self.po_box:
            return f"PO Box {self.po_box}"
        predir = DIRECTIONALS[self.predir] if spelled and self.predir else self.predir
        suffix = USPS_SUFFIXES[self.suffix] if spelled else self.suffix
        return " ".join(part for part in (self.number, predir, self.name, suffix) if part)

    def unit_text(self, style: int = 0) -> str:
        if not self.unit:
            return ""
        return (f"Apt {self.unit}", f"#{self.unit}", f"APT {self.unit}", f"Unit {self.unit}")[style]


@dataclass(frozen=True, slots=True)
class ZipInfo:
    zip: str
    city: str
    state: str
    area_codes: tuple[str, ...]


@dataclass(slots=True)
class _Building:
    number: str
    predir: str
    name: str
    suffix: str
    units: int


@dataclass(slots=True)
class AddressBook:
    """Hands out fresh, unique addresses concentrated in a few hundred real ZIPs."""

    rng: random.Random
    zips: tuple[ZipInfo, ...] = ()
    cum_weights: tuple[float, ...] = ()
    all_by_state: dict[str, tuple[ZipInfo, ...]] = field(default_factory=dict)
    by_zip: dict[str, ZipInfo] = field(default_factory=dict)
    _streets: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    _next_number: dict[tuple[str, int], int] = field(default_factory=dict)
    _buildings: dict[str, _Building] = field(default_factory=dict)
    _next_box: dict[str, int] = field(default_factory=dict)

    @classmethod
    def create(cls, rng: random.Random) -> AddressBook:
        standard = sorted(
            (
                ZipInfo(z["zip_code"], z["city"], z["state"], tuple(z.get("area_codes") or ()))
                for z in _list_zips()
                if z["active"] and z["zip_code_type"] == "STANDARD" and z["state"] not in ("AA", "AE", "AP")
            ),
            key=lambda info: info.zip,
        )
        chosen = tuple(rng.sample(standard, _ZIPS_IN_POOL))
        # Zipf-like weights: the first ZIPs hold thousands of people each, the tail a handful.
        weights = [1.0 / (rank + 3) for rank in range(len(chosen))]
        by_state: dict[str, list[ZipInfo]] = {}
        for info in standard:
            by_state.setdefault(info.state, []).append(info)
        return cls(
            rng,
            chosen,
            tuple(itertools.accumulate(weights)),
            {state: tuple(items) for state, items in sorted(by_state.items())},
            {info.zip: info for info in chosen},
        )

    def pick_zip(self) -> ZipInfo:
        return self.rng.choices(self.zips, cum_weights=self.cum_weights)[0]

    def zip_in_other_state(self, state: str) -> ZipInfo:
        states = [s for s in self.all_by_state if s != state]
        return self.rng.choice(self.all_by_state[self.rng.choice(states)])

    def _street_pool(self, zip_code: str) -> list[tuple[str, str, str]]:
        pool = self._streets.get(zip_code)
        if pool is None:
            rng = self.rng
            seen: set[tuple[str, str, str]] = set()
            pool = []
            while len(pool) < _STREETS_PER_ZIP:
                predir = rng.choice(("N", "S", "E", "W")) if rng.random() < 0.15 else ""
                suffix = rng.choices(tuple(USPS_SUFFIXES), cum_weights=_SUFFIX_CUM_WEIGHTS)[0]
                street = (predir, rng.choice(_STREET_BASES), suffix)
                if street not in seen:
                    seen.add(street)
                    pool.append(street)
            self._streets[zip_code] = pool
        return pool

    def new_address(self, info: ZipInfo | None = None) -> Addr:
        info = info or self.pick_zip()
        rng = self.rng
        roll = rng.random()
        if roll < 0.02:
            box = self._next_box.get(info.zip, rng.randrange(100, 900)) + rng.randrange(1, 30)
            self._next_box[info.zip] = box
            return Addr("", "", "", "", "", str(box), info.city, info.state, info.zip)
        if roll < 0.27:
            building = self._buildings.get(info.zip)
            if building is None or building.units >= 24:
                number, predir, name, suffix = self._street_number(info.zip)
                building = _Building(number, predir, name, suffix, 0)
                self._buildings[info.zip] = building
            building.units += 1
            floor, door = divmod(building.units - 1, 6)
            unit = f"{floor + 1}{'ABCDEF'[door]}" if rng.random() < 0.6 else str(100 * (floor + 1) + door + 1)
            return Addr(building.number, building.predir, building.name, building.suffix, unit, "", *_place(info))
        number, predir, name, suffix = self._street_number(info.zip)
        return Addr(number, predir, name, suffix, "", "", *_place(info))

    def _street_number(self, zip_code: str) -> tuple[str, str, str, str]:
        pool = self._street_pool(zip_code)
        index = self.rng.randrange(len(pool))
        predir, name, suffix = pool[index]
        key = (zip_code, index)
        number = self._next_number.get(key, self.rng.randrange(1, 400)) + self.rng.randrange(2, 40)
        self._next_number[key] = number
        return str(number), predir, name, suffix


def _place(info: ZipInfo) -> tuple[str, str, str]:
    return info.city, info.state, info.zip


def master_address(rng: random.Random, addr: Addr) -> tuple[str, str, str, str, str]:
    """The address as one return writes it: mostly canonical, sometimes spelled out or in capitals."""
    roll = rng.random()
    street = addr.street(spelled=roll < 0.06)
    unit = addr.unit_text(2 if roll < 0.5 else 0)
    zip_code = addr.zip
    if rng.random() < 0.04:
        zip_code = f"{addr.zip}-{rng.randrange(1, 10000):04d}"
    city, state = addr.city, addr.state
    if roll > 0.9:
        street, unit, city = street.upper(), unit.upper(), city.upper()
    return street, unit, city, state, zip_code


def request_address(rng: random.Random, addr: Addr, vary: bool) -> tuple[str, str, str, str, str]:
    """The address as a requester writes it; `vary` applies one deliberate formatting difference."""
    street = addr.street()
    unit = addr.unit_text(rng.randrange(4))
    city = addr.city
    if vary:
        options = ["spelled", "typo", "lower"]
        if addr.unit:
            options += ["hash_unit", "unit_in_street", "no_unit"]
        if addr.predir:
            options.append("spelled")
        if addr.po_box:
            options = ["pobox", "lower"]
        choice = rng.choice(options)
        if choice == "spelled":
            street = addr.street(spelled=True)
        elif choice == "typo":
            typed = typo(rng, addr.name)
            street = replace(addr, name=typed).street()
        elif choice == "lower":
            street, unit, city = street.lower(), unit.lower(), city.lower()
        elif choice == "hash_unit":
            unit = f"# {addr.unit}"
        elif choice == "unit_in_street":
            street, unit = f"{street} {addr.unit_text(rng.randrange(2))}", ""
        elif choice == "no_unit":
            unit = ""
        elif choice == "pobox":
            street = rng.choice((f"P.O. Box {addr.po_box}", f"PO BOX {addr.po_box}", f"P O Box {addr.po_box}"))
    elif rng.random() < 0.5:
        street, unit, city = street.upper(), unit.upper(), city.upper()
    return street, unit, city, addr.state, addr.zip
