"""Each hard case of issue 3, end to end through the real engine (DuckDB + the fitted Splink model).

A synthetic population gives the model a realistic background (its u estimates and term
frequencies come from the master itself); handcrafted households are appended to it, one per
hard case, and each test sends a valid request through `decide_requests` exactly as a batch would.
"""

from __future__ import annotations

import csv
import datetime
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pytest

from taxmatch.engine.duckdb_engine import DuckDBEngine
from taxmatch.io.master import MasterRowProblem
from taxmatch.match.decide import choose_taxpayer, generation_facts_wanted
from taxmatch.pipeline import decide_requests
from taxmatch.records import Decision, Outcome, ReasonCode, RequestRecord
from taxmatch.settings import Policy
from taxmatch.synth import generate

pytestmark = pytest.mark.slow

AS_OF = datetime.date(2026, 11, 25)
POLICY = Policy.default()
RECENT = range(2019, 2026)  # returns filed for tax years 2019..2025
NOT_FOUND = {ReasonCode.NO_CANDIDATE, ReasonCode.BELOW_THRESHOLD}

MASTER_HEADER = [
    "tin",
    "tax_year",
    "role",
    "first_name",
    "middle_name",
    "last_name",
    "suffix",
    "dob",
    "street",
    "unit",
    "city",
    "state",
    "zip",
    "phone",
]


@dataclass(frozen=True)
class Place:
    street: str
    city: str
    state: str
    zip: str
    unit: str = ""


SPRINGFIELD_MAPLE = Place("1412 Maple Ave", "Springfield", "IL", "62701")
SPRINGFIELD_LINDEN = Place("88 Linden St", "Springfield", "IL", "62702")
SPRINGFIELD_CEDAR = Place("45 Cedar Ave", "Springfield", "IL", "62704")
SF_FOLSOM = Place("2719 Folsom St", "San Francisco", "CA", "94110")
SF_VALENCIA = Place("1180 Valencia St", "San Francisco", "CA", "94110", unit="APT 2B")
NY_MADISON = Place("225 Madison Ave", "New York", "NY", "10016")
NY_W24 = Place("341 W 24th St", "New York", "NY", "10011")
NY_EIGHTH = Place("410 8th Ave", "New York", "NY", "10001")
HOUSTON_OAK = Place("2301 Oak Dr", "Houston", "TX", "77002")
CHICAGO_PINE = Place("517 Pine Ct", "Chicago", "IL", "60614")
DENVER_ASPEN = Place("7703 Aspen Way", "Denver", "CO", "80202")
AUSTIN_PECAN = Place("1609 Pecan Ln", "Austin", "TX", "78701")
PHOENIX_SAGUARO = Place("4420 Saguaro Dr", "Phoenix", "AZ", "85004")
SEATTLE_ALDER = Place("905 Alder St", "Seattle", "WA", "98104")
BOSTON_BEACON = Place("62 Beacon St", "Boston", "MA", "02108")
CHICAGO_LAKE_SHORE = Place("3050 N Lake Shore Dr", "Chicago", "IL", "60657")
DENVER_LARIMER = Place("1520 Larimer St", "Denver", "CO", "80202")
BOSTON_REVERE = Place("12 Revere St", "Boston", "MA", "02114")
SEATTLE_HILL = Place("77 Hill Rd", "Seattle", "WA", "98104")
DENVER_FIR = Place("930 Fir Ave", "Denver", "CO", "80202")
PORTLAND_BIRCH = Place("318 Birch St", "Portland", "OR", "97205")
TUCSON_MESQUITE = Place("2250 Mesquite Rd", "Tucson", "AZ", "85705")
OMAHA_ELM = Place("1104 Elm St", "Omaha", "NE", "68102")
ALBANY_STATE = Place("57 State St", "Albany", "NY", "12207")
FRESNO_OLIVE = Place("820 Olive Ave", "Fresno", "CA", "93728")
PEORIA_ADAMS = Place("611 Adams St", "Peoria", "IL", "61602")
ROCKFORD_STATE = Place("1930 State St", "Rockford", "IL", "61102")
EL_PASO_MESA = Place("4020 Mesa St", "El Paso", "TX", "79902")
LUBBOCK_AVE_Q = Place("2215 Avenue Q", "Lubbock", "TX", "79411")
SACRAMENTO_J = Place("1717 J St", "Sacramento", "CA", "95811")


