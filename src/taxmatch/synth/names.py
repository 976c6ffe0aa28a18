"""Name pools and the ways a name drifts between a tax return and a request.

The pools are skewed on purpose: a few surnames (Smith, Garcia, Nguyen, Patel) carry a large
share of the population so that namesakes are common, which is what makes matching hard.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass, replace

# Rough per-100k frequencies of the US Census surname table for the head of the list;
# the tail decays so that rare names stay rare.
_ANGLO_SURNAMES_HEAD = (
    ("Smith", 828), ("Johnson", 655), ("Williams", 550), ("Brown", 487), ("Jones", 483), ("Miller", 424),
    ("Davis", 393), ("Wilson", 279), ("Anderson", 278), ("Thomas", 263), ("Taylor", 253), ("Moore", 245),
    ("Jackson", 243), ("Martin", 241), ("Thompson", 229), ("White", 226), ("Harris", 210), ("Clark", 197),
    ("Lewis", 191), ("Robinson", 190), ("Walker", 188), ("Young", 172), ("Allen", 170), ("King", 169),
)  # fmt: skip
_ANGLO_SURNAMES_TAIL = (
    "Wright", "Scott", "Hill", "Green", "Adams", "Baker", "Nelson", "Carter", "Mitchell", "Roberts", "Turner",
    "Phillips", "Campbell", "Parker", "Evans", "Edwards", "Collins", "Stewart", "Morris", "Murphy", "Cook", "Rogers",
    "Morgan", "Peterson", "Cooper", "Reed", "Bailey", "Bell", "Kelly", "Howard", "Ward", "Cox", "Richardson", "Wood",
    "Watson", "Brooks", "Bennett", "Gray", "James", "Hughes", "Price", "Sanders", "Myers", "Long", "Ross", "Foster",
    "Powell", "Jenkins", "Perry", "Russell", "Sullivan", "Butler", "Barnes", "Fisher", "Henderson", "Coleman",
    "Simmons", "Patterson", "Jordan", "Reynolds", "Hamilton", "Graham", "Wallace", "Cole", "West", "Stevens",
    "Tucker", "Porter", "Hunter", "Hicks", "Crawford", "Henry", "Boyd", "Mason", "Kennedy", "Warren", "Dixon",
    "Burns", "Gordon", "Shaw", "Holmes", "Rice", "Robertson", "Hunt", "Black", "Daniels", "Palmer", "Mills",
    "Nichols", "Grant", "Knight", "Ferguson", "Stone", "Hawkins", "Dunn", "Perkins", "Hudson", "Spencer", "Stephens",
    "Pierce", "Lawrence", "Olson", "Hart", "Elliott", "Cunningham", "Armstrong", "Carpenter", "Weaver", "Greene",
    "Lane", "Riley", "Kowalski", "Schmidt", "Muller", "OBrien", "McCarthy", "MacDonald", "Larsen", "Johansson",
    "Novak", "Schneider", "Fitzgerald", "Donnelly", "Whitaker", "Pennington", "Blackwood", "Thornton", "Holloway",
    "Kessler"
)  # fmt: skip
_HISPANIC_SURNAMES_HEAD = (
    ("Garcia", 466), ("Rodriguez", 381), ("Martinez", 354), ("Hernandez", 350), ("Lopez", 305), ("Gonzalez", 282),
    ("Perez", 234), ("Sanchez", 208), ("Ramirez", 197), ("Torres", 165), ("Flores", 159), ("Rivera", 155),
    ("Gomez", 143), ("Diaz", 142), ("Cruz", 120), ("Reyes", 118), ("Morales", 116), ("Gutierrez", 105),
)  # fmt: skip
_HISPANIC_SURNAMES_TAIL = (
    "Ortiz", "Chavez", "Ramos", "Ruiz", "Alvarez", "Mendoza", "Castillo", "Jimenez", "Vasquez", "Moreno", "Romero",
    "Herrera", "Medina", "Aguilar", "Vargas", "Guzman", "Munoz", "Nunez", "Castro", "Fernandez", "Salazar", "Soto",
    "Delgado", "Rios", "Estrada", "Contreras", "Sandoval", "Guerrero", "Figueroa", "Cortez", "Juarez", "Dominguez",
    "Marquez", "Avila", "Suarez", "Pena", "Ibanez", "Leon", "Benitez", "Acosta", "Espinoza", "Cabrera", "Navarro",
    "Campos", "Vega", "Cervantes", "Molina", "Valdez", "Fuentes", "Carrillo", "Orozco", "Zamora", "Quintero",
    "Villanueva", "Trujillo"
)  # fmt: skip
_PARTICLE_SURNAMES = ("De La Cruz", "Del Rio", "De Leon", "De Los Santos", "De La Rosa", "Del Valle", "De La Torre")
_ARABIC_SURNAMES = ("Ali", "Khan", "Hassan", "Hussein", "Rahman", "Abdullah", "Saleh", "Mahmoud", "Ibrahim", "Haddad")
_CHINESE_SURNAMES = ("Zhang", "Wang", "Li", "Chen", "Liu", "Xu", "Huang", "Zhou", "Wu", "Zhao", "Lin", "Yang")
_VIETNAMESE_SURNAMES = ("Nguyen", "Nguyen", "Nguyen", "Tran", "Le", "Pham", "Huynh", "Vu", "Dang", "Bui", "Do")
_KOREAN_SURNAMES = ("Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho")
_SOUTH_ASIAN_SURNAMES = ("Patel", "Patel", "Patel", "Singh", "Kumar", "Shah", "Sharma", "Gupta", "Reddy", "Desai")

_ANGLO_MALE = (
    "James", "Robert", "John", "Michael", "William", "David", "Richard", "Joseph", "Thomas", "Charles",
    "Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Donald", "Steven", "Paul", "Andrew", "Joshua", "Kenneth",
    "Kevin", "Brian", "George", "Timothy", "Ronald", "Edward", "Jason", "Jeffrey", "Ryan", "Jacob", "Gary",
    "Nicholas", "Eric", "Jonathan", "Stephen", "Larry", "Justin", "Scott", "Brandon", "Benjamin", "Samuel",
    "Gregory", "Alexander", "Frank", "Patrick", "Raymond", "Jack", "Dennis", "Jerry", "Tyler", "Aaron", "Henry",
    "Douglas", "Peter", "Adam", "Nathan", "Zachary", "Walter", "Kyle", "Harold", "Carl", "Jeremy", "Gerald", "Keith",
    "Roger", "Arthur", "Terry", "Lawrence", "Sean", "Christian", "Ethan", "Austin", "Joe", "Albert", "Jesse",
    "Willie", "Billy", "Bryan", "Bruce", "Noah", "Jordan", "Dylan", "Ralph", "Roy", "Alan", "Wayne", "Eugene",
    "Juan", "Gabriel", "Louis", "Russell", "Randy"
)  # fmt: skip
_ANGLO_FEMALE = (
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen", "Lisa",
    "Nancy", "Betty", "Margaret", "Sandra", "Ashley", "Kimberly", "Emily", "Donna", "Michelle", "Carol", "Amanda",
    "Dorothy", "Melissa", "Deborah", "Stephanie", "Rebecca", "Sharon", "Laura", "Cynthia", "Kathleen", "Amy",
    "Angela", "Shirley", "Anna", "Brenda", "Pamela", "Emma", "Nicole", "Helen", "Samantha", "Katherine", "Christine",
    "Debra", "Rachel", "Carolyn", "Janet", "Catherine", "Maria", "Heather", "Diane", "Ruth", "Julie", "Olivia",
    "Joyce", "Virginia", "Victoria", "Kelly", "Lauren", "Christina", "Joan", "Evelyn", "Judith", "Megan", "Andrea",
    "Cheryl", "Hannah", "Jacqueline", "Martha", "Gloria", "Teresa", "Ann", "Sara", "Madison", "Frances", "Kathryn",
    "Janice", "Jean", "Abigail", "Alice", "Judy", "Sophia", "Grace", "Denise", "Amber", "Doris", "Marilyn",
    "Danielle"
)  # fmt: skip
_HISPANIC_MALE = (
    "Jose", "Juan", "Luis", "Carlos", "Jesus", "Francisco", "Miguel", "Antonio", "Jorge", "Pedro", "Manuel",
    "Alejandro", "Ricardo", "Fernando", "Roberto", "Javier", "Eduardo", "Sergio", "Guillermo", "Rafael", "Raul",
    "Ramon", "Hector", "Enrique", "Alberto", "Arturo", "Oscar", "Ruben", "Andres", "Angel", "Ignacio", "Gerardo",
    "Alfredo", "Armando", "Salvador", "Martin", "Julio", "Cesar", "Rodrigo", "Ernesto"
)  # fmt: skip
_HISPANIC_FEMALE = (
    "Maria", "Guadalupe", "Ana", "Rosa", "Carmen", "Juana", "Veronica", "Patricia", "Leticia", "Elizabeth",
    "Gabriela", "Alejandra", "Adriana", "Silvia", "Laura", "Claudia", "Martha", "Margarita", "Isabel", "Teresa",
    "Yolanda", "Sofia", "Lucia", "Monica", "Araceli", "Dolores", "Rosario", "Mercedes", "Concepcion", "Ines",
    "Blanca", "Esperanza", "Beatriz", "Norma", "Sandra"
)  # fmt: skip
_HISPANIC_COMPOUND_MALE = ("Juan Carlos", "Jose Luis", "Jose Antonio", "Luis Miguel", "Juan Pablo", "Miguel Angel")
_HISPANIC_COMPOUND_FEMALE = (
    "Maria del Carmen", "Maria Guadalupe", "Maria Elena", "Ana Maria", "Maria de los Angeles", "Maria Isabel",
)  # fmt: skip
_ARABIC_MALE = ("Mohammed", "Ahmed", "Hussein", "Yusuf", "Abdullah", "Omar", "Mustafa", "Khaled", "Hasan", "Ibrahim")
_ARABIC_FEMALE = ("Fatima", "Aisha", "Mariam", "Layla", "Noor", "Zainab", "Huda", "Salma")
_CHINESE_MALE = ("Wei", "Jun", "Hao", "Lei", "Ming", "Jian", "Tao", "Yong")
_CHINESE_FEMALE = ("Jing", "Mei", "Li Na", "Xiaoling", "Yan", "Hui", "Ying", "Fang")
_VIETNAMESE_MALE = ("Minh", "Tuan", "Thanh", "Hung", "Duc", "Quang", "Long", "Phuc")
_VIETNAMESE_FEMALE = ("Linh", "Huong", "Thao", "Lan", "Ngoc", "Trang", "Mai", "Anh")
_KOREAN_MALE = ("Min-jun", "Ji-hoon", "Sung", "Dong-hyun", "Jae")
_KOREAN_FEMALE = ("Ji-yeon", "Soo-jin", "Eun-ji", "Min-ji", "Hye")
_SOUTH_ASIAN_MALE = ("Raj", "Amit", "Rajesh", "Sanjay", "Vikram", "Arjun", "Rahul")
_SOUTH_ASIAN_FEMALE = ("Priya", "Sunita", "Anjali", "Pooja", "Neha", "Kavita", "Deepa")

# Requests are typed by people who know the person by the short form.
NICKNAMES: dict[str, tuple[str, ...]] = {
    "Robert": ("Bob", "Bobby", "Rob"), "William": ("Bill", "Billy", "Will"), "Richard": ("Rick", "Dick"),
    "James": ("Jim", "Jimmy"), "John": ("Jack", "Johnny"), "Michael": ("Mike",), "Thomas": ("Tom", "Tommy"),
    "Charles": ("Chuck", "Charlie"), "Joseph": ("Joe",), "Christopher": ("Chris",), "Daniel": ("Dan", "Danny"),
    "Matthew": ("Matt",), "Anthony": ("Tony",), "Steven": ("Steve",), "Andrew": ("Andy", "Drew"),
    "Kenneth": ("Ken", "Kenny"), "Edward": ("Ed", "Eddie", "Ted"), "Timothy": ("Tim",), "Ronald": ("Ron",),
    "Gregory": ("Greg",), "Alexander": ("Alex",), "Lawrence": ("Larry",), "Raymond": ("Ray",), "Peter": ("Pete",),
    "Elizabeth": ("Liz", "Beth", "Betty"), "Margaret": ("Peggy", "Maggie"), "Katherine": ("Kate", "Kathy"),
    "Jennifer": ("Jenny", "Jen"), "Patricia": ("Pat", "Patty"), "Susan": ("Sue",), "Deborah": ("Debbie",),
    "Rebecca": ("Becky",), "Kimberly": ("Kim",), "Pamela": ("Pam",), "Cynthia": ("Cindy",), "Victoria": ("Vicky",),
    "Christina": ("Tina",), "Abigail": ("Abby",), "Samantha": ("Sam",), "Jose": ("Pepe",),
    "Francisco": ("Paco", "Pancho"), "Guadalupe": ("Lupe",), "Jesus": ("Chuy",), "Guillermo": ("Memo",),
    "Ignacio": ("Nacho",), "Enrique": ("Kike",), "Alejandro": ("Alex",), "Roberto": ("Beto",),
    "Alberto": ("Beto",), "Eduardo": ("Lalo",), "Gerardo": ("Jerry",), "Rosario": ("Chayo",),
    "Concepcion": ("Concha",), "Dolores": ("Lola",), "Mercedes": ("Meche",),
}  # fmt: skip

# Each group lists spellings of one name; returns and requests pick spellings independently.
_TRANSLIT_GROUPS: tuple[tuple[str, ...], ...] = (
    ("Mohammed", "Muhammad", "Mohamed", "Mohammad", "Muhammed"), ("Ahmed", "Ahmad"),
    ("Hussein", "Husain", "Hussain", "Husayn"), ("Yusuf", "Youssef", "Yousef"), ("Abdullah", "Abdallah"),
    ("Omar", "Umar"), ("Mustafa", "Mostafa"), ("Khaled", "Khalid"), ("Hasan", "Hassan"), ("Aisha", "Ayesha"),
    ("Fatima", "Fatimah"), ("Mahmoud", "Mahmud", "Mahmood"), ("Rahman", "Rehman"), ("Saleh", "Salih"),
    ("Zhang", "Chang"), ("Xu", "Hsu"), ("Zhou", "Chou"), ("Li", "Lee"), ("Chen", "Chan"), ("Wang", "Wong"),
    ("Liu", "Lau"), ("Huang", "Hwang"), ("Wu", "Woo"), ("Zhao", "Chao"), ("Nguyen", "Nguyễn"), ("Tran", "Trần"),
    ("Pham", "Phạm"), ("Huynh", "Huỳnh"), ("Dang", "Đặng"), ("Park", "Pak"), ("Choi", "Choe"), ("Jung", "Chung"),
)  # fmt: skip
TRANSLITERATIONS: dict[str, tuple[str, ...]] = {
    name: tuple(other for other in group if other != name) for group in _TRANSLIT_GROUPS for name in group
}

ACCENTED: dict[str, str] = {
    "Jose": "José", "Maria": "María", "Jesus": "Jesús", "Ramon": "Ramón", "Andres": "Andrés", "Hector": "Héctor",
    "Raul": "Raúl", "Oscar": "Óscar", "Ruben": "Rubén", "Angel": "Ángel", "Martin": "Martín", "Sofia": "Sofía",
    "Lucia": "Lucía", "Veronica": "Verónica", "Monica": "Mónica", "Ines": "Inés", "Concepcion": "Concepción",
    "Garcia": "García", "Nunez": "Núñez", "Munoz": "Muñoz", "Ramirez": "Ramírez", "Hernandez": "Hernández",
    "Martinez": "Martínez",
    "Gonzalez": "González", "Perez": "Pérez", "Sanchez": "Sánchez", "Gomez": "Gómez", "Diaz": "Díaz",
    "Gutierrez": "Gutiérrez", "Alvarez": "Álvarez", "Jimenez": "Jiménez", "Vasquez": "Vásquez", "Lopez": "López",
    "Rodriguez": "Rodríguez", "Fernandez": "Fernández", "Ibanez": "Ibáñez", "Pena": "Peña", "Chavez": "Chávez",
    "Rios": "Ríos", "Leon": "León", "Avila": "Ávila", "Suarez": "Suárez", "Marquez": "Márquez",
    "Dominguez": "Domínguez", "Benitez": "Benítez", "Juarez": "Juárez",
}  # fmt: skip
UNACCENTED: dict[str, str] = {accented: plain for plain, accented in ACCENTED.items()}

ORIGINS = ("anglo", "hispanic", "arabic", "chinese", "vietnamese", "korean", "south_asian")
_ORIGIN_CUM_WEIGHTS = tuple(itertools.accumulate((58, 26, 4, 4, 3, 2, 3)))

# Surnames common enough that a new tenant at the same address plausibly shares one.
COMMON_SURNAMES = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Rodriguez", "Nguyen", "Lee", "Patel")


@dataclass(frozen=True, slots=True)
class Pool:
    values: tuple[str, ...]
    cum_weights: tuple[float, ...]

    @classmethod
    def zipf(cls, values: tuple[str, ...] | list[str], head: tuple[tuple[str, int], ...] = ()) -> Pool:
        """Head names keep their census weight; the rest decay like a Zipf tail below the head."""
        floor = min((weight for _, weight in head), default=100)
        names = [name for name, _ in head] + list(values)
        weights = [float(weight) for _, weight in head]
        weights += [floor * 0.9 / (1 + rank * 0.08) for rank in range(len(values))]
        return cls(tuple(names), tuple(itertools.accumulate(weights)))

    def pick(self, rng: random.Random) -> str:
        return rng.choices(self.values, cum_weights=self.cum_weights)[0]


_SURNAMES: dict[str, Pool] = {
    "anglo": Pool.zipf(_ANGLO_SURNAMES_TAIL, _ANGLO_SURNAMES_HEAD),
    "hispanic": Pool.zipf(_HISPANIC_SURNAMES_TAIL, _HISPANIC_SURNAMES_HEAD),
    "arabic": Pool.zipf(_ARABIC_SURNAMES),
    "chinese": Pool.zipf(_CHINESE_SURNAMES),
    "vietnamese": Pool.zipf(_VIETNAMESE_SURNAMES),
    "korean": Pool.zipf(_KOREAN_SURNAMES),
    "south_asian": Pool.zipf(_SOUTH_ASIAN_SURNAMES),
}
_GIVEN: dict[tuple[str, str], Pool] = {
    ("anglo", "M"): Pool.zipf(_ANGLO_MALE),
    ("anglo", "F"): Pool.zipf(_ANGLO_FEMALE),
    ("hispanic", "M"): Pool.zipf(_HISPANIC_MALE),
    ("hispanic", "F"): Pool.zipf(_HISPANIC_FEMALE),
    ("arabic", "M"): Pool.zipf(_ARABIC_MALE),
    ("arabic", "F"): Pool.zipf(_ARABIC_FEMALE),
    ("chinese", "M"): Pool.zipf(_CHINESE_MALE),
    ("chinese", "F"): Pool.zipf(_CHINESE_FEMALE),
    ("vietnamese", "M"): Pool.zipf(_VIETNAMESE_MALE),
    ("vietnamese", "F"): Pool.zipf(_VIETNAMESE_FEMALE),
    ("korean", "M"): Pool.zipf(_KOREAN_MALE),
    ("korean", "F"): Pool.zipf(_KOREAN_FEMALE),
    ("south_asian", "M"): Pool.zipf(_SOUTH_ASIAN_MALE),
    ("south_asian", "F"): Pool.zipf(_SOUTH_ASIAN_FEMALE),
}
_NICKNAMED_MALE = tuple(name for name in NICKNAMES if name in _ANGLO_MALE or name in _HISPANIC_MALE)
_NICKNAMED_FEMALE = tuple(name for name in NICKNAMES if name in _ANGLO_FEMALE or name in _HISPANIC_FEMALE)
_TRANSLIT_MALE = ("Mohammed", "Muhammad", "Ahmed", "Hussein", "Yusuf", "Omar", "Khaled", "Hasan", "Mustafa")
_TRANSLIT_SURNAMES = ("Hussein", "Hassan", "Rahman", "Mahmoud", "Zhang", "Xu", "Chen", "Wang", "Nguyen", "Huynh")
_ACCENTABLE_FIRST_M = tuple(n for n in _HISPANIC_MALE if n in ACCENTED)
_ACCENTABLE_SURNAMES = tuple(
    name for name in (*(n for n, _ in _HISPANIC_SURNAMES_HEAD), *_HISPANIC_SURNAMES_TAIL) if name in ACCENTED
)


@dataclass(frozen=True, slots=True)
class PersonName:
    """A name as the person is known. `paternal`/`maternal` are kept apart for double surnames."""

    first: str
    middle: str
    paternal: str
    maternal: str
    suffix: str
    origin: str
    sex: str

    @property
    def last(self) -> str:
        return f"{self.paternal} {self.maternal}" if self.maternal else self.paternal


# Features a request category can demand of its target's name.
FEATURES = ("nickname", "double_surname", "transliteration", "compound", "accent", "common_surname")


def pick_origin(rng: random.Random) -> str:
    return rng.choices(ORIGINS, cum_weights=_ORIGIN_CUM_WEIGHTS)[0]


def pick_surname(rng: random.Random, origin: str) -> str:
    if origin == "hispanic" and rng.random() < 0.05:
        return rng.choice(_PARTICLE_SURNAMES)
    return _SURNAMES[origin].pick(rng)


def pick_given(rng: random.Random, origin: str, sex: str) -> str:
    if origin == "hispanic" and rng.random() < 0.12:
        return rng.choice(_HISPANIC_COMPOUND_MALE if sex == "M" else _HISPANIC_COMPOUND_FEMALE)
    return _GIVEN[(origin, sex)].pick(rng)


def _middle(rng: random.Random, origin: str, sex: str) -> str:
    roll = rng.random()
    if origin in ("anglo", "south_asian") and roll < 0.55:
        middle = _GIVEN[("anglo", sex)].pick(rng)
        return middle[0] if roll < 0.2 else middle
    if origin == "hispanic" and roll < 0.2:
        return _GIVEN[("hispanic", sex)].pick(rng)
    return ""


def make_name(rng: random.Random, sex: str, feature: str = "", origin: str = "") -> PersonName:
    """A fresh name; `feature` forces the property a request category will vary."""
    if feature in ("double_surname", "compound", "accent"):
        origin = "hispanic"
    elif feature == "nickname":
        origin = origin or ("anglo" if rng.random() < 0.7 else "hispanic")
    elif feature == "transliteration":
        origin = "arabic" if sex == "M" and rng.random() < 0.6 else rng.choice(("chinese", "vietnamese", "arabic"))
    origin = origin or pick_origin(rng)
    first = pick_given(rng, origin, sex)
    paternal = pick_surname(rng, origin)
    maternal = ""
    if origin == "hispanic" and (feature == "double_surname" or rng.random() < 0.3):
        maternal = pick_surname(rng, origin)
        while maternal == paternal:
            maternal = pick_surname(rng, origin)
    if feature == "nickname":
        first = rng.choice(_NICKNAMED_MALE if sex == "M" else _NICKNAMED_FEMALE)
    elif feature == "transliteration":
        if origin == "arabic" and sex == "M":
            first = rng.choice(_TRANSLIT_MALE)
        else:
            paternal = rng.choice(tuple(s for s in _TRANSLIT_SURNAMES if s in _origin_surnames(origin)) or ("Hassan",))
    elif feature == "compound":
        first = rng.choice(_HISPANIC_COMPOUND_MALE if sex == "M" else _HISPANIC_COMPOUND_FEMALE)
    elif feature == "accent":
        if sex == "M" and rng.random() < 0.5:
            first = rng.choice(_ACCENTABLE_FIRST_M)
        else:
            paternal = rng.choice(_ACCENTABLE_SURNAMES)
    elif feature == "common_surname":
        paternal = rng.choice(COMMON_SURNAMES)
        maternal = ""
    return PersonName(first, _middle(rng, origin, sex), paternal, maternal, "", origin, sex)


def _origin_surnames(origin: str) -> tuple[str, ...]:
    return _SURNAMES[origin].values


def child_name(rng: random.Random, father: PersonName, mother: PersonName | None, sex: str) -> PersonName:
    """Hispanic children carry both parents' paternal surnames; others the father's."""
    base = make_name(rng, sex, origin=father.origin)
    maternal = mother.paternal if father.origin == "hispanic" and mother and mother.origin == "hispanic" else ""
    return replace(base, paternal=father.paternal, maternal=maternal if maternal != father.paternal else "")


_WORD = re.compile(r"[^\W\d_]+")


def accent(text: str) -> str:
    # Word by word, so that hyphenated double surnames ("Perez-Garcia") are covered too.
    return _WORD.sub(lambda match: ACCENTED.get(match.group(0), match.group(0)), text)


def strip_accents(text: str) -> str:
    return _WORD.sub(lambda match: UNACCENTED.get(match.group(0), match.group(0)), text)


_KEYBOARD_NEIGHBOURS = {
    "a": "sqz", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh", "h": "gj", "i": "uo", "j": "hk",
    "k": "jl", "l": "k", "m": "n", "n": "bm", "o": "ip", "p": "o", "q": "w", "r": "et", "s": "ad", "t": "ry",
    "u": "yi", "v": "cb", "w": "qe", "x": "zc", "y": "tu", "z": "x",
}  # fmt: skip


def typo(rng: random.Random, text: str) -> str:
    """One keying error past the first letter: a neighbouring key, a swap, a drop or a double."""
    letters = [i for i in range(1, len(text)) if text[i].isalpha() and text[i].lower() in _KEYBOARD_NEIGHBOURS]
    if len(letters) < 2:
        return text + text[-1]
    for _ in range(8):
        i = rng.choice(letters)
        op = rng.randrange(4)
        if op == 0:
            new = rng.choice(_KEYBOARD_NEIGHBOURS[text[i].lower()])
            new = new.upper() if text[i].isupper() else new
            out = text[:i] + new + text[i + 1 :]
        elif op == 1 and i + 1 < len(text) and text[i + 1].isalpha():
            out = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
        elif op == 2 and len(text) > 4:
            out = text[:i] + text[i + 1 :]
        else:
            out = text[: i + 1] + text[i] + text[i + 1 :]
        if out != text:
            return out
    return text + text[-1]
