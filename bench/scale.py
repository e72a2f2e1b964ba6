"""Scale: build time, size on disk, memory and query latency at 1k, 10k and 100k chunks; flat vs HNSW.

    nice -n 19 python -m bench.scale [--sizes 1000,10000,100000] [--rounds 3] [--quick]

For each size, a synthetic corpus (bench/synth.py, seed 0) of that many chunks, then:

- build: `python -m qa build` in a child (wall, BuildReport seconds, peak RSS
  via wait4). When the real build of a size is estimated (linearly from the
  largest real build of this run) to take over --max-real-minutes (35), the
  build instead runs the library's own `qa.indexing.build.build` in a child with a
  SUBSTITUTE embedder: each text gets a vector of the real embeddings of the
  largest real build (chunk and sentence vectors), picked with a seeded RNG,
  plus Gaussian noise (sigma 0.03 per dimension, cosine ~0.85 to its base),
  normalized. Everything else (parsing, chunking, BM25, FAISS HNSW/flat,
  files, checksums) is the real build. Its embedding time is then estimated
  from the measured raw throughput and added in a separate column. Rows
  built this way are marked "substituted" in every table.
- index size on disk (the live generation folder) and the index's RSS in a
  serving process (VmRSS growth while qa.indexing.index.load runs);
- warm query latency over eval/sets/dev.jsonl (bench/latency.measure: end to
  end, FAISS, BM25, sentence search, answer), p50/p95 over --rounds;
- flat vs HNSW over the index's chunk vectors: per-query search time (one
  query at a time, k = Settings.candidates = 30, efSearch = 128 as
  qa.answering.search does) and recall@10 of HNSW (M 32, efConstruction 200, as
  qa.indexing.build builds it) against exact search; queries are the questions'
  vectors plus a seeded sample of the index's sentence vectors (500 in all).
- HNSW recall on REAL embeddings at the largest real size: all chunk and
  sentence vectors of that build pooled (several times the chunk count).

Retrieval quality on the synthetic text means nothing; these are speed and size figures.

    nice -n 19 python -m bench.scale --stores faiss,milvus [--sizes 10000,100000]

compares the two stores (qa/indexing/stores.py) on the same synthetic corpora instead: for each size,
the corpus is generated and chunked as a build does, its chunk and sentence vectors
substituted as above (from the real vectors of corpus/), and for each store, in children of
their own: `backend.write` of those tables as a build calls it (build throughput: vectors
per second), then in a fresh process the store opened as `qa.indexing.index.load` opens it (resident
memory it adds, milvus-lite's engine included: it runs in the process) and searched one query
at a time as qa.answering.search does (chunks k 30, sentences k 240; p50/p95 ms), with recall@10 of the
chunk search against exact search (numpy). Queries: 500 of the corpus's own sentence vectors
with noise.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent

from bench import common  # noqa: E402

SIGMA = 0.03


class SubstituteEmbedder:
    """Stands in for the model in qa.indexing.build.build: real vectors from a pool, seeded noise, unit length."""

    backend = "substitute"

    def __init__(self, pool, sigma: float = SIGMA, seed: int = 0, name: str | None = None) -> None:
        import numpy as np

        from qa.settings import DEFAULT_MODEL
        self.pool = np.asarray(pool, dtype=np.float32)
        self.dimension = int(self.pool.shape[1])
        self.name = name or DEFAULT_MODEL
        self.batch_size = 32
        self.sigma = sigma
        self.seed = seed
        self.texts_encoded = 0
        self.seconds = 0.0

    def use_export(self, export) -> None:
        """The build names the real model's export for the index's questions; the substitute keeps substituting."""

    def encode(self, texts, progress: bool = False, on_batch=None):
        import numpy as np
        started = time.perf_counter()
        rng = np.random.default_rng(self.seed + self.texts_encoded)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(texts), 50_000):
            m = min(50_000, len(texts) - start)
            block = self.pool[rng.integers(len(self.pool), size=m)] + \
                rng.normal(0.0, self.sigma, (m, self.dimension)).astype(np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            out[start:start + m] = block
        self.texts_encoded += len(texts)
        self.seconds += time.perf_counter() - started
        return out


def substitute_build(corpus: str, index: str, pool_path: str, models: str) -> dict:
    """Child mode: the library's build with the substitute embedder."""
    import numpy as np

    import faiss
    from qa.indexing.build import build as build_index
    from qa.settings import Settings

    faiss.omp_set_num_threads(2)
    embedder = SubstituteEmbedder(np.load(pool_path))
    report = build_index(Settings(corpus_dir=corpus, index_dir=index, tuned_dir=models), embedder)
    return {"build_seconds": report.seconds, "substitute_seconds": embedder.seconds, "chunks": report.chunks,
            "sentences": report.sentences, "embedded": report.embedded, "kind": report.dense_kind}


