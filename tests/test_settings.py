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


# ---- strict parsing (DESIGN.md section 5, "Parsing"; issue 13 finding 3) ----------------------------


def load_toml(tmp_path: Path, text: str) -> Policy:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return Policy.from_toml(path)


def test_bool_of_the_text_false_is_true_which_is_why_text_is_refused() -> None:
    # The old parser ran bool(value): any non-empty text, "false" and "no" included, turned disclosure on.
    assert bool("false") is True and bool("no") is True


@pytest.mark.parametrize(
    ("line", "named", "value_type", "allowed"),
    [
        ('disclose_phone = "false"', "disclose_phone", "is text, not a boolean", "true or false"),
        ('disclose_full_tin = "no"', "disclose_full_tin", "is text, not a boolean", "true or false"),
        ('disclose_full_tin = "true"', "disclose_full_tin", "is text, not a boolean", "true or false"),
        ("disclose_phone = 1", "disclose_phone", "is an integer, not a boolean", "true or false"),
        ("disclose_phone = 0", "disclose_phone", "is an integer, not a boolean", "true or false"),
        ("disclose_phone = []", "disclose_phone", "is a list, not a boolean", "true or false"),
        ("match_threshold = -1", "match_threshold", "is an integer out of range", "a number from 0.5 to 1"),
        ("match_threshold = 1.0001", "match_threshold", "is a number out of range", "a number from 0.5 to 1"),
        ("match_threshold = 0.2", "match_threshold", "is a number out of range", "a number from 0.5 to 1"),
        ('match_threshold = "0.999"', "match_threshold", "is text, not a number", "a number from 0.5 to 1"),
        ("match_threshold = true", "match_threshold", "is a boolean, not a number", "a number from 0.5 to 1"),
        ("match_threshold = nan", "match_threshold", "is not a finite number", "a number from 0.5 to 1"),
        ("candidate_floor = -0.1", "candidate_floor", "is a number out of range", "a number from 0 to 1"),
        ("candidate_floor = 2", "candidate_floor", "is an integer out of range", "a number from 0 to 1"),
        ("removal_period_days = -1", "removal_period_days", "is an integer out of range", "an integer from 0"),
        ("removal_period_days = 90.5", "removal_period_days", "is a number, not an integer", "an integer from 0"),
        ('removal_period_days = "90"', "removal_period_days", "is text, not an integer", "an integer from 0"),
        ("tax_period_years = 0", "tax_period_years", "is an integer out of range", "an integer from 1 to 10"),
        ("tax_period_years = 11", "tax_period_years", "is an integer out of range", "an integer from 1 to 10"),
        ('permitted_statutes = "8 U.S.C. 1326"', "permitted_statutes", "is text, not a list", "US Code citations"),
        ("permitted_statutes = [1326]", "permitted_statutes", "item 1 is an integer, not text", "US Code"),
        ('removal_period_statutes = ["8 USC"]', "removal_period_statutes", "is not a US Code citation", "US Code"),
        ('name_placeholders = ["UNKNOWN", " "]', "name_placeholders", "item 2 is empty", "non-empty texts"),
        ("name_placeholders = [{ a = 1 }]", "name_placeholders", "item 1 is a table, not text", "non-empty texts"),
        ("match_treshold = 0.5", "match_treshold", "unknown setting", "match_threshold"),
        ("[disclosure]\ndisclose_phone = true", "disclosure", "unknown setting", "disclose_phone"),
    ],
)
def test_bad_value_is_refused_naming_the_setting_its_type_and_what_is_allowed(
    tmp_path: Path, line: str, named: str, value_type: str, allowed: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        load_toml(tmp_path, line + "\n")
    message = str(caught.value)
    assert named in message and value_type in message and allowed in message, message
    assert str(tmp_path / "policy.toml") in message


def test_every_bad_setting_is_named_at_once(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_toml(tmp_path, 'disclose_phone = "false"\ndisclose_full_tin = "no"\nmatch_threshold = -1\n')
    assert all(name in str(caught.value) for name in ("disclose_phone", "disclose_full_tin", "match_threshold"))


def test_disclosure_widens_only_with_the_toml_boolean_true(tmp_path: Path) -> None:
    widening = [setting for setting in POLICY_SETTINGS if setting.widens_disclosure]
    assert {setting.name for setting in widening} == {"disclose_phone", "disclose_full_tin"}
    for setting in widening:
        assert setting.default is False and setting.kind == "boolean"
        assert getattr(load_toml(tmp_path, f"{setting.name} = false\n"), setting.name) is False
        assert getattr(load_toml(tmp_path, f"{setting.name} = true\n"), setting.name) is True
    assert load_toml(tmp_path, "disclose_phone = true\n").extra_disclosed_columns == ("phone",)


def test_accepted_values_keep_their_meaning(tmp_path: Path) -> None:
    policy = load_toml(
        tmp_path,
        "match_threshold = 1\ncandidate_floor = 0\nremoval_period_days = 0\ntax_period_years = 1\n"
        'permitted_statutes = ["8 USC 1326"]\nremoval_period_statutes = []\nname_placeholders = ["nobody"]\n',
    )
    assert policy.match_threshold == 1.0 and isinstance(policy.match_threshold, float)
    assert (policy.candidate_floor, policy.removal_period_days, policy.tax_period_years) == (0.0, 0, 1)
    assert policy.permitted_statutes == ("8 USC 1326",) and policy.removal_period_statutes == ()
    assert policy.name_placeholders == frozenset({"NOBODY"})


def test_every_setting_declares_its_type_and_range_and_its_default_obeys_them() -> None:
    for setting in POLICY_SETTINGS:
        assert setting.parse(setting.default) == setting.default, setting.name
        if setting.kind in ("integer", "number"):
            assert setting.minimum is not None and setting.maximum is not None, setting.name
        assert setting.allowed in settings_markdown(), setting.name


def test_a_workspace_with_a_bad_policy_refuses_to_start(tmp_path: Path) -> None:
    workspace = Workspace.resolve(tmp_path / "home")
    workspace.ensure()
    workspace.policy_path.write_text('disclose_phone = "false"\n', encoding="utf-8")
    with pytest.raises(PolicyError, match="disclose_phone"):
        workspace.load_policy()
