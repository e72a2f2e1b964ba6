"""int8 or not: the question model quantized to int8, against fp32, in speed and in answers.

    python -m bench.int8 [--models DIR] [--rounds 3] [--workdir DIR] [--benchmark FILE]

int8 here is onnxruntime's dynamic quantization, per channel (weights int8,
activations quantized per batch at run time; per tensor was much worse), of
each fp32 export the build makes (qa/models/export.py). Two indexes of a copy of
corpus/ are built in this process, both embedding with the tuned model: one
with its fp32 export (the product), one with its int8 copy (every text and
every question through int8); the same again for the saved web pages of
tests/fixtures/web. The int8 copy is made by wrapping
qa.models.export.ensure for this process only: the product has no int8 path.

Figures, in one run:
- per question: the question model's encode of each question of
  eval/sets/dev.jsonl alone, one thread, fp32 and int8 alternating (ms);
- batch: the index's passages and sentences embedded in batches of 32 on
  two threads (texts per second);
- distance from torch: the largest difference of the sample vectors;
- answers on every question set of eval/sets/ (health-web.jsonl on its own
  saved web pages, without example questions, so with the base model): answerable questions
  answered right, unanswerable ones refused, answerable ones wrongly refused;
- with --benchmark FILE, the transfer benchmark (qa/evaluation/benchmark.py, setups
  fresh, grown, plain and product, report half) for both, which takes long.
Decision rule (issue 14): int8 ships only if no answer figure drops.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Sequence

from bench import common


def quantized(fp32, folder: Path):
    """An export folder holding `fp32`'s int8 copy, checked against itself (its own sample vectors)."""
    import numpy as np
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from qa.models.embedding import Export
    from qa.models.onnx_model import (INFO_FILE, MODEL_FILE, SAMPLE_FILE, SAMPLE_TEXTS, TOKENIZER_FILE, ExportInfo,
                               OnnxModel)

    key = f"{fp32.key}-int8"
    out = folder / key
    if not (out / INFO_FILE).is_file():
        tmp = folder / f".tmp-{key}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        quantize_dynamic(str(fp32.folder / MODEL_FILE), str(tmp / MODEL_FILE), per_channel=True,
                         weight_type=QuantType.QInt8)
        shutil.copy2(fp32.folder / TOKENIZER_FILE, tmp / TOKENIZER_FILE)
        info = ExportInfo.read(fp32.folder)
        info = ExportInfo(**{**info.__dict__, "key": key, "onnx_sha256": sha256_file(tmp / MODEL_FILE),
                             "onnx_bytes": (tmp / MODEL_FILE).stat().st_size})
        info.write(tmp)
        # One text at a time, as a load checks them: int8 quantizes activations per batch, so a text's
        # vector depends on the texts batched with it (fp32's does not).
        np.save(tmp / SAMPLE_FILE, OnnxModel(tmp, info, 1).encode(list(SAMPLE_TEXTS), batch_size=1))
        tmp.rename(out)
    return Export(out, key)


def build_int8(settings, say):
    """The library's build, with every export it asks for replaced by its int8 copy."""
    from qa.models import export
    from qa.indexing.build import build as build_index
    from qa.models.embedding import Embedder

    original = export.ensure

    def ensure_int8(settings_, embedder, say_, key=None):
        made = original(settings_, embedder, say_, key)
        return quantized(made, export.store(settings_)) if made is not None else None
    export.ensure = ensure_int8
    try:
        return build_index(settings, Embedder(settings.model, settings.batch_size, settings.threads), say)
    finally:
        export.ensure = original


def answer_figures(engines: dict, sets: list[str]) -> list[list[object]]:
    """Per set: answerable, answered right, unanswerable refused, answerable wrongly refused (counts)."""
    from qa.evaluation.evaluate import run_engine, score

    rows = []
    for name in sets:
        questions = common.load_set(name)
        scores = score(name, questions, run_engine(engines[name], questions))
        answerable = sum(q.answerable for q in questions)
        rows.append([name, answerable, round(scores.answer_accuracy * answerable),
                     round(scores.refused_unanswerable * (len(questions) - answerable)),
                     round(scores.refused_answerable * answerable)])
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="int8 against fp32: speed and answers.")
    parser.add_argument("--models", help="models folder (QA_TUNED_DIR) to reuse; default: one in the work folder")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the questions for the per-question time")
    parser.add_argument("--workdir", help="folder for the indexes (default: a new temp folder)")
    parser.add_argument("--benchmark", help="also the transfer benchmark on this file (long)")
    args = parser.parse_args(argv)
    with common.scratch(args.workdir) as work:
        return _run(args, work)


