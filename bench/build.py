"""Index build throughput against the model's raw encode of the same texts; peak memory; no-op rebuild.

    nice -n 19 python -m bench.build [--size CHUNKS] [--repeats 3] [--batch-sizes 32] [--reference DIR] [--quick]

First, the packaged model's ONNX export is made once in the work folder's
models folder (Settings.tuned_dir), which every build below shares: the
builds measure embedding, not exporting. Then per repeat, in fresh child
processes (so each starts cold, like a user's):
1. `python -m qa build --corpus C --index I` into a new temporary index:
   wall time, the build's own seconds (BuildReport.seconds: corpus -> live
   index, model load excluded), peak RSS (ru_maxrss of that child, via wait4);
2. the raw encodes: a child embeds exactly the texts that build embedded,
   normalized, once through the ONNX export with onnxruntime at the
   product's batch size (Settings.batch_size: what the build does, its
   floor) and once with the same model's SentenceTransformer.encode on
   torch at batch size 32 (what builds did before ONNX, issue 23's
   reference: sentence-transformers' default, the product's then). The
   texts are collected by
   running the library's own build once more (into a scratch folder, not
   timed) with a stand-in model that records what it is asked to embed, so
   they follow whatever the build embeds (today: chunk texts, unique
   sentences, and each sentence under its section heading).
Ratio = raw ONNX encode seconds / build seconds, per repeat (target >= 0.9);
and torch's raw encode / build: how much faster builds are than before; the
same in CPU seconds (every thread's; the build's whole process), which a
shared machine's load distorts less.
Then `python -m qa build` again on the last index with nothing changed
(target: under 2 s, 0 texts embedded).

These builds run with `--tune-epochs 0`: they measure embedding, and the
raw encode has no training to compare with. When the corpus has a question
bank (the real corpus/ has), one more build runs as the product builds, with
fine-tuning on the bank (qa/models/tuning.py), and its training seconds are
reported on their own.

--reference DIR runs another checkout's `python -m qa build` of the same
corpus right after each of this code's (same exports, same load): build
texts/s of both, and the speed-up.

--promote N measures only the rebuild after a promote (issue 23's target: at
most 45 s, also under load), on the real corpus/: per checkout (this one, and
--reference's, each with its own index and models folder) one build with
fine-tuning first (not timed); then N times, alternating between the
checkouts, one example question is added to the bank (a new line, as
`python -m qa feedback promote` writes it: another wording of a bank
question, with its answer sentence) and `python -m qa build` runs again: the
model is tuned on the new bank and every text re-embedded. Wall seconds,
fine-tuning seconds, CPU seconds (user + system, the fine-tuning process
included) and peak RSS (the largest single process).

--batch-sizes adds raw-encode runs (ONNX and torch) at other batch sizes
(finding for Settings.batch_size); by default none.
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
    """Stands in for the model in qa.indexing.build.build and keeps the texts the build asks to embed."""

    backend = "recording"

    def __init__(self, dimension: int, name: str) -> None:
        from qa.settings import Settings
        # The product's batch size: the build reads the shipped background vectors only for it.
        self.dimension, self.name, self.batch_size, self.texts_encoded = dimension, name, Settings().batch_size, 0
        self.texts: list[str] = []

    def use_export(self, export) -> None:
        """The build names the model's export in the manifest; the recorder keeps recording."""

    def encode(self, texts, progress: bool = False, on_batch=None):
        import numpy as np
        self.texts.extend(texts)
        self.texts_encoded += len(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        out[:, 0] = 1.0
        return out


def texts_the_build_embeds(corpus: str, scratch: str, dimension: int, name: str, models: str) -> list[str]:
    """Exactly what `qa.indexing.build.build` sends to the model for this corpus, whatever its current rules:
    the library's build runs into a scratch folder with a recording stand-in for the model
    (`models`: the models folder holding the model's export, which the build then need not make)."""
    from qa.indexing.build import build as build_index
    from qa.settings import Settings
    recorder = RecordingEmbedder(dimension, name)
    build_index(Settings(corpus_dir=corpus, index_dir=scratch, tune_epochs=0, tuned_dir=models), recorder)
    return recorder.texts


# Torch's batch size in the raw encode: sentence-transformers' default, the batch size of builds on torch.
TORCH_BATCH = 32


def raw_encode(corpus: str, scratch: str, batch_size: int, threads: int, models: str,
               torch_batch: int = TORCH_BATCH) -> dict:
    """In this process: the build's texts embedded through the ONNX export (onnxruntime, as the build does,
    `batch_size` texts a batch) and with the model's own encode on torch (`torch_batch`); seconds of each."""
    from qa.models import export
    from qa.models.embedding import Embedder
    from qa.settings import DEFAULT_MODEL, Settings

    key = export.export_key(DEFAULT_MODEL)
    onnx = Embedder(DEFAULT_MODEL, batch_size, threads,
                    export=export.ensure(Settings(tuned_dir=models), Embedder(DEFAULT_MODEL), common.note, key))
    texts = texts_the_build_embeds(corpus, scratch, onnx.dimension, DEFAULT_MODEL, models)
    t, cpu = time.perf_counter(), time.process_time()  # process time: every thread's CPU
    onnx.encode(texts)
    onnx_seconds, onnx_cpu = time.perf_counter() - t, time.process_time() - cpu
    started = time.perf_counter()
    model = Embedder(DEFAULT_MODEL, torch_batch, threads).torch_model()
    loaded = time.perf_counter()
    t, cpu = time.perf_counter(), time.process_time()
    vectors = model.encode(texts, batch_size=torch_batch, normalize_embeddings=True, convert_to_numpy=True,
                           show_progress_bar=False)
    seconds, torch_cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"texts": len(texts), "seconds": onnx_seconds, "torch_seconds": seconds, "load_seconds": loaded - started,
            "onnx_cpu": onnx_cpu, "torch_cpu": torch_cpu,
            "dimension": int(vectors.shape[1]), "batch_size": batch_size, "torch_batch": torch_batch}


