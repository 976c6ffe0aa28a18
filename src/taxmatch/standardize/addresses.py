"""US address standardization (USPS Publication 28 abbreviations) and the ZIP table.

The same function standardizes request addresses and master-file addresses, so the two
sides of a comparison always agree on spelling (`STREET` vs `ST`, `North` vs `N`,
`Apt 4B` vs `#4B`). Parsing of the street line is usaddress's; the tables here only
rename its components. Results are cached on the street string because master files and
request batches repeat the same street lines many times over.
"""

from __future__ import annotations

import base64
import bisect
import dataclasses
import re
import tempfile
import unicodedata
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import usaddress
import zipcodes

from taxmatch.records import Address

# Pub 28 appendix B (directionals).
DIRECTIONALS: dict[str, str] = {
    "N": "N",
    "S": "S",
    "E": "E",
    "W": "W",
    "NE": "NE",
    "NW": "NW",
    "SE": "SE",
    "SW": "SW",
    "NORTH": "N",
    "SOUTH": "S",
    "EAST": "E",
    "WEST": "W",
    "NORTHEAST": "NE",
    "NORTHWEST": "NW",
    "SOUTHEAST": "SE",
    "SOUTHWEST": "SW",
    "NORTH EAST": "NE",
    "NORTH WEST": "NW",
    "SOUTH EAST": "SE",
    "SOUTH WEST": "SW",
}

# Pub 28 appendix C1 (street suffixes): every common spelling to the standard abbreviation.
_SUFFIX_GROUPS: dict[str, tuple[str, ...]] = {
    "ALY": ("ALLEY", "ALLEE", "ALLY"),
    "ANX": ("ANNEX", "ANEX", "ANNX"),
    "ARC": ("ARCADE",),
    "AVE": ("AVENUE", "AV", "AVEN", "AVENU", "AVN", "AVNUE"),
    "BLF": ("BLUFF", "BLUF"),
    "BLVD": ("BOULEVARD", "BOUL", "BOULV", "BLV"),
    "BND": ("BEND",),
    "BR": ("BRANCH", "BRNCH"),
    "BRG": ("BRIDGE", "BRDGE"),
    "BRK": ("BROOK",),
    "BYP": ("BYPASS", "BYPA", "BYPAS", "BYPS"),
    "CIR": ("CIRCLE", "CIRC", "CIRCL", "CRCL", "CRCLE"),
    "CLF": ("CLIFF",),
    "CLFS": ("CLIFFS",),
    "CMN": ("COMMON",),
    "COR": ("CORNER",),
    "CORS": ("CORNERS",),
    "CRK": ("CREEK",),
    "CRES": ("CRESCENT", "CRSENT", "CRSNT"),
    "CRSE": ("COURSE",),
    "CT": ("COURT", "CRT"),
    "CTS": ("COURTS",),
    "CV": ("COVE",),
    "CYN": ("CANYON", "CANYN", "CNYN"),
    "DL": ("DALE",),
    "DR": ("DRIVE", "DRIV", "DRV"),
    "EST": ("ESTATE",),
    "ESTS": ("ESTATES",),
    "EXPY": ("EXPRESSWAY", "EXP", "EXPR", "EXPRESS", "EXPW"),
    "EXT": ("EXTENSION", "EXTN", "EXTNSN"),
    "FLD": ("FIELD",),
    "FLDS": ("FIELDS",),
    "FLS": ("FALLS",),
    "FRD": ("FORD",),
    "FRST": ("FOREST", "FORESTS"),
    "FRY": ("FERRY", "FRRY"),
    "FT": ("FORT", "FRT"),
    "FWY": ("FREEWAY", "FREEWY", "FRWAY", "FRWY"),
    "GDN": ("GARDEN", "GARDN", "GRDEN", "GRDN"),
    "GDNS": ("GARDENS", "GRDNS"),
    "GLN": ("GLEN",),
    "GRN": ("GREEN",),
    "GRV": ("GROVE", "GROV"),
    "HBR": ("HARBOR", "HARB", "HARBR", "HRBOR"),
    "HL": ("HILL",),
    "HLS": ("HILLS",),
    "HOLW": ("HOLLOW", "HLLW", "HOLLOWS", "HOLWS"),
    "HTS": ("HEIGHTS", "HT"),
    "HWY": ("HIGHWAY", "HIGHWY", "HIWAY", "HIWY", "HWAY"),
    "IS": ("ISLAND", "ISLND"),
    "JCT": ("JUNCTION", "JCTION", "JCTN", "JUNCTN", "JUNCTON"),
    "KY": ("KEY",),
    "LK": ("LAKE",),
    "LKS": ("LAKES",),
    "LN": ("LANE",),
    "LNDG": ("LANDING", "LNDNG"),
    "LOOP": ("LOOPS",),
    "MDW": ("MEADOW",),
    "MDWS": ("MEADOWS", "MEDOWS"),
    "ML": ("MILL",),
    "MNR": ("MANOR",),
    "MT": ("MOUNT", "MNT"),
    "MTN": ("MOUNTAIN", "MNTAIN", "MNTN", "MOUNTIN", "MTIN"),
    "PARK": ("PARKS",),
    "PKWY": ("PARKWAY", "PARKWY", "PKWAY", "PKY", "PARKWAYS", "PKWYS"),
    "PL": ("PLACE",),
    "PLN": ("PLAIN",),
    "PLZ": ("PLAZA", "PLZA"),
    "PT": ("POINT",),
    "PR": ("PRAIRIE", "PRR"),
    "RD": ("ROAD",),
    "RDG": ("RIDGE", "RDGE"),
    "RDS": ("ROADS",),
    "RIV": ("RIVER", "RVR", "RIVR"),
    "RTE": ("ROUTE",),
    "RUN": (),
    "SHR": ("SHORE", "SHOAR"),
    "SQ": ("SQUARE", "SQR", "SQRE", "SQU"),
    "ST": ("STREET", "STR", "STRT"),
    "STA": ("STATION", "STATN", "STN"),
    "TER": ("TERRACE", "TERR"),
    "TRCE": ("TRACE", "TRACES"),
    "TRL": ("TRAIL", "TRAILS", "TRLS"),
    "TPKE": ("TURNPIKE", "TRNPK", "TURNPK"),
    "VLG": ("VILLAGE", "VILL", "VILLAG", "VILLG", "VILLIAGE"),
    "VL": ("VILLE",),
    "VLY": ("VALLEY", "VALLY", "VLLY"),
    "VW": ("VIEW",),
    "WAY": ("WY",),
    "WL": ("WELL",),
    "XING": ("CROSSING", "CRSSNG"),
}
SUFFIXES: dict[str, str] = {
    spelling: abbreviation
    for abbreviation, spellings in _SUFFIX_GROUPS.items()
    for spelling in (abbreviation, *spellings)
}