@dataclass(frozen=True)
class Taxpayer:
    tin: str
    first: str
    last: str
    dob: str
    middle: str = ""
    suffix: str = ""


# TINs far apart (no two within one keyed digit of each other), away from the synthetic ones.
SR = Taxpayer("904617283", "Harold", "Whitfield", "1955-03-14", middle="Eugene", suffix="SR")
JR = Taxpayer("906283514", "Harold", "Whitfield", "1984-07-22", middle="Eugene", suffix="JR")
FATHER_NO_SUFFIX = Taxpayer("908172635", "Clarence", "Pemberton", "1951-10-03", middle="Otis")
SON_JR = Taxpayer("903928471", "Clarence", "Pemberton", "1979-02-19", middle="Otis", suffix="JR")
HUSBAND = Taxpayer("905736192", "Victor", "Alcantara", "1970-05-08", middle="Manuel")
WIFE_DOB = "1972-12-01"  # Lucia Alcantara: never on any return
# Husbands whose non-filing wives' names differ from theirs by one ending (Gabriela, Roberta).
GABRIEL = Taxpayer("905119274", "Gabriel", "Moreau", "1969-04-04")
ROBERT_HUSBAND = Taxpayer("906226837", "Robert", "Lindqvist", "1964-02-02")
MARIA_HOUSTON = Taxpayer("907364825", "Maria", "Garcia", "1981-06-17")
MARIA_CHICAGO = Taxpayer("902845173", "Maria", "Garcia", "1976-09-25")
TWO_SURNAMES = Taxpayer("909152736", "Carmen", "Garcia Lopez", "1988-04-02")
ROBERT = Taxpayer("901573928", "Robert", "Kowalczyk", "1966-08-30", middle="Allen")
JOSE_LUIS = Taxpayer("904091736", "José", "Hernández", "1973-01-27", middle="Luis")
JOSE_ACCENT = Taxpayer("906647281", "José", "Ramírez", "1990-11-09")
MOHAMMED = Taxpayer("908834519", "Mohammed", "Rahman", "1985-03-21")
MOVER = Taxpayer("903361847", "Keisha", "Thornton", "1992-05-15", middle="Danielle")
MADISON = Taxpayer("905528364", "Eleanor", "Vasquez", "1960-12-04")
FLAT_2B = Taxpayer("907719253", "Wei", "Zhang", "1978-07-07")
TWIN_JORDAN = Taxpayer("902264918", "Jordan", "Okafor", "2001-06-30")
TWIN_TAYLOR = Taxpayer("909487362", "Taylor", "Okafor", "2001-06-30")
TWIN_DANIEL = Taxpayer("907331748", "Daniel", "Abernathy", "1999-09-09")
TWIN_DANIELLE = Taxpayer("908449659", "Danielle", "Abernathy", "1999-09-09")
NEW_TENANT = Taxpayer("909551560", "Marcus", "Thornton", "1987-01-01")
PRIYA = Taxpayer("901928374", "Priya", "Venkataraman", "1979-04-11")
PAST_FILER = Taxpayer("904756192", "Gustavo", "Ferreira", "1968-02-28")
SHORT_SURNAME = Taxpayer("901384756", "Wendell", "Doyle", "1958-06-19")
ROSA = Taxpayer("903517284", "Rosa", "Quintanilla", "1983-10-02")
GERARDO = Taxpayer("905862917", "Gerardo", "Villanueva", "1971-03-30")
# Twins whose names are one letter apart (Mark files, Mary never does), and a husband whose
# non-filing wife's name differs from his by its first letter (Gary, Mary).
TWIN_MARK = Taxpayer("907952614", "Mark", "Ellsworth", "1994-02-11")
GARY = Taxpayer("902619385", "Gary", "Lindgren", "1962-07-23")
# Namesakes with a Jr in another city of the state: one is a stranger (another middle name, three
# years apart), the other the best taxpayer's son (his whole name, 28 years younger).
BRENNAN = Taxpayer("903275146", "Walter", "Brennan", "1990-05-14", middle="James")
BRENNAN_JR_STRANGER = Taxpayer("905416278", "Walter", "Brennan", "1993-08-02", middle="Lee", suffix="JR")
KETTERING = Taxpayer("907138452", "Ambrose", "Kettering", "1950-11-20", middle="Dale")
# A husband whose non-filing wife's compound given name shares his first syllable.
JI_HOON = Taxpayer("908315729", "Ji-hoon", "Choi", "1988-03-03")
KETTERING_JR_SON = Taxpayer("902593716", "Ambrose", "Kettering", "1978-04-09", middle="Dale", suffix="JR")

