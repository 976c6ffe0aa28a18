"""Statute citations: one canonical spelling for every common way of writing a US Code section.

Canonical form: `8 U.S.C. 1253(a)(1)` — title, ` U.S.C. `, section, then each subsection
in parentheses, lower case. A request may cite a permitted statute or any subsection of
one (1326(a) lies within 1326), never a broader one (1253 is not within 1253(a)(1)).
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from taxmatch.records import ReasonCode
from taxmatch.settings import Policy

# Each rewrite turns a family of spellings into one token, so three short grammars suffice.
_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\bunited\s+states\s+code(?:\s+annotated|\s+service)?\b"), " USC "),
    (re.compile(r"\bu\s*\.?\s*s\s*\.?\s*code\b"), " USC "),
    (re.compile(r"\bu\s*\.?\s*s\s*\.?\s*c\s*\.?\s*(?:a\b\.?|s\b\.?)?"), " USC "),
    (re.compile(r"§+|\bsections?\b\.?|\bsecs?\b\.?|\bss\b\.?"), " SEC "),
    (re.compile(r"\btitle\b"), " TITLE "),
    (re.compile(r"\bof\b"), " OF "),
    (re.compile(r"[,;:]"), " "),
)
_SECTION = r"(\d+[a-z]?(?:-\d+)?)"
_SUBSECTIONS = r"((?:\([a-z0-9]{1,4}\))*)"
_GRAMMARS: tuple[tuple[re.Pattern[str], int, int, int], ...] = (
    # 8 U.S.C. § 1326(a), Title 8 United States Code Section 1326, 8 USC 1326
    (re.compile(rf"^(?:TITLE )?(\d+) USC (?:SEC )?{_SECTION}{_SUBSECTIONS}$", re.ASCII), 1, 2, 3),
    # U.S.C. Title 8 § 1326
    (re.compile(rf"^USC TITLE (\d+) (?:SEC )?{_SECTION}{_SUBSECTIONS}$", re.ASCII), 1, 2, 3),
    # Title 8, Section 1326
    (re.compile(rf"^TITLE (\d+) SEC {_SECTION}{_SUBSECTIONS}(?: USC)?$", re.ASCII), 1, 2, 3),
    # § 1326 of title 8 (United States Code)
    (re.compile(rf"^(?:SEC )?{_SECTION}{_SUBSECTIONS} OF TITLE (\d+)(?: (?:OF )?(?:THE )?USC)?$", re.ASCII), 3, 1, 2),
)
_SPACES_RE = re.compile(r"\s+")
_SUBSECTION_SPACES_RE = re.compile(r"\s*([()])\s*")
_SECTION_GAP_RE = re.compile(r"(\d[a-z]?) (?=\()")
_SUBSECTION_GAP_RE = re.compile(r"\) (?=\()")


@lru_cache(maxsize=4096)
def parse_statute(text: str) -> str | None:
    """Canonical `TITLE U.S.C. SECTION(sub)...` for a US Code citation, else None. Never raises."""
    if not isinstance(text, str) or len(text) > 200:
        return None
    value = unicodedata.normalize("NFKC", text).lower().replace("\u00a0", " ")
    for pattern, replacement in _REWRITES:
        value = pattern.sub(replacement, value)
    value = _SUBSECTION_SPACES_RE.sub(r"\1", value)
    # "(a)" glued to the section by the line above must not glue "1326" to "OF".
    value = value.replace(")", ") ").replace("(", " (")
    value = _SPACES_RE.sub(" ", value).strip()
    value = _SECTION_GAP_RE.sub(r"\1", value)
    value = _SUBSECTION_GAP_RE.sub(")", value)
    for pattern, title_group, section_group, subsection_group in _GRAMMARS:
        match = pattern.match(value)
        if match:
            title = str(int(match.group(title_group)))
            section = match.group(section_group)
            return f"{title} U.S.C. {section}{match.group(subsection_group)}"
    return None


def is_within(cited: str, permitted: str) -> bool:
    """True if the canonical `cited` is `permitted` itself or one of its subsections."""
    return cited == permitted or cited.startswith(permitted + "(")


@lru_cache(maxsize=64)
def _canonical_list(statutes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(canonical for canonical in (parse_statute(item) for item in statutes) if canonical)


def cites_any(text: str | None, statutes: tuple[str, ...]) -> bool:
    """Whether the citation lies within any of `statutes` (themselves written in any style)."""
    cited = parse_statute(text) if text else None
    return cited is not None and any(is_within(cited, allowed) for allowed in _canonical_list(statutes))


def check_statute(text: str | None, policy: Policy) -> list[ReasonCode]:
    return list(_statute_codes(text, policy.permitted_statutes))


# A batch cites a handful of spellings, so the verdict is cached on the text and the list.
@lru_cache(maxsize=4096)
def _statute_codes(text: str | None, permitted: tuple[str, ...]) -> tuple[ReasonCode, ...]:
    if not text or not text.strip():
        return (ReasonCode.MISSING_STATUTE,)
    return () if cites_any(text, permitted) else (ReasonCode.STATUTE_NOT_PERMITTED,)