# Street names that are ordinal words are compared as numerals: "Fifth Ave" is "5TH AVE".
ORDINALS: dict[str, str] = {
    "FIRST": "1ST",
    "SECOND": "2ND",
    "THIRD": "3RD",
    "FOURTH": "4TH",
    "FIFTH": "5TH",
    "SIXTH": "6TH",
    "SEVENTH": "7TH",
    "EIGHTH": "8TH",
    "NINTH": "9TH",
    "TENTH": "10TH",
}

STATE_NAMES: dict[str, str] = {
    "ALABAMA": "AL", "ALASKA": "AK", "ARIZONA": "AZ", "ARKANSAS": "AR", "CALIFORNIA": "CA",
    "COLORADO": "CO", "CONNECTICUT": "CT", "DELAWARE": "DE", "DISTRICT OF COLUMBIA": "DC",
    "FLORIDA": "FL", "GEORGIA": "GA", "HAWAII": "HI", "IDAHO": "ID", "ILLINOIS": "IL",
    "INDIANA": "IN", "IOWA": "IA", "KANSAS": "KS", "KENTUCKY": "KY", "LOUISIANA": "LA",
    "MAINE": "ME", "MARYLAND": "MD", "MASSACHUSETTS": "MA", "MICHIGAN": "MI", "MINNESOTA": "MN",
    "MISSISSIPPI": "MS", "MISSOURI": "MO", "MONTANA": "MT", "NEBRASKA": "NE", "NEVADA": "NV",
    "NEW HAMPSHIRE": "NH", "NEW JERSEY": "NJ", "NEW MEXICO": "NM", "NEW YORK": "NY",
    "NORTH CAROLINA": "NC", "NORTH DAKOTA": "ND", "OHIO": "OH", "OKLAHOMA": "OK", "OREGON": "OR",
    "PENNSYLVANIA": "PA", "RHODE ISLAND": "RI", "SOUTH CAROLINA": "SC", "SOUTH DAKOTA": "SD",
    "TENNESSEE": "TN", "TEXAS": "TX", "UTAH": "UT", "VERMONT": "VT", "VIRGINIA": "VA",
    "WASHINGTON": "WA", "WEST VIRGINIA": "WV", "WISCONSIN": "WI", "WYOMING": "WY",
    "AMERICAN SAMOA": "AS", "GUAM": "GU", "NORTHERN MARIANA ISLANDS": "MP", "PUERTO RICO": "PR",
    "VIRGIN ISLANDS": "VI", "US VIRGIN ISLANDS": "VI", "UNITED STATES VIRGIN ISLANDS": "VI",
    "FEDERATED STATES OF MICRONESIA": "FM", "MARSHALL ISLANDS": "MH", "PALAU": "PW",
    "ARMED FORCES AMERICAS": "AA", "ARMED FORCES EUROPE": "AE", "ARMED FORCES PACIFIC": "AP",
    "WASH DC": "DC", "D C": "DC",
}  # fmt: skip
STATE_CODES: frozenset[str] = frozenset(STATE_NAMES.values())