def _build(corpus: Path, index: Path, tune_epochs: int = 0, models: Path | None = None,
           code: Path | None = None) -> dict:
    run = common.check(common.run_child([sys.executable, "-m", "qa", "build", "--corpus", str(corpus),
                                         "--index", str(index), "--tune-epochs", str(tune_epochs)],
                                        env={"QA_TUNED_DIR": str(models)} if models else None, code=code),
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


def _cpu(run: dict) -> float:
    """CPU seconds (user + system) of a `python -m qa build` child, its children included: what load distorts
    less than wall seconds."""
    return run["user_s"] + run["sys_s"]


def _raw(corpus: Path, scratch: Path, batch_size: int, threads: int, models: Path, in_process: bool = False,
         torch_batch: int = TORCH_BATCH) -> dict:
    if in_process:  # --quick: no cold child
        return {**raw_encode(str(corpus), str(scratch), batch_size, threads, str(models), torch_batch),
                "max_rss_mb": float("nan")}
    run = common.check(common.run_child([sys.executable, str(Path(__file__)), "--raw-encode", str(corpus),
                                         str(scratch), str(models), "--batch-size", str(batch_size),
                                         "--torch-batch", str(torch_batch), "--threads", str(threads)]),
                       "raw encode")
    result = json.loads(run["stdout"].strip().splitlines()[-1])
    result.update(wall=run["seconds"], max_rss_mb=run["max_rss_mb"])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Index build throughput and memory.")
    parser.add_argument("--size", type=int, help="synthetic corpus of about this many chunks (default: corpus/)")
    parser.add_argument("--repeats", type=int, default=3, help="build + raw encode pairs (default 3)")
    parser.add_argument("--batch-sizes", default="", help="raw-encode batch sizes to compare, e.g. 4,8,16,32")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reference", help="another checkout (e.g. main before a change): its `python -m qa build` "
                                            "of the same corpus runs right after this code's, each repeat")
    parser.add_argument("--workdir", help="folder for corpora and indexes (default: a new temp folder)")
    parser.add_argument("--quick", action="store_true",
                        help="1 repeat, 1 no-op rebuild, raw encode in this process (for the smoke test)")
    parser.add_argument("--promote", type=int, default=0, metavar="N",
                        help="only the rebuild after a promote, N times per checkout (see the docstring)")
    parser.add_argument("--raw-encode", nargs=3, metavar=("CORPUS", "SCRATCH", "MODELS"),
                        help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--batch-size", type=int, default=32, help=argparse.SUPPRESS)
    parser.add_argument("--torch-batch", type=int, default=TORCH_BATCH, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.raw_encode:
        corpus, scratch, models = args.raw_encode
        print(json.dumps(raw_encode(corpus, scratch, args.batch_size, args.threads, models, args.torch_batch)))
        return 0
    repeats = 1 if args.quick else args.repeats
    with common.scratch(args.workdir) as work:
        return _promote(args, work) if args.promote else _run(args, repeats, work)


def _promote(args, work: Path) -> int:
    from qa.settings import Settings

    epochs = Settings().tune_epochs
    common.print_header("build.py --promote", [f"real corpus/ with its question bank; {args.promote} promote(s) per "
                                               f"checkout, alternating; fine-tuning {epochs} epoch(s)"])
    codes = [("this", ROOT)] + ([("reference", Path(args.reference).resolve())] if args.reference else [])
    for name, code in codes:
        common.prepare_corpus(work / name / "corpus", None)
        common.note(f"{name}: the first build with fine-tuning (not timed)")
        _build(work / name / "corpus", work / name / "index", epochs, models=work / name / "models", code=code)
    bank = sorted((common.CORPUS / "questions").glob("*.jsonl"))[0]
    lines = [json.loads(line) for line in bank.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = {name: [] for name, _ in codes}
    for r in range(args.promote):
        promoted = {**lines[r % len(lines)], "question": f"{lines[r % len(lines)]['question']} (asked again {r + 1})"}
        for name, code in codes:
            with open(work / name / "corpus" / "questions" / bank.name, "a", encoding="utf-8") as out:
                out.write(json.dumps(promoted) + "\n")
            load = common.os.getloadavg()[0]
            common.note(f"promote {r + 1}/{args.promote}: {name}'s rebuild")
            b = _build(work / name / "corpus", work / name / "index", epochs, models=work / name / "models",
                       code=code)
            if not b["tune_seconds"] or b["reused"]:
                raise SystemExit(f"{name}'s rebuild after a promote did not tune again and re-embed everything")
            rows[name].append([f"promote {r + 1}", name, load, b["seconds"], b["tune_seconds"],
                               b["user_s"] + b["sys_s"], b["max_rss_mb"], b["embedded"]])
    table = [row for r in range(args.promote) for name, _ in codes for row in [rows[name][r]]]
    for name, _ in codes:
        table.append(["median", name, "", common.pct([row[3] for row in rows[name]], 50),
                      common.pct([row[4] for row in rows[name]], 50), common.pct([row[5] for row in rows[name]], 50),
                      common.pct([row[6] for row in rows[name]], 50), ""])
    common.say(common.table("rebuild after a promote (one example question added), target wall <= 45 s",
                            ["run", "code", "load at start", "cli wall s", "fine-tuning s", "CPU s", "peak RSS MB",
                             "embedded"], table))
    common.print_footer()
    return 0


def _run(args, repeats: int, work: Path) -> int:
    from qa.settings import Settings

    corpus = common.prepare_corpus(work / "corpus", args.size)
    models = common.models_dir(work)
    common.note("the packaged model's ONNX export, once for all builds")
    common.default_export(work)
    common.print_header("build.py", [f"corpus: {corpus['kind']}; {repeats} repeat(s); children run "
                                     f"`python -m qa build` cold; build threads {args.threads}"])
    rows, ratios, torch_ratios, torch_cpu_ratios, builds = [], [], [], [], []
    reference = Path(args.reference).resolve() if args.reference else None
    against: list[list] = []
    for r in range(repeats):
        index = work / f"index-{r}"
        common.note(f"repeat {r + 1}/{repeats}: build")
        b = _build(work / "corpus", index, models=models)
        if reference:
            common.note(f"repeat {r + 1}/{repeats}: the reference's build")
            ref = _build(work / "corpus", work / f"reference-index-{r}", models=models, code=reference)
            against.append([f"repeat {r + 1}", ref["embedded"], ref["build_seconds"], b["build_seconds"],
                            ref["embedded"] / ref["build_seconds"], b["embedded"] / b["build_seconds"],
                            ref["build_seconds"] / b["build_seconds"], _cpu(ref), _cpu(b), _cpu(ref) / _cpu(b),
                            ref["max_rss_mb"], b["max_rss_mb"]])
        common.note(f"repeat {r + 1}/{repeats}: raw encode")
        raw = _raw(work / "corpus", work / f"scratch-{r}", Settings().batch_size, args.threads, models,
                   in_process=args.quick)
        texts = b["embedded"]
        if raw["texts"] != texts:
            raise SystemExit(f"the build embedded {texts} texts but the raw encode got {raw['texts']}")
        ratio = raw["seconds"] / b["build_seconds"]
        ratios.append(ratio)
        torch_ratios.append(raw["torch_seconds"] / b["build_seconds"])
        builds.append(b)
        torch_cpu_ratios.append(raw["torch_cpu"] / _cpu(b))
        rows.append([f"repeat {r + 1}", b["chunks"], b["sentences"], b["seconds"],
                     b["build_seconds"], texts, texts / b["build_seconds"], raw["seconds"], raw["torch_seconds"],
                     ratio, torch_ratios[-1], _cpu(b), raw["onnx_cpu"], raw["torch_cpu"], torch_cpu_ratios[-1],
                     b["max_rss_mb"], raw["max_rss_mb"]])
    common.say(common.table(
        "build vs raw encode of the same texts (one pair per repeat)",
        ["run", "chunks", "sentences", "cli wall s", "build s", "embedded texts", "build texts/s",
         "raw onnx s", "raw torch s", "ratio onnx/build", "ratio torch/build", "build CPU s", "raw onnx CPU s",
         "raw torch CPU s", "CPU torch/build", "build peak MB", "raw peak MB"], rows))
    common.say(common.table("summary over repeats", ["figure", "median", "min", "max", "target"], [
        ["ratio raw encode s / build s", common.pct(ratios, 50), min(ratios), max(ratios), ">= 0.9"],
        ["ratio torch raw encode s / build s", common.pct(torch_ratios, 50), min(torch_ratios), max(torch_ratios),
         ""],
        ["ratio torch raw encode CPU s / build CPU s", common.pct(torch_cpu_ratios, 50), min(torch_cpu_ratios),
         max(torch_cpu_ratios), ""],
        ["build s", common.pct([b["build_seconds"] for b in builds], 50),
         min(b["build_seconds"] for b in builds), max(b["build_seconds"] for b in builds), ""],
        ["build peak RSS MB", common.pct([b["max_rss_mb"] for b in builds], 50),
         min(b["max_rss_mb"] for b in builds), max(b["max_rss_mb"] for b in builds), ""],
    ]))

    if against:
        speedups = [row[6] for row in against]
        common.say(common.table(f"this code's build against the reference's ({reference}), same corpus, alternating",
                                ["run", "texts", "reference build s", "build s", "reference texts/s", "texts/s",
                                 "speed-up", "reference CPU s", "CPU s", "CPU speed-up", "reference peak MB",
                                 "peak MB"],
                                against + [["median", "", "", "", "", "", common.pct(speedups, 50), "", "",
                                            common.pct([row[9] for row in against], 50), "", ""]]))
    noop = [_build(work / "corpus", work / f"index-{repeats - 1}", models=models) for _ in range(1 if args.quick else 3)]
    common.say(common.table("rebuild with nothing changed", ["run", "build s", "cli wall s", "embedded", "reused",
                                                              "peak MB", "target"],
                            [[f"rebuild {i + 1}", n["build_seconds"], n["seconds"], n["embedded"], n["reused"],
                              n["max_rss_mb"], "build s < 2, embedded 0"] for i, n in enumerate(noop)]))

    from qa.models.question_bank import bank_files
    product_epochs = Settings().tune_epochs
    if bank_files(work / "corpus") and product_epochs:
        common.note("a build as the product builds: with fine-tuning on the question bank")
        tuned = _build(work / "corpus", work / "index-tuned", product_epochs, models=models)
        common.say(common.table("first build with fine-tuning on the question bank (the product's build)",
                                ["run", "fine-tuning s", "build s (incl. fine-tuning)", "cli wall s", "embedded",
                                 "peak MB"],
                                [["build 1", tuned["tune_seconds"], tuned["build_seconds"], tuned["seconds"],
                                  tuned["embedded"], tuned["max_rss_mb"]]]))

    sizes = [int(s) for s in args.batch_sizes.split(",") if s.strip()]
    if sizes:
        sweep = []
        for batch in sizes:
            common.note(f"raw encode at batch size {batch}")
            raw = _raw(work / "corpus", work / f"scratch-b{batch}", batch, args.threads, models, torch_batch=batch)
            sweep.append([batch, raw["texts"], raw["seconds"], raw["texts"] / raw["seconds"], raw["torch_seconds"],
                          raw["max_rss_mb"]])
        common.say(common.table("raw encode by batch size (same texts)", ["batch", "texts", "onnx s", "onnx texts/s",
                                                                           "torch s", "peak MB"], sweep))
    common.print_footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