def vm_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def ann_figures(vectors, queries, hnsw=None, m: int = 32, ef_construction: int = 200,
                ef_values=(32, 64, 128), k: int = 30) -> dict:
    """Flat vs HNSW on `vectors`: per-query ms (p50/p95), recall@10 of HNSW against flat, HNSW build s."""
    import numpy as np

    import faiss
    d = vectors.shape[1]
    flat = faiss.IndexFlatIP(d)
    flat.add(vectors)
    k = min(k, len(vectors))
    built = 0.0
    if hnsw is None:
        hnsw = faiss.IndexHNSWFlat(d, m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = ef_construction
        t = time.perf_counter()
        hnsw.add(vectors)
        built = time.perf_counter() - t

    def timed(index):
        times, ids = [], []
        for q in queries:
            t = time.perf_counter()
            _, found = index.search(q.reshape(1, -1), k)
            times.append(time.perf_counter() - t)
            ids.append(found[0])
        return times, np.array(ids)

    timed(flat)  # warm-up
    flat_times, truth = timed(flat)
    result = {"n": len(vectors), "flat": common.ms_summary(flat_times), "hnsw_build_s": built, "ef": {}}
    top = min(10, k)
    for ef in ef_values:
        hnsw.hnsw.efSearch = max(ef, k)
        timed(hnsw)
        times, found = timed(hnsw)
        recall = float(np.mean([len(set(f[:top]) & set(t[:top])) / top for f, t in zip(found, truth)]))
        result["ef"][ef] = {"ms": common.ms_summary(times), "recall": recall}
    return result


def query_vectors(engine, questions, index, total: int = 500, seed: int = 0):
    """The questions' vectors plus a seeded sample of the index's sentence vectors."""
    import numpy as np
    qv = engine.embedder.encode([q.question for q in questions])
    extra = max(0, total - len(qv))
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(index.sentence_vectors), size=min(extra, len(index.sentence_vectors)), replace=False)
    return np.ascontiguousarray(np.vstack([qv, index.sentence_vectors[picks]]), dtype=np.float32)


