"""One settings object; typos and nonsense values fail loudly."""

import pytest

from qa.errors import SettingsError
from qa.settings import Settings


def test_unknown_setting_is_an_error_naming_it():
    with pytest.raises(SettingsError, match="unknown setting.*chunk_size"):
        Settings.from_dict({"chunk_size": 500})
    with pytest.raises(SettingsError, match="top_kk"):
        Settings().replace(top_kk=3)


@pytest.mark.parametrize("name, value", [("top_k", 0), ("chunk_chars", 50), ("history_turns", -1), ("bm25_k1", -1),
                                         ("bm25_b", 1.5)])
def test_out_of_range_values_are_refused(name, value):
    with pytest.raises(SettingsError, match=name):
        Settings.from_dict({name: value})


def test_environment_then_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("QA_INDEX_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("QA_MODEL", "some/model")
    settings = Settings.from_env(model="other/model")
    assert settings.index_dir == tmp_path / "from-env" and settings.model == "other/model"


def test_feedback_database_and_switch_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("QA_FEEDBACK_DB", str(tmp_path / "votes.sqlite3"))
    monkeypatch.setenv("QA_FEEDBACK", "off")
    settings = Settings.from_env()
    assert settings.feedback_db == tmp_path / "votes.sqlite3" and settings.feedback_log is False
    monkeypatch.setenv("QA_FEEDBACK", "on")
    assert Settings.from_env().feedback_log is True
    monkeypatch.setenv("QA_FEEDBACK", "sometimes")
    with pytest.raises(SettingsError, match="QA_FEEDBACK must be on or off"):
        Settings.from_env()
    monkeypatch.delenv("QA_FEEDBACK_DB")
    monkeypatch.delenv("QA_FEEDBACK")
    default = Settings()
    assert default.feedback_db.parent.name == "data" and "index" not in default.feedback_db.parts
    with pytest.raises(SettingsError, match="feedback_comment_chars"):
        Settings(feedback_comment_chars=0)


def test_the_store_is_faiss_unless_chosen(monkeypatch):
    monkeypatch.delenv("QA_STORE", raising=False)
    monkeypatch.delenv("QA_MILVUS_URI", raising=False)
    assert Settings.from_env().store == "faiss"
    monkeypatch.setenv("QA_STORE", "milvus")
    monkeypatch.setenv("QA_MILVUS_URI", "http://milvus:19530")
    chosen = Settings.from_env()
    assert (chosen.store, chosen.milvus_uri) == ("milvus", "http://milvus:19530")
    with pytest.raises(SettingsError, match="store must be faiss or milvus, got 'qdrant'"):
        Settings(store="qdrant")
    with pytest.raises(SettingsError, match="milvus_collection"):
        Settings(milvus_collection="qa-passages")


def test_page_words_from_the_environment_then_overrides(monkeypatch):
    monkeypatch.setenv("QA_PAGE_TITLE", "Ask the fentanyl articles")
    monkeypatch.setenv("QA_PAGE_EXAMPLES", "what is fentanyl | how fast does naloxone work |")
    settings = Settings.from_env(page_intro="Quotes from our leaflets.")
    assert settings.page_title == "Ask the fentanyl articles" and settings.page_intro == "Quotes from our leaflets."
    assert settings.page_examples == ("what is fentanyl", "how fast does naloxone work")
    assert Settings().page_title is None and Settings().page_examples == ()
    with pytest.raises(SettingsError, match="page_title"):
        Settings(page_title="   ")
    with pytest.raises(SettingsError, match="page_examples"):
        Settings(page_examples=("fine", ""))


def test_engine_workers_come_from_the_environment_and_default_to_the_cores(monkeypatch):
    import os

    from qa.serving.service import workers
    monkeypatch.setenv("QA_ENGINE_WORKERS", "3")
    assert Settings.from_env().engine_workers == 3 and workers(Settings.from_env()) == 3
    monkeypatch.setenv("QA_ENGINE_WORKERS", "three")
    with pytest.raises(SettingsError, match="QA_ENGINE_WORKERS must be a whole number"):
        Settings.from_env()
    monkeypatch.delenv("QA_ENGINE_WORKERS")
    assert Settings().engine_workers == 0 and workers(Settings()) == len(os.sched_getaffinity(0))
    with pytest.raises(SettingsError, match="engine_workers"):
        Settings(engine_workers=-1)
