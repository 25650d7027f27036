"""Sweeps: every combination of a grid of settings, run in worker processes (or on a Dask
cluster), one JSON Lines file per run plus a summary.

A run's identity is a hash of its full effective config (seed included) and its steps; a
sweep run again skips only the runs whose identity and file match an earlier one, so an
interrupted sweep picks up where it stopped and a changed `--set`, `--steps` or seed reruns.
An earlier run's records are never overwritten by a run of another identity: they are kept
beside it as `<run>.<identity>.jsonl`, and a later sweep with that identity takes them back.
Every run ends with an outcome (ok, diverged at step k, stopped early, plugin error, error);
one failing run never stops the others.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeGuard

from nnsim.compare import parse_vary, variants
from nnsim.config import Config, read_toml_text
from nnsim.errors import NnsimError
from nnsim.engine.writers import restore_nonfinite
from nnsim.formatting import fmt, human, number

SUMMARY_FIELDS = ("run", "id", "steps", "lr", "loss", "accuracy", "val_loss", "val_accuracy",
                  "outcome", "seconds")
MANIFEST = "sweep.json"
#: environment variables that size the BLAS/OpenMP thread pools, read when numpy loads
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS")


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep: the finished runs are kept (files, sweep.json, summary.csv)."""

    def __init__(self, done: int, total: int, out: Path) -> None:
        super().__init__(f"{done} of {total} runs finished")
        self.done, self.total, self.out = done, total, out


@dataclass
class RunSummary:
    run: str
    steps: int
    loss: float | None
    accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    outcome: str
    seconds: float
    skipped: bool = False
    id: str = ""
    lr: float | None = None
    #: the file an earlier run of another identity was moved to, to make way for this one
    kept: str = ""

    @property
    def state(self) -> str:  # the name this field had before outcomes were recorded
        return self.outcome


def slug(label: str) -> str:
    """A file name for a run label: 'activation=relu lr=0.1' -> 'activation-relu_lr-0.1'."""
    text = label.replace("=", "-").replace(" ", "_")
    return re.sub(r"[^A-Za-z0-9._+-]+", "", text) or "run"


def failed(outcome: str) -> bool:
    """Whether an outcome is a failure (run again by the next sweep), not a result."""
    return outcome.startswith(("error", "plugin error"))


def run_id(config_toml: str, steps: int) -> str:
    """A run's identity: the hash of its full effective config (seed included) and steps."""
    return hashlib.sha256(f"{config_toml}\n# steps = {steps}\n".encode()).hexdigest()[:16]