HANDCRAFTED = (
    SR, JR, FATHER_NO_SUFFIX, SON_JR, HUSBAND, GABRIEL, ROBERT_HUSBAND, MARIA_HOUSTON, MARIA_CHICAGO,
    TWO_SURNAMES, ROBERT, JOSE_LUIS, JOSE_ACCENT, MOHAMMED, MOVER, NEW_TENANT, MADISON, FLAT_2B,
    TWIN_JORDAN, TWIN_TAYLOR, TWIN_DANIEL, TWIN_DANIELLE, PRIYA, PAST_FILER, SHORT_SURNAME, ROSA, GERARDO,
    TWIN_MARK, GARY, BRENNAN, BRENNAN_JR_STRANGER, KETTERING, KETTERING_JR_SON, JI_HOON,
)  # fmt: skip


def returns(person: Taxpayer, place: Place, years: Sequence[int], role: str = "primary") -> list[list[str]]:
    return [
        [
            person.tin, str(year), role, person.first, person.middle, person.last, person.suffix, person.dob,
            place.street, place.unit, place.city, place.state, place.zip, "",
        ]
        for year in years
    ]  # fmt: skip


def handcrafted_rows() -> list[list[str]]:
    rows: list[list[str]] = []
    # Sr/Jr at one address, both with their suffix on every return.
    rows += returns(SR, SPRINGFIELD_MAPLE, RECENT)
    rows += returns(JR, SPRINGFIELD_MAPLE, RECENT)
    # Sr/Jr where the father's returns carry no suffix at all.
    rows += returns(FATHER_NO_SUFFIX, SPRINGFIELD_LINDEN, RECENT)
    rows += returns(SON_JR, SPRINGFIELD_LINDEN, RECENT)
    # A husband who files alone; his wife is never on any return.
    rows += returns(HUSBAND, SF_FOLSOM, RECENT)
    rows += returns(GABRIEL, BOSTON_REVERE, RECENT)
    rows += returns(ROBERT_HUSBAND, SEATTLE_HILL, RECENT)
    # Two Maria Garcias in two cities; the Houston one once lived on Cedar Ave, Springfield, but
    # never filed from there.
    rows += returns(MARIA_HOUSTON, HOUSTON_OAK, RECENT)
    rows += returns(MARIA_CHICAGO, CHICAGO_PINE, RECENT)
    rows += returns(TWO_SURNAMES, NY_W24, RECENT)
    rows += returns(ROBERT, DENVER_ASPEN, RECENT)
    rows += returns(JOSE_LUIS, AUSTIN_PECAN, RECENT)
    rows += returns(JOSE_ACCENT, PHOENIX_SAGUARO, RECENT)
    rows += returns(MOHAMMED, SEATTLE_ALDER, RECENT)
    # Moved from Boston to New York (8th Ave) in 2023; a new tenant of the same surname took the flat.
    rows += returns(MOVER, BOSTON_BEACON, range(2019, 2023))
    rows += returns(MOVER, NY_EIGHTH, range(2023, 2026))
    rows += returns(NEW_TENANT, BOSTON_BEACON, range(2023, 2026))
    rows += returns(MADISON, NY_MADISON, RECENT)
    rows += returns(FLAT_2B, SF_VALENCIA, RECENT)
    # Two pairs of twins, each filing from their parents' address.
    rows += returns(TWIN_JORDAN, SPRINGFIELD_CEDAR, range(2020, 2026))
    rows += returns(TWIN_TAYLOR, SPRINGFIELD_CEDAR, range(2020, 2026))
    rows += returns(TWIN_DANIEL, DENVER_FIR, RECENT)
    rows += returns(TWIN_DANIELLE, DENVER_FIR, RECENT)
    rows += returns(PRIYA, CHICAGO_LAKE_SHORE, RECENT)
    # Filed only long ago.
    rows += returns(PAST_FILER, DENVER_LARIMER, range(2016, 2019))
    rows += returns(SHORT_SURNAME, PORTLAND_BIRCH, RECENT)
    rows += returns(ROSA, TUCSON_MESQUITE, RECENT)
    rows += returns(GERARDO, OMAHA_ELM, RECENT)
    rows += returns(TWIN_MARK, ALBANY_STATE, RECENT)
    rows += returns(GARY, FRESNO_OLIVE, RECENT)
    rows += returns(BRENNAN, PEORIA_ADAMS, RECENT)
    rows += returns(BRENNAN_JR_STRANGER, ROCKFORD_STATE, RECENT)
    rows += returns(KETTERING, EL_PASO_MESA, RECENT)
    rows += returns(KETTERING_JR_SON, LUBBOCK_AVE_Q, RECENT)
    rows += returns(JI_HOON, SACRAMENTO_J, RECENT)
    return rows


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> DuckDBEngine:
    data = tmp_path_factory.mktemp("hard-cases")
    generate(data, people=600, requests=10, seed=3, as_of=AS_OF)
    master = data / "master.csv"
    with master.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        assert next(reader) == MASTER_HEADER
        synthetic_tins = {row[0].replace("-", "") for row in reader}
    assert not synthetic_tins & {person.tin for person in HANDCRAFTED}, "a handcrafted TIN collides"
    with master.open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(handcrafted_rows())
    problems: list[MasterRowProblem] = []
    engine = DuckDBEngine(duckdb.connect())
    engine.load_master([master], problems.append)
    engine.fit_model()
    assert problems == []
    return engine


