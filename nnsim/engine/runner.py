"""`Runner`: drives a Simulation on a background thread for an interactive front end.

The front end calls the control methods (play, pause, step, speed, reset, reconfigure) from
its own thread; they are queued and carried out by the training thread between steps, so
the simulation is only ever touched by one thread. Records go into a History the front end
reads whenever it redraws, whatever the step rate. No UI code lives here.
"""

from __future__ import annotations

import queue
import threading
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nnsim.config import Config
from nnsim.engine.checkpoint import CheckpointError
from nnsim.engine.history import History
from nnsim.engine.records import StepRecord
from nnsim.engine.rewind import SnapshotStore, restore
from nnsim.engine.simulation import Simulation
from nnsim.engine.writers import CsvWriter, JsonlWriter
from nnsim.errors import NnsimError
from nnsim.pluginmanager import Registry

#: steps per frame, slowest to fastest; None = as many as fit in a frame
SPEEDS: tuple[int | None, ...] = (1, 2, 5, 10, 20, 50, 100, None)
FRAME_SECONDS = 1 / 30
#: a slow start (`ramp=True`): (from step, speed index); the first steps, where most of the
#: story happens, go by at 30 steps a second, then the pace climbs to 10 steps a frame
RAMP: tuple[tuple[int, int], ...] = ((0, 0), (60, 1), (150, 2), (400, 3))
#: past this many steps a frame, layer statistics are measured on every k-th step only, k =
#: steps per frame / MEASURED_PER_FRAME (10 for "max"): no frame can show more, and the
#: history's buckets hold the min, mean and max of the measured steps
MEASURED_PER_FRAME = 10
#: the doctor looks at the run every this many steps (and at a divergence), at most every
#: DOCTOR_SECONDS of wall time, over the newest DOCTOR_RECORDS records
DOCTOR_EVERY, DOCTOR_SECONDS, DOCTOR_RECORDS = 50, 1.0, 600
#: the training thread's time a decision grid may take (keys wait for it)
GRID_SECONDS = 0.025
#: how a notice is shown (Textual's notification severities)
NoticeLevel = Literal["information", "warning", "error"]