def one_line(text: object, limit: int = 300) -> str:
    """A message as one line of at most `limit` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _summary(label: str, lines: Sequence[str], seconds: float, outcome: str | None = None,
             skipped: bool = False, ident: str = "") -> RunSummary:
    records = []
    for line in lines:
        if line.strip():
            try:
                records.append(restore_nonfinite(json.loads(line)))
            except ValueError:
                break  # a torn last line: keep what was whole
    last = records[-1] if records else {}
    evals = [r for r in records if r.get("val_loss") is not None]
    val = evals[-1] if evals else {}
    if outcome is None:
        outcome = (f"diverged at step {last.get('step')}: non-finite {last['nonfinite']}"
                   if last.get("nonfinite") else "ok")
    return RunSummary(label, int(last.get("step", 0)), number(last.get("loss")),
                      number(last.get("accuracy")), number(val.get("val_loss")),
                      number(val.get("val_accuracy")), outcome, seconds, skipped, ident,
                      number(last.get("lr")))


@contextlib.contextmanager
def _blas_threads(threads: int) -> Iterator[None]:
    """Limit the BLAS thread pools of this process to `threads` (0: leave them alone)."""
    if threads <= 0:
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the pool's environment limited them before numpy was imported
        yield
        return
    with threadpool_limits(limits=threads):
        yield


def run_one(label: str, config_toml: str, steps: int, threads: int = 0
            ) -> tuple[str, list[str], float, str]:
    """Train one configuration (in a worker process): (label, records as JSON lines,
    seconds, outcome). A failure is an outcome, with the records written until then.

    Only plain values cross the process boundary, so any executor works, Dask's included.
    """
    from nnsim.engine.simulation import Simulation
    from nnsim.errors import PluginError

    start = time.perf_counter()
    lines: list[str] = []
    if _STOP is not None and _STOP.is_set():  # queued before Ctrl-C: not begun at all
        return label, lines, 0.0, "interrupted at step 0"
    with _blas_threads(threads):
        try:
            sim = Simulation(Config.from_dict(read_toml_text(config_toml, label)))
            stop = _STOP
            interrupted = False
            clock = time.perf_counter
            looked = clock()
            for record in sim.steps(steps):
                lines.append(json.dumps(record.to_dict(), separators=(",", ":")))
                if stop is not None and clock() - looked >= STOP_LOOK:
                    looked = clock()
                    if stop.is_set():
                        interrupted = True
                        break
            if interrupted:
                outcome = f"interrupted at step {sim.step_count}"
            elif sim.divergence is not None:
                outcome = str(sim.divergence)
            elif sim.stopped is not None:
                outcome = f"stopped early at step {sim.step_count}"
            else:
                outcome = "ok"
        except PluginError as exc:
            outcome = one_line(f"plugin error: {exc}")
        except (Exception, SystemExit, KeyboardInterrupt) as exc:  # noqa: BLE001 — one run's
            # failure is its outcome (workers ignore SIGINT: a KeyboardInterrupt is not Ctrl-C)
            outcome = one_line(f"error: {exc.__class__.__name__}: {exc}")
    return label, lines, time.perf_counter() - start, outcome


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise NnsimError(f"{path}: cannot write ({exc.strerror or exc}); check the free space "
                         f"and permissions of {path.parent}") from None


#: in a worker of the local pool: the parent's stop flag (a multiprocessing Event), which
#: each run checks between steps
_STOP: Any = None
#: how often (in seconds, at the end of a step) a run looks at the stop flag: by time, not
#: steps, so that a run of large steps stops as soon as a run of small ones
STOP_LOOK = 0.05


def init_worker(stop: Any = None) -> None:
    """In workers: Ctrl-C is the parent's to handle. It sets `stop`; each run sees it at its
    next check and returns, so that no worker is killed while it sends a result (a result
    cut in half leaves the pool's reader, and so the parent's exit, waiting forever)."""
    global _STOP
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's handler, if inherited
    _STOP = stop


def _older_sweep(out: Path, entries: list[str]) -> bool:
    """Whether a folder without a manifest is a sweep folder of an earlier nnsim: only its
    runs' records and a summary.csv with the summary's own header (a user's summary.csv
    is never overwritten)."""
    if "summary.csv" not in entries or not all(
            e == "summary.csv" or e.endswith(".jsonl") for e in entries):
        return False
    try:
        with open(out / "summary.csv", encoding="utf-8") as f:
            header = f.readline().strip()
    except (OSError, UnicodeDecodeError):
        return False
    fields = header.split(",")
    # the summary's own columns (this version's, or an earlier one's: 'state' for 'outcome')
    return fields[0] == "run" and "loss" in fields and set(fields) <= {*SUMMARY_FIELDS, "state"}


def _reusable(entry: Any, ident: str, path: Path) -> TypeGuard[dict[str, Any]]:
    """Whether a manifest entry is a finished run of identity `ident` with its file."""
    return (isinstance(entry, dict) and entry.get("id") == ident and path.exists()
            and not failed(str(entry.get("outcome") or "")))


def _keep_aside(out: Path, name: str, manifest: dict[str, Any]) -> str:
    """Move the records of run `name`, when it has some, to `<name>.<its identity>.jsonl`
    (a file of an older nnsim, with no identity: the hash of its bytes), with its manifest
    entry; returns the new file name, or "" when there was nothing to keep."""
    path = out / f"{name}.jsonl"
    entry = manifest.get(name)
    try:
        ident = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(ident, str) or not re.fullmatch(r"[0-9a-f]{16}", ident):
            ident = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        aside = out / f"{name}.{ident}.jsonl"
        os.replace(path, aside)
    except FileNotFoundError:
        manifest.pop(name, None)
        return ""
    except OSError as exc:
        raise NnsimError(f"{path}: cannot keep the earlier run's records aside "
                         f"({exc.strerror or exc}); check the permissions of {out}") from None
    manifest[f"{name}.{ident}"] = manifest.pop(name, None) or {"run": name, "id": ident}
    _write_manifest(out, manifest)
    return aside.name


def _prepare_folder(out: Path) -> dict[str, Any]:
    """Create or check the sweep folder; returns the manifest of earlier runs."""
    if out.exists() and not out.is_dir():
        raise NnsimError(f"--out {out}: is a file; give a folder (new, empty, or an earlier "
                         f"sweep's)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NnsimError(f"--out {out}: cannot create the sweep folder "
                         f"({exc.strerror or exc}); give a folder you can write") from None
    manifest_path = out / MANIFEST
    try:
        entries = [p.name for p in out.iterdir()]
    except OSError as exc:
        raise NnsimError(f"--out {out}: cannot read the folder ({exc.strerror or exc})") \
            from None
    if entries and MANIFEST not in entries and not _older_sweep(out, entries):
        raise NnsimError(f"--out {out}: holds {len(entries)} other file(s) and no {MANIFEST}, "
                         f"so it is not a sweep folder; give a new or empty folder")
    probe = out / f".nnsim-write-test.{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise NnsimError(f"--out {out}: cannot write in the sweep folder "
                         f"({exc.strerror or exc}); give a folder you can write") from None
    manifest: dict[str, Any] = {}
    if manifest_path.exists():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = {}
    runs = manifest.get("runs") if isinstance(manifest, dict) else None
    return runs if isinstance(runs, dict) else {}


def _write_manifest(out: Path, runs: dict[str, Any]) -> None:
    _write_atomic(out / MANIFEST, json.dumps({"nnsim": "sweep", "runs": runs}, indent=1))


def _write_csv(out: Path, summaries: Sequence[RunSummary]) -> None:
    tmp = out / f".summary.csv.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS, extrasaction="ignore")
            writer.writeheader()
            for s in summaries:
                writer.writerow({k: "" if v is None else v for k, v in asdict(s).items()})
        os.replace(tmp, out / "summary.csv")
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise NnsimError(f"{out / 'summary.csv'}: cannot write ({exc.strerror or exc})") \
            from None


def threads_per_worker(jobs: int) -> int:
    """BLAS threads each of `jobs` workers may use so that together they fill the cores."""
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


@contextlib.contextmanager
def _thread_environment(threads: int) -> Iterator[None]:
    """The BLAS thread variables set while worker processes start (they inherit them and
    read them when they import numpy); restored afterwards."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _local_pool(jobs: int) -> tuple[ProcessPoolExecutor, Any]:
    """A process pool of `jobs` workers, and the stop flag its runs check."""
    import multiprocessing

    try:
        import threadpoolctl  # noqa: F401 — workers limit their pools themselves
        method = None
    except ImportError:
        method = "spawn"  # fresh interpreters: the thread variables apply before numpy loads
    context = multiprocessing.get_context(method)
    stop = context.Event()
    return ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=context,
                               initializer=init_worker, initargs=(stop,)), stop