def store_child(mode: str, store: str, folder: str) -> dict:
    """Child mode of --stores: "write" the tables into `store`, or "serve": open it and search it."""
    import numpy as np

    import faiss
    from qa.indexing import backends, stores
    from qa.settings import Settings

    faiss.omp_set_num_threads(2 if mode == "write" else 1)  # as a build, and as the engine
    folder = Path(folder)
    settings = Settings(index_dir=folder / store, store=store)
    backend = backends.backend(settings)
    generation = folder / store / "generation"
    if mode == "write":
        data = np.load(folder / "tables.npz")
        tables = stores.Tables(data["chunks"], data["sentences"], data["chunks"][:0])
        generation.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        entry = backend.write(tables, generation, "bench")
        seconds = time.perf_counter() - t
        (generation / "entry.json").write_text(json.dumps(entry))
        disk = common.dir_bytes(folder / store)
        return {"seconds": seconds, "vectors": len(tables.chunks) + len(tables.sentences), "disk_mb": disk / 1e6,
                "kinds": entry["kinds"]}
    data = np.load(folder / "tables.npz")
    chunks, queries = data["chunks"], data["queries"]
    del data
    before = vm_rss_mb()
    t = time.perf_counter()
    chunk_store, sentence_store, _ = backend.open(json.loads((generation / "entry.json").read_text()), generation)
    open_s = time.perf_counter() - t
    added = vm_rss_mb() - before
    times: dict[str, list[float]] = {"chunks": [], "sentences": []}
    recall = []
    for warm, q in enumerate(queries):
        t = time.perf_counter()
        ids, _ = chunk_store.search(q, 30)
        times["chunks"].append(time.perf_counter() - t)
        t = time.perf_counter()
        sentence_store.search(q, 240)
        times["sentences"].append(time.perf_counter() - t)
        exact = np.argpartition(-(chunks @ q), 10)[:10]
        recall.append(len(set(ids[:10].tolist()) & set(exact.tolist())) / 10)
    return {"open_s": open_s, "rss_added_mb": added, "rss_mb": vm_rss_mb(), "recall": float(np.mean(recall)),
            **{f"{name}_ms": common.ms_summary(samples[10:]) for name, samples in times.items()}}


