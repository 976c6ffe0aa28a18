"""Households, their moves over ten tax years, and the returns they file.

A household is built whole (members, residences, filing years) and then written out as rows
at once, so nothing about it needs to stay in memory after its requests are drawn.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from taxmatch.synth.addresses import Addr, AddressBook, master_address
from taxmatch.synth.names import (
    COMMON_SURNAMES,
    PersonName,
    accent,
    child_name,
    make_name,
    pick_given,
)

# Valid SSNs: area 001-899 except 666, group 01-99, serial 0001-9999. ITINs: 9xx, group 70-88.
_SSN_SPACE = 898 * 99 * 9999
_ITIN_SPACE = 100 * 19 * 9999
# A prime near the golden ratio of the SSN space, coprime to both spaces: i -> i*stride+offset
# is a bijection, and consecutive people get TINs far apart.
_STRIDE = 549_389_639
_WINDOW_LENGTHS = tuple(range(1, 11))
_WINDOW_CUM_WEIGHTS = tuple(itertools.accumulate((22, 24, 18, 12, 8, 5, 4, 3, 2, 2)))


@dataclass(slots=True)
class Person:
    tin: str
    name: PersonName
    dob: date
    dob_on_returns: bool
    phone: str
    # The name as this person writes it on returns (may differ from how others know them).
    ret_first: str
    ret_middle: str
    ret_last: str
    upper: bool
    years: list[int] = field(default_factory=list)
    # True when someone at the same address shares the full name: no plain request can single them out.
    confusable: bool = False

    @property
    def files(self) -> bool:
        return bool(self.years)


@dataclass(slots=True)
class Household:
    kind: str
    members: list[Person]
    residences: list[tuple[int, Addr]]
    joint: bool = False
    target: Person | None = None
    other: Person | None = None

    def address_in(self, year: int) -> Addr:
        current = self.residences[0][1]
        for start, addr in self.residences:
            if start > year:
                break
            current = addr
        return current

    def residence_index(self, year: int) -> int:
        index = 0
        for i, (start, _) in enumerate(self.residences):
            if start <= year:
                index = i
        return index


class TinAllocator:
    def __init__(self, rng: random.Random) -> None:
        self._ssn_next = 0
        self._itin_next = 0
        self._ssn_offset = rng.randrange(_SSN_SPACE)
        self._itin_offset = rng.randrange(_ITIN_SPACE)

    def ssn(self) -> str:
        k = (self._ssn_next * _STRIDE + self._ssn_offset) % _SSN_SPACE
        self._ssn_next += 1
        k, serial = divmod(k, 9999)
        area, group = divmod(k, 99)
        area += 1
        if area >= 666:
            area += 1
        return f"{area:03d}{group + 1:02d}{serial + 1:04d}"

    def itin(self) -> str:
        k = (self._itin_next * _STRIDE + self._itin_offset) % _ITIN_SPACE
        self._itin_next += 1
        k, serial = divmod(k, 9999)
        area, group = divmod(k, 19)
        return f"9{area:02d}{group + 70:02d}{serial + 1:04d}"


class Population:
    """Builds households of a requested kind; `kind` comes from the request case that needs it."""

    def __init__(self, rng: random.Random, book: AddressBook, as_of: date) -> None:
        self.rng = rng
        self.book = book
        self.as_of = as_of
        self.first_year = as_of.year - 10
        self.last_year = as_of.year - 1
        self.tins = TinAllocator(rng)

    # --- people -------------------------------------------------------------------------------

    def person(self, name: PersonName, age_lo: int = 19, age_hi: int = 80, dob: date | None = None) -> Person:
        rng = self.rng
        if dob is None:
            age = rng.randint(age_lo, age_hi)
            dob = date(self.as_of.year - age, 1, 1) + timedelta(days=rng.randrange(365))
        itin = rng.random() < (0.18 if name.origin == "hispanic" else 0.03)
        tin = self.tins.itin() if itin else self.tins.ssn()
        phone = ""
        if rng.random() < 0.35:
            digits = f"{rng.randint(201, 989)}{rng.randint(200, 999)}{rng.randrange(10000):04d}"
            style = rng.randrange(3)
            phone = (f"({digits[:3]}) {digits[3:6]}-{digits[6:]}", f"{digits[:3]}-{digits[3:6]}-{digits[6:]}", digits)[
                style
            ]
        ret_first, ret_middle = name.first, name.middle
        if " " in name.first and name.origin == "hispanic" and rng.random() < 0.3:
            ret_first, _, rest = name.first.partition(" ")
            ret_middle = rest
        ret_last = name.last
        if name.maternal:
            roll = rng.random()
            if roll < 0.2:
                ret_last = name.paternal
            elif roll < 0.4:
                ret_last = f"{name.paternal}-{name.maternal}"
        if name.origin == "hispanic" and rng.random() < 0.15:
            ret_first, ret_last = accent(ret_first), accent(ret_last)
        return Person(
            tin=tin,
            name=name,
            dob=dob,
            dob_on_returns=rng.random() < 0.9,
            phone=phone,
            ret_first=ret_first,
            ret_middle=ret_middle,
            ret_last=ret_last,
            upper=rng.random() < 0.3,
        )

    def filing_years(self, always: bool = False) -> list[int]:
        rng = self.rng
        first, last = self.first_year, self.last_year
        if always:
            return list(range(first, last + 1))
        # Most people appear for a few years of the ten (arrived, left, started or stopped filing),
        # which keeps the master near the design's ~2.5 return rows per person; within that
        # window they file most years, not all.
        length = rng.choices(_WINDOW_LENGTHS, cum_weights=_WINDOW_CUM_WEIGHTS)[0]
        start = rng.randint(first, last - length + 1)
        years = [year for year in range(start, start + length) if rng.random() < 0.88]
        return years or [start]

    def residences(self, moves: int, zip_first: bool = True) -> list[tuple[int, Addr]]:
        rng = self.rng
        moves = min(moves, self.last_year - self.first_year)
        move_years = sorted(rng.sample(range(self.first_year + 1, self.last_year + 1), moves))
        home = self.book.new_address()
        out = [(self.first_year, home)]
        for year in move_years:
            # Half of all moves stay in the same ZIP: the old and new address then share city and ZIP.
            same_zip = zip_first and rng.random() < 0.5 and not home.po_box
            info = self.book.by_zip.get(home.zip) if same_zip else None
            home = self.book.new_address(info)
            out.append((year, home))
        return out

    def _moves(self) -> int:
        roll = self.rng.random()
        return 0 if roll < 0.45 else 1 if roll < 0.75 else 2 if roll < 0.92 else 3

    # --- households ---------------------------------------------------------------------------

    def build(self, kind: str, feature: str = "") -> list[Household]:
        """One household of `kind` (plus companions the case needs: a namesake, a new tenant)."""
        rng = self.rng
        sex = "M" if rng.random() < 0.5 else "F"
        if kind == "random":
            return [self._random()]
        if kind in ("single", "mover", "stopped", "nonfiler", "dob_known"):
            moves = rng.randint(1, 3) if kind == "mover" else 0 if kind == "stopped" else self._moves()
            target = self.person(make_name(rng, sex, feature), age_lo=25 if kind == "mover" else 19)
            if kind == "stopped":
                cut = rng.randint(self.first_year + 2, self.last_year - 2)
                early = rng.random() < 0.6
                # A filer who left (or arrived): the gap is where the NO_RETURN_IN_PERIOD request asks.
                target.years = list(range(self.first_year, cut + 1)) if early else list(range(cut, self.last_year + 1))
            elif kind != "nonfiler":
                target.years = self.filing_years(always=kind == "mover")
            if kind == "dob_known":
                target.dob_on_returns = True
                if feature == "swap":
                    day = rng.randint(1, 12)
                    month = rng.choice([m for m in range(1, 13) if m != day])
                    target.dob = target.dob.replace(month=month, day=day)
            household = Household(kind, [target], self.residences(moves), target=target)
            if kind in ("single", "mover", "dob_known") and rng.random() < 0.5:
                self._add_spouse(household, joint=rng.random() < 0.8)
            return [household]
        if kind == "joint":
            primary = self.person(make_name(rng, "M" if rng.random() < 0.85 else "F", ""))
            household = Household(kind, [primary], self.residences(self._moves()))
            primary.years = self.filing_years()
            spouse = self._add_spouse(household, joint=True, feature=feature)
            household.target = spouse
            return [household]
        if kind == "nonfiling_spouse":
            primary = self.person(make_name(rng, "M" if rng.random() < 0.8 else "F"))
            primary.years = self.filing_years()
            household = Household(kind, [primary], self.residences(self._moves()))
            spouse = self._add_spouse(household, joint=False)
            spouse.years = []
            household.target = spouse
            return [household]
        if kind == "sr_jr":
            return [self._sr_jr()]
        if kind == "twins":
            return [self._twins()]
        if kind == "namesake":
            return self._namesake(sex, filer=True)
        if kind == "nonfiler_namesake":
            return self._namesake(sex, filer=False)
        if kind == "housemate":
            return self._housemate(sex)
        raise ValueError(f"unknown household kind {kind!r}")

    def _random(self) -> Household:
        rng = self.rng
        sex = "M" if rng.random() < 0.5 else "F"
        roll = rng.random()
        if roll < 0.01:
            return self._sr_jr()
        if roll < 0.015:
            return self._twins()
        head = self.person(make_name(rng, sex))
        head.years = [] if rng.random() < 0.04 else self.filing_years()
        household = Household("random", [head], self.residences(self._moves()))
        if roll < 0.55:
            couple = rng.random()
            spouse = self._add_spouse(household, joint=couple < 0.85)
            if 0.85 <= couple < 0.92:
                spouse.years = []
            if rng.random() < 0.15:
                child_sex = rng.choice("MF")
                taken = (head.name.first, spouse.name.first)
                name = child_name(rng, head.name, spouse.name, child_sex)
                # A child named after a parent without a suffix would be an unlabelled Sr/Jr pair.
                while name.first in taken:
                    name = replace(name, first=pick_given(rng, name.origin, child_sex))
                child = self.person(name, 19, 30)
                child.years = self.filing_years()
                household.members.append(child)
        return household

    def _add_spouse(self, household: Household, joint: bool, feature: str = "") -> Person:
        rng = self.rng
        primary = household.members[0]
        sex = "F" if primary.name.sex == "M" else "M"
        name = make_name(rng, sex, feature, origin=primary.name.origin if rng.random() < 0.85 else "")
        # Most spouses share the surname; Hispanic spouses and some others keep their own.
        keep_own = primary.name.origin == "hispanic" or rng.random() < 0.25 or feature in ("double_surname",)
        if not keep_own and feature not in ("transliteration", "accent"):
            name = replace(name, paternal=primary.name.paternal, maternal=primary.name.maternal)
        age = self.as_of.year - primary.dob.year
        spouse = self.person(name, max(19, age - 8), min(85, age + 8))
        household.joint = joint
        spouse.years = list(primary.years) if joint else self.filing_years()
        household.members.insert(1, spouse)
        return spouse

    def _sr_jr(self) -> Household:
        rng = self.rng
        origin = "anglo" if rng.random() < 0.75 else "hispanic"
        name = make_name(rng, "M", origin=origin)
        if not name.middle and rng.random() < 0.5:
            name = replace(name, middle=pick_given(rng, "anglo", "M"))
        junior_age = rng.randint(19, 45)
        senior = self.person(replace(name, suffix="Sr"), junior_age + 20, junior_age + 36)
        junior = self.person(replace(name, suffix="Jr"), junior_age, junior_age)
        junior.ret_first, junior.ret_middle, junior.ret_last = senior.ret_first, senior.ret_middle, senior.ret_last
        senior.years = self.filing_years()
        junior.years = self.filing_years()
        senior.confusable = junior.confusable = True
        # Both must carry their DOB on returns, or no request could tell them apart.
        senior.dob_on_returns = junior.dob_on_returns = True
        household = Household("sr_jr", [senior, junior], self.residences(self._moves()))
        household.target, household.other = (senior, junior) if rng.random() < 0.5 else (junior, senior)
        return household

    def _twins(self) -> Household:
        rng = self.rng
        first = self.person(make_name(rng, rng.choice("MF")), 19, 55)
        sex = rng.choice("MF")
        second_name = replace(make_name(rng, sex, origin=first.name.origin), paternal=first.name.paternal)
        second_name = replace(second_name, maternal=first.name.maternal)
        while second_name.first == first.name.first:
            second_name = replace(second_name, first=pick_given(rng, first.name.origin, sex))
        second = self.person(second_name, dob=first.dob)
        second.ret_last = first.ret_last
        first.years, second.years = self.filing_years(), self.filing_years()
        first.dob_on_returns = second.dob_on_returns = True
        household = Household("twins", [first, second], self.residences(self._moves()))
        household.target, household.other = first, second
        return household

    def _namesake(self, sex: str, filer: bool) -> list[Household]:
        """A target household plus another person of the same first and last name elsewhere."""
        rng = self.rng
        target = self.person(make_name(rng, sex, "common_surname" if rng.random() < 0.5 else ""))
        target.years = self.filing_years()
        household = Household("namesake", [target], self.residences(self._moves()), target=target)
        twin_name = replace(make_name(rng, sex, origin=target.name.origin), first=target.name.first)
        twin_name = replace(twin_name, paternal=target.name.paternal, maternal=target.name.maternal)
        namesake = self.person(twin_name)
        namesake.ret_first, namesake.ret_last = target.ret_first, target.ret_last
        near = rng.random() < 0.6
        info = self.book.by_zip.get(household.residences[0][1].zip) if near else None
        other = Household("namesake_other", [namesake], [(self.first_year, self.book.new_address(info))])
        namesake.years = self.filing_years() if filer else []
        if not filer:
            # The person requested is the non-filer; the filer with the same name is the trap.
            other.target, household.target = namesake, None
            household.kind, other.kind = "namesake_other", "nonfiler_namesake"
            return [household, other]
        household.other = namesake
        return [household, other]

    def _housemate(self, sex: str) -> list[Household]:
        """The target leaves an address; a family of the same common surname moves in."""
        rng = self.rng
        target = self.person(make_name(rng, sex, "common_surname"))
        target.years = self.filing_years(always=True)
        household = Household("housemate", [target], self.residences(rng.randint(1, 2)), target=target)
        left_year, _ = household.residences[1]
        old_home = household.residences[0][1]
        tenant_name = replace(make_name(rng, sex, origin=target.name.origin), paternal=target.name.paternal)
        tenant_name = replace(tenant_name, maternal=target.name.maternal)
        while tenant_name.first == target.name.first:
            tenant_name = replace(tenant_name, first=pick_given(rng, target.name.origin, sex))
        if rng.random() < 0.5:
            # Same initial: "J Smith" on a mailbox fits both.
            same = [n for n in _initial_pool(rng, target) if n != target.name.first]
            if same:
                tenant_name = replace(tenant_name, first=rng.choice(same))
        tenant = self.person(tenant_name)
        tenant.years = [year for year in self.filing_years(always=True) if year >= left_year] or [left_year]
        tenant.ret_last = target.ret_last if target.name.paternal in COMMON_SURNAMES else tenant.ret_last
        tenants = Household("housemate_other", [tenant], [(left_year, old_home)])
        household.other = tenant
        return [household, tenants]

    # --- returns ------------------------------------------------------------------------------

    def rows(self, household: Household) -> Iterator[tuple[int, list[str]]]:
        """Master rows (year, row) of a household, one per person per filed return."""
        rng = self.rng
        members = household.members
        joint_spouse = members[1] if household.joint and len(members) > 1 else None
        for person in members:
            if person is joint_spouse:
                continue
            for year in person.years:
                if year < household.residences[0][0]:
                    continue
                address = master_address(rng, household.address_in(year))
                yield year, self._row(person, year, "primary", address)
                if joint_spouse is not None and person is members[0]:
                    yield year, self._row(joint_spouse, year, "spouse", address)

    def _row(self, person: Person, year: int, role: str, address: tuple[str, str, str, str, str]) -> list[str]:
        rng = self.rng
        middle = person.ret_middle
        roll = rng.random()
        if middle and roll < 0.1:
            middle = ""
        elif middle and roll < 0.18:
            middle = middle[0]
        first, last, suffix = person.ret_first, person.ret_last, person.name.suffix
        if suffix == "Sr" and rng.random() < 0.6:
            suffix = ""
        if person.name.maternal and rng.random() < 0.08:
            last = person.name.paternal
        if person.upper:
            first, middle, last, suffix = first.upper(), middle.upper(), last.upper(), suffix.upper()
        tin = person.tin
        if rng.random() < 0.15:
            tin = f"{tin[:3]}-{tin[3:5]}-{tin[5:]}"
        dob = person.dob.isoformat() if person.dob_on_returns else ""
        return [tin, str(year), role, first, middle, last, suffix, dob, *address, person.phone]


def _initial_pool(rng: random.Random, target: Person) -> list[str]:
    initial = target.name.first[0]
    names = [pick_given(rng, target.name.origin, target.name.sex) for _ in range(12)]
    return sorted({name for name in names if name[0] == initial})
