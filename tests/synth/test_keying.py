"""The character-level errors of the keyed model do what their names say."""

from __future__ import annotations

import random

import pytest

from taxmatch.synth import keying

WORDS = ("Holloway", "Thompson", "Nguyen", "Rodriguez", "MARGARET", "Stephen", "Mississippi", "Lakeview")


def _damerau_one(a: str, b: str) -> bool:
    """b is a with one substitution, insertion, deletion or adjacent transposition."""
    if a == b:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]])
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return len(long) == len(short) + 1 and any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def test_qwerty_neighbours_are_the_touching_keys() -> None:
    assert set(keying.QWERTY_NEIGHBOURS["a"]) == set("qwsz")
    assert set(keying.QWERTY_NEIGHBOURS["g"]) == set("tyfhvb")
    assert set(keying.QWERTY_NEIGHBOURS["l"]) == set("kop")
    for key, neighbours in keying.QWERTY_NEIGHBOURS.items():
        assert all(key in keying.QWERTY_NEIGHBOURS[other] for other in neighbours), key


@pytest.mark.parametrize("word", WORDS)
def test_a_keyboard_slip_is_one_edit_and_keeps_the_case(word: str) -> None:
    rng = random.Random(word)
    for _ in range(200):
        slipped = keying.keyboard(rng, word)
        assert slipped is not None and _damerau_one(word, slipped), slipped
        assert slipped.isupper() == word.isupper()


def test_a_substitution_strikes_an_adjacent_key() -> None:
    rng = random.Random(1)
    for _ in range(300):
        slipped = keying.keyboard(rng, "Holloway")
        assert slipped is not None
        if len(slipped) == len("Holloway"):
            diff = [(a, b) for a, b in zip("holloway", slipped.lower(), strict=True) if a != b]
            if len(diff) == 1:
                old, new = diff[0]
                assert new in keying.QWERTY_NEIGHBOURS[old], slipped


def test_ocr_and_phonetic_and_respelling() -> None:
    rng = random.Random(2)
    assert keying.ocr_letters(rng, "Barnes") == "Bames"
    assert keying.ocr_digit(rng, "BOB") in ("B0B", "8OB", "BO8")
    assert keying.ocr_digit(rng, "Kym") is None
    assert {keying.phonetic(random.Random(seed), "Phelps") for seed in range(40)} >= {"Felps"}
    assert {keying.phonetic(random.Random(seed), "Russell") for seed in range(40)} >= {"Russel"}
    assert {keying.phonetic(random.Random(seed), "Kelly") for seed in range(40)} >= {"Kellie", "Kely"}
    assert keying.phonetic(rng, "Xu") is None
    assert keying.respelling(rng, "Steven") == "Stephen"
    assert keying.respelling(rng, "Garcia Thompson") == "Garcia Thomson"
    assert keying.respelling(rng, "Zyx") is None


def test_split_or_merge_moves_only_spaces_hyphens_and_apostrophes() -> None:
    seen = set()
    for seed in range(60):
        for word in ("De La Cruz", "McCarthy", "Min-jun", "Holloway", "OBrien"):
            out = keying.split_or_merge(random.Random(seed), word)
            assert out is not None and out != word
            assert out.replace(" ", "").replace("-", "").replace("'", "") == word.replace(" ", "").replace("-", "")
            seen.add(out)
    assert {"DeLa Cruz", "Mc Carthy", "Minjun", "O'Brien"} <= seen


def test_digit_slips() -> None:
    rng = random.Random(3)
    for _ in range(200):
        slipped = keying.digit_slip(rng, "90210")
        assert len(slipped) == 5 and slipped != "90210" and slipped[0] != "0"
        assert sum(a != b for a, b in zip(slipped, "90210", strict=True)) == 1
    assert keying.transpose_digits(rng, "7") is None
    assert keying.transpose_digits(rng, "12") == "21"
    assert keying.transpose_digits(rng, "10") is None  # "01" is no house number