def stores_run(args, work: Path) -> int:
    """--stores: the stores alone, on the same synthetic corpora (see the module's docstring)."""
    import numpy as np

    from qa.indexing.build import sentence_table  # the build's own table of unique sentences

    names = [s for s in args.stores.split(",") if s]
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    common.print_header("scale.py --stores", [f"stores {names}; sizes {sizes}; synthetic corpora, seed 0; "
                                              "vectors substituted from corpus/'s real ones"])
    real = common.chunks_of(common.CORPUS)
    pool = common.embedder().encode([c.index_text for c in real] + sentence_table(real)[0])
    rows = []
    for size in sizes:
        folder = work / f"stores-{size}"
        corpus = folder / "corpus"
        if not corpus.exists():
            common.note(f"[{size}] generating the corpus")
            common.prepare_corpus(corpus, size)
        chunks = common.chunks_of(corpus)
        sentences = sentence_table(chunks)[0]
        substitute = SubstituteEmbedder(pool)
        chunk_vectors = substitute.encode([""] * len(chunks))
        sentence_vectors = substitute.encode([""] * len(sentences))
        rng = np.random.default_rng(1)
        queries = sentence_vectors[rng.choice(len(sentence_vectors), size=args.ann_queries, replace=False)]
        queries = queries + rng.normal(0, SIGMA, queries.shape).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        np.savez(folder / "tables.npz", chunks=chunk_vectors, sentences=sentence_vectors, queries=queries)
        del chunk_vectors, sentence_vectors, chunks
        for name in names:
            common.note(f"[{size}] {name}: write")
            wrote = common.check(common.run_child([sys.executable, str(Path(__file__)), "--store-child", "write",
                                                   name, str(folder)]), f"{name} write")
            w = json.loads(wrote["stdout"].strip().splitlines()[-1])
            common.note(f"[{size}] {name}: serve")
            served = common.check(common.run_child([sys.executable, str(Path(__file__)), "--store-child", "serve",
                                                    name, str(folder)]), f"{name} serve")
            r = json.loads(served["stdout"].strip().splitlines()[-1])
            rows.append([f"{size:,}", name, f"{len(sentences):,}", w["kinds"]["chunks"], w["seconds"],
                         w["vectors"] / w["seconds"], wrote["max_rss_mb"], w["disk_mb"], r["open_s"],
                         r["rss_added_mb"], r["rss_mb"], r["chunks_ms"][0], r["chunks_ms"][1],
                         r["sentences_ms"][0], r["sentences_ms"][1], r["recall"]])
            common.note(f"[{size}] {name}: {rows[-1]}")
            shutil.rmtree(folder / name, ignore_errors=True)
    common.say(common.table("the stores on the same synthetic corpora, one query at a time", [
        "chunks", "store", "sentences", "index", "write s", "vectors/s", "write peak MB", "disk MB", "open s",
        "RSS added MB", "serving RSS MB", "chunks k30 p50 ms", "p95", "sentences k240 p50 ms", "p95",
        "recall@10"], rows, digits=3))
    common.print_footer()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Scale benchmark over synthetic corpora.")
    parser.add_argument("--sizes", "--size", default="1000,10000,100000", help="chunk counts, comma-separated")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the question set per size (default 3)")
    parser.add_argument("--limit", type=int, help="only the first N questions")
    parser.add_argument("--ann-queries", type=int, default=500)
    parser.add_argument("--max-real-minutes", type=float, default=35.0,
                        help="substitute embeddings when a real build is estimated to take longer (default 35)")
    parser.add_argument("--substitute-above", type=int, default=None,
                        help="substitute embeddings for every size above this many chunks")
    parser.add_argument("--workdir", help="folder for corpora and indexes (default: a new temp folder)")
    parser.add_argument("--quick", action="store_true", help="1 round, 200 ANN queries")
    parser.add_argument("--substitute-build", nargs=4, metavar=("CORPUS", "INDEX", "POOL", "MODELS"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--stores", help="compare these stores instead (e.g. faiss,milvus): see the docstring")
    parser.add_argument("--store-child", nargs=3, metavar=("MODE", "STORE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.store_child:
        print(json.dumps(store_child(*args.store_child)))
        return 0
    if args.stores:
        with common.scratch(args.workdir) as work:
            return stores_run(args, work)
    if args.substitute_build:
        print(json.dumps(substitute_build(*args.substitute_build)))
        return 0
    if args.quick:
        args.rounds, args.ann_queries = 1, min(args.ann_queries, 200)
    with common.scratch(args.workdir) as work:
        return _run(args, work)


def _run(args, work: Path) -> int:
    import faiss
    import numpy as np

    from bench import latency
    from bench.build import _build
    from qa.indexing import index as index_store, question_model
    from qa.serving.engine import Engine
    from qa.evaluation.evaluate import DEFAULT_QUESTIONS, load_questions
    from qa.settings import Settings

    faiss.omp_set_num_threads(2)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    questions = load_questions(DEFAULT_QUESTIONS)[:args.limit]
    common.print_header("scale.py", [f"sizes {sizes}; {len(questions)} questions x {args.rounds} round(s); "
                                     f"ANN queries {args.ann_queries}; synthetic corpora, seed 0"])
    embedder = common.embedder()
    models = common.models_dir(work)
    common.default_export(work)  # once, for every build: they measure embedding, not exporting
    builds, latencies, anns, real_ann = [], [], [], None
    largest_real = None  # (size, build seconds, texts per second, pool path)
    for size in sizes:
        base = work / f"n{size}"
        corpus, index_dir = base / "corpus", base / "index"
        common.note(f"[{size}] generating the corpus")
        common.prepare_corpus(corpus, size)
        estimate = largest_real[1] * size / largest_real[0] / 60 if largest_real else 0.0
        substitute = (args.substitute_above is not None and size > args.substitute_above) or \
            estimate > args.max_real_minutes
        if substitute and largest_real is None:
            raise SystemExit("substituted embeddings need a real build of a smaller size first in --sizes")
        if not substitute:
            common.note(f"[{size}] python -m qa build (real embeddings)")
            b = _build(corpus, index_dir, models=models)
            texts_per_s = b["embedded"] / b["build_seconds"]
            est_real = b["build_seconds"]
            how = "real"
        else:
            common.note(f"[{size}] substituted build (real build estimated at {estimate:.0f} min)")
            run = common.check(common.run_child([sys.executable, str(Path(__file__)), "--substitute-build",
                                                 str(corpus), str(index_dir), str(largest_real[3]), str(models)]),
                               "substituted build")
            b = {**json.loads(run["stdout"].strip().splitlines()[-1]), "seconds": run["seconds"],
                 "max_rss_mb": run["max_rss_mb"]}
            texts = b["embedded"]
            est_real = b["build_seconds"] - b["substitute_seconds"] + texts / largest_real[2]
            how = "substituted"
        settings = Settings(corpus_dir=corpus, index_dir=index_dir, tuned_dir=models)
        before = vm_rss_mb()
        t = time.perf_counter()
        index = question_model.load(settings, dimension=embedder.dimension)
        load_s = time.perf_counter() - t
        rss = vm_rss_mb() - before
        gen = index_store.live_directory(index_dir)
        files = {p.name: p.stat().st_size for p in gen.iterdir() if p.is_file()}
        builds.append([f"{size:,} ({how})", b["chunks"], b["sentences"], index.manifest["dense"]["kind"],
                       b["build_seconds"], est_real, b["max_rss_mb"], common.dir_bytes(gen) / 1e6,
                       (files.get("sentence_vectors.npy", 0) + files.get("chunk_vectors.npy", 0)) / 1e6, rss, load_s])
        if not substitute:
            pool = np.vstack([index.chunk_vectors, index.sentence_vectors])
            pool_path = work / f"pool-{size}.npy"
            np.save(pool_path, pool)
            largest_real = (size, b["build_seconds"], texts_per_s, pool_path)

        engine = Engine(settings, embedder, index)  # questions: the export the index names
        common.note(f"[{size}] query latency")
        samples = latency.measure(engine, questions, args.rounds)
        row = [f"{size:,} ({how})"]
        for name in ("end to end (Engine.ask)", "FAISS dense", "BM25 lexical", "sentence search",
                     "answer selection", "floor: torch encode alone, 1 thread(s)"):
            p50, p95, _, _ = common.ms_summary(samples[name])
            row += [p50, p95] if name.startswith("end") else [p50]
        row.append(row[1] - row[-1])
        latencies.append(row)

        common.note(f"[{size}] flat vs HNSW")
        queries = query_vectors(engine, questions, index, args.ann_queries)
        hnsw = index.stores.chunks.index if index.stores.chunks.kind == "hnsw" else None
        a = ann_figures(np.ascontiguousarray(index.chunk_vectors), queries, hnsw=hnsw)
        anns.append((f"{size:,} ({how})", a, hnsw is not None))
        common.note(f"[{size}] build {builds[-1]}\n[{size}] latency {latencies[-1]}\n[{size}] ann {a}")
        del engine, index, samples
    if largest_real:
        common.note(f"HNSW on the pooled real vectors of the {largest_real[0]:,}-chunk build")
        pool = np.load(largest_real[3])
        rng = np.random.default_rng(1)
        held = rng.choice(len(pool), size=min(args.ann_queries, len(pool) // 10), replace=False)
        keep = np.setdiff1d(np.arange(len(pool)), held)
        real_ann = ann_figures(np.ascontiguousarray(pool[keep]), np.ascontiguousarray(pool[held]))

    common.say(common.table("build and size", [
        "chunks (embeddings)", "chunks", "sentences", "dense", "build s", "est. real build s", "build peak MB",
        "disk MB", "of it vectors MB", "serving RSS MB", "index load s"], builds))
    common.say(common.table("warm query latency (ms)", [
        "chunks", "e2e p50", "e2e p95", "FAISS p50", "BM25 p50", "sentence p50", "answer p50", "torch floor p50",
        "e2e - torch floor p50"], latencies))
    rows = []
    for label, a, reused in anns + ([("pooled REAL vectors", real_ann, False)] if real_ann else []):
        for ef, r in a["ef"].items():
            rows.append([label, a["n"], a["flat"][0], a["flat"][1], ef, r["ms"][0], r["ms"][1], r["recall"],
                         "(from build)" if reused else a["hnsw_build_s"]])
    common.say(common.table("flat vs HNSW (M 32, efConstruction 200), one query at a time, k 30", [
        "set", "vectors", "flat p50 ms", "flat p95 ms", "efSearch", "hnsw p50 ms", "hnsw p95 ms", "recall@10",
        "hnsw build s"], rows))
    common.print_footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
