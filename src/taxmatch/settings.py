"""Workspace layout, the disclosure policy (a TOML file) and the table of settings.

`POLICY_SETTINGS` is the single source of truth for every policy value: its type, its
allowed range and its default. It writes the default `policy.toml`, it parses a
`policy.toml` strictly (DESIGN.md section 5, "Parsing"), it is rendered into
docs/settings.md, and a test fails if a setting is missing from the docs.
"""

from __future__ import annotations

import datetime
import math
import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

DEFAULT_HOME_DIRNAME = "taxmatch-home"
HOME_ENVIRONMENT_VARIABLE = "TAXMATCH_HOME"

SettingKind = Literal["boolean", "integer", "number", "texts", "statutes"]


class PolicyError(ValueError):
    pass


def describe_value(value: Any) -> str:
    """What a parsed TOML value is, in the words a policy author reads (never Python's)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (datetime.date, datetime.time)):
        return "a date or time"
    return type(value).__name__


def _shown(value: Any) -> str:
    try:
        text = _toml_value(value)
    except TypeError:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Setting:
    """One policy value: its name, default, meaning, and what is allowed.

    ``kind`` and the bounds are the whole parsing rule: a value of another TOML type is
    refused, never converted (``bool("false")`` is True; ``"false"`` is text). A setting
    that ``widens_disclosure`` turns on only with the TOML boolean ``true``.
    """

    name: str
    default: Any
    description: str
    kind: SettingKind
    minimum: float | None = None
    maximum: float | None = None
    widens_disclosure: bool = False

    @property
    def allowed(self) -> str:
        """What the setting accepts, in words (docs and error messages)."""
        if self.kind == "boolean":
            return "true or false (a TOML boolean, without quotes)"
        if self.kind == "texts":
            return 'a list of non-empty texts, e.g. ["A", "B"]'
        if self.kind == "statutes":
            return 'a list of US Code citations, e.g. ["8 U.S.C. 1326"]'
        noun = "an integer" if self.kind == "integer" else "a number"
        return f"{noun} from {_bound(self.minimum)} to {_bound(self.maximum)}"

    def parse(self, value: Any) -> Any:
        """The value as the policy holds it, or PolicyError naming the setting and what is allowed."""
        if self.kind == "boolean":
            if isinstance(value, bool):
                return value
            return self._refuse(value, f"is {describe_value(value)}, not a boolean")
        if self.kind in ("integer", "number"):
            return self._parse_number(value)
        if not isinstance(value, list):
            return self._refuse(value, f"is {describe_value(value)}, not a list")
        items: list[str] = []
        for position, item in enumerate(value, start=1):
            if not isinstance(item, str):
                return self._refuse(value, f"item {position} is {describe_value(item)}, not text")
            if not item.strip():
                return self._refuse(value, f"item {position} is empty")
            if self.kind == "statutes" and _parse_statute(item) is None:
                # An unreadable citation would silently drop out of the list: for the
                # removal-period list that would waive the removal period.
                return self._refuse(value, f"item {position} ({_shown(item)}) is not a US Code citation")
            items.append(item)
        return items

    def _parse_number(self, value: Any) -> Any:
        integer_only = self.kind == "integer"
        wrong_type = isinstance(value, bool) or not isinstance(value, (int, float))
        if wrong_type or (integer_only and isinstance(value, float)):
            wanted = "an integer" if integer_only else "a number"
            return self._refuse(value, f"is {describe_value(value)}, not {wanted}")
        if isinstance(value, float) and not math.isfinite(value):
            return self._refuse(value, "is not a finite number")
        if (self.minimum is not None and value < self.minimum) or (self.maximum is not None and value > self.maximum):
            return self._refuse(value, f"is {describe_value(value)} out of range")
        return int(value) if integer_only else float(value)

    def _refuse(self, value: Any, problem: str) -> Any:
        raise PolicyError(f"{self.name} = {_shown(value)} {problem}; allowed: {self.allowed}")


def _bound(value: float | None) -> str:
    if value is None:
        return "any"
    return str(int(value)) if float(value).is_integer() else repr(value)


def _parse_statute(text: str) -> str | None:
    # Imported here: validate.statutes imports this module for `Policy`.
    from taxmatch.validate.statutes import parse_statute

    return parse_statute(text)


POLICY_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "permitted_statutes",
        ["8 U.S.C. 1253(a)(1)", "8 U.S.C. 1325", "8 U.S.C. 1326"],
        "Criminal statutes a request may cite, in canonical form `TITLE U.S.C. SECTION(sub)`.",
        "statutes",
    ),
    Setting(
        "removal_period_statutes",
        ["8 U.S.C. 1253(a)(1)"],
        "Statutes for which the final removal order must be at least `removal_period_days` old.",
        "statutes",
    ),
    Setting(
        "removal_period_days",
        90,
        "Days a removal order must precede the as-of date for removal-period statutes.",
        "integer",
        minimum=0,
        maximum=3650,
    ),
    Setting(
        "tax_period_years",
        10,
        "How many of the most recent completed tax years a request may ask for.",
        "integer",
        minimum=1,
        maximum=10,
    ),
    Setting(
        "name_placeholders",
        [
            "UNKNOWN",
            "UNK",
            "NONE",
            "N/A",
            "NULL",
            "TEST",
            "XXX",
            "FNU",
            "LNU",
            "NFN",
            "NLN",
            "JOHN DOE",
            "JANE DOE",
            "JOHN/JANE DOE",
            "DONT CARE",
            "DON'T CARE",
            "ANY",
            "NOBODY",
            "NO NAME",
            "NONAME",
            "BLANK",
            "TBD",
            "REDACTED",
        ],
        "Values that are not names; a first or last name equal to one (case-insensitive) is INVALID_NAME.",
        "texts",
    ),
    Setting(
        "match_threshold",
        0.999,
        "Lowest probability, shared among all candidates found, at which a request is disclosed "
        "(below one half a disclosure would more likely be wrong than right).",
        "number",
        minimum=0.5,
        maximum=1.0,
    ),
    Setting(
        "candidate_floor",
        0.5,
        "Candidates below this probability count as no candidate at all.",
        "number",
        minimum=0.0,
        maximum=1.0,
    ),
    Setting(
        "disclose_phone",
        False,
        "Disclose the phone number (return information: off by default).",
        "boolean",
        widens_disclosure=True,
    ),
    Setting(
        "disclose_full_tin",
        False,
        "Disclose the full TIN instead of its last four digits (off by default).",
        "boolean",
        widens_disclosure=True,
    ),
)
SETTINGS_BY_NAME: dict[str, Setting] = {setting.name: setting for setting in POLICY_SETTINGS}

POLICY_VERSION_PREFIX = "policy-"


def parse_policy_values(values: dict[str, Any]) -> dict[str, Any]:
    """Every setting's value: the given ones checked against the table, the rest defaults.

    Refuses unknown names, values of another type and values out of range, all of them
    at once, each naming the setting, the value's type and what is allowed.
    """
    problems: list[str] = []
    unknown = sorted(set(values) - set(SETTINGS_BY_NAME))
    if unknown:
        problems.append(
            f"unknown setting(s) {', '.join(unknown)}; the settings are {', '.join(sorted(SETTINGS_BY_NAME))}"
        )
    parsed: dict[str, Any] = {}
    for setting in POLICY_SETTINGS:
        if setting.name not in values:
            parsed[setting.name] = setting.default
            continue
        try:
            parsed[setting.name] = setting.parse(values[setting.name])
        except PolicyError as error:
            problems.append(str(error))
    if problems:
        raise PolicyError("; ".join(problems))
    return parsed


@dataclass(frozen=True)
class Policy:
    permitted_statutes: tuple[str, ...]
    removal_period_statutes: tuple[str, ...]
    removal_period_days: int
    tax_period_years: int
    name_placeholders: frozenset[str]
    match_threshold: float
    candidate_floor: float
    disclose_phone: bool
    disclose_full_tin: bool
    version: str = "policy-default"

    @property
    def extra_disclosed_columns(self) -> tuple[str, ...]:
        """Columns released beyond taxpayer identity, only where the policy says so, in this order."""
        return tuple(
            column for column, allowed in (("tin", self.disclose_full_tin), ("phone", self.disclose_phone)) if allowed
        )

    @classmethod
    def default(cls) -> Policy:
        return cls.from_mapping({})

    @classmethod
    def from_mapping(cls, values: dict[str, Any], version: str = "policy-default") -> Policy:
        """The policy of ``values`` (parsed TOML), strictly: see `parse_policy_values`."""
        merged = parse_policy_values(values)
        return cls(
            permitted_statutes=tuple(merged["permitted_statutes"]),
            removal_period_statutes=tuple(merged["removal_period_statutes"]),
            removal_period_days=merged["removal_period_days"],
            tax_period_years=merged["tax_period_years"],
            name_placeholders=frozenset(item.upper() for item in merged["name_placeholders"]),
            match_threshold=merged["match_threshold"],
            candidate_floor=merged["candidate_floor"],
            disclose_phone=merged["disclose_phone"],
            disclose_full_tin=merged["disclose_full_tin"],
            version=version,
        )

    @classmethod
    def from_toml(cls, path: Path) -> Policy:
        import hashlib

        try:
            raw = path.read_bytes()
        except OSError as error:
            raise PolicyError(f"{path}: cannot read the policy: {error.strerror}") from error
        try:
            values = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise PolicyError(f"{path}: not valid TOML: {error}") from error
        version = POLICY_VERSION_PREFIX + hashlib.sha256(raw).hexdigest()[:12]
        try:
            return cls.from_mapping(values, version=version)
        except PolicyError as error:
            raise PolicyError(f"{path}: {error} (see docs/settings.md)") from error


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def default_policy_toml() -> str:
    lines = ["# taxmatch disclosure policy. Every value can be changed; see docs/settings.md.", ""]
    for setting in POLICY_SETTINGS:
        lines.append(f"# {setting.description}")
        lines.append(f"# Allowed: {setting.allowed}.")
        lines.append(f"{setting.name} = {_toml_value(setting.default)}")
        lines.append("")
    return "\n".join(lines)


def settings_markdown() -> str:
    rows = ["| setting | default | allowed | meaning |", "|---|---|---|---|"]
    for setting in POLICY_SETTINGS:
        default = _toml_value(setting.default).replace("|", "\\|")
        allowed = setting.allowed.replace("|", "\\|")
        description = setting.description.replace("|", "\\|")
        if setting.widens_disclosure:
            description += " **Widens disclosure**: on only with the boolean `true`."
        rows.append(f"| `{setting.name}` | `{default}` | {allowed} | {description} |")
    return "\n".join(rows) + "\n"


assert {f.name for f in fields(Policy)} - {"version"} == {s.name for s in POLICY_SETTINGS}


@dataclass(frozen=True)
class Workspace:
    """A directory holding the database, the policy and the batch outputs."""

    home: Path

    @classmethod
    def resolve(cls, home: str | Path | None) -> Workspace:
        chosen = home or os.environ.get(HOME_ENVIRONMENT_VARIABLE) or DEFAULT_HOME_DIRNAME
        return cls(Path(chosen).expanduser().resolve())

    @property
    def database_path(self) -> Path:
        return self.home / "taxmatch.duckdb"

    @property
    def policy_path(self) -> Path:
        return self.home / "policy.toml"

    @property
    def batches_dir(self) -> Path:
        return self.home / "batches"

    def ensure(self) -> None:
        """Create the workspace on first use; never overwrite an edited policy."""
        # Owner only: the workspace holds the outcome files (personal data) and the database.
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.batches_dir.mkdir(exist_ok=True, mode=0o700)
        if not self.policy_path.exists():
            self.policy_path.write_text(default_policy_toml(), encoding="utf-8")

    def load_policy(self) -> Policy:
        self.ensure()
        return Policy.from_toml(self.policy_path)