def _stop_workers(pool: Executor, stop: Any, futures: Sequence[Future]) -> None:
    """End a local pool's runs now: queued ones are cancelled, in-flight ones stop at their
    next check of `stop` and are dropped (finished ones are kept). A worker still busy after
    `STOP_SECONDS` (a step longer than that) is terminated."""
    stop.set()
    for future in futures:
        future.cancel()
    _, busy = wait(futures, timeout=STOP_SECONDS)
    if busy:
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            with contextlib.suppress(Exception):
                process.terminate()
    pool.shutdown(wait=not busy, cancel_futures=True)


#: how long Ctrl-C waits for in-flight runs to stop before their workers are terminated
STOP_SECONDS = 2.0


def sweep(base: Config, grid: Sequence[str], steps: int, out_dir: str | Path,
          executor: Executor | None = None, jobs: int = 1,
          progress: Callable[[int, int, RunSummary], None] | None = None,
          fixed: Sequence[tuple[str, Any]] = ()) -> list[RunSummary]:
    """Run every combination of `grid` (KEY=V1,V2 strings) on top of `base`, with the
    overrides `fixed` applied to each (see `compare.variants`).

    Runs finished earlier with the same identity (config, seed and steps) are read back,
    not rerun; runs that failed (plugin error, error) are run again. Results are written as
    `<run>.jsonl` in `out_dir`, with `sweep.json` (each run's identity and outcome) and
    `summary.csv`; summaries come back in grid order. A run's file that holds a run of
    another identity is first moved aside to `<run>.<identity>.jsonl` (`RunSummary.kept`).
    Ctrl-C raises SweepInterrupted after keeping every finished run.
    """
    out = Path(out_dir).expanduser()
    runs = variants(base, parse_vary(grid, "--grid"), fixed=fixed)
    earlier = _prepare_folder(out)
    names = {label: slug(label) for label, _ in runs}
    if len(set(names.values())) != len(names):
        raise NnsimError("two runs of the grid map to one file name; use distinct values")
    tomls = {label: config.to_toml() for label, config in runs}
    ids = {label: run_id(tomls[label], steps) for label, _ in runs}
    manifest = dict(earlier)
    summaries: dict[str, RunSummary] = {}
    done = 0
    kept: dict[str, str] = {}  # label: where an earlier run of another identity went
    for label, _ in runs:
        name = names[label]
        path = out / f"{name}.jsonl"
        entry = earlier.get(name)
        aside = manifest.get(f"{name}.{ids[label]}")
        if not _reusable(entry, ids[label], path) and _reusable(aside, ids[label],
                                                                out / f"{name}.{ids[label]}.jsonl"):
            # this identity ran in an earlier sweep and was kept aside: back into place
            kept[label] = _keep_aside(out, name, manifest)
            os.replace(out / f"{name}.{ids[label]}.jsonl", path)
            entry = manifest[name] = manifest.pop(f"{name}.{ids[label]}")
            _write_manifest(out, manifest)
        if _reusable(entry, ids[label], path):
            summaries[label] = _summary(label, path.read_text(encoding="utf-8").splitlines(),
                                        float(entry.get("seconds") or 0.0),
                                        str(entry.get("outcome") or "ok"), True, ids[label])
            summaries[label].kept = kept.get(label, "")
            done += 1
            if progress:
                progress(done, len(runs), summaries[label])
    todo = [label for label, _ in runs if label not in summaries]
    jobs = max(1, min(jobs, len(todo)))  # no more workers than runs to do
    threads = threads_per_worker(jobs) if executor is None else 0
    own = executor is None and bool(todo)
    stop = None
    pool: Any = executor  # None only if no todo
    if pool is None and todo:
        pool, stop = _local_pool(jobs)

    def finish() -> list[RunSummary]:
        ordered = [summaries[label] for label, _ in runs if label in summaries]
        _write_csv(out, ordered)
        return ordered

    try:
        futures: dict[Future, str] = {}
        if todo:
            with _thread_environment(threads) if own else contextlib.nullcontext():
                for label in todo:
                    futures[pool.submit(run_one, label, tomls[label], steps, threads)] = label
        for future in as_completed(futures):
            label = futures[future]
            try:
                _, lines, seconds, outcome = future.result()
            except Exception as exc:  # noqa: BLE001 — the worker itself died
                lines, seconds = [], 0.0
                outcome = one_line(f"error: {exc.__class__.__name__}: {exc}")
            entry = manifest.get(names[label])
            if not isinstance(entry, dict) or entry.get("id") != ids[label]:
                kept[label] = _keep_aside(out, names[label], manifest)
            _write_atomic(out / f"{names[label]}.jsonl", "".join(line + "\n" for line in lines))
            summaries[label] = _summary(label, lines, seconds, outcome, ident=ids[label])
            summaries[label].kept = kept.get(label, "")
            manifest[names[label]] = {"run": label, "id": ids[label], "steps": steps,
                                      "outcome": outcome, "seconds": round(seconds, 3)}
            _write_manifest(out, manifest)
            done += 1
            if progress:
                progress(done, len(runs), summaries[label])
    except KeyboardInterrupt:
        if own:
            _stop_workers(pool, stop, list(futures))
            own = False
        else:
            for future in futures:
                future.cancel()
        finish()
        raise SweepInterrupted(done, len(runs), out) from None
    finally:
        if own:
            pool.shutdown(cancel_futures=True)
    return finish()


