"""A first start on a fresh machine: `python app.py` with no index and no tuned model or export, to the first answer.

    python -m bench.first_start [--modes quiet,busy] [--questions 20] [--workdir DIR] [--reference DIR]

Per mode, in a new work folder (a copy of corpus/, an empty index folder and an
empty models folder as QA_TUNED_DIR: nothing built, trained or exported):

1. `python app.py` starts; a gradio_client asks "does naloxone reverse
   ketamine" on /chat as soon as the port answers (a question asked while
   the engine builds waits for it). First answer: seconds from Popen to that
   reply; which model the live index had then (the manifest's tuned key).
   Targets: at most 20 s on a quiet machine, at most 45 s with another
   CPU-bound process running ("busy": `python -c "while True: pass"` for the
   whole run).
2. Tuned answers: seconds until the live index names the tuned model (the
   background build's swap), and until a question is answered from it.
3. Memory while the builds run: the resident memory of the page, its engine
   and the build processes (the fine-tuning's too) together, sampled every
   0.25 s; its peak (VmRSS summed, and Pss summed: shared pages counted
   once) until the first answer (the first build), and from then until the
   tuned model is live (while the tuned model is prepared; target, issue
   23: at most 1.5 GB).
4. Memory: after the background build process has exited, 20 questions
   (eval/sets/dev.jsonl, with their histories), then the resident memory of
   the page's process and its engine process together (VmRSS summed, and Pss
   summed, which counts shared pages once). Target: at most 700 MB.
The app's log says which state it was in when; its status lines are copied.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

from bench import common

ROOT = Path(__file__).resolve().parent.parent

QUESTION = "does naloxone reverse ketamine"


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo += children.get(current, [])
    return out


def memory_mb(pids: list[int]) -> tuple[float, float]:
    """(VmRSS summed, Pss summed) in MB."""
    rss = pss = 0
    for pid in pids:
        try:
            rss += next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                        if line.startswith("VmRSS:"))
            pss += next(int(line.split()[1]) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
                        if line.startswith("Pss:"))
        except (OSError, StopIteration):
            continue
    return rss / 1024, pss / 1024


class PeakMemory:
    """The peak of `memory_mb` over a process and everything below it, sampled in a thread, per period:
    `next_period()` starts the next one, `stop()` returns [(peak VmRSS, peak Pss)] by period."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        self.peaks = [(0.0, 0.0)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(pid, every), daemon=True)
        self._thread.start()

    def _run(self, pid: int, every: float) -> None:
        while not self._stop.wait(every):
            rss, pss = memory_mb(descendants(pid))
            peak = self.peaks[-1]
            self.peaks[-1] = (max(peak[0], rss), max(peak[1], pss))

    def next_period(self) -> None:
        self.peaks.append((0.0, 0.0))

    def stop(self) -> list[tuple[float, float]]:
        self._stop.set()
        self._thread.join()
        return self.peaks


