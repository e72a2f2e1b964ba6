"""A corpus of one article: each page of the suite's corpora alone, asked its own questions and everyone else's.

    python eval/experiments/one_article_lab.py --work DIR [--pages 8] [--code CHECKOUT]

A maintainer may start with one article. Each page (the first `--pages` of SQuAD's and MedQuAD's suite corpora, and
the three saved web pages) is copied alone into DIR/<corpus>/<page>/corpus and built there (`python -m qa build`,
the model as it ships: no example questions), then asked:
- its own answerable questions (the web pages': webdev's, eval/sets/health-web-dev.jsonl; never the blind set):
  answers right and refused;
- off-topic questions: the corpus's own off-topic ones and up to 20 of the other pages' answerable ones (the web
  pages: the other two pages' questions): refused.
Beside each page alone, the web pages are also asked as the three together. For every question it records the
refusal gate's signal (`Confidence.unnamed`: a name the article lacks) and prints how many reach the gate's bar.

`--code` runs the answering code of another checkout (e.g. a branch's worktree) on the same indexes.
Limits: a few pages per corpus, a few questions each; the indexes are built with main's code in the working
directory (building is the same for the answering changes this compares).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def build(folder: Path, files: dict[str, bytes]) -> None:
    if (folder / "index").exists():
        return
    (folder / "corpus").mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / "corpus" / name).write_bytes(content)
    subprocess.run([sys.executable, "-m", "qa", "build", "--corpus", str(folder / "corpus"), "--index",
                    str(folder / "index")], cwd=ROOT, check=True, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", required=True, help="folder for the one-page corpora and their indexes (kept)")
    parser.add_argument("--pages", type=int, default=8, help="pages of SQuAD and of MedQuAD, each alone")
    parser.add_argument("--code", help="answer with the code of this checkout")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(args.code).resolve() if args.code else ROOT))
    from qa.evaluation.evaluate import _right, load_questions
    from qa.evaluation.suite import WEB_PAGES, load_corpora
    from qa.serving.engine import Engine
    from qa.settings import Settings

    work = Path(args.work)
    gate = None
    cases = []  # (corpus, folder, own questions, off-topic questions)
    for corpus in load_corpora(["squad", "medquad"]):
        files = dict(corpus.files)
        for name in sorted(files)[:args.pages]:
            own = [q for q in corpus.questions if q.answerable and q.source == name]
            off = ([q for q in corpus.questions if not q.answerable and q.source is None]
                   + [q for q in corpus.questions if q.answerable and q.source != name][:20])
            cases.append((corpus.name, work / corpus.name / name.replace(".", "_"), {name: files[name]}, own, off))
    web = [q for q in load_questions(ROOT / "eval" / "sets" / "health-web-dev.jsonl") if q.answerable]
    pages = {p.name: p.read_bytes() for p in sorted(Path(WEB_PAGES).glob("*.html"))}
    for name in pages:
        own = [q for q in web if q.source == name]
        cases.append(("web, alone", work / "web" / name.replace(".", "_"), {name: pages[name]}, own,
                      [q for q in web if q.source != name]))
        cases.append(("web, the three pages", work / "web" / "all", pages, own, []))

    totals: dict[str, dict[str, int]] = {}
    for label, folder, files, own, off in cases:
        build(folder, files)
        engine = Engine.open(Settings.from_env(corpus_dir=folder / "corpus", index_dir=folder / "index"),
                             build="never")
        if gate is None:  # the plain regime's gate as shipped, in the code that answers
            import json

            from qa.models.refusal import DEFAULT_MODEL_FILE
            gate = json.loads(DEFAULT_MODEL_FILE.read_text(encoding="utf-8"))["regimes"]["plain"]["gate"]
        t = totals.setdefault(label, dict(own=0, right=0, refused=0, gated=0, off=0, off_refused=0, off_gated=0))
        for questions, asked_own in ((own, True), (off, False)):
            for q in questions:
                r = engine.ask(q.question, list(q.history))
                gated = r.confidence is not None and r.confidence.unnamed >= gate
                if asked_own:
                    t["own"] += 1
                    t["right"] += bool(r.found and r.answer and _right(q, r.answer))
                    t["refused"] += not r.found
                    t["gated"] += gated
                else:
                    t["off"] += 1
                    t["off_refused"] += not r.found
                    t["off_gated"] += gated
    for label, t in totals.items():
        line = (f"{label}: own {t['own']}: right {t['right'] / t['own']:.3f}, refused {t['refused'] / t['own']:.3f}, "
                f"unnamed at the gate's bar {t['gated'] / t['own']:.3f}")
        if t["off"]:
            line += (f"; off-topic {t['off']}: refused {t['off_refused'] / t['off']:.3f}, "
                     f"unnamed at the bar {t['off_gated'] / t['off']:.3f}")
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
