"""Workspace layout, the disclosure policy (a TOML file) and the table of settings.

`POLICY_SETTINGS` is the single source of truth for every policy value: it writes the
default `policy.toml`, it is rendered into docs/settings.md, and a test fails if a
setting is missing from the docs.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

DEFAULT_HOME_DIRNAME = "taxmatch-home"
HOME_ENVIRONMENT_VARIABLE = "TAXMATCH_HOME"


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    description: str


POLICY_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "permitted_statutes",
        ["8 U.S.C. 1253(a)(1)", "8 U.S.C. 1325", "8 U.S.C. 1326"],
        "Criminal statutes a request may cite, in canonical form `TITLE U.S.C. SECTION(sub)`.",
    ),
    Setting(
        "removal_period_statutes",
        ["8 U.S.C. 1253(a)(1)"],
        "Statutes for which the final removal order must be at least `removal_period_days` old.",
    ),
    Setting("removal_period_days", 90, "Days a removal order must precede the as-of date for removal-period statutes."),
    Setting("tax_period_years", 10, "How many of the most recent completed tax years a request may ask for."),
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
    ),
    Setting(
        "match_threshold",
        0.999,
        "Lowest probability, shared among all candidates found, at which a request is disclosed.",
    ),
    Setting("candidate_floor", 0.5, "Candidates below this probability count as no candidate at all."),
    Setting("disclose_phone", False, "Disclose the phone number (return information: off by default)."),
    Setting("disclose_full_tin", False, "Disclose the full TIN instead of its last four digits (off by default)."),
)

POLICY_VERSION_PREFIX = "policy-"


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
        return cls.from_mapping({setting.name: setting.default for setting in POLICY_SETTINGS})

    @classmethod
    def from_mapping(cls, values: dict[str, Any], version: str = "policy-default") -> Policy:
        known = {setting.name for setting in POLICY_SETTINGS}
        unknown = sorted(set(values) - known)
        if unknown:
            raise PolicyError(f"unknown policy setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        merged = {setting.name: setting.default for setting in POLICY_SETTINGS} | values
        try:
            return cls(
                permitted_statutes=tuple(str(item) for item in merged["permitted_statutes"]),
                removal_period_statutes=tuple(str(item) for item in merged["removal_period_statutes"]),
                removal_period_days=int(merged["removal_period_days"]),
                tax_period_years=int(merged["tax_period_years"]),
                name_placeholders=frozenset(str(item).upper() for item in merged["name_placeholders"]),
                match_threshold=float(merged["match_threshold"]),
                candidate_floor=float(merged["candidate_floor"]),
                disclose_phone=bool(merged["disclose_phone"]),
                disclose_full_tin=bool(merged["disclose_full_tin"]),
                version=version,
            )
        except (TypeError, ValueError) as error:
            raise PolicyError(f"policy value has the wrong type: {error}") from error

    @classmethod
    def from_toml(cls, path: Path) -> Policy:
        import hashlib

        raw = path.read_bytes()
        try:
            values = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise PolicyError(f"{path}: not valid TOML: {error}") from error
        version = POLICY_VERSION_PREFIX + hashlib.sha256(raw).hexdigest()[:12]
        return cls.from_mapping(values, version=version)


class PolicyError(ValueError):
    pass


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
        lines.append(f"{setting.name} = {_toml_value(setting.default)}")
        lines.append("")
    return "\n".join(lines)


def settings_markdown() -> str:
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for setting in POLICY_SETTINGS:
        default = _toml_value(setting.default).replace("|", "\\|")
        description = setting.description.replace("|", "\\|")
        rows.append(f"| `{setting.name}` | `{default}` | {description} |")
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
        self.home.mkdir(parents=True, exist_ok=True)
        if not self.policy_path.exists():
            self.policy_path.write_text(default_policy_toml(), encoding="utf-8")

    def load_policy(self) -> Policy:
        self.ensure()
        return Policy.from_toml(self.policy_path)