def summary_table(summaries: Sequence[RunSummary]) -> str:
    width = max([len(s.run) for s in summaries] + [3]) + 2
    lines = [f"{'run':<{width}}{'steps':>7}{'lr':>9}{'loss':>10}{'acc':>8}{'val_loss':>10}"
             f"{'val_acc':>9}  outcome"]
    for s in summaries:
        lines.append(f"{s.run:<{width}}{human(s.steps):>7}{human(s.lr, 3):>9}"
                     f"{human(s.loss):>10}{fmt(s.accuracy, '.3f'):>8}{human(s.val_loss):>10}"
                     f"{fmt(s.val_accuracy, '.3f'):>9}  {s.outcome}"
                     + ("  (from an earlier sweep)" if s.skipped else ""))
    return "\n".join(lines)


#: a Dask scheduler's address: protocol://host[:port], the host a name, IPv4 or [IPv6]
SCHEDULER = re.compile(r"(tcp|tls|ucx|ws|wss)://([^\s/:\[\]]+|\[[0-9A-Fa-f:.]+\])(:\d{1,5})?/?")


def dask_client(address: str):
    """A client of an existing Dask cluster (needs nnsim[dask]); its `get_executor()` is a
    concurrent.futures executor for `sweep`. Close it when done."""
    if not SCHEDULER.fullmatch(address or ""):
        raise NnsimError(f"--scheduler: expected tcp://HOST:PORT (e.g. tcp://127.0.0.1:8786), "
                         f"got {one_line(repr(address), 80)}")
    try:
        from distributed import Client
    except ImportError:
        raise NnsimError("--scheduler needs dask.distributed: pip install 'nnsim[dask]'") from None
    try:
        client = Client(address, timeout="5s")
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        raise NnsimError(f"--scheduler {address}: cannot reach the Dask scheduler "
                         f"({one_line(exc, 200)})") from None
    return client
