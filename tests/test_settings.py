from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from taxmatch.settings import POLICY_SETTINGS, Policy, PolicyError, Workspace, default_policy_toml, settings_markdown

DOCS = Path(__file__).resolve().parents[1] / "docs" / "settings.md"


def test_every_setting_is_documented() -> None:
    documented = DOCS.read_text(encoding="utf-8")
    for setting in POLICY_SETTINGS:
        assert f"`{setting.name}`" in documented, f"{setting.name} is missing from docs/settings.md"
    assert settings_markdown() in documented, "docs/settings.md is stale: regenerate it from settings_markdown()"


def test_default_toml_round_trips_to_the_default_policy() -> None:
    parsed = Policy.from_mapping(tomllib.loads(default_policy_toml()))
    default = Policy.default()
    assert parsed == default
    assert default.permitted_statutes == ("8 U.S.C. 1253(a)(1)", "8 U.S.C. 1325", "8 U.S.C. 1326")
    assert default.removal_period_days == 90
    assert default.tax_period_years == 10
    assert not default.disclose_phone and not default.disclose_full_tin


def test_workspace_writes_policy_once_and_keeps_edits(tmp_path: Path) -> None:
    workspace = Workspace.resolve(tmp_path / "home")
    workspace.ensure()
    assert workspace.policy_path.read_text(encoding="utf-8") == default_policy_toml()
    workspace.policy_path.write_text("match_threshold = 0.9999\n", encoding="utf-8")
    workspace.ensure()
    policy = workspace.load_policy()
    assert policy.match_threshold == 0.9999
    assert policy.version.startswith("policy-") and policy.version != "policy-default"


def test_unknown_setting_is_named(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="match_treshold"):
        Policy.from_mapping({"match_treshold": 0.5})


def test_home_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAXMATCH_HOME", str(tmp_path / "from-env"))
    assert Workspace.resolve(None).home == (tmp_path / "from-env").resolve()
    assert Workspace.resolve(tmp_path / "flag").home == (tmp_path / "flag").resolve()
    monkeypatch.delenv("TAXMATCH_HOME")
    monkeypatch.chdir(tmp_path)
    assert Workspace.resolve(None).home == (tmp_path / "taxmatch-home").resolve()
