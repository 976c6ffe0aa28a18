"""The `keyed` noise model: requests as a person keys (or a scanner reads) them from a case file.

The default `household` model varies one thing per request, chosen per case (a nickname, an
older address). This model was written apart from it, from what goes wrong when a record is
typed: it draws the population and the request structure (who is asked about, which period,
which address) exactly as the household model does, so the master file is byte-identical for a
seed, and replaces how the request is written. `truth.csv` gains a `variations` column: every
variation applied, in order, as `kind` or `kind:field`, so misses can be broken down by kind.

Rates, and why (fixed before the matcher was run on this model; never tuned to its misses):

- **Errors per request**: none 45%, one 35%, two 14%, three 6% (0.81 on average). Single keying
  is usually cited at a few errors per hundred fields; a request here has passed through several
  hands (source document, case system, extract) over ~10 keyed fields, so roughly half carrying
  an error is the plausible upper range, and it is what lets 5,000 requests show each kind a few
  hundred times (a miss rate to within about +-3 points). Errors within one request are drawn
  independently of each other and never twice of the same kind.
- **Which error** (relative weights, `ERROR_KINDS`): single-character slips dominate keyed text
  (Damerau, 1964: about 80% of misspellings are one insertion, deletion, substitution or
  transposition), so keyboard slips weigh most (22). Then sound-alike spellings (9) and
  forms written long or short (7), split/merged tokens (7), OCR look-alikes (6, from scanned
  forms), well-known respellings (5), and the structural slips, each rarer: ZIP (10 over three
  kinds), house number (6), date of birth (9 over three kinds), directional (5), suffix (4),
  given/family order (4).
- **Where a text error falls**: given and family name and street name alike (3 each), the city
  less (1: it is usually picked from a list), the middle name least (0.5). The first letter of a
  word is hit at 0.3 of the rate of the others (keyers look at the start of a word).
- **Missing optional fields**, drawn apart from the errors: no TIN 70% (an agency holds a
  TIN for a minority of removal cases), no date of birth 20%, middle name left out 35% (of those
  who have one), unit left out 25% (of those who live in one). A date of birth is written
  MM/DD/YYYY 12% and without zero padding (`1985-3-7`) 5% of the time: both are forms the
  contract accepts.
- **Case**: 45% of requests in capitals, 5% in lower case, the rest as written.

What the truth expects. A variation never changes who the request is about; it can make the
request invalid under the contract, and then the truth says so instead of calling it findable:
a ZIP keyed into a ZIP that does not exist -> `INVALID_ZIP`, into one of another state ->
`ZIP_STATE_MISMATCH`; an OCR digit inside a name (`Wi11iam`) -> `INVALID_NAME`; a date of birth
keyed into no real date, a future one or one more than the maximum age ago -> `INVALID_DOB`.
Such requests are expected `REJECTED` (they are not findable), whatever their case. A ZIP slip
that lands on another real ZIP of the same state stays valid and findable. Source systems
check a date's shape on entry, so 80% of date-digit slips are drawn among those that still give
a real date; ZIPs are not checked there. Requests of a rejection case get only variations that
keep them valid, so that the one broken element stays the only reason.

Kept exact where the case's answer depends on it: no date-of-birth noise for Sr/Jr and twins
(the date tells them apart or is shared), none on the deliberately conflicting date of
`dob_conflict`; a given-name error that would spell another household member's (or the
case's look-alike's) given name is not used.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

import zipcodes

from taxmatch.records import ReasonCode
from taxmatch.synth import keying
from taxmatch.synth.addresses import DIRECTIONALS, USPS_SUFFIXES, Addr
from taxmatch.synth.cases import Case
from taxmatch.synth.names import strip_accents
from taxmatch.synth.population import Household, Person
from taxmatch.synth.requests import Built, RequestFactory
from taxmatch.validate.identifiers import MAX_AGE_YEARS

NOISE_MODELS: tuple[str, ...] = ("household", "keyed")
DEFAULT_NOISE = "household"
VARIATIONS_COLUMN = "variations"

ERROR_COUNT_WEIGHTS = (45, 35, 14, 6)  # requests with 0, 1, 2, 3 errors
ERROR_KINDS: dict[str, float] = {
    "keyboard": 22, "phonetic": 9, "long_short_form": 7, "split_merge": 7, "ocr": 6, "respelling": 5,
    "directional": 5, "suffix_dropped": 4, "name_order_swapped": 4, "zip_digit": 4, "zip_neighbour": 4,
    "zip_transposed": 2, "house_number_digit": 4, "house_number_transposed": 2, "dob_day_month_swapped": 3,
    "dob_digit": 3, "dob_year_off_by_one": 3,
}  # fmt: skip
MISSING_TIN = 0.70
MISSING_DOB = 0.20
MISSING_MIDDLE = 0.35
MISSING_UNIT = 0.25
DOB_US_FORM = 0.12
DOB_UNPADDED = 0.05
UPPER_CASE = 0.45
LOWER_CASE = 0.05
OCR_DIGIT_IN_NAME = 0.3  # of OCR errors that fall on a name: a letter read as a digit
DOB_DIGIT_UNCHECKED = 0.2  # of date-digit slips: drawn without regard to the date staying real
TEXT_FIELD_WEIGHTS = {"first_name": 3.0, "last_name": 3.0, "street": 3.0, "city": 1.0, "middle_name": 0.5}

# Every variation label's kind (before any `:field`), for tests and the benchmark breakdown.
VARIATION_KINDS: tuple[str, ...] = (
    *ERROR_KINDS,
    "ocr_digit",
    "directional_dropped",
    "directional_added",
    "missing_tin",
    "missing_dob",
    "missing_middle",
    "missing_unit",
    "dob_format",
)

# The household model's own noise cases carry no special meaning here: their requests are
# ordinary keyed requests about the same (name-featured) people.
_PLAIN_CASES = frozenset(
    {"clean", "address_variant", "dob_keying_error"}
    | {f"name_{n}" for n in ("nickname", "double_surname", "typo", "transliteration", "compound_given", "accent")}
)
# The package ships no type hints; this is the one call used.
_list_zips: Callable[[], list[dict[str, Any]]] = zipcodes.list_all
_NO_DOB_NOISE = frozenset({"sr_jr_with_dob", "sr_jr_no_dob", "twins", "dob_conflict"})
_CITY_FORMS = {"Saint": "St", "St": "Saint", "Fort": "Ft", "Mount": "Mt", "North": "N", "South": "S",
               "East": "E", "West": "W"}  # fmt: skip
_ORDINAL_WORDS = {"1st": "First", "2nd": "Second", "3rd": "Third", "4th": "Fourth", "5th": "Fifth", "6th": "Sixth",
                  "7th": "Seventh", "8th": "Eighth", "9th": "Ninth", "10th": "Tenth", "12th": "Twelfth",
                  "14th": "Fourteenth", "21st": "Twenty-First"}  # fmt: skip
_SUFFIX_WORDS = {"Jr": "Junior", "Sr": "Senior"}


def truth_case(case_name: str) -> str:
    """The case name truth.csv gives a request under the keyed model."""
    return "keyed" if case_name in _PLAIN_CASES else case_name


def variation_kind(label: str) -> str:
    return label.partition(":")[0]


@dataclass(frozen=True, slots=True)
class _ZipTable:
    states: dict[str, frozenset[str]]  # every ZIP the package lists, as validation reads it
    same_city: dict[tuple[str, str], tuple[str, ...]]  # (state, CITY) -> its standard ZIPs
    standard: tuple[str, ...]  # every active standard ZIP, ascending


@lru_cache(maxsize=1)
def _zip_table() -> _ZipTable:
    states: dict[str, set[str]] = {}
    same_city: dict[tuple[str, str], list[str]] = {}
    standard: list[str] = []
    for entry in _list_zips():
        states.setdefault(entry["zip_code"], set()).add(entry["state"])
        if entry["active"] and entry["zip_code_type"] == "STANDARD":
            same_city.setdefault((entry["state"], entry["city"].upper()), []).append(entry["zip_code"])
            standard.append(entry["zip_code"])
    return _ZipTable(
        {zip_code: frozenset(found) for zip_code, found in states.items()},
        {key: tuple(sorted(zips)) for key, zips in same_city.items()},
        tuple(sorted(standard)),
    )


@dataclass(slots=True)
class _Street:
    number: str
    predir: str
    name: str
    suffix: str

    def text(self) -> str:
        return " ".join(part for part in (self.number, self.predir, self.name, self.suffix) if part)


@dataclass(slots=True)
class _Draft:
    """A request being keyed: fields as text, the street in parts, the date of birth as numbers."""

    fields: dict[str, str]
    street: _Street | None  # None for a PO box
    dob: tuple[int, int, int] | None  # (year, month, day), possibly no real date after a slip
    allow_invalid: bool
    other_given: frozenset[str]  # given names the target's must not turn into
    no_dob_noise: bool
    labels: list[tuple[str, frozenset[str]]] = field(default_factory=list)

    def note(self, label: str, *fields: str) -> bool:
        self.labels.append((label, frozenset(fields)))
        return True


class KeyedRequestFactory(RequestFactory):
    """Same targets, periods and addresses as the household model; keyed noise on top."""

    def build(self, case: Case, household: Household, person: Person) -> Built:
        target = self.target(case, household, person)
        draft = self._clean(case, household, person, target.addr)
        self._missing(case, draft)
        self._errors(draft)
        fields = self._written(draft)
        a_number, removal, statute = self._legal()
        period = str(target.lo) if target.lo == target.hi else f"{target.lo}-{target.hi}"
        fields.update(a_number=a_number, removal_order_date=removal, statute=statute, tax_years=period)
        if case.outcome == "REJECTED":
            before = dict(fields)
            self._break(fields, ReasonCode(case.code), target.addr)
            changed = {name for name, value in fields.items() if before[name] != value}
            # A variation on a field the rejection then overwrote is no longer in the request.
            labels = tuple(label for label, touched in draft.labels if not touched & changed)
            return Built(self._row(fields), case.outcome, "", "", case.code, labels)
        labels = tuple(label for label, _ in draft.labels)
        invalid = self._noise_codes(draft)
        if invalid:
            codes = ";".join(code.value for code in ReasonCode if code in invalid)
            return Built(self._row(fields), "REJECTED", "", "", codes, labels)
        if case.outcome == "NOT_MATCHED":
            tin_out = person.tin if case.name == "no_return_in_period" else ""
            return Built(self._row(fields), case.outcome, tin_out, "", case.code, labels)
        return Built(self._row(fields), case.outcome, person.tin, str(target.expected_year), "", labels)

    # --- the request as the agency's record has it ----------------------------------------------

    def _clean(self, case: Case, household: Household, person: Person, addr: Addr) -> _Draft:
        rng = self.rng
        name = person.name
        suffix = name.suffix
        if suffix:
            suffix = rng.choice((suffix, f"{suffix}."))
        tin = person.tin
        if rng.random() < 0.5:
            tin = f"{tin[:3]}-{tin[3:5]}-{tin[5:]}"
        dob: tuple[int, int, int] | None = (person.dob.year, person.dob.month, person.dob.day)
        if case.name == "dob_conflict":
            shift = rng.choice((-1, 1)) * rng.randint(2, 15)
            year = min(person.dob.year + shift, self.as_of.year - 19)
            year = person.dob.year - 3 if year == person.dob.year else year
            dob = (year, rng.randint(1, 12), rng.randint(1, 28))
        elif case.name == "sr_jr_no_dob":
            dob, tin, suffix = None, "", ""
        if case.name in ("dob_conflict", "sr_jr_with_dob"):
            tin = ""
        fields = {
            "first_name": strip_accents(name.first),
            "middle_name": strip_accents(name.middle),
            "last_name": strip_accents(name.last),
            "suffix": suffix,
            "tin": tin,
            "unit": addr.unit_text(rng.randrange(4)),
            "city": addr.city,
            "state": addr.state,
            "zip": addr.zip,
            "street": addr.street(),
        }
        street = None if addr.po_box else _Street(addr.number, addr.predir, addr.name, addr.suffix)
        others = [member for member in household.members if member is not person]
        if household.other is not None:
            others.append(household.other)
        other_given = frozenset(strip_accents(member.name.first).casefold() for member in others)
        return _Draft(
            fields,
            street,
            dob,
            allow_invalid=case.outcome != "REJECTED",
            other_given=other_given - {fields["first_name"].casefold()},
            no_dob_noise=case.name in _NO_DOB_NOISE,
        )

    def _missing(self, case: Case, draft: _Draft) -> None:
        rng = self.rng
        fields = draft.fields
        # Drawn for every request, so that the draws line up whatever the case keeps.
        rolls = [rng.random() for _ in range(4)]
        if fields["tin"] and rolls[0] < MISSING_TIN:
            fields["tin"] = ""
            draft.note("missing_tin", "tin")
        if draft.dob is not None and case.name not in _NO_DOB_NOISE and rolls[1] < MISSING_DOB:
            draft.dob = None
            draft.note("missing_dob", "dob")
        if fields["middle_name"] and rolls[2] < MISSING_MIDDLE:
            fields["middle_name"] = ""
            draft.note("missing_middle", "middle_name")
        if fields["unit"] and rolls[3] < MISSING_UNIT:
            fields["unit"] = ""
            draft.note("missing_unit", "unit")

    def _errors(self, draft: _Draft) -> None:
        rng = self.rng
        wanted = rng.choices(range(len(ERROR_COUNT_WEIGHTS)), weights=ERROR_COUNT_WEIGHTS)[0]
        kinds = dict(ERROR_KINDS)
        applied = 0
        while applied < wanted and kinds:
            kind = rng.choices(tuple(kinds), weights=tuple(kinds.values()))[0]
            del kinds[kind]
            if self._apply(kind, draft):
                applied += 1

    # --- one error --------------------------------------------------------------------------------

    def _apply(self, kind: str, draft: _Draft) -> bool:
        rng = self.rng
        fields, street = draft.fields, draft.street
        if kind in ("keyboard", "phonetic", "split_merge", "ocr", "respelling"):
            return self._text_error(kind, draft)
        if kind == "name_order_swapped":
            if not fields["first_name"] or fields["first_name"] == fields["last_name"]:
                return False
            fields["first_name"], fields["last_name"] = fields["last_name"], fields["first_name"]
            return draft.note(kind, "first_name", "last_name")
        if kind == "directional":
            if street is None:
                return False
            if street.predir:
                street.predir = ""
                return draft.note("directional_dropped", "street")
            street.predir = rng.choice(tuple(DIRECTIONALS))
            return draft.note("directional_added", "street")
        if kind == "suffix_dropped":
            if street is None or not street.suffix:
                return False
            street.suffix = ""
            return draft.note(kind, "street")
        if kind == "long_short_form":
            return self._long_short(draft)
        if kind in ("zip_digit", "zip_transposed", "zip_neighbour"):
            return self._zip_error(kind, draft)
        if kind in ("house_number_digit", "house_number_transposed"):
            if street is None:
                return False
            number = (
                keying.digit_slip(rng, street.number)
                if kind == "house_number_digit"
                else keying.transpose_digits(rng, street.number)
            )
            if number is None or number == street.number:
                return False
            street.number = number
            return draft.note(kind, "street")
        return self._dob_error(kind, draft)

    def _text_error(self, kind: str, draft: _Draft) -> bool:
        rng = self.rng
        fields, street = draft.fields, draft.street
        texts: dict[str, str] = {name: fields[name] for name in ("first_name", "last_name", "city", "middle_name")}
        if street is not None:
            texts["street"] = street.name
        if kind == "respelling":
            texts = {name: text for name, text in texts.items() if name in ("first_name", "last_name", "middle_name")}
        if len(texts.get("middle_name", "")) < 2:
            texts.pop("middle_name", None)
        candidates = [name for name, text in texts.items() if text]
        while candidates:
            name = rng.choices(candidates, weights=[TEXT_FIELD_WEIGHTS[c] for c in candidates])[0]
            candidates.remove(name)
            label = kind
            if kind == "ocr":
                is_name = name.endswith("_name")
                if is_name and draft.allow_invalid and rng.random() < OCR_DIGIT_IN_NAME:
                    label, new = "ocr_digit", keying.ocr_digit(rng, texts[name])
                else:
                    new = keying.ocr_letters(rng, texts[name])
            elif kind == "split_merge" and name == "street" and street is not None and rng.random() < 0.4:
                # The street name run into its suffix: `Hollowaystreet`, `MainSt`.
                new = street.name + street.suffix.lower() if street.suffix else None
                if new is not None:
                    street.suffix = ""
            else:
                change: Callable[[random.Random, str], str | None] = {
                    "keyboard": keying.keyboard,
                    "phonetic": keying.phonetic,
                    "split_merge": keying.split_or_merge,
                    "respelling": keying.respelling,
                }[kind]
                new = change(rng, texts[name])
            if new is None or new == texts[name]:
                continue
            if name == "first_name" and new.casefold() in draft.other_given:
                continue
            if name == "street" and street is not None:
                street.name = new
            else:
                fields[name] = new
            return draft.note(f"{label}:{name}", name)
        return False

    def _long_short(self, draft: _Draft) -> bool:
        rng = self.rng
        fields, street = draft.fields, draft.street
        options: list[tuple[str, Callable[[], None]]] = []
        if street is not None:
            st = street
            if st.suffix in USPS_SUFFIXES and USPS_SUFFIXES[st.suffix] != st.suffix:
                options.append(("street", lambda: setattr(st, "suffix", USPS_SUFFIXES[st.suffix])))
            if st.predir in DIRECTIONALS:
                options.append(("street", lambda: setattr(st, "predir", DIRECTIONALS[st.predir])))
            if st.name in _ORDINAL_WORDS:
                options.append(("street", lambda: setattr(st, "name", _ORDINAL_WORDS[st.name])))
        city_words = fields["city"].split(" ")
        if len(city_words) > 1 and city_words[0] in _CITY_FORMS:
            short = " ".join((_CITY_FORMS[city_words[0]], *city_words[1:]))
            options.append(("city", lambda: fields.__setitem__("city", short)))
        unit = fields["unit"]
        if unit.startswith(("Apt ", "APT ")):
            options.append(("unit", lambda: fields.__setitem__("unit", "Apartment " + unit[4:])))
        bare_suffix = fields["suffix"].rstrip(".")
        if bare_suffix in _SUFFIX_WORDS:
            options.append(("suffix", lambda: fields.__setitem__("suffix", _SUFFIX_WORDS[bare_suffix])))
        if not options:
            return False
        where, change = rng.choice(options)
        change()
        return draft.note(f"long_short_form:{where}", where)

    def _zip_error(self, kind: str, draft: _Draft) -> bool:
        rng = self.rng
        fields = draft.fields
        old, state = fields["zip"], fields["state"]
        table = _zip_table()
        new: str | None
        label = kind
        if kind == "zip_digit":
            new = keying.digit_slip(rng, old)
        elif kind == "zip_transposed":
            new = keying.transpose_digits(rng, old)
        else:
            # Another ZIP of the same city; a city with one ZIP: the nearest ZIP of its ZIP3 in the state.
            others = [z for z in table.same_city.get((state, fields["city"].upper()), ()) if z != old]
            label = "zip_neighbour:same_city"
            if not others:
                label = "zip_neighbour:same_zip3"
                at = bisect.bisect_left(table.standard, old)
                near = table.standard[max(0, at - 3) : at + 4]
                others = [z for z in near if z != old and z[:3] == old[:3] and state in table.states[z]]
                others = sorted(others, key=lambda z: abs(int(z) - int(old)))[:1]
            new = rng.choice(others) if others else None
        if new is None or new == old:
            return False
        if self._zip_code(new, state) is not None and not draft.allow_invalid:
            return False
        fields["zip"] = new
        return draft.note(label, "zip")

    @staticmethod
    def _zip_code(zip_code: str, state: str) -> ReasonCode | None:
        states = _zip_table().states.get(zip_code, frozenset())
        return None if state in states else ReasonCode.ZIP_STATE_MISMATCH if states else ReasonCode.INVALID_ZIP

    def _dob_error(self, kind: str, draft: _Draft) -> bool:
        rng = self.rng
        if draft.dob is None or draft.no_dob_noise:
            return False
        year, month, day = draft.dob
        new: tuple[int, int, int] | None = None
        if kind == "dob_day_month_swapped":
            new = (year, day, month) if day <= 12 and day != month else None
        elif kind == "dob_year_off_by_one":
            new = (year + rng.choice((-1, 1)), month, day)
            new = new if self._plausible(new) else None
        elif kind == "dob_digit":
            digits = f"{year:04d}{month:02d}{day:02d}"
            slips = [
                (int(text[:4]), int(text[4:6]), int(text[6:]))
                for i, char in enumerate(digits)
                for other in keying.DIGIT_NEIGHBOURS[char]
                for text in (digits[:i] + other + digits[i + 1 :],)
            ]
            real = [slip for slip in slips if self._plausible(slip)]
            unchecked = draft.allow_invalid and rng.random() < DOB_DIGIT_UNCHECKED
            pool = slips if unchecked else real
            new = rng.choice(pool) if pool else None
        else:
            raise ValueError(f"unknown error kind {kind!r}")
        if new is None or new == draft.dob:
            return False
        draft.dob = new
        return draft.note(kind, "dob")

    def _noise_codes(self, draft: _Draft) -> set[ReasonCode]:
        """What the finished request breaks, judged on its final fields (a later slip can undo an earlier)."""
        fields = draft.fields
        codes: set[ReasonCode] = set()
        if any(char.isdigit() for name in ("first_name", "middle_name", "last_name") for char in fields[name]):
            codes.add(ReasonCode.INVALID_NAME)
        zip_code = self._zip_code(fields["zip"], fields["state"])
        if zip_code is not None:
            codes.add(zip_code)
        if draft.dob is not None and not self._plausible(draft.dob):
            codes.add(ReasonCode.INVALID_DOB)
        return codes

    def _plausible(self, ymd: tuple[int, int, int]) -> bool:
        """A date of birth the contract accepts: a real date, not after as-of, not beyond the maximum age."""
        try:
            born = date(*ymd)
        except ValueError:
            return False
        oldest = self.as_of.year - MAX_AGE_YEARS
        return born <= self.as_of and (born.year, born.month, born.day) >= (oldest, self.as_of.month, self.as_of.day)

    # --- written out ------------------------------------------------------------------------------

    def _written(self, draft: _Draft) -> dict[str, str]:
        rng = self.rng
        fields = dict(draft.fields)
        if draft.street is not None:
            fields["street"] = draft.street.text()
        fields["dob"] = self._dob_text(draft)
        roll = rng.random()
        if roll < UPPER_CASE + LOWER_CASE:
            cased = str.upper if roll < UPPER_CASE else str.lower
            for name in ("first_name", "middle_name", "last_name", "suffix", "street", "unit", "city"):
                fields[name] = cased(fields[name])
        return fields

    def _dob_text(self, draft: _Draft) -> str:
        if draft.dob is None:
            return ""
        year, month, day = draft.dob
        iso = f"{year:04d}-{month:02d}-{day:02d}"
        if not self._plausible(draft.dob):
            return iso
        roll = self.rng.random()
        if roll < DOB_US_FORM:
            draft.note("dob_format", "dob")
            return f"{month:02d}/{day:02d}/{year:04d}"
        if roll < DOB_US_FORM + DOB_UNPADDED and (month < 10 or day < 10):
            draft.note("dob_format", "dob")
            return f"{year}-{month}-{day}"
        return iso
