"""The Runner: a Simulation steered from another thread."""

import json
import threading
import time

import pytest

from nnsim.engine import Simulation
from nnsim.engine.runner import Runner
from nnsim.errors import NnsimError
from tests.helpers import small_config


class Loop:
    """The runner's loop on a thread of its own, as a front end would run it."""

    def __init__(self, runner: Runner) -> None:
        self.runner, self.stop = runner, threading.Event()
        self.thread = threading.Thread(target=runner.loop, args=(self.stop.is_set,))

    def __enter__(self):
        self.thread.start()
        return self.runner

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive()


def wait(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_play_pause_step_and_speed():
    with Loop(Runner(small_config(), paused=True)) as runner:
        runner.step_once()
        wait(lambda: runner.sim.step_count == 1)
        runner.play()
        wait(lambda: runner.sim.step_count > 20)
        runner.pause()
        assert runner.paused  # at once, from the caller's thread
        time.sleep(0.05)  # a step under way when pause() was called may finish
        n = runner.sim.step_count
        time.sleep(0.1)
        assert runner.sim.step_count == n
        runner.faster()
        wait(lambda: runner.speed == 4)


def test_pause_takes_effect_during_a_long_step():
    """With steps of 0.3 s, pausing does not wait for the step: no new one starts."""
    runner = Runner(small_config(), paused=False, speed=3)
    real = runner.sim.step

    def slow_step(measure=True):
        time.sleep(0.3)
        return real(measure)
    runner.sim.step = slow_step
    with Loop(runner):
        wait(lambda: runner.sim.step_count >= 1)
        start = time.monotonic()
        runner.pause()
        assert runner.paused and runner.state == "paused"
        assert time.monotonic() - start < 0.05
        n = runner.sim.step_count
        time.sleep(0.8)
        assert runner.sim.step_count <= n + 1  # only the step already under way


def test_slow_start_climbs_to_the_default_speed_until_the_user_chooses():
    from nnsim.engine.runner import RAMP

    runner = Runner(small_config(), paused=True, ramp=True)
    assert runner.speed == 0 and "slow start" in runner.speed_text
    seen = []
    for _ in range(RAMP[-1][0] + 5):
        runner._advance(1)
        seen.append(runner.speed)
    assert seen[RAMP[1][0] - 2] == 0 and seen[RAMP[1][0]] == 1  # 1/frame for 60 steps
    assert seen[-1] == 3 and not runner.ramp  # then the usual 10 steps a frame
    runner.reset()
    runner.run_pending()
    assert runner.speed == 0 and runner.ramp  # a reset starts slowly again
    runner.faster()
    runner.run_pending()
    assert runner.speed == 1 and not runner.ramp
    runner.reset()
    runner.run_pending()
    assert runner.speed == 1 and not runner.ramp  # the user's choice stays


def test_steps_per_frame_limit_the_rate():
    with Loop(Runner(small_config(), paused=False, speed=0)) as runner:  # 1 step per frame
        time.sleep(0.5)
        assert 3 <= runner.sim.step_count <= 25  # about 30 frames a second


def test_records_match_the_headless_engine():
    config = small_config(("model.dropout", 0.1))
    with Loop(Runner(config, paused=True)) as runner:
        runner.advance(25)
        wait(lambda: len(runner.history) == 25)
        tui = [json.dumps(r.to_dict()) for r in runner.history.snapshot()]
    headless = [json.dumps(r.to_dict()) for r in Simulation(config).run(25)]
    assert tui == headless


def test_divergence_pauses_and_stays_paused_until_reset():
    config = small_config(("model.activation", "relu"), ("optimizer.name", "sgd"),
                          ("optimizer.lr", 10.0), ("model.initializer", "he_normal"),
                          ("model.hidden", [64, 64, 64]))
    with Loop(Runner(config, paused=False)) as runner:
        wait(lambda: runner.state == "diverged")
        assert runner.paused and runner.message.startswith("diverged at step")
        runner.play()
        time.sleep(0.1)
        assert runner.paused
        runner.reset()
        wait(lambda: runner.state == "paused" and runner.sim.step_count == 0)


def test_live_hyperparameters_and_structural_rebuilds():
    with Loop(Runner(small_config(), paused=True)) as runner:
        runner.advance(5)
        wait(lambda: runner.sim.step_count == 5)
        runner.reconfigure(runner.sim.config.with_overrides([("optimizer.lr", 0.3)]))
        wait(lambda: runner.sim.optimizer.lr == 0.3)
        assert runner.sim.step_count == 5 and len(runner.history) == 5
        runner.reconfigure(runner.sim.config.with_overrides([("model.hidden", [4])]))
        wait(lambda: runner.sim.config.model.hidden == (4,))
        assert runner.sim.step_count == 0 and len(runner.history) == 0


def test_stopping_the_loop_is_prompt_at_full_speed():
    runner = Runner(small_config(("model.hidden", [512, 512])), paused=False, speed=7)
    loop = Loop(runner)
    loop.__enter__()
    wait(lambda: runner.sim.step_count > 3)
    start = time.monotonic()
    loop.__exit__()
    assert time.monotonic() - start < 1.0


def test_export_and_save_are_atomic_and_refuse_folders(tmp_path):
    runner = Runner(small_config(), paused=True)
    runner.advance(3)
    runner.run_pending()
    path = runner.export_history(tmp_path / "h.csv")
    assert path.read_text().count("\n") == 4  # header + 3 rows
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(NnsimError, match="is a folder"):
        runner.save_config(tmp_path)
    with pytest.raises(NnsimError, match="cannot write"):
        runner.save_config(tmp_path / "missing-folder" / "c.toml")


def test_decision_grid_is_only_for_two_dimensional_inputs():
    runner = Runner(small_config(), paused=True)
    runner.request_grid((8, 6))
    runner.run_pending()
    grid = runner.grid
    assert grid["label"].shape == (6, 8) and grid["classes"] == 3
    assert ((grid["confidence"] >= 1 / 3 - 1e-9) & (grid["confidence"] <= 1)).all()
    teacher = Runner(small_config(("data.name", "teacher")), paused=True)
    teacher.request_grid((8, 6))
    teacher.run_pending()
    assert teacher.grid is None


def test_an_unbuildable_config_is_refused_with_a_notice_and_the_run_goes_on():
    runner = Runner(small_config(), paused=True)
    runner.advance(2)
    runner.reconfigure(runner.sim.config.with_overrides([("train.batch_size", 9999)]))
    runner.advance(1)
    runner.run_pending()
    level, text = runner.notices.get_nowait()
    assert level == "error" and text.startswith("not applied: train.batch_size: 9999")
    assert runner.sim.step_count == 3 and runner.state == "paused"


def test_an_unexpected_exception_halts_the_run_and_names_it():
    runner = Runner(small_config(), paused=False)

    def broken(measure=True):
        raise ZeroDivisionError("a bug in a step")
    runner.sim.step = broken
    with Loop(runner):
        wait(lambda: runner.state == "halted")
        assert "ZeroDivisionError: a bug in a step" in runner.message
    runner.submit(lambda: 1 / 0)
    runner.run_pending()
    assert "ZeroDivisionError" in runner.message


def test_fast_frames_measure_every_kth_step_and_the_first():
    runner = Runner(small_config(), paused=False, speed=6)  # 100 steps a frame
    with Loop(runner):
        wait(lambda: runner.sim.step_count >= 300)
        runner.pause()
    records = runner.history.snapshot()
    measured = [r.step for r in records if r.layers]
    assert measured[0] == 1 and all(s % 10 == 0 for s in measured[1:])
    assert len(measured) < len(records) / 5
    assert runner.history.measured.layers and runner.history.first.step == 1


def test_the_doctor_looks_again_when_the_run_pauses():
    """Between its looks (every 50 steps, at most once a second) the findings stood still:
    paused at step 1,430 the screen showed the doctor's look at step 1,200. Pausing looks at
    the step the run stopped at."""
    config = small_config(("model.activation", "sigmoid"), ("model.hidden", [16] * 8))
    runner = Runner(config, paused=True)
    runner.advance(50)
    runner.run_pending()  # the look at step 50
    assert runner.findings and runner.findings_step == 50
    runner._diagnosed = time.monotonic()  # as at full speed: the next look is a second away
    runner.advance(23)
    runner.run_pending()
    assert runner.findings_step == 50
    runner.pause()
    runner.run_pending()
    assert runner.findings_step == 73
    assert max(f.steps[1] for f in runner.findings) == 73


def test_a_costly_decision_grid_is_computed_coarser_and_drawn_at_the_size_asked():
    """A 3×4096 network's 80×80 grid took 4.3 s of the training thread, and keys waited
    for it: a grid is computed at most as finely as GRID_SECONDS allow at the last grid's
    cost per point, and its cells are repeated up to the size asked for."""
    from nnsim.engine.runner import GRID_SECONDS

    runner = Runner(small_config(), paused=True)
    runner.advance(3)
    runner.run_pending()
    computed = []
    original = runner.sim.decision_grid

    def grid(nx, ny):
        computed.append((nx, ny))
        return original(nx, ny)

    runner.sim.decision_grid = grid
    runner._make_grid((80, 80))  # cheap: at the size asked
    assert computed[-1] == (80, 80) and runner.grid["label"].shape == (80, 80)
    runner._grid_cost = 1e-3  # as if a point cost a millisecond (a very large network)
    runner._make_grid((80, 80))
    nx, ny = computed[-1]
    assert nx == ny and nx * ny * 1e-3 <= GRID_SECONDS < (nx + 1) ** 2 * 1e-3
    label = runner.grid["label"]
    assert label.shape == (80, 80)
    coarse = original(nx, ny)["label"]
    assert (label[::80 // nx + 1, ::80 // nx + 1] == coarse[:len(label[::80 // nx + 1]),
                                                           :len(label[::80 // nx + 1])]).all()
