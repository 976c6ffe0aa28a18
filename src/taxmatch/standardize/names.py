"""Name knowledge: nickname equivalences (English and Spanish), surname particles.

The matcher compares *forms*: every given name maps to the set of names it may stand
for (itself plus its canonical names). Two given names are compatible when their form
sets intersect — Bob {BOB, ROBERT, ...} and Robert {ROBERT} share ROBERT. The sets are
computed here in Python for the distinct names of a table (a few thousand), then joined
in SQL, so millions of rows never pass through Python.
"""

from __future__ import annotations

from functools import lru_cache

from nicknames import NickNamer

# Hypocorisms the `nicknames` package (English) does not know.
SPANISH_NICKNAMES: dict[str, tuple[str, ...]] = {
    "PEPE": ("JOSE",), "PEPA": ("JOSEFA",), "PACO": ("FRANCISCO",), "PANCHO": ("FRANCISCO",),
    "CURRO": ("FRANCISCO",), "LUPE": ("GUADALUPE",), "LUPITA": ("GUADALUPE",), "CHUY": ("JESUS",),
    "CHUCHO": ("JESUS",), "MEMO": ("GUILLERMO",), "LALO": ("EDUARDO",), "LUPILLO": ("GUADALUPE",),
    "NACHO": ("IGNACIO",), "CHEMA": ("JOSE",), "CHEPE": ("JOSE",), "CHELA": ("GRACIELA",),
    "CONCHA": ("CONCEPCION",), "CONCHITA": ("CONCEPCION",), "LOLA": ("DOLORES",), "LOLITA": ("DOLORES",),
    "CHARO": ("ROSARIO",), "MAITE": ("MARIA TERESA",), "TERE": ("TERESA",), "BETO": ("ALBERTO", "ROBERTO"),
    "TITO": ("ALBERTO", "ERNESTO"), "KIKE": ("ENRIQUE",), "QUIQUE": ("ENRIQUE",), "TOÑO": ("ANTONIO",),
    "TONO": ("ANTONIO",), "TOÑA": ("ANTONIA",), "POLO": ("LEOPOLDO", "APOLINAR"), "RAFA": ("RAFAEL",),
    "NANDO": ("FERNANDO",), "FER": ("FERNANDO",), "JAVI": ("JAVIER",), "GUILLE": ("GUILLERMO",),
    "MANOLO": ("MANUEL",), "MANU": ("MANUEL",), "NENA": ("MAGDALENA",), "LENCHO": ("LORENZO",),
    "CHAVA": ("SALVADOR",), "CHAVO": ("SALVADOR",), "GORDO": (), "PILI": ("PILAR",), "RICHI": ("RICARDO",),
    "MARICARMEN": ("MARIA DEL CARMEN",), "MARIBEL": ("MARIA ISABEL",), "MARISOL": ("MARIA SOLEDAD",),
    "ALEX": ("ALEJANDRO", "ALEJANDRA"), "ALE": ("ALEJANDRO", "ALEJANDRA"), "MECHE": ("MERCEDES",),
    "CHAYO": ("ROSARIO",), "CHARITO": ("ROSARIO",), "CHELO": ("CONSUELO",), "LICHA": ("ALICIA",),
    "NENE": (), "PATY": ("PATRICIA",), "PATI": ("PATRICIA",), "VERO": ("VERONICA",), "ROCI": ("ROCIO",),
    "LULU": ("LOURDES", "LUISA"), "TACHO": ("ANASTASIO",), "GOYO": ("GREGORIO",), "PANCHA": ("FRANCISCA",),
    # English hypocorisms in common US use for Spanish names, which the English table lists only for
    # the English name (Jerry: Gerald; Gerardo is Gerard).
    "JERRY": ("GERARDO", "GERARD"), "GERRY": ("GERARDO", "GERARD"),
}  # fmt: skip

SURNAME_PARTICLES: frozenset[str] = frozenset({"DE", "DEL", "LA", "LAS", "LOS", "Y", "DA", "DOS", "VAN", "VON"})
NAME_SUFFIXES: dict[str, str] = {
    "JR": "JR", "JUNIOR": "JR", "SR": "SR", "SENIOR": "SR", "II": "II", "2ND": "II", "III": "III",
    "3RD": "III", "IV": "IV", "4TH": "IV", "V": "V",
}  # fmt: skip


@lru_cache(maxsize=1)
def _nicknamer() -> NickNamer:
    return NickNamer()


@lru_cache(maxsize=200_000)
def given_name_forms(folded_first_name: str) -> tuple[str, ...]:
    """The names a (folded) given name may stand for, itself first, then sorted."""
    if not folded_first_name:
        return ()
    forms = {folded_first_name}
    first_word = folded_first_name.split(" ")[0]
    forms.add(first_word)
    for word in {folded_first_name, first_word}:
        forms.update(name.upper() for name in _nicknamer().canonicals_of(word.lower()))
        forms.update(SPANISH_NICKNAMES.get(word, ()))
    forms.discard("")
    return (folded_first_name, *sorted(forms - {folded_first_name}))


@lru_cache(maxsize=1)
def reference_given_names() -> frozenset[str]:
    """Given names known to exist apart from any master file: every name of the nickname tables.

    Upper-case, as the tables spell them; the engine folds them the way it folds names. Together
    with the master's own given names they decide whether a short name one keying error from
    another is a typo (SMA for SAM) or another name (MARK for MARY): see `match.model`.
    """
    nicknamer = _nicknamer()
    names = {name.upper() for name in (*nicknamer.canonical_lookup, *nicknamer.nickname_lookup)}
    for nickname, canonicals in SPANISH_NICKNAMES.items():
        names.add(nickname)
        names.update(canonicals)
    return frozenset(name for name in names if name)