def _run(args, work: Path) -> int:
    import numpy as np

    from qa.indexing.build import build as build_index
    from qa.models.embedding import Embedder
    from qa.serving.engine import Engine
    from qa.evaluation.evaluate import DEFAULT_QUESTIONS, load_questions
    from qa.models.onnx_model import SAMPLE_FILE, SAMPLE_TEXTS
    from qa.settings import Settings

    models = Path(args.models) if args.models else work / "models"
    sets = common.question_sets()
    engines, set_engines = {}, {}  # engines: on corpus/, by variant; set_engines: by variant, then set
    for variant in ("fp32", "int8"):
        by_corpus = {}
        for which in sorted(set(sets.values())):
            corpus = work / variant / which / "corpus"
            if not corpus.exists():
                common.copy_corpus(which, corpus)
            settings = Settings(corpus_dir=corpus, index_dir=work / variant / which / "index", tuned_dir=models)
            common.note(f"building the {variant} index of {which}")
            if variant == "fp32":
                build_index(settings, Embedder(settings.model, settings.batch_size, settings.threads), common.note)
            else:
                build_int8(settings, common.note)
            by_corpus[which] = Engine.open(settings, build="never")
        engines[variant] = by_corpus["corpus"]
        set_engines[variant] = {name: by_corpus[which] for name, which in sets.items()}
    common.print_header("int8.py", [f"the tuned model's export, fp32 and its int8 copy (dynamic, per channel); "
                                    f"indexes in {work}"])

    questions = [q.question for q in load_questions(DEFAULT_QUESTIONS)]
    times = {variant: [] for variant in engines}
    for _ in range(args.rounds):
        for question in questions:
            for variant, engine in engines.items():
                t = time.perf_counter()
                engine.embedder.encode_one(question)
                times[variant].append(time.perf_counter() - t)
    texts = [c.index_text for c in engines["fp32"].index.chunks] + engines["fp32"].index.sentences
    throughput = {}
    for variant, engine in engines.items():
        batch = Embedder(engine.embedder.name, 32, 2, export=engine.embedder.export)
        t = time.perf_counter()
        batch.encode(texts)
        throughput[variant] = len(texts) / (time.perf_counter() - t)
    torch_samples = np.load(engines["fp32"].embedder.export.folder / SAMPLE_FILE)
    distance = {v: float(np.abs(e.embedder.encode(list(SAMPLE_TEXTS)) - torch_samples).max())
                for v, e in engines.items()}
    common.say(common.table("speed (same run)", ["variant", "question p50 ms", "question p95 ms",
                                                "batch texts/s (2 threads)", "max diff from torch"],
                            [[v, *common.ms_summary(times[v])[:2], throughput[v], distance[v]] for v in engines],
                            digits=4))
    figures = {v: answer_figures(set_engines[v], list(sets)) for v in engines}
    rows = [[fp[0], fp[1], fp[2], q8[2], fp[3], q8[3], fp[4], q8[4]] for fp, q8 in zip(figures["fp32"],
                                                                                       figures["int8"])]
    rows.append(["all sets", *[sum(r[i] for r in rows) for i in range(1, 8)]])
    common.say(common.table("answers on every question set (counts)", [
        "set", "answerable", "right fp32", "right int8", "refused unansw. fp32", "refused unansw. int8",
        "wrongly refused fp32", "wrongly refused int8"], rows))
    if args.benchmark:
        _transfer(Path(args.benchmark), work, models)
    common.print_footer()
    return 0


def _transfer(benchmark: Path, work: Path, models: Path) -> None:
    from qa.evaluation import benchmark as bench_module
    from qa.models import export
    from qa.settings import Settings

    original = export.ensure
    for variant in ("fp32", "int8"):
        if variant == "int8":
            export.ensure = lambda s, e, say, key=None: (lambda made: quantized(made, export.store(s))
                                                         if made is not None else None)(original(s, e, say, key))
        try:
            sample, results = bench_module.run_benchmark(
                benchmark, Settings(tuned_dir=models), ("fresh", "grown", "plain", "product"), half="report",
                work=work / f"transfer-{variant}", say=common.note)
        finally:
            export.ensure = original
        common.say(f"== transfer benchmark, {variant}\n" + bench_module.format_benchmark(sample, results))
        (work / f"transfer-{variant}.json").write_text(json.dumps(bench_module.benchmark_json(sample, results)))


if __name__ == "__main__":
    sys.exit(main())
