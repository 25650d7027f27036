"""Checkpoints: a resumed run is the uninterrupted run, and bad files say so."""

import json
import multiprocessing
import os
import signal
import time

import numpy as np
import pytest

from nnsim.engine import Simulation
from nnsim.engine.checkpoint import CheckpointError, load, save
from tests.helpers import small_config

RICH = small_config(("model.dropout", 0.2), ("data.augment", 0.1),
                    ("model.normalizer", "batchnorm"), ("optimizer.name", "adam"),
                    ("optimizer.lr", 0.01), ("train.eval_every", 7),
                    ("train.early_stopping", 50), ("model.dtype", "float32"))


def dumps(records):
    return [json.dumps(r.to_dict()) for r in records]


@pytest.mark.parametrize("config", [RICH, small_config()], ids=["rich", "plain"])
def test_a_resumed_run_is_identical_to_an_uninterrupted_one(tmp_path, config):
    straight = dumps(Simulation(config).run(40))
    first = Simulation(config)
    head = first.run(17)
    path = save(first, tmp_path, head)
    resumed, history = load(path)
    assert dumps(history) == dumps(head)
    assert resumed.step_count == 17
    assert dumps(head) + dumps(resumed.run(23)) == straight


def test_checkpoint_holds_the_state_that_matters(tmp_path):
    sim = Simulation(RICH)
    sim.run(9)
    again, _ = load(save(sim, tmp_path / "x.npz"))
    assert np.array_equal(again.net.params, sim.net.params)
    for key, value in sim.opt_state.items():
        assert np.array_equal(again.opt_state[key], value)
    for key, value in sim.net.buffers().items():
        assert np.array_equal(again.net.buffers()[key], value)
    assert again.config == sim.config


def test_bad_checkpoints_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load(tmp_path / "nothing.npz")
    (tmp_path / "junk.npz").write_bytes(b"this is not a zip file")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load(tmp_path / "junk.npz")
    np.savez(tmp_path / "foreign.npz", weights=np.zeros(3))
    with pytest.raises(CheckpointError, match="not an nnsim checkpoint"):
        load(tmp_path / "foreign.npz")


def _save_forever(folder: str) -> None:
    sim = Simulation(small_config(("model.hidden", [512, 512])))
    while True:
        sim.step()
        save(sim, folder)


def test_a_kill_during_saves_leaves_a_loadable_checkpoint(tmp_path):
    folder = str(tmp_path)
    save(Simulation(small_config(("model.hidden", [512, 512]))), folder)
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=_save_forever, args=(folder,))
    proc.start()
    time.sleep(3.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    sim, _ = load(folder)  # whatever moment the kill hit, the last complete save loads
    assert sim.step_count > 0  # the kill came after saves that landed
