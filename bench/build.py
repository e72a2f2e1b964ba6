"""Index build throughput against the model's raw encode of the same texts; peak memory; no-op rebuild.

    nice -n 19 python bench/build.py [--size CHUNKS] [--repeats 3] [--batch-sizes 32] [--quick]

Per repeat, in fresh child processes (so each starts cold, like a user's):
1. `python -m qa build --corpus C --index I` into a new temporary index:
   wall time, the build's own seconds (BuildReport.seconds: corpus -> live
   index, model load excluded), peak RSS (ru_maxrss of that child, via wait4);
2. the raw encode: a child loads the same SentenceTransformer (same threads)
   and encodes exactly the texts that build embedded with model.encode, batch
   size 32, normalized: the floor for the build. The texts are collected by
   running the library's own build once more (into a scratch folder, not
   timed) with a stand-in model that records what it is asked to embed, so
   they follow whatever the build embeds (today: chunk texts, unique
   sentences, and each sentence under its section heading).
Ratio = raw encode seconds / build seconds, per repeat (target >= 0.9).
Then `python -m qa build` again on the last index with nothing changed
(target: under 2 s, 0 texts embedded).

These builds run with `--tune-epochs 0`: they measure embedding, and the
raw encode has no training to compare with. When the corpus has a question
bank (the real corpus/ has), one more build runs as the product builds, with
fine-tuning on the bank (qa/tuning.py), and its training seconds are
reported on their own.

--batch-sizes adds raw-encode runs at other batch sizes (finding for
Settings.batch_size); the default measures only 32, the product's value.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent

from bench import common  # noqa: E402


class RecordingEmbedder:
    """Stands in for the model in qa.index.build and keeps the texts the build asks to embed."""

    def __init__(self, dimension: int, name: str) -> None:
        self.dimension, self.name, self.batch_size, self.texts_encoded = dimension, name, 32, 0
        self.texts: list[str] = []

    def encode(self, texts, progress: bool = False):
        import numpy as np
        self.texts.extend(texts)
        self.texts_encoded += len(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        out[:, 0] = 1.0
        return out


def texts_the_build_embeds(corpus: str, scratch: str, dimension: int, name: str) -> list[str]:
    """Exactly what `qa.index.build` sends to the model for this corpus, whatever its current rules:
    the library's build runs into a scratch folder with a recording stand-in for the model."""
    from qa import index as index_store
    from qa.settings import Settings
    recorder = RecordingEmbedder(dimension, name)
    index_store.build(Settings(corpus_dir=corpus, index_dir=scratch, tune_epochs=0), recorder)
    return recorder.texts


def raw_encode(corpus: str, scratch: str, batch_size: int, threads: int) -> dict:
    """In this process: load the model, encode the build's texts with model.encode; seconds of the encode alone."""
    started = time.perf_counter()
    import torch
    from sentence_transformers import SentenceTransformer

    from qa.embedding import resolve_model
    from qa.settings import DEFAULT_MODEL

    torch.set_num_threads(threads)
    model = SentenceTransformer(resolve_model(DEFAULT_MODEL), device="cpu")
    loaded = time.perf_counter()
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    texts = texts_the_build_embeds(corpus, scratch, int(get_dim()), DEFAULT_MODEL)
    t = time.perf_counter()
    vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                           show_progress_bar=False)
    seconds = time.perf_counter() - t
    return {"texts": len(texts), "seconds": seconds, "load_seconds": loaded - started,
            "dimension": int(vectors.shape[1]), "batch_size": batch_size}


def _build(corpus: Path, index: Path, tune_epochs: int = 0) -> dict:
    run = common.check(common.run_child([sys.executable, "-m", "qa", "build", "--corpus", str(corpus),
                                         "--index", str(index), "--tune-epochs", str(tune_epochs)]),
                       "python -m qa build")
    out = run["stdout"]
    def grab(name: str) -> float:
        match = re.search(rf"{name}:\s*([0-9.]+)", out)
        if not match:
            raise SystemExit(f"cannot read {name!r} from the build's output:\n{out}")
        return float(match.group(1))
    # The build's own seconds less loading the model (a fixed cost the raw encode is timed without).
    run.update(build_seconds=grab("seconds") - grab("model load"), chunks=int(grab("chunks")),
               sentences=int(grab("sentences")), tune_seconds=grab("fine-tuning"),
               embedded=int(grab("embedded")), reused=int(grab("reused from cache")),
               kind=re.search(r"dense index:\s*(\w+)", out).group(1))
    return run


def _raw_in_process(corpus: Path, scratch: Path, batch_size: int, threads: int) -> dict:
    """--quick: the same raw encode with this process's already loaded model (no cold child)."""
    model = common.embedder(None, batch_size, threads)
    texts = texts_the_build_embeds(str(corpus), str(scratch), model.dimension, model.name)
    t = time.perf_counter()
    model._model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=False)
    return {"texts": len(texts), "seconds": time.perf_counter() - t, "max_rss_mb": float("nan")}


