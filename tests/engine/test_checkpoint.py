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


# ---------------------------------------------------------------- compact history, crafted files

def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as npz:
        data = {key: npz[key] for key in npz.files}
    data.update(changes)
    with open(path, "wb") as f:
        np.savez(f, **data)


def test_history_is_stored_as_binary_columns_and_comes_back_exactly(tmp_path):
    from nnsim.config import load as load_config

    sim = Simulation(load_config())  # the default network
    records = sim.run(600)
    path = save(sim, tmp_path, records)
    size = path.stat().st_size
    assert size < 600_000, size  # 4,096 records as JSON made 39-53 MB; columns ~0.8 KB each
    with np.load(path) as npz:
        assert "history/layers" in npz.files and "history" not in npz.files
    assert dumps(load(tmp_path)[1]) == dumps(records)


def test_non_finite_and_missing_values_survive_the_columns(tmp_path):
    sim = Simulation(small_config(("optimizer.name", "sgd"), ("optimizer.lr", 10.0),
                                  ("model.activation", "relu"),
                                  ("data.name", "teacher"), ("data.task", "regression")))
    records = sim.run(3000)  # stops at the divergence
    assert records[-1].nonfinite and records[0].accuracy is None
    save(sim, tmp_path, records)
    assert dumps(load(tmp_path)[1]) == dumps(records)


def test_saving_every_n_steps_reuses_the_encoded_rows_and_stays_exact(tmp_path):
    sim, kept = Simulation(RICH), []
    for _ in range(4):
        kept = (kept + sim.run(25))[-60:]  # a window that slides, like the kept history
        save(sim, tmp_path, kept)
        assert dumps(load(tmp_path)[1]) == dumps(kept)


def test_a_run_without_telemetry_resumes_without_it(tmp_path, capsys):
    from nnsim.cli import main

    small = ["--set", "data.samples=200", "--set", "model.hidden=[8]"]
    assert main(["run", *small, "--steps", "3", "--no-telemetry", "--checkpoint",
                 str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["run", "--resume", str(tmp_path), "--steps", "2"]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [len(r["layers"]) for r in out] == [0, 0]


def test_two_writers_never_share_a_temporary_file(tmp_path, monkeypatch):
    names = []
    real = os.replace

    def spy(src, dst):
        names.append(os.path.basename(src))
        real(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    sim = Simulation(small_config())
    save(sim, tmp_path)
    save(sim, tmp_path)
    assert len(set(names)) == 2 and all(str(os.getpid()) in n for n in names)


@pytest.mark.parametrize("change,needle", [
    ({"version": np.array("one")}, "version must be an integer"),
    ({"version": np.array(1.5)}, "version must be an integer"),
    ({"data_order": np.arange(10**6, 10**6 + 192)}, "permutation of the 192"),
    ({"data_order": np.zeros(192, np.int64)}, "permutation of the 192"),
    ({"sim": np.array(json.dumps({"step": "12"}))}, "step must be an integer"),
    ({"sim": np.array(json.dumps([1, 2]))}, "sim must be a table"),
    ({"data": np.array(json.dumps({"pos": -5, "seen": 0}))}, "data position must be in"),
    ({"rng": np.array(json.dumps({"data": {"state": 1}}))}, "damaged checkpoint"),
])
def test_crafted_fields_are_one_line(tmp_path, change, needle):
    sim = Simulation(small_config())
    sim.run(3)
    path = save(sim, tmp_path)
    _rewrite(path, **change)
    with pytest.raises(CheckpointError) as info:
        load(tmp_path)
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_a_huge_declared_shape_is_one_line(tmp_path):
    import zipfile

    sim = Simulation(small_config())
    path = save(sim, tmp_path)
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**14,)}
    with zipfile.ZipFile(path, "a") as z, z.open("huge.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 64)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load(tmp_path)