def request(
    first: str,
    last: str,
    place: Place,
    *,
    middle: str | None = None,
    suffix: str | None = None,
    dob: str | None = None,
    tin: str | None = None,
    unit: str | None = None,
    street: str | None = None,
    tax_years: str = "2021-2025",
) -> RequestRecord:
    return RequestRecord(
        request_id="R1",
        first_name=first,
        middle_name=middle,
        last_name=last,
        suffix=suffix,
        dob=dob,
        tin=tin,
        street=street or place.street,
        unit=unit if unit is not None else (place.unit or None),
        city=place.city,
        state=place.state,
        zip=place.zip,
        a_number="A123456789",
        removal_order_date="2024-01-15",
        statute="8 U.S.C. § 1326",
        tax_years=tax_years,
    )


def decide(engine: DuckDBEngine, record: RequestRecord) -> Decision:
    (decision,) = decide_requests(engine, POLICY, AS_OF, [record])
    return decision


def assert_disclosed(decision: Decision, person: Taxpayer, place: Place, tax_year: int = 2025) -> None:
    assert decision.outcome is Outcome.DISCLOSED, decision
    disclosure = decision.disclosure
    assert disclosure is not None
    assert disclosure.tin_last4 == person.tin[-4:], decision
    assert (disclosure.first_name, disclosure.last_name) == (person.first, person.last)
    assert (disclosure.street, disclosure.zip) == (place.street, place.zip)
    assert disclosure.tax_year == tax_year
    assert disclosure.match_probability >= POLICY.match_threshold


