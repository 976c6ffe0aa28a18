"""USPS Publication 28 tables: street suffixes, directionals and unit designators.

These are data, not logic: the SQL standardizer (`standardize.sql`) renders them into
DuckDB maps so the master file and the requests are folded by one and the same rule.
Only the common forms are listed; anything not here is kept as written.
"""

from __future__ import annotations

# Appendix C1: common street suffixes -> standard abbreviation.
STREET_SUFFIXES: dict[str, str] = {
    "ALLEY": "ALY", "ALY": "ALY", "ANNEX": "ANX", "ARCADE": "ARC", "AVENUE": "AVE", "AV": "AVE", "AVE": "AVE",
    "AVEN": "AVE", "AVNUE": "AVE", "BAYOU": "BYU", "BEACH": "BCH", "BEND": "BND", "BLUFF": "BLF",
    "BOULEVARD": "BLVD", "BOUL": "BLVD", "BLVD": "BLVD", "BRANCH": "BR", "BRIDGE": "BRG", "BROOK": "BRK",
    "BYPASS": "BYP", "CAMP": "CP", "CANYON": "CYN", "CAPE": "CPE", "CAUSEWAY": "CSWY", "CENTER": "CTR",
    "CENTRE": "CTR", "CTR": "CTR", "CIRCLE": "CIR", "CIRC": "CIR", "CIR": "CIR", "CLIFF": "CLF", "CLUB": "CLB",
    "COMMON": "CMN", "CORNER": "COR", "COURSE": "CRSE", "COURT": "CT", "CRT": "CT", "CT": "CT", "COVE": "CV",
    "CREEK": "CRK", "CRESCENT": "CRES", "CROSSING": "XING", "DALE": "DL", "DAM": "DM", "DIVIDE": "DV",
    "DRIVE": "DR", "DRV": "DR", "DR": "DR", "ESTATE": "EST", "ESTATES": "ESTS", "EXPRESSWAY": "EXPY",
    "EXTENSION": "EXT", "FALLS": "FLS", "FERRY": "FRY", "FIELD": "FLD", "FIELDS": "FLDS", "FLAT": "FLT",
    "FORD": "FRD", "FOREST": "FRST", "FORGE": "FRG", "FORK": "FRK", "FORT": "FT", "FREEWAY": "FWY",
    "GARDEN": "GDN", "GARDENS": "GDNS", "GATEWAY": "GTWY", "GLEN": "GLN", "GREEN": "GRN", "GROVE": "GRV",
    "HARBOR": "HBR", "HAVEN": "HVN", "HEIGHTS": "HTS", "HIGHWAY": "HWY", "HWAY": "HWY", "HILL": "HL",
    "HILLS": "HLS", "HOLLOW": "HOLW", "ISLAND": "IS", "JUNCTION": "JCT", "KEY": "KY", "KNOLL": "KNL",
    "LAKE": "LK", "LAKES": "LKS", "LANDING": "LNDG", "LANE": "LN", "LN": "LN", "LIGHT": "LGT", "LOOP": "LOOP",
    "MALL": "MALL", "MANOR": "MNR", "MEADOW": "MDW", "MEADOWS": "MDWS", "MILL": "ML", "MISSION": "MSN",
    "MOUNT": "MT", "MOUNTAIN": "MTN", "MOTORWAY": "MTWY", "ORCHARD": "ORCH", "OVAL": "OVAL", "PARK": "PARK",
    "PARKWAY": "PKWY", "PKY": "PKWY", "PASS": "PASS", "PATH": "PATH", "PIKE": "PIKE", "PINE": "PNE",
    "PINES": "PNES", "PLACE": "PL", "PL": "PL", "PLAIN": "PLN", "PLAINS": "PLNS", "PLAZA": "PLZ", "POINT": "PT",
    "POINTS": "PTS", "PORT": "PRT", "PRAIRIE": "PR", "RANCH": "RNCH", "RAPIDS": "RPDS", "RIDGE": "RDG",
    "RIVER": "RIV", "ROAD": "RD", "RD": "RD", "ROUTE": "RTE", "ROW": "ROW", "RUN": "RUN", "SHORE": "SHR",
    "SHORES": "SHRS", "SPRING": "SPG", "SPRINGS": "SPGS", "SQUARE": "SQ", "SQR": "SQ", "STATION": "STA",
    "STREAM": "STRM", "STREET": "ST", "STR": "ST", "STRT": "ST", "ST": "ST", "SUMMIT": "SMT",
    "TERRACE": "TER", "TERR": "TER", "TRACE": "TRCE", "TRACK": "TRAK", "TRAIL": "TRL", "TRL": "TRL",
    "TUNNEL": "TUNL", "TURNPIKE": "TPKE", "UNION": "UN", "VALLEY": "VLY", "VIADUCT": "VIA", "VIEW": "VW",
    "VILLAGE": "VLG", "VILLE": "VL", "VISTA": "VIS", "WALK": "WALK", "WAY": "WAY", "WELLS": "WLS",
}  # fmt: skip

DIRECTIONALS: dict[str, str] = {
    "NORTH": "N", "SOUTH": "S", "EAST": "E", "WEST": "W",
    "NORTHEAST": "NE", "NORTHWEST": "NW", "SOUTHEAST": "SE", "SOUTHWEST": "SW",
    "N": "N", "S": "S", "E": "E", "W": "W", "NE": "NE", "NW": "NW", "SE": "SE", "SW": "SW",
}  # fmt: skip

# Appendix C2: secondary unit designators. The designator itself carries no identity
# (APT 4B, UNIT 4B and #4B are the same door), so the standard form keeps only the id.
UNIT_DESIGNATORS: frozenset[str] = frozenset(
    {"APT", "APARTMENT", "UNIT", "STE", "SUITE", "RM", "ROOM", "FL", "FLOOR", "BLDG", "BUILDING", "LOT",
     "SPC", "SPACE", "TRLR", "TRAILER", "DEPT", "PH", "PENTHOUSE", "#", "NO", "NUM", "NUMBER"}
)  # fmt: skip

STREET_TOKEN_STANDARD: dict[str, str] = {**STREET_SUFFIXES, **DIRECTIONALS}

# Each standard suffix written out in full (ST -> STREET): the long form is what a keyed-in street
# line most often carries, so a line compared without spaces (`HOLLWAYSTREET` for `Hollway St`,
# `BANKSSRTEET` one transposition from it) is compared against the long form. The long form is
# the longest spelling the table maps to the standard one.
SUFFIX_LONG_FORMS: dict[str, str] = {
    standard: max((word for word, mapped in STREET_SUFFIXES.items() if mapped == standard), key=lambda w: (len(w), w))
    for standard in sorted(set(STREET_SUFFIXES.values()))
}
DIRECTION_STANDARDS: frozenset[str] = frozenset(DIRECTIONALS.values())
