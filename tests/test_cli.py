"""`python -m qa` as a user runs it: real processes, real model, temporary folders; the build's report on the
files it read in this process, with the fake embedder (what is reported does not depend on the vectors)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import pdfs
from conftest import ROOT, write_tiny_corpus


def build_here(capsys, monkeypatch, fake_embedder, *args: str) -> tuple[int, str, str]:
    """`python -m qa build ARGS` through cli.main in this process, embedding with the fake embedder."""
    from qa import cli
    monkeypatch.setattr("qa.models.embedding.Embedder", lambda *_, **__: fake_embedder)
    code = cli.main(["build", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def run(*args: str, stdin: str | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "qa", *args], input=stdin, capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=timeout)


def test_ask_builds_a_missing_index_then_answers(tmp_path, real_settings):
    index = tmp_path / "index"
    done = run("ask", "does naloxone reverse ketamine", "--corpus", str(real_settings.corpus_dir),
               "--index", str(index))
    assert done.returncode == 0, done.stderr
    assert "No index" in done.stderr and "building it now" in done.stderr
    lines = done.stdout.splitlines()
    assert "does not reverse the effects of Ketamine" in lines[0]
    assert "naloxone-and-ketamine.txt" in lines[1]
    assert "[1] Unveiling the Mystery" in done.stdout

    answered = run("ask", "does naloxone reverse ketamine", "--json", "--corpus", str(real_settings.corpus_dir),
                   "--index", str(index))
    assert "building" not in answered.stderr
    row = json.loads(answered.stdout)
    assert row["found"] is True and row["answer_source"]["source"] == "naloxone-and-ketamine.txt"
    assert set(row["passages"][0]) >= {"source", "title", "section", "text", "score"}

    batch = "\n".join([
        json.dumps({"question": "does naloxone reverse ketamine"}),
        "this is not json",
        json.dumps({"question": "why not?", "history": ["does naloxone reverse ketamine"]}),
        json.dumps({"question": ""}),
        json.dumps({"question": "what is the capital of France", "history": []}),
    ]) + "\n"
    out = run("ask", "--jsonl", "--corpus", str(real_settings.corpus_dir), "--index", str(index), stdin=batch)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 5
    assert rows[0]["found"] and rows[0]["question"] == "does naloxone reverse ketamine"
    assert rows[1] == {"line": 2, "error": rows[1]["error"]} and "not valid JSON" in rows[1]["error"]
    assert rows[2]["found"] and rows[2]["answer_source"]["source"] == "naloxone-and-ketamine.txt"
    assert rows[3]["error"] == "Please type a question."
    assert rows[4]["found"] is False and rows[4]["answer"] == "I couldn't find that in the articles."


def test_bad_questions_get_a_message_not_a_traceback(tmp_path):
    for question in ["", "x" * 100_000]:
        done = run("ask", question, "--index", str(tmp_path / "index"))
        assert done.returncode == 2
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith("error: ")
    assert not (tmp_path / "index").exists(), "a refused question loads and builds nothing"


def test_build_skips_bad_files_and_reports(tmp_path, capsys, monkeypatch, fake_embedder):
    corpus = write_tiny_corpus(tmp_path / "corpus")
    (corpus / "latin1.txt").write_bytes("Caf\xe9 Article\n\nCaf\xe9 is coffee.\n".encode("latin-1"))
    (corpus / "blob.txt").write_bytes(bytes(range(256)) * 10)
    (corpus / "empty.md").write_bytes(b"")
    code, out, err = build_here(capsys, monkeypatch, fake_embedder, "--corpus", str(corpus), "--index",
                                str(tmp_path / "index"))
    assert code == 0, err
    assert "skipped latin1.txt: not UTF-8 text" in err
    assert "skipped blob.txt: binary file" in err
    assert "skipped empty.md: no article text" in err
    assert "files: 3  sections: 5  chunks: 3" in out  # each article's short sections share a passage
    assert "seconds:" in out

    again = build_here(capsys, monkeypatch, fake_embedder, "--corpus", str(corpus), "--index", str(tmp_path / "index"))
    assert "embedded: 0 " in again[1]


@pytest.mark.slow  # a real build in a child process
def test_foreign_index_gives_the_fix(tmp_path):
    corpus = write_tiny_corpus(tmp_path / "corpus")
    assert run("build", "--corpus", str(corpus), "--index", str(tmp_path / "index")).returncode == 0
    live = (tmp_path / "index" / "CURRENT").read_text().strip()
    manifest_path = tmp_path / "index" / live / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["model"]["name"] = "some/other-model"
    manifest_path.write_text(json.dumps(manifest))
    done = run("ask", "what is ketamine", "--corpus", str(corpus), "--index", str(tmp_path / "index"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "built with model 'some/other-model'" in done.stderr and "python -m qa build" in done.stderr


def test_build_reports_each_file_and_as_json(tmp_path, capsys, monkeypatch, fake_embedder):
    corpus = write_tiny_corpus(tmp_path / "corpus")
    page = "medicalnewstoday.com.318674.html"
    (corpus / page).write_bytes((ROOT / "tests" / "fixtures" / "web" / page).read_bytes())
    pdfs.article_pdf(corpus / "bystanders.pdf")
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 8)
    (corpus / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    args = ["--corpus", str(corpus), "--index", str(tmp_path / "index"), "--tune-epochs", "0"]
    code, out, err = build_here(capsys, monkeypatch, fake_embedder, "--json", *args)
    assert code == 0, err
    assert "warning: skipped broken.pdf: not a readable PDF" in err
    report = json.loads(out)
    files = {row["source"]: row for row in report["files"]}
    assert list(files) == sorted(files) and len(files) == 7
    assert files[page] == {"source": page, "type": "html", "title": "How does the brain turn unconscious "
                           "information into conscious thought?", "sections": 4, "passages": files[page]["passages"]}
    assert files[page]["passages"] >= 8
    assert files["bystanders.pdf"]["type"] == "pdf" and files["bystanders.pdf"]["sections"] == 2
    assert files["alpha.txt"] == {"source": "alpha.txt", "type": "text", "title": "Alpha Article About Naloxone",
                                  "sections": 2, "passages": 1}  # two one-line sections: one passage
    assert files["gamma.md"]["type"] == "markdown"
    assert files["broken.pdf"]["skipped"].startswith("not a readable PDF")
    assert files["photo.jpg"] == {"source": "photo.jpg", "type": "other", "skipped": files["photo.jpg"]["skipped"]}
    assert report["articles"] == 5 and report["passages"] == sum(r.get("passages", 0) for r in files.values())

    code, out, err = build_here(capsys, monkeypatch, fake_embedder, *args)  # the human report, from an up-to-date index
    assert code == 0, err
    assert (f'{page}  [html]  "How does the brain turn unconscious information into conscious thought?"  '
            f'sections: 4  passages: {files[page]["passages"]}') in out
    assert "broken.pdf  [pdf]  skipped: not a readable PDF" in out
    assert "embedded: 0 " in out