# Words that designate a unit; the unit itself is what follows them.
_UNIT_DESIGNATORS = frozenset(
    (
        "APT", "APARTMENT", "UNIT", "STE", "SUITE", "NO", "NUM", "NUMBER", "RM", "ROOM", "FL", "FLOOR", "FLR",
        "BLDG", "BUILDING", "LOT", "SPC", "SPACE", "TRLR", "TRAILER", "DEPT", "OFC", "OFFICE", "PH", "PENTHOUSE",
        "BSMT", "BASEMENT", "LBBY", "LOBBY", "REAR", "FRNT", "FRONT", "SIDE", "UPPR", "LOWR",
    )
)  # fmt: skip

# Designators that, inside a street line, can only begin a unit (unlike "NO" or "FL").
_UNIT_STARTS = frozenset({"#", "APT", "APARTMENT", "UNIT", "STE", "SUITE", "RM", "ROOM", "BLDG", "LOT", "SPC", "TRLR"})

_ZIP_RE = re.compile(r"^(\d{5})(?:[- ]?(\d{4}))?$")
_NON_ALNUM_RE = re.compile(r"[^0-9A-Z]+")
_SPACES_RE = re.compile(r"\s+")
_HOUSE_NUMBER_RE = re.compile(r"^\d+(?:[- ]?[A-Z]|-\d+|\s+1/2)?$")
_LEADING_NUMBER_RE = re.compile(r"^(\d+[A-Z]?)\s+(.*[A-Z].*)$")
_PO_BOX_RE = re.compile(r"^(?:P\s*O\s*BOX|POST\s+OFFICE\s+BOX|BOX|POB)\s*#?\s*([0-9A-Z-]+)$")
# A box number has a digit that is not zero ("PO Box XXX" and "PO Box 0" are no box).
_BOX_ID_RE = re.compile(r"^[A-Z-]*[0-9A-Z-]*[1-9][0-9A-Z-]*$")


@lru_cache(maxsize=262_144)
def fold(text: str) -> str:
    """Upper case without accents or punctuation noise: 'José Núñez, Jr.' -> 'JOSE NUNEZ, JR'."""
    if text.isascii():
        stripped = text
    else:
        decomposed = unicodedata.normalize("NFKD", text)
        stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    # Periods carry no meaning in addresses ("N." is "N", "P.O." is "PO").
    return _SPACES_RE.sub(" ", stripped.replace(".", "").replace("’", "'")).strip().upper()


# Its inputs (street-line components, cities, states) repeat heavily.
@lru_cache(maxsize=65_536)
def _tidy(text: str) -> str:
    return _SPACES_RE.sub(" ", _NON_ALNUM_RE.sub(" ", text)).strip()


@dataclass(frozen=True)
class StandardAddress:
    house_number: str = ""
    pre_directional: str = ""
    street_name: str = ""
    street_suffix: str = ""
    post_directional: str = ""
    unit: str = ""
    po_box: str = ""
    city: str = ""
    state: str = ""
    zip5: str = ""
    zip4: str = ""
    parsed_ok: bool = False

    @property
    def street_key(self) -> str:
        """One comparable string for the street line, unit excluded: '123 N MAIN ST'."""
        if self.po_box and not self.street_name:
            return f"PO BOX {self.po_box}"
        parts = (self.house_number, self.pre_directional, self.street_name, self.street_suffix, self.post_directional)
        return " ".join(part for part in parts if part)


@dataclass(frozen=True)
class _StreetParse:
    house_number: str = ""
    pre_directional: str = ""
    street_name: str = ""
    street_suffix: str = ""
    post_directional: str = ""
    unit: str = ""
    po_box: str = ""
    city: str = ""
    state: str = ""
    zip_text: str = ""
    parsed_ok: bool = False


_NO_PARSE = _StreetParse()


def normalize_state(text: str | None) -> str | None:
    """Two-letter code for a USPS abbreviation or a full name ('Illinois', 'il'), else None."""
    if not text:
        return None
    folded = _tidy(fold(text))
    if folded in STATE_CODES:
        return folded
    return STATE_NAMES.get(folded)


def normalize_zip(text: str | None) -> tuple[str, str] | None:
    """(zip5, zip4) for '12345', '12345-6789' or '123456789'; None if not that shape."""
    if not text:
        return None
    match = _ZIP_RE.match(text.strip())
    if match is None:
        return None
    return match.group(1), match.group(2) or ""