def one_start(work: Path, busy: bool, questions, timeout: float = 600, code: Path = ROOT) -> dict:
    """A first start of the page of the checkout `code` in `work`; `busy`: with a CPU-bound process beside it."""
    from gradio_client import Client

    corpus, index, models = work / "corpus", work / "index", work / "models"
    shutil.copytree(common.CORPUS, corpus)
    port = common.free_port()
    url = f"http://127.0.0.1:{port}/"
    log_path = work / "app.log"
    with common.busy(busy), open(log_path, "w") as log:
        started = time.perf_counter()
        command = common.app_command(port, index, corpus, work / "feedback.sqlite3")
        command[1] = str(code / "app.py")
        process = subprocess.Popen(command, cwd=code, env={**common.child_env(), "QA_TUNED_DIR": str(models),
                                                           "PYTHONPATH": str(code)},
                                   stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        app = common.AppProcess(url, index, log_path, process)
        peak = PeakMemory(process.pid)
        try:
            client = None
            while client is None:
                if process.poll() is not None or time.perf_counter() - started > timeout:
                    raise SystemExit(f"app.py did not serve:\n{app.log_tail()}")
                try:
                    client = Client(url, verbose=False)
                except Exception:  # noqa: BLE001 - not serving yet
                    time.sleep(0.2)
            port_open = time.perf_counter() - started
            reply = client.predict(QUESTION, api_name="/chat")
            # A page whose engine is still loading says so after its own wait (the torch code's first start
            # fine-tunes first); ask again until it answers.
            while "still loading" in reply and time.perf_counter() - started < timeout:
                reply = client.predict(QUESTION, api_name="/chat")
            first = time.perf_counter() - started
            peak.next_period()
            first_model = "tuned" if (common.live_manifest(index) or {}).get("model", {}).get("tuned") else "base"
            if "does not reverse" not in reply:
                raise SystemExit(f"unexpected first answer: {reply[:300]}")
            common.wait_for_tuned_index(app, timeout)
            tuned_live = time.perf_counter() - started
            (first_rss, first_pss), (peak_rss, peak_pss) = peak.stop()
            client.predict(QUESTION, api_name="/chat")
            tuned_answer = time.perf_counter() - started
            # The background build process has made its last generation live; wait for it to exit.
            deadline = time.monotonic() + 60
            while len(descendants(process.pid)) > 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            chat = Client(url, verbose=False)
            for q in questions:
                chat.predict(q.question, api_name="/chat")
            pids = descendants(process.pid)
            rss, pss = memory_mb(pids)
        finally:
            peak.stop()
            app.stop()
    states = [line for line in log_path.read_text(errors="replace").splitlines()
              if line.startswith(("No index", "Building with", "Built ", "fine-tun", "exporting", "Ready"))]
    return {"port_open": port_open, "first_answer": first, "first_model": first_model, "tuned_live": tuned_live,
            "tuned_answer": tuned_answer, "rss_mb": rss, "pss_mb": pss, "peak_rss_mb": peak_rss,
            "peak_pss_mb": peak_pss, "first_rss_mb": first_rss, "first_pss_mb": first_pss, "processes": len(pids), "log": states}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A first start on a fresh machine, to the first answer.")
    parser.add_argument("--modes", default="quiet,busy", help="quiet, busy, or both (default quiet,busy)")
    parser.add_argument("--questions", type=int, default=20, help="questions asked before memory is read")
    parser.add_argument("--workdir", help="folder for the runs (default: a new temp folder)")
    parser.add_argument("--reference", help="another checkout (e.g. the code before ONNX) whose first start runs "
                                            "right after this code's, in each mode")
    args = parser.parse_args(argv)
    from qa.evaluation.evaluate import DEFAULT_QUESTIONS, load_questions

    questions = load_questions(DEFAULT_QUESTIONS)[:args.questions]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    common.print_header("first_start.py", [f"modes {modes}; a fresh corpus copy, index and models folder each; "
                                           f"{len(questions)} questions before memory is read"])
    rows, notes = [], []
    with common.scratch(args.workdir) as work:
        codes = [("this", ROOT)] + ([("reference", Path(args.reference).resolve())] if args.reference else [])
        for mode in modes:
            for name, code in codes:
                common.note(f"first start, {mode}, {name}")
                load = common.os.getloadavg()[0]
                result = one_start(work / f"{mode}-{name}", mode == "busy", questions, code=code)
                rows.append([f"{mode}, {name}", load, result["port_open"], result["first_answer"],
                             result["first_model"], result["tuned_live"], result["tuned_answer"], result["rss_mb"],
                             result["pss_mb"], f"{result['first_rss_mb']:,.0f} / {result['first_pss_mb']:,.0f}",
                             f"{result['peak_rss_mb']:,.0f} / {result['peak_pss_mb']:,.0f}",
                             "<= 20 s" if mode == "quiet" else "<= 45 s"])
                notes += [f"{mode}, {name}: {line}" for line in result["log"]]
    common.say(common.table("first start on a fresh machine, seconds from `python app.py`", [
        "mode", "load at start", "port open", "first answer", "answered by", "tuned live", "tuned answer",
        "RSS MB (page+engine)", "PSS MB", "peak RSS / PSS MB, all processes, to the first answer",
        "peak RSS / PSS MB while the tuned model is prepared (target <= 1,500)",
        "target first answer"], rows))
    common.say("== the app's log: its states\n" + "\n".join(notes))
    common.print_footer()
    return 0


if __name__ == "__main__":
    sys.exit(main())
