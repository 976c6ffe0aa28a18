"""How a person keying or scanning a record gets a word wrong: the character-level errors of the
keyed noise model (see `taxmatch.synth.keyed` for where and how often each is applied).

Every function takes the text as written and returns the text with one error, or None when the
error cannot apply to that text (no adjacent-key letter, no OCR look-alike, no phonetic rule),
so that the caller can pick another kind instead of recording an error that did not happen.
Case is preserved: an error in `SMITH` is keyed in capitals.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

# --- QWERTY adjacency ---------------------------------------------------------------------------

# Rows as they sit on the keyboard: each row starts a fraction of a key to the right of the one
# above it, which is what makes `a` touch `q`, `w`, `s` and `z` but not `x`.
_QWERTY_ROWS = (("qwertyuiop", 0.0), ("asdfghjkl", 0.25), ("zxcvbnm", 0.75))
_TOUCHING = 1.3  # keys whose centres are closer than this (in key widths) share an edge or a corner


def _letter_neighbours() -> dict[str, str]:
    position = {
        key: (column + offset, float(row))
        for row, (keys, offset) in enumerate(_QWERTY_ROWS)
        for column, key in enumerate(keys)
    }
    return {
        key: "".join(
            other
            for other, (x, y) in position.items()
            if other != key and ((x - kx) ** 2 + (y - ky) ** 2) ** 0.5 < _TOUCHING
        )
        for key, (kx, ky) in position.items()
    }


QWERTY_NEIGHBOURS: dict[str, str] = _letter_neighbours()
# Digits are keyed on the numeric keypad (7-8-9 on top, 0 below 1-2) or the number row.
_KEYPAD = {"7": "48", "8": "795", "9": "86", "4": "751", "5": "8462", "6": "953", "1": "420", "2": "5130", "3": "62"}
DIGIT_NEIGHBOURS: dict[str, str] = {
    digit: "".join(sorted(set(_KEYPAD.get(digit, "12")) | set("1234567890"[max(0, i - 1) : i + 2].replace(digit, ""))))
    for i, digit in enumerate("1234567890")
}


def _same_case(template: str, text: str, whole: str) -> str:
    """`text` written in the case of the `template` it replaces inside `whole`: `Ph` -> `F`, `PH` -> `F` in `PHELPS`."""
    if whole.isupper():
        return text.upper()
    if template[:1].isupper():
        return text[:1].upper() + text[1:].lower()
    return text.lower()


def _letter_positions(text: str) -> list[int]:
    return [i for i, char in enumerate(text) if char.isascii() and char.isalpha()]


def keyboard(rng: random.Random, text: str) -> str | None:
    """One slip of the fingers: an adjacent key struck instead of (or as well as) the right one,
    two letters swapped, or a letter left out. The first letter is hit less often: keyers look
    at the start of a word."""
    positions = _letter_positions(text)
    if len(positions) < 2:
        return None
    weights = [0.3 if i == 0 or not text[i - 1].isalpha() else 1.0 for i in positions]
    i = rng.choices(positions, weights=weights)[0]
    char = text[i]
    roll = rng.random()
    if roll < 0.6:
        new = _same_case(char, rng.choice(QWERTY_NEIGHBOURS[char.lower()]), text)
        return text[:i] + new + text[i + 1 :]
    if roll < 0.75:
        extra = _same_case(char, rng.choice(QWERTY_NEIGHBOURS[char.lower()]), text)
        return text[:i] + extra + text[i:] if rng.random() < 0.5 else text[: i + 1] + extra + text[i + 1 :]
    if roll < 0.9 and i + 1 < len(text) and text[i + 1].isalpha() and text[i + 1].lower() != char.lower():
        return text[:i] + text[i + 1] + char + text[i + 2 :]
    if len(positions) > 3:
        return text[:i] + text[i + 1 :]
    return None


# --- OCR look-alikes ----------------------------------------------------------------------------

# Letter for letter: the scanned word is still made of letters.
_OCR_LETTERS = (("rn", "m"), ("m", "rn"), ("cl", "d"), ("d", "cl"), ("vv", "w"), ("w", "vv"), ("l", "I"),
                ("I", "l"), ("e", "c"), ("h", "b"))  # fmt: skip
# A letter read as a digit: the word now holds a digit.
_OCR_DIGITS = (("O", "0"), ("o", "0"), ("l", "1"), ("I", "1"), ("i", "1"), ("S", "5"), ("s", "5"), ("B", "8"))


def _replace_one(rng: random.Random, text: str, pairs: tuple[tuple[str, str], ...], fold: bool) -> str | None:
    spots: list[tuple[int, str, str]] = []
    for old, new in pairs:
        haystack, needle = (text.lower(), old.lower()) if fold else (text, old)
        start = haystack.find(needle)
        while start >= 0:
            spots.append((start, old, new))
            start = haystack.find(needle, start + 1)
    if not spots:
        return None
    start, old, new = rng.choice(spots)
    written = text[start : start + len(old)]
    if fold:
        new = _same_case(written, new, text)
    return text[:start] + new + text[start + len(old) :]


def ocr_letters(rng: random.Random, text: str) -> str | None:
    """`rn` read as `m` (and back), `cl` as `d`, `vv` as `w`, `l` as `I`, `e` as `c`."""
    # l/I are told apart only by their case, so those two are matched exactly; the rest in any case.
    exact = tuple(pair for pair in _OCR_LETTERS if pair[0] in ("l", "I"))
    folded = tuple(pair for pair in _OCR_LETTERS if pair[0] not in ("l", "I"))
    choices = [out for out in (_replace_one(rng, text, exact, False), _replace_one(rng, text, folded, True)) if out]
    return rng.choice(choices) if choices else None


def ocr_digit(rng: random.Random, text: str) -> str | None:
    """`O` read as `0`, `l`/`I`/`i` as `1`, `S` as `5`, `B` as `8`."""
    return _replace_one(rng, text, _OCR_DIGITS, False)


# --- phonetic respellings -----------------------------------------------------------------------

# (pattern, replacement): what a keyer writes for what they heard. Applied at one place.
_PHONETIC: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), replacement)
    for pattern, replacement in (
        (r"ph", "f"), (r"(?<=[aeiou])f(?=[aeiou])", "ph"), (r"ck", "k"), (r"(?<=[aeiou])k\b", "ck"),
        (r"ie\b", "y"), (r"(?<=[^aeiou])y\b", "ie"), (r"ey\b", "y"), (r"ei", "ie"), (r"ie(?=.)", "ei"),
        (r"(?<=[^aeiou])y(?=[^aeiou])", "i"), (r"(?<=[^aeiou])i(?=[^aeiou\W])", "y"),
        (r"\bc(?=[aou])", "k"), (r"\bk(?=[aou])", "c"), (r"th", "t"), (r"son\b", "sen"), (r"sen\b", "son"),
        (r"ez\b", "es"), (r"(?<=[aeiou])z", "s"), (r"(?<=[aeiou])s(?=[aeiou])", "z"),
        (r"v", "b"), (r"(?<=[aeiou])b(?=[aeiou])", "v"), (r"ll(?=[aeiou])", "y"),
        (r"([bdfglmnprst])\1", r"\1"), (r"(?<=[aeiou])([lnrst])(?=[aeiou])", r"\1\1"),
    )
)  # fmt: skip


def phonetic(rng: random.Random, text: str) -> str | None:
    """A sound-alike spelling: ph/f, ck/k, ie/y, ei/ie, c/k, s/z, v/b, a doubled or undoubled letter."""
    spots = [(pattern, replacement, match) for pattern, replacement in _PHONETIC for match in pattern.finditer(text)]
    if not spots:
        return None
    _, replacement, match = rng.choice(spots)
    new = _same_case(match.group(0), match.expand(replacement), text)
    out = text[: match.start()] + new + text[match.end() :]
    return out if out != text else None


# Spellings of one name that are all in common use; a keyer writes the one they know.
_RESPELLING_GROUPS: tuple[tuple[str, ...], ...] = (
    ("Jon", "John"), ("Steven", "Stephen"), ("Catherine", "Katherine", "Kathryn"), ("Sara", "Sarah"),
    ("Ann", "Anne"), ("Philip", "Phillip"), ("Alan", "Allen", "Allan"), ("Brian", "Bryan"), ("Eric", "Erik"),
    ("Mark", "Marc"), ("Teresa", "Theresa"), ("Rebecca", "Rebekah"), ("Carl", "Karl"), ("Christina", "Kristina"),
    ("Nicholas", "Nicolas"), ("Lawrence", "Laurence"), ("Jeffrey", "Jeffery", "Geoffrey"), ("Isabel", "Isabelle"),
    ("Gerald", "Jerald"), ("Cheryl", "Sheryl"), ("Deborah", "Debra"), ("Marilyn", "Marylin"),
    ("Jacqueline", "Jaqueline"), ("Dennis", "Denis"), ("Sean", "Shawn", "Shaun"), ("Zachary", "Zachery"),
    ("Amy", "Aimee"), ("Ines", "Inez"), ("Cesar", "Caesar"), ("Ruben", "Reuben"), ("Sofia", "Sophia"),
    ("Mohammed", "Mohamed"), ("Frances", "Francis"), ("Carolyn", "Caroline"), ("Katherine", "Kathrine"),
    ("Thompson", "Thomson"), ("Peterson", "Petersen"), ("Olson", "Olsen"), ("Larsen", "Larson"), ("Reed", "Reid"),
    ("Gray", "Grey"), ("Myers", "Meyers"), ("Stevens", "Stephens"), ("Phillips", "Philips"),
    ("Johansson", "Johanson"), ("Schmidt", "Schmitt"), ("Muller", "Mueller"), ("Fisher", "Fischer"),
    ("Vasquez", "Vazquez"), ("Gonzalez", "Gonzales"), ("Rodriguez", "Rodrigues"), ("Hernandez", "Hernandes"),
    ("Alvarez", "Alvares"), ("Perez", "Peres"), ("Chavez", "Chaves"), ("Jimenez", "Gimenez"), ("Cortez", "Cortes"),
    ("Diaz", "Dias"), ("Kelly", "Kelley"), ("Cook", "Cooke"), ("Clark", "Clarke"), ("Brown", "Browne"),
    ("Green", "Greene"), ("MacDonald", "McDonald"), ("McCarthy", "MacCarthy"), ("Hussein", "Husein"),
    ("Mahmoud", "Mahmood"),
)  # fmt: skip
RESPELLINGS: dict[str, tuple[str, ...]] = {}
for _group in _RESPELLING_GROUPS:
    for _name in _group:
        RESPELLINGS[_name] = tuple(dict.fromkeys((*RESPELLINGS.get(_name, ()), *(n for n in _group if n != _name))))


def respelling(rng: random.Random, text: str) -> str | None:
    """Another common spelling of the whole name (Steven/Stephen, Thompson/Thomson)."""
    words = text.split(" ")
    spots = [i for i, word in enumerate(words) if word in RESPELLINGS]
    if not spots:
        return None
    i = rng.choice(spots)
    words[i] = rng.choice(RESPELLINGS[words[i]])
    return " ".join(words)


# --- split and merged tokens --------------------------------------------------------------------

_PREFIXED = re.compile(r"^(Mc|Mac|O)(?=[A-Z][a-z])")


def split_or_merge(rng: random.Random, text: str) -> str | None:
    """A space lost or gained: `De La Cruz` -> `DeLaCruz`, `McCarthy` -> `Mc Carthy`, `Min-jun` ->
    `Minjun`, `Hollowaystreet`, `tasman p lace`."""
    options: list[Callable[[], str]] = []
    gaps = [i for i, char in enumerate(text) if char in " -" and 0 < i < len(text) - 1]
    if gaps:

        def merge() -> str:
            i = rng.choice(gaps)
            return text[:i] + text[i + 1 :]

        options.append(merge)
    prefix = _PREFIXED.match(text)
    if prefix:
        cut = prefix.end()
        options.append(lambda: text[:cut] + rng.choice((" ", "'" if cut == 1 else " ")) + text[cut:])
    long_words = [(m.start(), m.end()) for m in re.finditer(r"[A-Za-z]{6,}", text)]
    if long_words:

        def split() -> str:
            start, end = rng.choice(long_words)
            cut = rng.randint(start + 2, end - 2)
            return text[:cut] + " " + text[cut:]

        options.append(split)
    if not options:
        return None
    out = rng.choice(options)()
    return out if out != text else None


# --- digits -------------------------------------------------------------------------------------


def digit_slip(rng: random.Random, digits: str) -> str:
    """One digit replaced by a neighbour on the keypad or the number row; a leading digit never becomes 0."""
    i = rng.randrange(len(digits))
    choices = DIGIT_NEIGHBOURS[digits[i]]
    if i == 0 and len(digits) > 1:
        choices = choices.replace("0", "") or "1"
    return digits[:i] + rng.choice(choices) + digits[i + 1 :]


def transpose_digits(rng: random.Random, digits: str) -> str | None:
    """Two adjacent, different digits swapped."""
    spots = [i for i in range(len(digits) - 1) if digits[i] != digits[i + 1] and not (i == 0 and digits[1] == "0")]
    if not spots:
        return None
    i = rng.choice(spots)
    return digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :]