def _raw(corpus: Path, scratch: Path, batch_size: int, threads: int, in_process: bool = False) -> dict:
    if in_process:
        return _raw_in_process(corpus, scratch, batch_size, threads)
    run = common.check(common.run_child([sys.executable, str(Path(__file__)), "--raw-encode", str(corpus),
                                         str(scratch),
                                         "--batch-size", str(batch_size), "--threads", str(threads)]),
                       "raw encode")
    result = json.loads(run["stdout"].strip().splitlines()[-1])
    result.update(wall=run["seconds"], max_rss_mb=run["max_rss_mb"])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Index build throughput and memory.")
    parser.add_argument("--size", type=int, help="synthetic corpus of about this many chunks (default: corpus/)")
    parser.add_argument("--repeats", type=int, default=3, help="build + raw encode pairs (default 3)")
    parser.add_argument("--batch-sizes", default="32", help="raw-encode batch sizes to compare, e.g. 16,32,64,128")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", help="folder for corpora and indexes (default: a new temp folder)")
    parser.add_argument("--quick", action="store_true",
                        help="1 repeat, 1 no-op rebuild, raw encode in this process (for the smoke test)")
    parser.add_argument("--raw-encode", nargs=2, metavar=("CORPUS", "SCRATCH"), help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--batch-size", type=int, default=32, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.raw_encode:
        print(json.dumps(raw_encode(*args.raw_encode, args.batch_size, args.threads)))
        return 0
    repeats = 1 if args.quick else args.repeats
    with common.scratch(args.workdir) as work:
        return _run(args, repeats, work)


def _run(args, repeats: int, work: Path) -> int:
    corpus = common.prepare_corpus(work / "corpus", args.size)
    common.print_header("build.py", [f"corpus: {corpus['kind']}; {repeats} repeat(s); children run "
                                     f"`python -m qa build` cold; torch threads {args.threads}"])
    rows, ratios, builds = [], [], []
    for r in range(repeats):
        index = work / f"index-{r}"
        common.note(f"repeat {r + 1}/{repeats}: build")
        b = _build(work / "corpus", index)
        common.note(f"repeat {r + 1}/{repeats}: raw encode")
        raw = _raw(work / "corpus", work / f"scratch-{r}", 32, args.threads, in_process=args.quick)
        texts = b["embedded"]
        if raw["texts"] != texts:
            raise SystemExit(f"the build embedded {texts} texts but the raw encode got {raw['texts']}")
        ratio = raw["seconds"] / b["build_seconds"]
        ratios.append(ratio)
        builds.append(b)
        rows.append([f"repeat {r + 1}", b["chunks"], b["sentences"], b["seconds"],
                     b["build_seconds"], b["chunks"] / b["build_seconds"], texts, texts / b["build_seconds"],
                     raw["texts"] / raw["seconds"], raw["seconds"], ratio, b["max_rss_mb"], raw["max_rss_mb"]])
    common.say(common.table(
        "build vs raw encode of the same texts (one pair per repeat)",
        ["run", "chunks", "sentences", "cli wall s", "build s", "passages/s", "embedded texts", "build texts/s", "raw texts/s",
         "raw encode s", "ratio raw/build", "build peak MB", "raw peak MB"], rows))
    common.say(common.table("summary over repeats", ["figure", "median", "min", "max", "target"], [
        ["ratio raw encode s / build s", common.pct(ratios, 50), min(ratios), max(ratios), ">= 0.9"],
        ["build s", common.pct([b["build_seconds"] for b in builds], 50),
         min(b["build_seconds"] for b in builds), max(b["build_seconds"] for b in builds), ""],
        ["build peak RSS MB", common.pct([b["max_rss_mb"] for b in builds], 50),
         min(b["max_rss_mb"] for b in builds), max(b["max_rss_mb"] for b in builds), ""],
    ]))

    noop = [_build(work / "corpus", work / f"index-{repeats - 1}") for _ in range(1 if args.quick else 3)]
    common.say(common.table("rebuild with nothing changed", ["run", "build s", "cli wall s", "embedded", "reused",
                                                              "peak MB", "target"],
                            [[f"rebuild {i + 1}", n["build_seconds"], n["seconds"], n["embedded"], n["reused"],
                              n["max_rss_mb"], "build s < 2, embedded 0"] for i, n in enumerate(noop)]))

    from qa.question_bank import bank_files
    from qa.settings import Settings
    product_epochs = Settings().tune_epochs
    if bank_files(work / "corpus") and product_epochs:
        common.note("a build as the product builds: with fine-tuning on the question bank")
        tuned = _build(work / "corpus", work / "index-tuned", product_epochs)
        common.say(common.table("first build with fine-tuning on the question bank (the product's build)",
                                ["run", "fine-tuning s", "build s (incl. fine-tuning)", "cli wall s", "embedded",
                                 "peak MB"],
                                [["build 1", tuned["tune_seconds"], tuned["build_seconds"], tuned["seconds"],
                                  tuned["embedded"], tuned["max_rss_mb"]]]))

    sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    if sizes != [32]:
        sweep = []
        for batch in sizes:
            common.note(f"raw encode at batch size {batch}")
            raw = _raw(work / "corpus", work / f"scratch-b{batch}", batch, args.threads)
            sweep.append([batch, raw["texts"], raw["seconds"], raw["texts"] / raw["seconds"], raw["max_rss_mb"]])
        common.say(common.table("raw encode by batch size (same texts)", ["batch", "texts", "seconds", "texts/s",
                                                                           "peak MB"], sweep))
    common.print_footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
