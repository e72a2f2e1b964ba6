"""Helpers shared by the bench scripts: timing summaries, tables, child processes, corpora.

Nothing here changes the library; the scripts call its public functions (and,
where a stage must be isolated, a few private helpers, said where used).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import socket
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

CORPUS = ROOT / "corpus"
OUT = ROOT / "bench" / "out"
QUESTION_SETS = ROOT / "eval" / "sets"
# health-web.jsonl is about these saved pages, not corpus/ (eval/README.md); the folder's README is no article.
WEB_PAGES = ROOT / "tests" / "fixtures" / "web"


# --------------------------------------------------------------------------- numbers


def pct(samples: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples, dtype=float), q)) if len(samples) else float("nan")


def ms_summary(samples: Sequence[float]) -> tuple[float, float, float, int]:
    """(p50, p95, mean, n) in milliseconds of samples in seconds."""
    a = np.asarray(samples, dtype=float) * 1000.0
    return pct(a, 50), pct(a, 95), float(a.mean()) if len(a) else float("nan"), len(a)


def fmt(value: object, digits: int = 2) -> str:
    if isinstance(value, float):
        if value != value:
            return "nan"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def table(title: str, headers: Sequence[str], rows: Iterable[Sequence[object]], digits: int = 2) -> str:
    """A plain, aligned text table (first column left, numbers right)."""
    body = [[fmt(c, digits) for c in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in body)) if body else len(str(h)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(  # noqa: E731
        (c.ljust(w) if i == 0 else c.rjust(w)) for i, (c, w) in enumerate(zip(cells, widths)))
    out = [f"== {title}", line([str(h) for h in headers]), line(["-" * w for w in widths])]
    out += [line(r) for r in body]
    return "\n".join(out)


def say(text: str = "") -> None:
    print(text, flush=True)


def note(text: str) -> None:
    """Progress chatter: to stderr, so stdout holds only the figures."""
    print(text, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- machine


def machine_lines() -> list[str]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return [
        f"date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"machine: {os.cpu_count()} CPU cores ({cpu or platform.machine()}), no GPU; "
        f"python {platform.python_version()}; niceness {os.nice(0)}",
        f"load average at start (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (shared machine)",
    ]


def print_header(name: str, extra: Sequence[str] = ()) -> None:
    say(f"# bench/{name}")
    for line in [*machine_lines(), *extra]:
        say(f"# {line}")


def print_footer() -> None:
    load = os.getloadavg()
    say(f"# load average at end (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


# --------------------------------------------------------------------------- model, corpus


@functools.lru_cache(maxsize=4)
def embedder(model: str | None = None, batch_size: int = 32, threads: int = 2):
    """One loaded model per process and configuration (the smoke tests share it)."""
    from qa.models.embedding import Embedder
    from qa.settings import DEFAULT_MODEL
    return Embedder(model or DEFAULT_MODEL, batch_size, threads)


def models_dir(work: Path) -> Path:
    """The tuned models and ONNX exports of a bench's indexes (Settings.tuned_dir): shared by all of them."""
    return Path(work) / "models"


def default_export(work: Path):
    """The packaged model's ONNX export in `models_dir(work)`, made now unless it is there: what a build with a
    stand-in embedder (substituted or recorded vectors) names for its questions. Loads torch only to make it."""
    from qa.models import export
    from qa.settings import Settings

    settings = Settings(index_dir=Path(work) / "index", tuned_dir=models_dir(work))
    made = export.ensure(settings, embedder(), note)
    if made is None:
        raise SystemExit("the packaged model could not be exported to ONNX")
    return made


def torch_floor(model: str, threads: int):
    """The model on sentence-transformers (torch), on `threads` threads: what questions cost before ONNX."""
    from qa.models.embedding import Embedder
    return Embedder(model, threads=threads).torch_model()


