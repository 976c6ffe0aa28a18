"""US address standardization (USPS Publication 28 abbreviations) and the ZIP table.

The same function standardizes request addresses and master-file addresses, so the two
sides of a comparison always agree on spelling (`STREET` vs `ST`, `North` vs `N`,
`Apt 4B` vs `#4B`). Parsing of the street line is usaddress's; the tables here only
rename its components. Results are cached on the street string because master files and
request batches repeat the same street lines many times over.
"""

from __future__ import annotations

import re
import tempfile
import unicodedata
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
_ORDINALS: dict[str, str] = {
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


@lru_cache(maxsize=1)
def _zip_table() -> dict[str, frozenset[str]]:
    # One pass over the bundled list: zipcodes' own lookups scan it linearly per call.
    # Inactive ZIPs are kept: a previous address may predate a ZIP's retirement.
    table: dict[str, set[str]] = {}
    # zipcodes ships no annotations.
    for entry in zipcodes.list_all():  # type: ignore[no-untyped-call]
        table.setdefault(str(entry["zip_code"]), set()).add(str(entry["state"]))
    return {zip5: frozenset(states) for zip5, states in table.items()}


def zip_exists(zip5: str) -> bool:
    return zip5 in _zip_table()


def zip_state(zip5: str) -> frozenset[str]:
    """States the ZIP lies in (empty if the ZIP does not exist)."""
    return _zip_table().get(zip5, frozenset())


def _standard_direction(text: str) -> str:
    tidy = _tidy(text)
    return DIRECTIONALS.get(tidy, tidy)


def _standard_name(text: str) -> str:
    tidy = _tidy(text)
    return _ORDINALS.get(tidy, tidy)


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
class _TokenFeatures:
    key: tuple[object, ...]  # feature values, an unknown word written as one value
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


@lru_cache(maxsize=262_144)
def _token_features(token: str) -> _TokenFeatures:
    features: dict[str, object] = dict(usaddress.tokenFeatures(token))
    own = _flatten(features)
    word = features["word"]
    known = _model_words()
    if isinstance(word, str) and known is not None and word not in known:
        features["word"] = _UNKNOWN_WORD
    return _TokenFeatures(
        key=tuple(features.items()),
        own=own,
        as_previous=tuple((f"previous:{name}", value) for name, value in own),
        as_next=tuple((f"next:{name}", value) for name, value in own),
    )


def _crf_items(tokens: list[_TokenFeatures]) -> list[dict[str, float]]:
    """The CRFsuite items of usaddress.tokens2features, flattened, attribute order included.

    tokens2features gives each token its own features, then (nested) the previous token's under
    "previous" and the next token's under "next", then "address.start" on the first and
    "address.end" on the last; the first token's copy seen from the second carries
    "address.start", the last's seen from the one before carries "address.end".
    """
    last = len(tokens) - 1
    items: list[dict[str, float]] = []
    for index, token in enumerate(tokens):
        attributes = list(token.own)
        if index > 0:
            attributes += tokens[index - 1].as_previous
            if index == 1:
                attributes.append(("previous:address.start", 1.0))
        if index < last:
            attributes += tokens[index + 1].as_next
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
    features = [_token_features(token) for token in tokens]
    key = tuple(token.key for token in features)
    labels = _labels_by_features.get(key)
    if labels is None:
        # Flat items: pycrfsuite converts them to the same CRFsuite items as the nested dicts
        # of tokens2features, in a third of the time.
        labels = tuple(usaddress.TAGGER.tag(_crf_items(features)))
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
_templates: dict[tuple[tuple[object, ...], str], _StreetParse] = {}


@lru_cache(maxsize=262_144)
def parse_street(line: str) -> _StreetParse:
    """Parse one folded street line (it may hold a whole address: city, state and ZIP too)."""
    if not line:
        return _StreetParse()
    lead = _LEADING_HOUSE_NUMBER_RE.match(line)
    if lead is None:
        return _parse_street_line(line)[0]
    number = lead.group(1)
    # The number is the line's first token and the rest tokenizes on its own (a token never
    # spans the space), so equal keys mean equal CRF feature sequences, hence equal labels.
    key = (_token_features(number).key, line[lead.end(1) :])
    template = _templates.get(key)
    if template is not None:
        return _StreetParse(
            house_number=number,
            pre_directional=template.pre_directional,
            street_name=template.street_name,
            street_suffix=template.street_suffix,
            post_directional=template.post_directional,
            unit=template.unit,
            po_box=template.po_box,
            city=template.city,
            state=template.state,
            zip_text=template.zip_text,
            parsed_ok=template.parsed_ok,
        )
    parsed, address_number = _parse_street_line(line)
    # Reusable when the number alone was labelled AddressNumber (so every other component comes
    # from the rest of the line) and the regex reader was never consulted (it reads the line).
    if address_number == number and parsed.house_number == number:
        if len(_templates) >= _TEMPLATE_CACHE_SIZE:
            _templates.clear()
        _templates[key] = parsed
    return parsed


def _parse_street_line(line: str) -> tuple[_StreetParse, str | None]:
    """The parse, and usaddress's AddressNumber component when the parse came from usaddress alone."""
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
        address_number = None
    else:
        address_number = parts.get("AddressNumber")
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
    return parsed, address_number


def standardize_address(address: Address) -> StandardAddress:
    """Standardize one address for comparison and validation.

    Separate unit/city/state/zip fields win over what the street line itself contains;
    the line's own values fill the fields that are empty.
    """
    street = address.street or ""
    line = parse_street(fold(street)) if street.strip() else _StreetParse()
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
