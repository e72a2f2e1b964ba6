"""One settings object; typos and nonsense values fail loudly."""

import pytest

from qa.errors import SettingsError
from qa.settings import Settings


def test_unknown_setting_is_an_error_naming_it():
    with pytest.raises(SettingsError, match="unknown setting.*chunk_size"):
        Settings.from_dict({"chunk_size": 500})
    with pytest.raises(SettingsError, match="top_kk"):
        Settings().replace(top_kk=3)


@pytest.mark.parametrize("name, value", [("top_k", 0), ("chunk_chars", 50), ("history_turns", -1)])
def test_out_of_range_values_are_refused(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_dict({name: value})


def test_environment_then_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("QA_MODEL", "some/model")
    settings = Settings.from_env(model="other/model")
    assert settings.index_dir == tmp_path / "from-env" and settings.model == "other/model"