@contextlib.contextmanager
def busy(on: bool = True) -> Iterator[None]:
    """Another CPU-bound process holding a core for the duration (a shared machine), or nothing."""
    if not on:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        yield
    finally:
        spinner.kill()  # only the child started here
        spinner.wait()


def prepare_corpus(folder: Path, size: int | None, seed: int = 0) -> dict:
    """The real articles copied to `folder` (size None), or a synthetic corpus of about `size` chunks."""
    if size is None:
        shutil.copytree(CORPUS, folder)
        return {"kind": "real corpus/ (5 articles)", "articles": len(list(folder.iterdir()))}
    from bench import synth
    stats = synth.generate(folder, size, seed=seed)
    stats["kind"] = f"synthetic, seed {seed}"
    return stats


def question_sets() -> dict[str, str]:
    """Every labelled set of eval/sets/, by name, with the corpus it is about: "corpus" or "web" (the saved
    web pages: health-web.jsonl and its development set, health-web-dev.jsonl)."""
    return {p.stem: "web" if p.stem.startswith("health-web") else "corpus"
            for p in sorted(QUESTION_SETS.glob("*.jsonl"))}


def copy_corpus(which: str, folder: Path) -> Path:
    """A copy of corpus/ ("corpus") or of the saved web pages ("web") in `folder`, which must not exist."""
    if which == "web":
        folder.mkdir(parents=True)
        for page in WEB_PAGES.glob("*.html"):
            shutil.copy2(page, folder / page.name)
    else:
        shutil.copytree(CORPUS, folder)
    return folder


def load_set(name: str):
    """The questions of eval/sets/NAME.jsonl as qa.evaluation.evaluate.Question (a line without a kind gets "question")."""
    from qa.evaluation.evaluate import Question
    rows = [json.loads(line) for line in (QUESTION_SETS / f"{name}.jsonl").read_text().splitlines() if line.strip()]
    return [Question(r["id"], r.get("kind", "question"), r["question"], tuple(r.get("history") or ()),
                     r.get("source"), tuple(r.get("evidence") or ())) for r in rows]


def workdir(keep: str | None = None) -> Path:
    """A temporary folder for corpora and indexes (never /work/main/index)."""
    if keep:
        path = Path(keep)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return Path(tempfile.mkdtemp(prefix="qa-bench-"))


@contextlib.contextmanager
def scratch(keep: str | None = None) -> Iterator[Path]:
    """`workdir(keep)`, removed afterwards unless the caller named it (`--workdir`)."""
    path = workdir(keep)
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def chunks_of(folder: Path):
    """The chunks a build makes of the articles in `folder`, with the default settings."""
    from qa.reading.chunking import chunk_articles
    from qa.reading.corpus import load_corpus
    from qa.settings import Settings
    settings = Settings(corpus_dir=folder)
    return chunk_articles(load_corpus(folder, settings).articles, settings)


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


# --------------------------------------------------------------------------- child processes


def child_env() -> dict[str, str]:
    """The environment of a child (`python -m qa`, `python app.py`): only its flags choose the
    corpus, index, model, host, port and feedback database; unbuffered output; no telemetry."""
    env = dict(os.environ)
    env.update(TRANSFORMERS_VERBOSITY="error", TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1",
               GRADIO_ANALYTICS_ENABLED="False", HF_HUB_DISABLE_TELEMETRY="1")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for name in ("QA_MODEL", "QA_CORPUS_DIR", "QA_INDEX_DIR", "QA_HOST", "QA_PORT", "QA_FEEDBACK_DB"):
        env.pop(name, None)
    return env


# --------------------------------------------------------------------------- the app as a child
# Used by bench/concurrency.py and by the tests (tests/app_server.py).

APP_START_TIMEOUT = 180  # s: loading the model and building the index, on 2 cores


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_command(port: int, index_dir: Path, corpus_dir: Path | None = None,
                feedback_db: Path | None = None) -> list[str]:
    command = [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--host", "127.0.0.1",
               "--index", str(index_dir)]
    command += ["--feedback-db", str(feedback_db)] if feedback_db is not None else []
    return command + (["--corpus", str(corpus_dir)] if corpus_dir is not None else [])


