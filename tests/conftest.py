"""Suite-wide safety: no test may write a key into the real ~/.config."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_config_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # Session scope, so module-scoped workspaces created before any function fixture are covered too.
    config_home = tmp_path_factory.mktemp("config-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(config_home))
        patch.delenv("TAXMATCH_HOME", raising=False)
        patch.delenv("TAXMATCH_KEY_FILE", raising=False)
        patch.delenv("TAXMATCH_DB_KEY", raising=False)
        yield config_home