def normalize_unit(text: str | None) -> str:
    """'APT 4B', '#4B', 'Unit 4-B' -> '4B': the designator is dropped, only the identifier compares."""
    if not text:
        return ""
    words = _tidy(fold(text).replace("#", " ")).split()
    while len(words) > 1 and words[0] in _UNIT_DESIGNATORS:
        words = words[1:]
    if len(words) == 1 and words[0] in _UNIT_DESIGNATORS:
        return ""
    return "".join(words)


def normalize_city(text: str | None) -> str:
    return _tidy(fold(text)) if text else ""


# The ZIP table is derived from zipcodes' bundled list once, offline, into a small file: building
# it from `zipcodes.list_all()` at run time costs ~0.6 s of CPU (42,789 dicts built in Rust and
# kept alive by zipcodes) in every batch and server start. The file names the zipcodes version it
# was derived from; any other installed version is read the slow way, so the answer never
# depends on a stale file. `python -m taxmatch.standardize.addresses` rewrites the file.
_ZIP_TABLE_FILE = Path(__file__).with_name("zip_states.txt")
_ZIP_COUNT = 100_000


@dataclass(frozen=True, slots=True)
class _ZipTable:
    """Which five-digit ZIPs exist, and their states, as consecutive runs of ZIPs in one state set.

    Sorted by ZIP, the 42,789 ZIPs fall into ~90 runs that share a state, so a bitmap of
    existing ZIPs plus the first ZIP of each run is the whole table.
    """

    present: bytes  # bit (n % 8) of byte n // 8 is set when ZIP n exists
    starts: tuple[int, ...]  # first ZIP of each run, ascending
    states: tuple[frozenset[str], ...]  # the states of each run

    def states_of(self, zip5: str) -> frozenset[str]:
        # The table's keys are exactly five ASCII digits; int() would also read other digits.
        if len(zip5) != 5 or not zip5.isascii() or not zip5.isdigit():
            return _NO_STATES
        number = int(zip5)
        if not self.present[number >> 3] & (1 << (number & 7)):
            return _NO_STATES
        return self.states[bisect.bisect_right(self.starts, number) - 1]

    @classmethod
    def from_entries(cls, entries: Iterable[tuple[str, str]]) -> _ZipTable:
        """From (zip5, state) pairs; a ZIP listed under several states lies in all of them."""
        by_zip: dict[int, set[str]] = {}
        for zip5, state in entries:
            if len(zip5) != 5 or not zip5.isascii() or not zip5.isdigit():
                raise ValueError(f"not a five-digit ZIP: {zip5!r}")
            by_zip.setdefault(int(zip5), set()).add(state)
        present = bytearray(_ZIP_COUNT // 8)
        starts: list[int] = []
        states: list[frozenset[str]] = []
        for number in sorted(by_zip):
            present[number >> 3] |= 1 << (number & 7)
            zip_states = frozenset(by_zip[number])
            if not states or states[-1] != zip_states:
                starts.append(number)
                states.append(zip_states)
        return cls(bytes(present), tuple(starts), tuple(states))

    def entries(self) -> list[tuple[str, str]]:
        return [
            (f"{number:05d}", state)
            for number in range(_ZIP_COUNT)
            if self.present[number >> 3] & (1 << (number & 7))
            for state in sorted(self.states[bisect.bisect_right(self.starts, number) - 1])
        ]

    def to_text(self, source: str) -> str:
        runs = "\n".join(
            f"{start:05d} {'+'.join(sorted(states))}" for start, states in zip(self.starts, self.states, strict=True)
        )
        bitmap = base64.encodebytes(self.present).decode("ascii")
        return (
            "# ZIP -> state table derived from the zipcodes package; written by\n"
            "# `python -m taxmatch.standardize.addresses` (see _ZipTable). Do not edit by hand.\n"
            f"source {source}\nruns {len(self.starts)}\n{runs}\nbitmap\n{bitmap}"
        )

    @classmethod
    def from_text(cls, text: str) -> tuple[str, _ZipTable]:
        """(source, table); ValueError if the text is not a table `to_text` wrote."""
        lines = [line for line in text.split("\n") if not line.startswith("#")]
        source = lines[0].removeprefix("source ")
        count = int(lines[1].removeprefix("runs "))
        starts: list[int] = []
        states: list[frozenset[str]] = []
        for line in lines[2 : 2 + count]:
            start, names = line.split(" ")
            starts.append(int(start))
            states.append(frozenset(names.split("+")))
        if lines[2 + count] != "bitmap" or not lines[0].startswith("source "):
            raise ValueError("malformed ZIP table")
        present = base64.decodebytes("\n".join(lines[3 + count :]).encode("ascii"))
        if len(present) != _ZIP_COUNT // 8 or starts != sorted(starts):
            raise ValueError("malformed ZIP table")
        return source, cls(present, tuple(starts), tuple(states))


_NO_STATES: frozenset[str] = frozenset()


def _zipcodes_source() -> str:
    return f"zipcodes {zipcodes.__version__}"


def _zip_table_from_zipcodes() -> _ZipTable:
    # One pass over the bundled list: zipcodes' own lookups scan it linearly per call.
    # Inactive ZIPs are kept: a previous address may predate a ZIP's retirement.
    # zipcodes ships no annotations.
    entries = zipcodes.list_all()  # type: ignore[no-untyped-call]
    return _ZipTable.from_entries((str(entry["zip_code"]), str(entry["state"])) for entry in entries)


@lru_cache(maxsize=1)
def _zip_table() -> _ZipTable:
    try:
        source, table = _ZipTable.from_text(_ZIP_TABLE_FILE.read_text(encoding="ascii"))
    except (OSError, UnicodeDecodeError, ValueError, IndexError):
        return _zip_table_from_zipcodes()
    return table if source == _zipcodes_source() else _zip_table_from_zipcodes()


def write_zip_table(path: Path = _ZIP_TABLE_FILE) -> None:
    """Derive the table file from the installed zipcodes package."""
    path.write_text(_zip_table_from_zipcodes().to_text(_zipcodes_source()), encoding="ascii")


def zip_exists(zip5: str) -> bool:
    return bool(_zip_table().states_of(zip5))


def zip_state(zip5: str) -> frozenset[str]:
    """States the ZIP lies in (empty if the ZIP does not exist)."""
    return _zip_table().states_of(zip5)


def _standard_direction(text: str) -> str:
    tidy = _tidy(text)
    return DIRECTIONALS.get(tidy, tidy)


def _standard_name(text: str) -> str:
    tidy = _tidy(text)
    return ORDINALS.get(tidy, tidy)


def _fallback_parse(line: str) -> _StreetParse:
    """Regex reading used when usaddress refuses a line or labels it implausibly."""
    tidy = _tidy(line.replace("#", " # "))
    box = _PO_BOX_RE.match(tidy)
    if box and _BOX_ID_RE.match(box.group(1)):
        return _StreetParse(po_box=box.group(1), parsed_ok=True)
    leading = _LEADING_NUMBER_RE.match(tidy)
    if leading is None:
        return _StreetParse(street_name=tidy)
    words = leading.group(2).split()
    unit = ""
    for index, word in enumerate(words):
        if index and word in _UNIT_STARTS:
            words, unit = words[:index], normalize_unit(" ".join(words[index:]))
            break
    pre = post = suffix = ""
    if len(words) > 1 and words[0] in DIRECTIONALS:
        pre = DIRECTIONALS[words.pop(0)]
    if len(words) > 1 and words[-1] in DIRECTIONALS:
        post = DIRECTIONALS[words.pop()]
    if len(words) > 1 and words[-1] in SUFFIXES:
        suffix = SUFFIXES[words.pop()]
    return _StreetParse(
        house_number=leading.group(1),
        pre_directional=pre,
        street_name=_standard_name(" ".join(words)),
        street_suffix=suffix,
        post_directional=post,
        unit=unit,
        parsed_ok=True,
    )


# --- usaddress tagging, memoized on what the CRF actually sees -----------------------------
#
# usaddress.tag(line) = tokenize, turn each token into a feature dict (`tokenFeatures`, a pure
# function of the token), link each dict to its neighbours' (`tokens2features`), run the CRF
# (Viterbi), then group tokens by label. Tokenizing and the CRF call cost ~70 us per line, and
# most lines of a batch are distinct, so caching on the line rarely hits. The labels, however,
# depend only on the sequence of per-token feature dicts, and those repeat across lines:
# "12 OAK ST" and "845 OAK ST" differ only in the length/trailing-zero features of the number.
# So the labels are cached on that sequence, which gives exactly usaddress's labels.
#
# One more exact step widens the hits: CRFsuite's tagger drops an attribute that is not in the
# model's attribute dictionary before scoring, so a `word` value whose attributes (`word:v`,
# `previous:word:v`, `next:word:v`) the model never learned adds nothing to any score.
# Two such words therefore give the same labels, and the cache key writes them as one value.

_LABEL_CACHE_SIZE = 65_536
_labels_by_features: dict[tuple[tuple[object, ...], ...], tuple[str, ...]] = {}
# usaddress's tokenizer (0.5.16, pinned), compiled once instead of per call.
_AMPERSAND_RE = re.compile("(&#38;)|(&amp;)")
_TOKEN_RE = re.compile(
    r"""
    \(*\b[^\s,;#&()]+[.,;)\n]*   # ['ab. cd,ef '] -> ['ab.', 'cd,', 'ef']
    |
    [#&]                       # [^'#abc'] -> ['#']
    """,
    re.VERBOSE | re.UNICODE,
)
_ATTRIBUTE_LINE_RE = re.compile(r"^\s*(\d+): (.*)$")
_WORD_PREFIXES = ("word:", "previous:word:", "next:word:")


def _read_model_attributes(dump: str) -> frozenset[str] | None:
    """The attribute dictionary from a CRFsuite model dump, or None if it does not parse cleanly."""
    _head, found, rest = dump.partition("ATTRIBUTES = {\n")
    body, closed, _tail = rest.partition("\n}\n")
    if not found or not closed:
        return None
    attributes: list[str] = []
    for text in body.split("\n"):
        match = _ATTRIBUTE_LINE_RE.match(text)
        if match and int(match.group(1)) == len(attributes):
            attributes.append(match.group(2))
        elif attributes:
            # An attribute holding a newline (`endsinpunc:\n`) continues on the next line.
            attributes[-1] += "\n" + text
        else:
            return None
    return frozenset(attributes) if attributes else None


@lru_cache(maxsize=1)
def _model_words() -> frozenset[str] | None:
    """`word` values the model knows; None (merge no words) if the model cannot be read."""
    try:
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "model.txt"
            usaddress.TAGGER.dump(str(path))
            attributes = _read_model_attributes(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    if attributes is None:
        return None
    return frozenset(
        attribute[len(prefix) :]
        for attribute in attributes
        for prefix in _WORD_PREFIXES
        if attribute.startswith(prefix)
    )


_UNKNOWN_WORD = None  # not a value tokenFeatures can give (str or False)


_Attributes = tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class _TokenAttributes:
    own: _Attributes  # the token's CRFsuite attributes, as pycrfsuite flattens its feature dict
    as_previous: _Attributes  # the same under "previous:" (seen from the next token)
    as_next: _Attributes  # the same under "next:" (seen from the previous token)


def _flatten(features: dict[str, object]) -> _Attributes:
    # pycrfsuite's rule for a flat feature dict: a string value v gives the attribute "k:v" with
    # weight 1.0; a bool gives "k" with weight 1.0 or 0.0; order is kept.
    return tuple(
        (f"{name}:{value}", 1.0) if isinstance(value, str) else (name, float(value))  # type: ignore[arg-type]
        for name, value in features.items()
    )


# The key and the attributes are cached apart: every line needs its tokens' keys, but only a
# line whose key sequence is new needs attributes (the CRF call), and house numbers, the most
# varied tokens, almost never do.
@lru_cache(maxsize=262_144)
def _token_key(token: str) -> tuple[object, ...]:
    """The token's feature values, an unknown word written as one value."""
    features: dict[str, object] = dict(usaddress.tokenFeatures(token))
    word = features["word"]
    known = _model_words()
    if isinstance(word, str) and known is not None and word not in known:
        features["word"] = _UNKNOWN_WORD
    return tuple(features.items())


@lru_cache(maxsize=65_536)
def _token_attributes(token: str) -> _TokenAttributes:
    own = _flatten(dict(usaddress.tokenFeatures(token)))
    return _TokenAttributes(
        own=own,
        as_previous=tuple((f"previous:{name}", value) for name, value in own),
        as_next=tuple((f"next:{name}", value) for name, value in own),
    )


def _crf_items(tokens: list[str]) -> list[dict[str, float]]:
    """The CRFsuite items of usaddress.tokens2features, flattened, attribute order included.

    tokens2features gives each token its own features, then (nested) the previous token's under
    "previous" and the next token's under "next", then "address.start" on the first and
    "address.end" on the last; the first token's copy seen from the second carries
    "address.start", the last's seen from the one before carries "address.end".
    """
    features = [_token_attributes(token) for token in tokens]
    last = len(features) - 1
    items: list[dict[str, float]] = []
    for index, token in enumerate(features):
        attributes = list(token.own)
        if index > 0:
            attributes += features[index - 1].as_previous
            if index == 1:
                attributes.append(("previous:address.start", 1.0))
        if index < last:
            attributes += features[index + 1].as_next
            if index + 1 == last:
                attributes.append(("next:address.end", 1.0))
        if index == 0:
            attributes.append(("address.start", 1.0))
        if index == last:
            attributes.append(("address.end", 1.0))
        items.append(dict(attributes))
    return items


def _tag(line: str) -> dict[str, str]:
    """usaddress.tag(line)[0], same labels and RepeatedLabelError, with the CRF call memoized."""
    tokens: list[str] = _TOKEN_RE.findall(_AMPERSAND_RE.sub("&", line))
    if not tokens:
        return {}
    key = tuple(map(_token_key, tokens))
    labels = _labels_by_features.get(key)
    if labels is None:
        # Flat items: pycrfsuite converts them to the same CRFsuite items as the nested dicts
        # of tokens2features, in a third of the time.
        labels = tuple(usaddress.TAGGER.tag(_crf_items(tokens)))
        if len(_labels_by_features) >= _LABEL_CACHE_SIZE:
            _labels_by_features.clear()
        _labels_by_features[key] = labels
    # Grouping as usaddress.tag does it (no tag mapping).
    components: dict[str, list[str]] = {}
    last_label = None
    is_intersection = False
    for token, label in zip(tokens, labels, strict=True):
        if label == "IntersectionSeparator":
            is_intersection = True
        if "StreetName" in label and is_intersection:
            label = "Second" + label
        if label == last_label:
            components[label].append(token)
        elif label not in components:
            components[label] = [token]
        else:
            raise usaddress.RepeatedLabelError(line, list(zip(tokens, labels, strict=True)), label)
        last_label = label
    return {label: " ".join(parts).strip(" ,;") for label, parts in components.items()}


# A line that starts with a plain house number ("845 N OAK ST APT 2"): the rest of the line after
# the number, and the number's CRF features (its length and trailing zeros), fix the labels, so
# lines that differ only in the number parse alike apart from `house_number`. Only parses that
# provably use the number as nothing but the house number are reused as templates (see below).
_LEADING_HOUSE_NUMBER_RE = re.compile(r"([0-9]+) ")
_TEMPLATE_CACHE_SIZE = 65_536
_templates: dict[Hashable, _StreetParse] = {}


# usaddress's features of a string of digits are its length and its trailing zeros (word, vowels,
# punctuation, direction and street-name features are constant for digits; a test checks this
# against usaddress), so numbers are classed by that shape without computing their features.
_number_classes: dict[tuple[int, int], tuple[object, ...]] = {}


def house_number_class(number: str) -> Hashable:
    """Equal for two house numbers exactly when usaddress sees the same CRF features in them."""
    if not (number.isdigit() and number.isascii()):
        return _token_key(number)
    shape = (len(number), len(number) - len(number.rstrip("0")))
    known = _number_classes.get(shape)
    if known is None:
        known = _number_classes[shape] = _token_key(number)
    return known


# Template keys. A line '<number> <rest>': (number class, rest). A line '<start> <number>' (a box
# number, "PO BOX 1258"): (start, number class, whether the number has a non-zero digit).
# The number is the first (last) token and the rest (start) tokenizes on its own: a token never
# spans the space, and "&amp;"-style entities end in ";". So equal keys mean equal CRF feature
# sequences, hence equal labels.
_ShapeKey = tuple[Hashable, str] | tuple[str, Hashable, bool]
_TRAILING_NUMBER_RE = re.compile(r"(.*\S) ([0-9]+)")


def street_shape_key(line: str) -> Hashable | None:
    """The template key of a folded line (see `parse_street_shape`), or None if it has none."""
    return _shape_key(line)[0]


def _shape_key(line: str) -> tuple[_ShapeKey | None, str, bool]:
    """(template key or None, the number it leaves out, whether that number leads the line)."""
    lead = _LEADING_HOUSE_NUMBER_RE.match(line)
    if lead is not None:
        return (house_number_class(lead.group(1)), line[lead.end() :]), lead.group(1), True
    trail = _TRAILING_NUMBER_RE.fullmatch(line)
    if trail is not None:
        number = trail.group(2)
        return (trail.group(1), house_number_class(number), number.strip("0") != ""), number, False
    return None, "", False


def parse_street_shape(line: str) -> tuple[_StreetParse, bool]:
    """`parse_street(line)`, possibly with another line's house or box number, and whether shared.

    Shared means: every line with the same `street_shape_key` parses exactly like this one apart
    from `house_number` (a leading number) or `po_box` (a trailing one). Validation, which reads
    neither, can then decide all those lines at once.
    """
    if not line:
        return _NO_PARSE, False
    key = _shape_key(line)[0]
    if key is None:
        return parse_street(line), False
    template = _templates.get(key)
    if template is not None:
        return template, True
    parsed = parse_street(line)
    # (A cached parse_street answer stores no template; reporting "not shared" is then merely slower.)
    return parsed, key in _templates


_LETTERS_RE = re.compile(r"[A-Z]+")


def street_name_words(line: str) -> tuple[str, ...] | None:
    """What `parse_street(line)` is bound to give, known without parsing; None if nothing certain.

    For a folded ASCII line '<number> <rest>' with no other digit, whose letters the regex
    reader accepts: the parse succeeds (`parsed_ok`), and its `street_name` is empty, or some of
    the returned words (each at most once, in some order) joined by spaces, or, if that is one
    ordinal word, its numeral ('FIFTH' -> '5TH').

    Why: usaddress's reading is kept only if it has a house number (a token starting with a
    digit: only the first) or a box number (a non-zero digit: only in the first token), so the
    number is never part of the name; otherwise the regex reader, which accepts the line, gives
    the name from the words after the number. Either way the name's words are the line's
    letter runs after the number (`_tidy` keeps only letters and digits).
    """
    if not line.isascii():
        return None
    lead = _LEADING_HOUSE_NUMBER_RE.match(line)
    if lead is None:
        return None
    rest = line[lead.end() :]
    if any(char.isdigit() for char in rest) or _LEADING_NUMBER_RE.match(_tidy(line.replace("#", " # "))) is None:
        return None
    return tuple(_LETTERS_RE.findall(rest))


@lru_cache(maxsize=262_144)
def parse_street(line: str) -> _StreetParse:
    """Parse one folded street line (it may hold a whole address: city, state and ZIP too)."""
    if not line:
        return _NO_PARSE
    key, number, leading = _shape_key(line)
    if key is None:
        return _parse_street_line(line)[0]
    template = _templates.get(key)
    if template is not None:
        if leading:
            return dataclasses.replace(template, house_number=number)
        return dataclasses.replace(template, po_box=number)
    parsed, components = _parse_street_line(line)
    # Reusable when the number alone was labelled AddressNumber (USPSBoxID), so every other
    # component comes from the rest of the line, and the regex reader was never consulted (it
    # reads the whole line). A box number is kept as it is written once it has a non-zero digit,
    # which the key records.
    if components is not None and (
        (components.get("AddressNumber") == number and parsed.house_number == number)
        if leading
        else (components.get("USPSBoxID") == number and parsed.po_box == number)
    ):
        if len(_templates) >= _TEMPLATE_CACHE_SIZE:
            _templates.clear()
        _templates[key] = parsed
    return parsed


def _parse_street_line(line: str) -> tuple[_StreetParse, dict[str, str] | None]:
    """The parse, and usaddress's components when the parse came from usaddress alone."""
    try:
        tagged = _tag(line)
    except usaddress.RepeatedLabelError:
        return _fallback_parse(line), None
    parts: dict[str, str] = {label: str(value) for label, value in tagged.items()}
    box_id = parts.get("USPSBoxID", "")
    if not box_id and "USPSBoxType" in parts:
        # usaddress labels "POB 12" as a box type followed by an occupancy.
        box_id = parts.get("OccupancyIdentifier", "")
    box_id = _tidy(box_id).replace(" ", "")
    if not _BOX_ID_RE.match(box_id):
        box_id = ""
    house_number = _tidy(parts.get("AddressNumber", "")).replace(" ", "")
    if house_number and not _HOUSE_NUMBER_RE.match(parts.get("AddressNumber", "").strip()):
        house_number = ""
    name_words = [
        parts.get(label, "")
        for label in ("StreetNamePreModifier", "StreetNamePreType", "StreetName", "StreetNamePostModifier")
    ]
    street_name = _standard_name(" ".join(word for word in name_words if word))
    if not box_id and not (house_number and street_name):
        fallback = _fallback_parse(line)
        if fallback.parsed_ok:
            return fallback, None
        # The regex reader was consulted: whether it succeeds depends on the whole line.
        components = None
    else:
        components = parts
    suffix_text = _tidy(parts.get("StreetNamePostType", ""))
    unit_text = " ".join(parts.get(label, "") for label in ("OccupancyType", "OccupancyIdentifier", "SubaddressType"))
    if "USPSBoxType" in parts and not parts.get("USPSBoxID"):
        unit_text = ""
    parsed = _StreetParse(
        house_number=house_number,
        pre_directional=_standard_direction(parts.get("StreetNamePreDirectional", "")),
        street_name=street_name,
        street_suffix=SUFFIXES.get(suffix_text, suffix_text),
        post_directional=_standard_direction(parts.get("StreetNamePostDirectional", "")),
        unit=normalize_unit(unit_text),
        po_box=box_id,
        city=normalize_city(parts.get("PlaceName", "")),
        state=parts.get("StateName", ""),
        zip_text=parts.get("ZipCode", ""),
        parsed_ok=bool(box_id or (house_number and street_name)),
    )
    return parsed, components


def standardize_address(address: Address) -> StandardAddress:
    """Standardize one address for comparison and validation.

    Separate unit/city/state/zip fields win over what the street line itself contains;
    the line's own values fill the fields that are empty.
    """
    street = address.street or ""
    line = parse_street(fold(street)) if street.strip() else _NO_PARSE
    state_text = address.state or line.state
    # An unknown state keeps its text so a comparison still sees it; validation rejects it.
    state = (normalize_state(state_text) or _tidy(fold(state_text))) if state_text else ""
    zip_parts = normalize_zip(address.zip or line.zip_text)
    zip5, zip4 = zip_parts if zip_parts else ("", "")
    unit = normalize_unit(address.unit) or line.unit
    return StandardAddress(
        house_number=line.house_number,
        pre_directional=line.pre_directional,
        street_name=line.street_name,
        street_suffix=line.street_suffix,
        post_directional=line.post_directional,
        unit=unit,
        po_box=line.po_box,
        city=normalize_city(address.city) or line.city,
        state=state,
        zip5=zip5,
        zip4=zip4,
        parsed_ok=line.parsed_ok,
    )


if __name__ == "__main__":
    write_zip_table()