class Runner:
    """A Simulation, its History, and a training loop that can be paused and steered."""

    def __init__(self, config: Config, registry: Registry | None = None, paused: bool = False,
                 capacity: int = 4096, speed: int = 3, ramp: bool = False,
                 sim: Simulation | None = None, snapshot_budget: int = 64 * 2**20) -> None:
        self.sim = sim if sim is not None else Simulation(config, registry)
        #: kept snapshots for rewind and branch (see nnsim.engine.rewind)
        self.snapshots = SnapshotStore(budget=snapshot_budget)
        self.history = History(capacity)
        self.paused = paused
        self.speed = speed
        self.ramp = ramp  # slow start, until the user picks a speed (see RAMP)
        self._slow_starts = ramp  # every rebuild starts slow again, until the user picks
        if ramp:
            self.speed = RAMP[0][1]
        self.message = ""  # why the run halted: divergence, early stopping, a plugin error
        self.version = 0  # bumped whenever the history or the state changes
        self.rate = 0.0  # steps per second while running
        self._commands: queue.SimpleQueue[Callable[[], Any]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._rate_window: list[tuple[float, int]] = []
        self.grid: dict | None = None  # the newest decision-boundary grid
        self.grid_version = 0  # counts grids made
        #: (level, text) for the front end to show
        self.notices: queue.SimpleQueue[tuple[NoticeLevel, str]] = queue.SimpleQueue()
        self._every = 1  # measure every k-th step's layer statistics (see MEASURED_PER_FRAME)
        self.findings: list = []  # the doctor's newest findings (nnsim.doctor)
        self._diagnosed = 0.0  # when the doctor last looked (time.monotonic)
        self._grid_cost = 0.0  # seconds per point of the last decision grid
        self.findings_step = -1  # … and at which step

    # ------------------------------------------------------------ state

    @property
    def state(self) -> str:
        if self.sim.divergence is not None:
            return "diverged"
        if self.message:
            return "halted"
        return "paused" if self.paused else "running"

    @property
    def steps_per_frame(self) -> int | None:
        return SPEEDS[self.speed]

    @property
    def speed_text(self) -> str:
        n = self.steps_per_frame
        text = "max" if n is None else f"{n}/frame"
        return f"{text}, slow start" if self.ramp else text

    # ------------------------------------------------------------ control (any thread)

    def submit(self, fn: Callable[[], Any]) -> None:
        """Run `fn` on the training thread before its next step."""
        self._commands.put(fn)
        self._wake.set()

    def toggle(self) -> None:
        if self.paused:
            self.play()
        else:
            self.pause()

    def play(self) -> None:
        self.submit(lambda: self._set_paused(False))

    def pause(self) -> None:
        """Pause now: no step starts after this call, even while a long step is under way
        (that one finishes and is recorded). Safe from any thread."""
        self.paused = True
        self.rate = 0.0
        self._changed()
        self.submit(lambda: self._set_paused(True))
        # a paused screen shows the doctor's view of the step it stopped at: the doctor
        # otherwise looks every DOCTOR_EVERY steps, at most every DOCTOR_SECONDS (at full
        # speed a few hundred steps apart), and the findings stood still 200 steps behind
        self.submit(self._look_at_pause)

    def _look_at_pause(self) -> None:
        last = self.history.last
        if last is not None and self.findings_step != last.step:
            self.diagnose(force=True)

    def step_once(self) -> None:
        def step() -> None:
            self._set_paused(True)
            self._advance(1)
        self.submit(step)

    def advance(self, n: int) -> None:
        """Take n steps on the training thread, whether paused or not."""
        self.submit(lambda: self._advance(n))

    def faster(self) -> None:
        self.submit(lambda: self._set_speed(self.speed + 1))

    def slower(self) -> None:
        self.submit(lambda: self._set_speed(self.speed - 1))

    def _ramp_up(self) -> None:
        """Follow the slow start: the speed RAMP gives for the current step."""
        step = self.sim.step_count
        speed = max(index for start, index in RAMP if step >= start)
        if speed != self.speed:
            self.speed = speed
        if step >= RAMP[-1][0]:
            self.ramp = False

    def reset(self, seed: int | None = None) -> None:
        self.submit(lambda: self._rebuild(lambda: self.sim.reset(seed)))

    def reseed(self) -> None:
        """Reset with a fresh random seed."""
        seed = int(np.random.default_rng().integers(0, 2**31))
        self.reset(seed)

    def reconfigure(self, config: Config, rebuild: bool = False, start: bool = False
                    ) -> None:
        """Adopt a new config: optimizer hyperparameters live, anything else (or everything,
        with `rebuild`: a new run from the seed) rebuilds, and with `start` trains it. A
        config that cannot be built is refused with a notice; the run goes on unchanged."""
        def apply():
            try:
                rebuilt = self.sim.reconfigure(config, rebuild)
            except NnsimError as exc:
                self.notices.put(("error", f"not applied: {exc}"))
                return
            if rebuilt:
                self._after_rebuild()
            if start:
                self._set_paused(False)
            self._changed()
        self.submit(apply)

    def save_checkpoint(self, where: str | Path) -> None:
        """Save a checkpoint on the training thread; the outcome arrives in `notices`."""
        def save():
            from nnsim.engine import checkpoint

            path = checkpoint.save(self.sim, where, self.history.snapshot())
            self.notices.put(("information", f"Checkpoint saved to {path}"))
        self.submit(save)

    def load_checkpoint(self, where: str | Path) -> None:
        """Replace the run by the one saved at `where` (history included), paused."""
        def load():
            from nnsim.engine import checkpoint

            sim, history = checkpoint.load(where, self.sim.registry)
            self.sim = sim
            self._after_rebuild()
            self.history.extend(history)
            self.paused = True
            self.message = str(sim.divergence) if sim.divergence else (sim.stopped or "")
            self._changed()
            self.notices.put(("information", f"Loaded the checkpoint at step {sim.step_count}"))
        self.submit(load)

    def rewind(self, step: int) -> None:
        """Go back to the kept snapshot at `step` (paused): the run from there replays
        exactly as it went, unless something is changed."""
        def go():
            try:
                snap = self.snapshots.get(step)
            except KeyError:  # no longer kept (the run was reset meanwhile)
                self.notices.put(("warning", f"Step {step:,} is no longer kept; pick a "
                                             "step on the timeline again (, and .)"))
                return
            if snap.config != self.sim.config:  # a live change since: undone too
                self.sim.reconfigure(snap.config)
            restore(self.sim, snap)
            self.history.truncate(step)
            self.snapshots.truncate(step)
            self.paused = True
            self.message = ""
            self.grid = None
            self.findings, self.findings_step = [], -1
            self._changed()
            self.notices.put(("information", f"Back at step {step:,}: space replays from here, "
                                             "exactly as it went"))
        self.submit(go)

    def request_grid(self, resolution: tuple[int, int]) -> None:
        """Compute a decision-boundary grid on the training thread (2-D inputs only)."""
        self.submit(lambda: self._make_grid(resolution))

    # ------------------------------------------------------------ the loop (training thread)

    def run_pending(self) -> None:
        """Carry out queued commands now (the training thread, or tests without one)."""
        while True:
            try:
                fn = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                fn()
            except CheckpointError as exc:  # the run itself is fine: say so and go on
                self.notices.put(("error", str(exc)))
            except NnsimError as exc:
                self._halt(str(exc))
            except Exception as exc:  # never let the training thread die silently
                self._halt(f"halted: {type(exc).__name__}: {exc}"[:500])

    def loop(self, cancelled: Callable[[], bool]) -> None:
        """Train until `cancelled()` is true, one frame's worth of steps at a time."""
        while not cancelled():
            self.run_pending()
            if self.paused or self.state != "running":
                self._wake.wait(0.05)
                self._wake.clear()
                continue
            start = time.perf_counter()
            n = self.steps_per_frame
            # at most about ten measured steps a frame: past 10 steps a frame only every
            # k-th step's layer statistics are computed (every step's loss still is)
            self._every = 1 if n is not None and n <= MEASURED_PER_FRAME else (
                (n or 100) // MEASURED_PER_FRAME)
            if n is None:
                while time.perf_counter() - start < FRAME_SECONDS and not self.paused \
                        and self._advance(1):
                    if cancelled() or not self._commands.empty():
                        break
            else:
                for _ in range(n):
                    if cancelled() or self.paused or not self._commands.empty() \
                            or not self._advance(1):
                        break
            self._every = 1
            rest = FRAME_SECONDS - (time.perf_counter() - start)
            if rest > 0 and n is not None:
                self._wake.wait(rest)
                self._wake.clear()

    def _advance(self, n: int) -> bool:
        """Take up to n steps; False once the run has halted."""
        sim = self.sim
        for _ in range(n):
            if sim.stopped or sim.divergence is not None or self.message:
                return False
            if sim.step_count == 0 and not self.snapshots.snapshots:
                self.snapshots.keep(sim)  # the run as initialized
            step, every = sim.step_count + 1, self._every
            try:
                record = sim.step(every == 1 or step == 1 or step % every == 0)
            except NnsimError as exc:
                self._halt(str(exc))
                return False
            except Exception as exc:  # a bug, ours or a plugin's: halt and name it
                self._halt(f"halted at step {step}: {type(exc).__name__}: {exc}"[:500])
                return False
            self.history.append(record)
            self.snapshots.keep(sim)
            self._count(record)
            if record.nonfinite is not None:
                self.paused = True
                self.message = str(sim.divergence)
                # said in full where a narrow status line cuts it, with the usual cure
                self.notices.put(("warning", f"The run {self.message}. A learning rate too "
                                  "high is the usual cause: [ halves it, then r starts again "
                                  "from the same seed (e: a new seed; s: the settings)."))
            elif sim.stopped:
                self.paused = True
                self.message = sim.stopped
            self.version += 1
            if self.ramp:
                self._ramp_up()
            if record.nonfinite is not None or sim.step_count % DOCTOR_EVERY == 0:
                self.diagnose(force=record.nonfinite is not None)
        return self.state in ("running", "paused")

    def diagnose(self, force: bool = False) -> None:
        """Let the doctor look at the newest records (training thread). A check that fails
        is reported once as a notice; the run goes on."""
        now = time.monotonic()
        if not force and now - self._diagnosed < DOCTOR_SECONDS:
            return
        self._diagnosed = now
        last = self.history.last
        self.findings_step = last.step if last is not None else 0  # the step looked at
        from nnsim.doctor import diagnose_simulation

        try:
            findings = diagnose_simulation(self.sim, self.history.snapshot(DOCTOR_RECORDS),
                                           self.history.first)
        except NnsimError as exc:
            self.notices.put(("error", f"the doctor could not look: {exc}"))
            findings = []
        # the same findings on newer steps are news too: their evidence and steps move on
        if [(f.title, f.evidence, f.steps) for f in findings] != \
                [(f.title, f.evidence, f.steps) for f in self.findings]:
            self.findings = findings
            self._changed()

    def _count(self, record: StepRecord) -> None:
        now = time.perf_counter()
        window = self._rate_window
        window.append((now, record.step))
        while len(window) > 2 and now - window[0][0] > 1.0:
            window.pop(0)
        if len(window) >= 2 and window[-1][0] > window[0][0]:
            self.rate = (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])

    def _set_paused(self, paused: bool) -> None:
        if not paused and self.state in ("diverged", "halted"):
            return  # a halted run stays paused until reset
        self.paused = paused
        self._rate_window.clear()
        self.rate = 0.0
        self._changed()

    def _set_speed(self, speed: int) -> None:
        self.ramp = self._slow_starts = False  # the user has chosen
        self.speed = max(0, min(len(SPEEDS) - 1, speed))
        self._changed()

    def _rebuild(self, build: Callable[[], None]) -> None:
        build()
        self._after_rebuild()
        self._changed()

    def _after_rebuild(self) -> None:
        self.findings, self.findings_step = [], -1
        self.snapshots.clear()
        if self._slow_starts:
            self.ramp, self.speed = True, RAMP[0][1]
        self.history.clear()
        self.message = ""
        self.grid = None
        self._rate_window.clear()

    def _halt(self, message: str) -> None:
        self.paused = True
        self.message = message
        self._changed()

    def _changed(self) -> None:
        self.version += 1

    def _make_grid(self, resolution: tuple[int, int]) -> None:
        """A decision grid at `resolution`, computed at most as finely as GRID_SECONDS of
        the training thread allow (the last grid's cost per point tells; at first, the
        network's size at 10 GFLOP/s) and its cells repeated up to `resolution`: a 3×4096
        network's 80×80 grid took 4.3 s, and keys waited for it."""
        if self.sim.data.input_dim != 2:
            self.grid = None
            return
        nx, ny = resolution
        per_point = self._grid_cost or 2.0 * self.sim.net.n_weights / 1e10
        most = max(4, int(math.sqrt(GRID_SECONDS / max(per_point, 1e-12))))
        cx, cy = min(nx, most), min(ny, most)
        start = time.perf_counter()
        grid = self.sim.decision_grid(cx, cy)
        self._grid_cost = (time.perf_counter() - start) / (cx * cy)
        if (cx, cy) != (nx, ny):
            rows, cols = np.arange(ny) * cy // ny, np.arange(nx) * cx // nx
            for key in ("label", "confidence"):
                grid[key] = grid[key][np.ix_(rows, cols)]
        self.grid = grid
        self.grid_version += 1

    # ------------------------------------------------------------ files

    def save_config(self, path: str | Path) -> Path:
        return _write_atomic(Path(path), self.sim.config.to_toml())

    def export_history(self, path: str | Path) -> Path:
        """Write the kept history as JSONL (or CSV for a .csv path). Safe from any thread:
        it reads a snapshot of the history."""
        import io

        path = Path(path)
        fmt = "csv" if path.suffix.lower() == ".csv" else "jsonl"
        buffer = io.StringIO()
        writer = CsvWriter(buffer) if fmt == "csv" else JsonlWriter(buffer)
        for record in self.history.snapshot():
            writer.write(record)
        return _write_atomic(path, buffer.getvalue())


def _write_atomic(path: Path, text: str) -> Path:
    """Write via a temporary file in the same folder, then rename over the target."""
    path = path.expanduser()
    if path.is_dir():
        raise NnsimError(f"{path}: is a folder; give a file name")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise NnsimError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return path