def assert_not_matched(decision: Decision, codes: set[ReasonCode]) -> None:
    assert decision.outcome is Outcome.NOT_MATCHED, decision
    assert decision.disclosure is None
    assert len(decision.reason_codes) == 1 and decision.reason_codes[0] in codes, decision


# ---- Sr/Jr ------------------------------------------------------------------------------------


def test_sr_jr_without_dob_is_ambiguous(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Harold", "Whitfield", SPRINGFIELD_MAPLE, middle="Eugene"))
    assert_not_matched(decision, {ReasonCode.AMBIGUOUS})


def test_sr_jr_with_the_sons_dob_discloses_the_son(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Harold", "Whitfield", SPRINGFIELD_MAPLE, dob=JR.dob))
    assert_disclosed(decision, JR, SPRINGFIELD_MAPLE)
    assert decision.disclosure is not None and decision.disclosure.suffix == "JR"


def test_sr_jr_with_the_fathers_dob_discloses_the_father(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Harold", "Whitfield", SPRINGFIELD_MAPLE, dob=SR.dob))
    assert_disclosed(decision, SR, SPRINGFIELD_MAPLE)
    assert decision.disclosure is not None and decision.disclosure.suffix == "SR"


def test_sr_jr_suffix_settles_when_every_return_carries_one(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Harold", "Whitfield", SPRINGFIELD_MAPLE, suffix="JR"))
    assert_disclosed(decision, JR, SPRINGFIELD_MAPLE)
    decision = decide(engine, request("Harold", "Whitfield", SPRINGFIELD_MAPLE, suffix="Sr."))
    assert_disclosed(decision, SR, SPRINGFIELD_MAPLE)


def test_father_without_suffix_and_jr_son_without_dob_is_ambiguous(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Clarence", "Pemberton", SPRINGFIELD_LINDEN))
    assert_not_matched(decision, {ReasonCode.AMBIGUOUS})


def test_father_without_suffix_and_jr_son_with_the_sons_dob(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Clarence", "Pemberton", SPRINGFIELD_LINDEN, dob=SON_JR.dob))
    assert_disclosed(decision, SON_JR, SPRINGFIELD_LINDEN)


def test_father_without_suffix_and_jr_son_with_the_fathers_dob(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Clarence", "Pemberton", SPRINGFIELD_LINDEN, dob=FATHER_NO_SUFFIX.dob))
    assert_disclosed(decision, FATHER_NO_SUFFIX, SPRINGFIELD_LINDEN)


def test_father_without_suffix_and_jr_son_with_the_sons_tin(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Clarence", "Pemberton", SPRINGFIELD_LINDEN, tin=SON_JR.tin))
    assert_disclosed(decision, SON_JR, SPRINGFIELD_LINDEN)


def test_a_stranger_with_the_same_name_and_a_jr_elsewhere_leaves_it_unambiguous(engine: DuckDBEngine) -> None:
    # The Jr is found (same name, same state), and without what his returns say he would count.
    pairs = engine.score([(0, request("Walter", "Brennan", PEORIA_ADAMS))])
    assert BRENNAN_JR_STRANGER.tin in generation_facts_wanted(pairs, POLICY)
    assert choose_taxpayer(pairs, POLICY) is ReasonCode.AMBIGUOUS
    decision = decide(engine, request("Walter", "Brennan", PEORIA_ADAMS))
    assert_disclosed(decision, BRENNAN, PEORIA_ADAMS)


def test_a_jr_elsewhere_who_could_be_the_son_keeps_it_ambiguous(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Ambrose", "Kettering", EL_PASO_MESA))
    assert_not_matched(decision, {ReasonCode.AMBIGUOUS})
    decision = decide(engine, request("Ambrose", "Kettering", EL_PASO_MESA, dob=KETTERING.dob))
    assert_disclosed(decision, KETTERING, EL_PASO_MESA)


# ---- household members and namesakes ----------------------------------------------------------


def test_non_filing_spouse_is_never_matched_to_the_filer(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Lucia", "Alcantara", SF_FOLSOM, dob=WIFE_DOB))
    assert_not_matched(decision, NOT_FOUND)


def test_non_filing_spouse_without_dob_is_never_matched_to_the_filer(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Lucia", "Alcantara", SF_FOLSOM))
    assert_not_matched(decision, NOT_FOUND)


@pytest.mark.parametrize(
    ("wife", "husband", "place"),
    [("Gabriela", GABRIEL, BOSTON_REVERE), ("Roberta", ROBERT_HUSBAND, SEATTLE_HILL)],
    ids=["Gabriela", "Roberta"],
)
def test_non_filing_spouse_with_a_near_identical_name_is_not_matched_to_the_filer(
    engine: DuckDBEngine, wife: str, husband: Taxpayer, place: Place
) -> None:
    decision = decide(engine, request(wife, husband.last, place))
    assert_not_matched(decision, NOT_FOUND | {ReasonCode.AMBIGUOUS})


def test_non_filing_spouse_with_a_near_identical_name_and_her_dob_is_not_matched(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Gabriela", "Moreau", BOSTON_REVERE, dob="1971-08-08"))
    assert_not_matched(decision, NOT_FOUND)


def test_namesake_at_another_address_is_not_matched(engine: DuckDBEngine) -> None:
    # Springfield's Cedar Ave: the Houston Maria Garcia lived there but never filed from there.
    decision = decide(engine, request("Maria", "Garcia", SPRINGFIELD_CEDAR))
    assert_not_matched(decision, NOT_FOUND)


def test_namesake_at_another_address_with_dob_is_not_matched(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Maria", "Garcia", SPRINGFIELD_CEDAR, dob=MARIA_HOUSTON.dob))
    assert_not_matched(decision, NOT_FOUND)


def test_another_flat_in_the_same_building_is_not_matched(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Wei", "Zhang", SF_VALENCIA, unit="APT 3C"))
    assert_not_matched(decision, NOT_FOUND)


def test_same_flat_is_matched(engine: DuckDBEngine) -> None:
    assert_disclosed(decide(engine, request("Wei", "Zhang", SF_VALENCIA, unit="APT 2B")), FLAT_2B, SF_VALENCIA)


def test_twin_with_dob_is_disclosed(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Jordan", "Okafor", SPRINGFIELD_CEDAR, dob=TWIN_JORDAN.dob))
    assert_disclosed(decision, TWIN_JORDAN, SPRINGFIELD_CEDAR)
    decision = decide(engine, request("Taylor", "Okafor", SPRINGFIELD_CEDAR, dob=TWIN_TAYLOR.dob))
    assert_disclosed(decision, TWIN_TAYLOR, SPRINGFIELD_CEDAR)


@pytest.mark.parametrize("twin", [TWIN_DANIEL, TWIN_DANIELLE], ids=["Daniel", "Danielle"])
def test_twin_with_a_similar_name_and_dob_is_disclosed(engine: DuckDBEngine, twin: Taxpayer) -> None:
    decision = decide(engine, request(twin.first, twin.last, DENVER_FIR, dob=twin.dob))
    assert_disclosed(decision, twin, DENVER_FIR)


# ---- name variants ----------------------------------------------------------------------------


@pytest.mark.parametrize("last", ["Garcia", "Lopez"])
def test_one_surname_request_matches_two_surname_return(engine: DuckDBEngine, last: str) -> None:
    decision = decide(engine, request("Carmen", last, NY_W24, dob=TWO_SURNAMES.dob))
    assert_disclosed(decision, TWO_SURNAMES, NY_W24)
    assert decision.disclosure is not None
    assert decision.disclosure.evidence.startswith("name=last_one_surname;address=exact"), decision


def test_english_nickname(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Bob", "Kowalczyk", DENVER_ASPEN, dob=ROBERT.dob))
    assert_disclosed(decision, ROBERT, DENVER_ASPEN)
    assert decision.disclosure is not None and "first_nickname" in decision.disclosure.evidence


def test_spanish_nickname(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Pepe", "Hernandez", AUSTIN_PECAN, dob=JOSE_LUIS.dob))
    assert_disclosed(decision, JOSE_LUIS, AUSTIN_PECAN)
    assert decision.disclosure is not None and "first_nickname" in decision.disclosure.evidence


def test_accent_folding(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Jose", "Ramirez", PHOENIX_SAGUARO, dob=JOSE_ACCENT.dob))
    assert_disclosed(decision, JOSE_ACCENT, PHOENIX_SAGUARO)
    assert decision.disclosure is not None and decision.disclosure.evidence.startswith("name=exact;")


def test_english_nickname_of_a_spanish_name(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Jerry", "Villanueva", OMAHA_ELM, dob=GERARDO.dob))
    assert_disclosed(decision, GERARDO, OMAHA_ELM)
    assert decision.disclosure is not None and "first_nickname" in decision.disclosure.evidence


def test_keying_error_in_a_short_surname_is_matched(engine: DuckDBEngine) -> None:
    # DPYLE/DOYLE: Jaro-Winkler 0.88, below the fuzzy level; one neighbouring key.
    decision = decide(engine, request("Wendell", "Dpyle", PORTLAND_BIRCH, dob=SHORT_SURNAME.dob))
    assert_disclosed(decision, SHORT_SURNAME, PORTLAND_BIRCH)
    assert decision.disclosure is not None and "last_typo" in decision.disclosure.evidence


def test_doubled_final_letter_is_a_typo_not_a_gendered_name(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Rosaa", "Quintanilla", TUCSON_MESQUITE, dob=ROSA.dob))
    assert_disclosed(decision, ROSA, TUCSON_MESQUITE)
    assert decision.disclosure is not None and "first_fuzzy" in decision.disclosure.evidence


def test_non_filing_twin_one_letter_apart_is_not_matched(engine: DuckDBEngine) -> None:
    # Mary and Mark: four letters, one substitution, same date of birth and address. Two people.
    decision = decide(engine, request("Mary", "Ellsworth", ALBANY_STATE, dob=TWIN_MARK.dob))
    assert_not_matched(decision, NOT_FOUND)


@pytest.mark.parametrize("dob", [None, "1964-01-15"], ids=["no-dob", "her-dob"])
def test_non_filing_wife_whose_name_differs_by_its_first_letter_is_not_matched(
    engine: DuckDBEngine, dob: str | None
) -> None:
    decision = decide(engine, request("Mary", "Lindgren", FRESNO_OLIVE, dob=dob))
    assert_not_matched(decision, NOT_FOUND)


@pytest.mark.parametrize("dob", [None, "1990-09-14"], ids=["no-dob", "her-dob"])
def test_non_filing_wife_whose_compound_name_shares_his_first_word_is_not_matched(
    engine: DuckDBEngine, dob: str | None
) -> None:
    decision = decide(engine, request("Ji-yeon", "Choi", SACRAMENTO_J, dob=dob))
    assert_not_matched(decision, NOT_FOUND)


def test_middle_initial_is_evidence(engine: DuckDBEngine) -> None:
    """The same request scores higher with the return's middle initial, lower with another one."""

    def weight(middle: str | None) -> float:
        pairs = engine.score([(0, request("Bob", "Kowalczyk", DENVER_ASPEN, middle=middle))])
        return max(pair.match_weight for pair in pairs if pair.tin == ROBERT.tin)

    agreeing, absent, conflicting = weight("Allen"), weight(None), weight("Zachary")
    assert agreeing - absent > 2
    assert absent - conflicting > 2


def test_transliteration(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Muhammad", "Rahman", SEATTLE_ALDER, dob=MOHAMMED.dob))
    assert_disclosed(decision, MOHAMMED, SEATTLE_ALDER)


# ---- addresses --------------------------------------------------------------------------------


def test_moved_person_is_disclosed_at_the_latest_address_in_the_period(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Keisha", "Thornton", BOSTON_BEACON, dob=MOVER.dob))
    assert_disclosed(decision, MOVER, NY_EIGHTH, tax_year=2025)
    assert decision.disclosure is not None and decision.disclosure.city == "New York"


def test_moved_person_is_not_confused_with_the_new_tenant_of_the_same_surname(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Keisha", "Thornton", BOSTON_BEACON))
    assert_disclosed(decision, MOVER, NY_EIGHTH, tax_year=2025)


def test_moved_person_period_ending_before_the_move(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Keisha", "Thornton", BOSTON_BEACON, dob=MOVER.dob, tax_years="2019-2021"))
    assert_disclosed(decision, MOVER, BOSTON_BEACON, tax_year=2021)


def test_typo_in_street_name_is_matched(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Eleanor", "Vasquez", NY_MADISON, street="225 Madisson Ave"))
    assert_disclosed(decision, MADISON, NY_MADISON)
    assert decision.disclosure is not None and "address=street_typo" in decision.disclosure.evidence


def test_different_house_number_is_not_matched(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Eleanor", "Vasquez", NY_MADISON, street="227 Madison Ave"))
    assert_not_matched(decision, NOT_FOUND)


# ---- date of birth and TIN --------------------------------------------------------------------


def test_exact_dob_and_tin_are_disclosed(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Priya", "Venkataraman", CHICAGO_LAKE_SHORE, dob=PRIYA.dob, tin=PRIYA.tin))
    assert_disclosed(decision, PRIYA, CHICAGO_LAKE_SHORE)
    assert decision.disclosure is not None
    assert decision.disclosure.evidence == "name=exact;address=exact;dob=exact;tin=exact"


def test_conflicting_dob_is_not_matched(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Priya", "Venkataraman", CHICAGO_LAKE_SHORE, dob="1983-09-27"))
    assert_not_matched(decision, NOT_FOUND)


def test_dob_with_day_and_month_swapped_is_disclosed(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Priya", "Venkataraman", CHICAGO_LAKE_SHORE, dob="1979-11-04"))
    assert_disclosed(decision, PRIYA, CHICAGO_LAKE_SHORE)
    assert decision.disclosure is not None and "dob=keying_error" in decision.disclosure.evidence


def test_tin_one_digit_off_is_disclosed(engine: DuckDBEngine) -> None:
    off_by_one = PRIYA.tin[:-1] + str((int(PRIYA.tin[-1]) + 1) % 10)
    decision = decide(engine, request("Priya", "Venkataraman", CHICAGO_LAKE_SHORE, tin=off_by_one))
    assert_disclosed(decision, PRIYA, CHICAGO_LAKE_SHORE)
    assert decision.disclosure is not None and "tin=keying_error" in decision.disclosure.evidence


def test_conflicting_tin_is_not_matched(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Priya", "Venkataraman", CHICAGO_LAKE_SHORE, tin="512739046"))
    assert_not_matched(decision, NOT_FOUND)


# ---- tax period -------------------------------------------------------------------------------


def test_no_return_in_the_requested_period(engine: DuckDBEngine) -> None:
    decision = decide(engine, request("Gustavo", "Ferreira", DENVER_LARIMER))
    assert_not_matched(decision, {ReasonCode.NO_RETURN_IN_PERIOD})
