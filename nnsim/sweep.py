"""Sweeps: every combination of a grid of settings, run in worker processes (or on a Dask
cluster), one JSON Lines file per run plus a summary. A sweep run again skips the runs whose
file is complete, so an interrupted sweep picks up where it stopped.
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nnsim.compare import parse_vary, variants
from nnsim.config import Config, read_toml_text
from nnsim.errors import NnsimError

SUMMARY_FIELDS = ("run", "steps", "loss", "accuracy", "val_loss", "val_accuracy", "state",
                  "seconds")


@dataclass
class RunSummary:
    run: str
    steps: int
    loss: float | None
    accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    state: str
    seconds: float
    skipped: bool = False


def slug(label: str) -> str:
    """A file name for a run label: 'activation=relu lr=0.1' -> 'activation-relu_lr-0.1'."""
    text = label.replace("=", "-").replace(" ", "_")
    return re.sub(r"[^A-Za-z0-9._+-]+", "", text) or "run"


def _summary(label: str, lines: Sequence[str], seconds: float, skipped: bool = False
             ) -> RunSummary:
    records = [json.loads(line) for line in lines if line.strip()]
    last = records[-1] if records else {}
    evals = [r for r in records if r.get("val_loss") is not None]
    val = evals[-1] if evals else {}
    state = f"diverged: {last['nonfinite']}" if last.get("nonfinite") else "ok"
    return RunSummary(label, int(last.get("step", 0)), last.get("loss"), last.get("accuracy"),
                      val.get("val_loss"), val.get("val_accuracy"), state, seconds, skipped)


def run_one(label: str, config_toml: str, steps: int) -> tuple[str, list[str], float]:
    """Train one configuration (in a worker process); returns its records as JSON lines.

    Only plain values cross the process boundary, so any executor works, Dask's included.
    """
    from nnsim.engine.simulation import Simulation

    start = time.perf_counter()
    sim = Simulation(Config.from_dict(read_toml_text(config_toml, label)))
    lines = [json.dumps(r.to_dict(), separators=(",", ":")) for r in sim.steps(steps)]
    return label, lines, time.perf_counter() - start


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def sweep(base: Config, grid: Sequence[str], steps: int, out_dir: str | Path,
          executor: Executor | None = None, jobs: int = 1,
          progress: Callable[[int, int, RunSummary], None] | None = None) -> list[RunSummary]:
    """Run every combination of `grid` (KEY=V1,V2 strings) on top of `base`.

    Finished runs (their .jsonl exists) are read back, not rerun. Results are written as
    `<run>.jsonl` in `out_dir`, with `summary.csv`; summaries come back in grid order.
    """
    out = Path(out_dir).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NnsimError(f"{out}: cannot create the sweep folder ({exc.strerror})") from None
    runs = variants(base, parse_vary(grid))
    paths = {label: out / f"{slug(label)}.jsonl" for label, _ in runs}
    if len(set(paths.values())) != len(paths):
        raise NnsimError("two runs of the grid map to one file name; use distinct values")
    summaries: dict[str, RunSummary] = {}
    done = 0
    for label, _ in runs:
        if paths[label].exists():
            summaries[label] = _summary(label, paths[label].read_text().splitlines(), 0.0,
                                        skipped=True)
            done += 1
            if progress:
                progress(done, len(runs), summaries[label])
    todo = [(label, config) for label, config in runs if label not in summaries]
    own = executor is None and todo
    pool = executor or (ProcessPoolExecutor(max_workers=max(1, jobs)) if todo else None)
    try:
        futures = [pool.submit(run_one, label, config.to_toml(), steps) for label, config in todo]
        for future in as_completed(futures):
            label, lines, seconds = future.result()
            _write_atomic(paths[label], "".join(line + "\n" for line in lines))
            summaries[label] = _summary(label, lines, seconds)
            done += 1
            if progress:
                progress(done, len(runs), summaries[label])
    finally:
        if own:
            pool.shutdown(cancel_futures=True)
    ordered = [summaries[label] for label, _ in runs]
    with open(out / "summary.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for s in ordered:
            writer.writerow({k: "" if v is None else v for k, v in asdict(s).items()})
    return ordered


def summary_table(summaries: Sequence[RunSummary]) -> str:
    width = max([len(s.run) for s in summaries] + [3]) + 2

    def num(x: Any, fmt: str) -> str:
        return "-" if x is None else (x if isinstance(x, str) else format(x, fmt))

    lines = [f"{'run':<{width}}{'steps':>7}{'loss':>10}{'acc':>8}{'val_loss':>10}"
             f"{'val_acc':>9}  state"]
    for s in summaries:
        lines.append(f"{s.run:<{width}}{s.steps:>7}{num(s.loss, '.4g'):>10}"
                     f"{num(s.accuracy, '.3f'):>8}{num(s.val_loss, '.4g'):>10}"
                     f"{num(s.val_accuracy, '.3f'):>9}  {s.state}"
                     + ("  (from an earlier sweep)" if s.skipped else ""))
    return "\n".join(lines)


def dask_client(address: str):
    """A client of an existing Dask cluster (needs nnsim[dask]); its `get_executor()` is a
    concurrent.futures executor for `sweep`. Close it when done."""
    try:
        from distributed import Client
    except ImportError:
        raise NnsimError("--scheduler needs dask.distributed: pip install 'nnsim[dask]'") from None
    try:
        client = Client(address, timeout="5s")
    except (OSError, TimeoutError) as exc:
        raise NnsimError(f"--scheduler {address}: cannot reach the Dask scheduler ({exc})") \
            from None
    return client
