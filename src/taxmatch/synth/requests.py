"""Requests built from a known household, with the outcome they should get.

Every request starts from a valid one about a real person; a case then varies one thing (a
name spelling, an older address, a wrong DOB) or breaks exactly one required element, so the
expected outcome and code are known exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from taxmatch.records import REQUEST_COLUMNS, ReasonCode
from taxmatch.synth.addresses import Addr, AddressBook, request_address
from taxmatch.synth.cases import Case
from taxmatch.synth.names import NICKNAMES, TRANSLITERATIONS, accent, strip_accents, typo
from taxmatch.synth.population import Household, Person

TRUTH_COLUMNS: tuple[str, ...] = (
    "request_id",
    "expected_outcome",
    "expected_tin",
    "expected_tax_year",
    "expected_codes",
    "case",
)

VALID_STATUTES = (
    "8 U.S.C. § 1326",
    "8 USC 1325",
    "Title 8, United States Code, Section 1253(a)(1)",
    "8 U.S.C. 1326(a)",
    "8 U.S.C. §1253(a)(1)",
    "8 USC 1326",
    "8 U.S.C. § 1325(a)",
    "8 U.S.C. 1253(a)(1)",
)
_NOT_PERMITTED_STATUTES = (
    "8 U.S.C. § 1227(a)(1)",
    "8 USC 1182",
    "8 U.S.C. 1182(a)(6)(A)(i)",
    "8 U.S.C. § 1227(a)(2)(A)(iii)",
    "18 U.S.C. § 1546",
)
_REMOVAL_PERIOD_STATUTES = ("8 U.S.C. § 1253(a)(1)", "8 USC 1253(a)(1)", "8 U.S.C. 1253(a)(1)")
_PLACEHOLDER_NAMES = (("UNKNOWN", ""), ("FNU", ""), ("", "LNU"), ("", "UNKNOWN"), ("John", "Doe"), ("N/A", ""))
_DIGIT_NAMES = ("12345", "J0hn", "Mar1a", "123")
_PLACEHOLDER_STREETS = ("Don't Care 12345", "DONT CARE", "UNKNOWN", "N/A", "NONE", "Don't Care")
_BAD_ZIPS = ("00000", "99999", "00001")
_BAD_A_NUMBERS = ("A1234567", "1234567", "A-123-456-7890", "A12345X78", "A-12-345")
_BAD_TINS = ("000-12-3456", "12345", "666-12-3456", "123-00-4567", "123-45-0000", "12345678X")


@dataclass(frozen=True, slots=True)
class Built:
    row: list[str]
    outcome: str
    tin: str
    year: str
    codes: str
    # The keyed noise model's variations, in the order applied; empty under the household model.
    variations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Target:
    lo: int
    hi: int
    expected_year: int  # 0 when no return falls in the period
    addr: Addr


class RequestFactory:
    def __init__(self, rng: random.Random, book: AddressBook, as_of: date) -> None:
        self.rng = rng
        self.book = book
        self.as_of = as_of
        self.first_year = as_of.year - 10
        self.last_year = as_of.year - 1

    # --- the valid parts ----------------------------------------------------------------------

    def _period(self, years: list[int]) -> tuple[int, int]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.25 or not years:
            return self.first_year, self.last_year
        year = rng.choice(years)
        if roll < 0.5:
            return year, year
        return rng.randint(self.first_year, year), rng.randint(year, self.last_year)

    def _legal(self) -> tuple[str, str, str]:
        rng = self.rng
        digits = f"{rng.randrange(10**8, 10**9)}" if rng.random() < 0.8 else f"{rng.randrange(10**7, 10**8)}"
        if len(digits) == 9:
            style = rng.randrange(5)
            a_number = (
                f"A{digits}",
                f"A-{digits[:3]}-{digits[3:6]}-{digits[6:]}",
                f"A {digits[:3]} {digits[3:6]} {digits[6:]}",
                digits,
                f"{digits[:3]}-{digits[3:6]}-{digits[6:]}",
            )[style]
        else:
            a_number = digits if rng.random() < 0.5 else f"A{digits}"
        removal = self.as_of - timedelta(days=rng.randint(120, 3650))
        return a_number, removal.isoformat(), rng.choice(VALID_STATUTES)

    def _name(self, person: Person, variation: str) -> tuple[str, str, str, str]:
        rng = self.rng
        name = person.name
        first, middle, last = person.ret_first, person.ret_middle, person.ret_last
        if variation == "nickname":
            first = rng.choice(NICKNAMES[strip_accents(name.first)])
        elif variation == "double_surname":
            forms = [name.last, name.paternal, f"{name.paternal}-{name.maternal}"]
            if name.paternal.startswith("De"):
                forms += [name.paternal.replace(" ", "") + " " + name.maternal]
            current = strip_accents(last)
            last = rng.choice([form for form in forms if form != current] or [name.paternal])
        elif variation == "typo":
            if rng.random() < 0.6 or len(first) < 4:
                last = typo(rng, last)
            else:
                first = typo(rng, first)
        elif variation == "transliteration":
            if first in TRANSLITERATIONS:
                first = rng.choice(TRANSLITERATIONS[first])
            else:
                paternal = rng.choice(TRANSLITERATIONS.get(name.paternal, (name.paternal,)))
                last = f"{paternal} {name.maternal}" if name.maternal else paternal
        elif variation == "compound":
            if " " in first:
                head, _, rest = first.partition(" ")
                roll = rng.random()
                first, middle = (head, rest) if roll < 0.5 else (head, "") if roll < 0.8 else (f"{head}-{rest}", "")
            else:
                first, middle = f"{first} {middle}".strip(), ""
        elif variation == "accent":
            plain_first, plain_last = strip_accents(first), strip_accents(last)
            if (plain_first, plain_last) != (first, last):
                first, last = plain_first, plain_last
            else:
                first, last = accent(first), accent(last)
        elif variation == "exact":
            pass
        else:
            first, last = strip_accents(first), strip_accents(last)
        if variation not in ("compound", "exact"):
            roll = rng.random()
            middle = "" if roll < 0.35 else middle[:1] if roll < 0.55 else middle
        suffix = name.suffix if rng.random() < 0.5 else ""
        if suffix:
            suffix = rng.choice((suffix, suffix.upper(), f"{suffix}."))
        if rng.random() < 0.4:
            first, middle, last, suffix = first.upper(), middle.upper(), last.upper(), suffix.upper()
        return first, middle, last, suffix

    @staticmethod
    def _tin_text(rng: random.Random, tin: str) -> str:
        return f"{tin[:3]}-{tin[3:5]}-{tin[5:]}" if rng.random() < 0.5 else tin

    # --- one request --------------------------------------------------------------------------

    def target(self, case: Case, household: Household, person: Person) -> Target:
        """The period asked about, the return year that answers it, and the address the request gives."""
        rng = self.rng
        years = person.years
        lo, hi = self._period(years)
        address_year = 0
        if case.name == "moved":
            moved = [y for y in years if household.residence_index(y) > 0]
            hi = rng.choice(moved)
            lo = hi if rng.random() < 0.3 else rng.randint(self.first_year, hi)
            here = household.residence_index(hi)
            address_year = rng.choice([y for y in years if household.residence_index(y) < here])
        elif case.name == "period_before_move":
            last_home = household.residence_index(years[-1])
            earlier = [y for y in years if household.residence_index(y) < last_home]
            hi = rng.choice(earlier)
            lo = hi if rng.random() < 0.3 else rng.randint(self.first_year, hi)
            address_year = hi
        elif case.name == "housemate":
            address_year = household.residences[0][0]
        elif case.name == "no_return_in_period":
            if years[0] == self.first_year:
                lo = rng.randint(years[-1] + 1, self.last_year)
                hi = rng.randint(lo, self.last_year)
            else:
                hi = rng.randint(self.first_year, years[0] - 1)
                lo = rng.randint(self.first_year, hi)
        elif case.name == "sr_jr_no_dob" and household.other is not None:
            both = sorted(set(years) & set(household.other.years))
            lo, hi = (both[0], both[-1]) if both else (self.first_year, self.last_year)
        in_period = [y for y in years if lo <= y <= hi]
        expected_year = max(in_period) if in_period else 0
        if not address_year:
            pool = [y for y in years if y <= expected_year] or years
            address_year = rng.choice(pool) if pool else rng.randint(self.first_year, self.last_year)
        return Target(lo, hi, expected_year, household.address_in(address_year))

    def build(self, case: Case, household: Household, person: Person) -> Built:
        rng = self.rng
        target = self.target(case, household, person)
        lo, hi, expected_year, addr = target.lo, target.hi, target.expected_year, target.addr
        variation = "plain"
        if case.name.startswith("name_"):
            variation = case.feature or case.name.removeprefix("name_")
        elif case.name.startswith(("sr_jr", "twins")):
            variation = "exact"
        street, unit, city, state, zip_code = request_address(rng, addr, vary=case.name == "address_variant")
        first, middle, last, suffix = self._name(person, variation)
        dob = person.dob.isoformat() if rng.random() < 0.6 else ""
        tin = self._tin_text(rng, person.tin) if rng.random() < 0.2 else ""
        if case.name == "dob_keying_error":
            dob, tin = person.dob.replace(month=person.dob.day, day=person.dob.month).isoformat(), ""
        elif case.name == "dob_conflict":
            shift = rng.choice((-1, 1)) * rng.randint(2, 15)
            year = min(person.dob.year + shift, self.as_of.year - 19)
            year = person.dob.year - 3 if year == person.dob.year else year
            wrong = date(year, rng.randint(1, 12), rng.randint(1, 28))
            dob, tin = wrong.isoformat(), ""
        elif case.name == "sr_jr_with_dob":
            dob, tin = person.dob.isoformat(), ""
        elif case.name == "sr_jr_no_dob":
            dob, tin, suffix = "", "", ""
        a_number, removal, statute = self._legal()
        period = str(lo) if lo == hi else f"{lo}-{hi}"
        fields = {
            "first_name": first,
            "middle_name": middle,
            "last_name": last,
            "suffix": suffix,
            "dob": dob,
            "tin": tin,
            "street": street,
            "unit": unit,
            "city": city,
            "state": state,
            "zip": zip_code,
            "a_number": a_number,
            "removal_order_date": removal,
            "statute": statute,
            "tax_years": period,
        }
        if case.outcome == "REJECTED":
            self._break(fields, ReasonCode(case.code), addr)
            return Built(self._row(fields), case.outcome, "", "", case.code)
        if case.outcome == "NOT_MATCHED":
            tin_out = person.tin if case.name == "no_return_in_period" else ""
            return Built(self._row(fields), case.outcome, tin_out, "", case.code)
        return Built(self._row(fields), case.outcome, person.tin, str(expected_year), "")

    @staticmethod
    def _row(fields: dict[str, str]) -> list[str]:
        return ["", *(fields[column] for column in REQUEST_COLUMNS[1:])]

    # --- exactly one broken element -----------------------------------------------------------

    def _break(self, fields: dict[str, str], code: ReasonCode, addr: Addr) -> None:
        rng = self.rng
        as_of = self.as_of
        if code is ReasonCode.MISSING_NAME:
            fields["first_name" if rng.random() < 0.4 else "last_name"] = ""
        elif code is ReasonCode.INVALID_NAME:
            if rng.random() < 0.3:
                fields["first_name" if rng.random() < 0.5 else "last_name"] = rng.choice(_DIGIT_NAMES)
            else:
                first, last = rng.choice(_PLACEHOLDER_NAMES)
                fields["first_name"] = first or fields["first_name"]
                fields["last_name"] = last or fields["last_name"]
        elif code is ReasonCode.MISSING_ADDRESS:
            for column in ("street", "unit", "city", "state", "zip"):
                fields[column] = ""
        elif code is ReasonCode.INCOMPLETE_ADDRESS:
            if addr.po_box or rng.random() < 0.5:
                fields["zip"] = fields["city"] = ""
            else:
                fields["street"] = " ".join(part for part in (addr.predir, addr.name, addr.suffix) if part)
        elif code is ReasonCode.INVALID_ADDRESS:
            fields["street"], fields["unit"] = rng.choice(_PLACEHOLDER_STREETS), ""
        elif code is ReasonCode.INVALID_ZIP:
            fields["zip"] = rng.choice(_BAD_ZIPS)
        elif code is ReasonCode.ZIP_STATE_MISMATCH:
            fields["zip"] = self.book.zip_in_other_state(addr.state).zip
        elif code is ReasonCode.MISSING_REMOVAL_ORDER:
            fields["a_number" if rng.random() < 0.6 else "removal_order_date"] = ""
        elif code is ReasonCode.INVALID_A_NUMBER:
            fields["a_number"] = rng.choice(_BAD_A_NUMBERS)
        elif code is ReasonCode.INVALID_REMOVAL_ORDER_DATE:
            roll = rng.random()
            if roll < 0.3:
                fields["removal_order_date"] = (as_of + timedelta(days=rng.randint(1, 400))).isoformat()
            elif roll < 0.6:
                fields["removal_order_date"] = rng.choice((f"{as_of.year - 2}-02-30", f"{as_of.year - 3}-13-01"))
            else:
                # Inside the 90-day removal period: only wrong because of the statute cited.
                fields["removal_order_date"] = (as_of - timedelta(days=30)).isoformat()
                fields["statute"] = rng.choice(_REMOVAL_PERIOD_STATUTES)
        elif code is ReasonCode.MISSING_STATUTE:
            fields["statute"] = ""
        elif code is ReasonCode.STATUTE_NOT_PERMITTED:
            fields["statute"] = rng.choice(_NOT_PERMITTED_STATUTES)
        elif code is ReasonCode.MISSING_TAX_PERIOD:
            fields["tax_years"] = ""
        elif code is ReasonCode.INVALID_TAX_PERIOD:
            fields["tax_years"] = rng.choice(
                (
                    str(as_of.year + 1),
                    str(as_of.year),
                    str(as_of.year - 15),
                    f"{self.first_year - 3}-{self.first_year + 2}",
                )
            )
        elif code is ReasonCode.INVALID_DOB:
            fields["dob"] = rng.choice((f"{as_of.year + 5}-01-01", "1999-13-01", "1985-02-30"))
        elif code is ReasonCode.INVALID_TIN:
            fields["tin"] = rng.choice(_BAD_TINS)
        else:
            raise ValueError(f"no way to break a request for {code}")