@dataclass
class AppProcess:
    """A running app: one we started (process, log), or one at a given URL (neither)."""

    url: str
    index_dir: Path | None = None
    log_path: Path | None = None
    process: subprocess.Popen | None = None
    owned_dir: Path | None = None  # removed by stop(): a temporary folder made for this app
    feedback_db: Path | None = None  # where its votes and unanswered questions go (never the project's data/)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:] if self.log_path else ""
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # only the child we started
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        if self.owned_dir is not None:
            shutil.rmtree(self.owned_dir, ignore_errors=True)


def start_app(workdir: Path, index_dir: Path | None = None, corpus_dir: Path | None = None,
              timeout: float = APP_START_TIMEOUT) -> AppProcess:
    """Start `python app.py` on a free 127.0.0.1 port and return once its page answers 200."""
    port = free_port()
    index_dir = index_dir or workdir / "index"
    log_path = workdir / "app.log"
    feedback_db = workdir / "feedback.sqlite3"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(app_command(port, index_dir, corpus_dir, feedback_db), cwd=ROOT, env=child_env(),
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    app = AppProcess(f"http://127.0.0.1:{port}/", index_dir, log_path, process, feedback_db=feedback_db)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with code {process.returncode} before serving:\n{app.log_tail()}")
        try:
            with urllib.request.urlopen(app.url, timeout=2) as response:
                if response.status == 200:
                    return app
        except OSError:
            pass
        if time.monotonic() > deadline:
            tail = app.log_tail()
            app.stop()
            raise RuntimeError(f"app.py did not serve {app.url} within {timeout:.0f} s:\n{tail}")
        time.sleep(0.5)


def live_manifest(index_dir: Path) -> dict | None:
    """The live generation's manifest, or None when there is none (yet)."""
    try:
        name = (Path(index_dir) / "CURRENT").read_text().strip()
        return json.loads((Path(index_dir) / name / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def wait_for_tuned_index(app: AppProcess, timeout: float = APP_START_TIMEOUT) -> None:
    """Until the app's live index is embedded with the tuned model. A fresh app answers with the model as it
    ships first and builds the tuned generation in the background (qa/serving/startup.py); a measurement that
    compares answers must not see the swap."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        manifest = live_manifest(app.index_dir)
        if manifest and (manifest.get("model") or {}).get("tuned"):
            return
        if app.process is not None and app.process.poll() is not None:
            raise RuntimeError(f"app.py exited while building:\n{app.log_tail()}")
        time.sleep(0.5)
    raise RuntimeError(f"app.py did not make the tuned index live within {timeout:.0f} s:\n{app.log_tail()}")


def run_child(cmd: Sequence[str], timeout: float = 7200, env: dict[str, str] | None = None,
              code: Path | None = None) -> dict:
    """Run one child; wall seconds, peak RSS (MB, ru_maxrss of that child via wait4), exit code, output.
    `env`: variables set on top of child_env() (e.g. QA_TUNED_DIR); `code`: another checkout to run instead."""
    environment = {**child_env(), **(env or {})}
    if code is not None:
        environment["PYTHONPATH"] = str(code)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=code or ROOT, env=environment, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return {"seconds": wall, "max_rss_mb": usage.ru_maxrss / 1024.0, "returncode": proc.returncode,
                "user_s": usage.ru_utime, "sys_s": usage.ru_stime,
                "stdout": out.read().decode(errors="replace"), "stderr": err.read().decode(errors="replace")}


def check(result: dict, what: str) -> dict:
    if result["returncode"] != 0:
        raise SystemExit(f"{what} failed (exit {result['returncode']}):\n{result['stderr'][-3000:]}")
    return result
