"""nnsim run --resume DIR --from-step K: branch from a snapshot a checkpoint kept."""

import numpy as np

from nnsim.cli import main
from nnsim.engine.simulation import Simulation
from nnsim.engine.writers import read_records
from tests.helpers import small_config

SMALL = ["--set", "data.samples=240", "--set", "model.hidden=[8,8]",
         "--set", "model.dtype=\"float64\"", "--set", "train.batch_size=16", "--set", "train.eval_every=10", "--seed", "3"]


def records(path):
    with open(path) as f:
        return read_records(f)


def test_branching_from_a_kept_step_replays_or_changes_from_there(tmp_path):
    ck = tmp_path / "ck"
    assert main(["run", *SMALL, "--steps", "60", "--checkpoint", str(ck),
                 "--snapshot-every", "20", "--out", str(tmp_path / "a.jsonl")]) == 0
    straight = records(tmp_path / "a.jsonl")
    # no change: the same records as the run gave, bit for bit
    assert main(["run", "--resume", str(ck), "--from-step", "20", "--steps", "40",
                 "--out", str(tmp_path / "b.jsonl")]) == 0
    assert records(tmp_path / "b.jsonl") == straight[20:]
    # a change at step 20 equals a run changed live at step 20
    assert main(["run", "--resume", str(ck), "--from-step", "20", "--steps", "40",
                 "--set", "optimizer.lr=0.2", "--out", str(tmp_path / "c.jsonl")]) == 0
    sim = Simulation(small_config())
    sim.run(20)
    sim.set_hyper("lr", 0.2)
    expected = [r.to_dict() for r in sim.run(40)]
    # (records are written at float32 precision)
    assert np.array_equal(np.float32([r["loss"] for r in records(tmp_path / "c.jsonl")]),
                          np.float32([r["loss"] for r in expected]))
    assert records(tmp_path / "c.jsonl")[-1]["loss"] != straight[-1]["loss"]


def test_a_step_not_kept_or_a_layout_change_is_one_line(tmp_path, capsys):
    ck = tmp_path / "ck"
    assert main(["run", *SMALL, "--steps", "30", "--checkpoint", str(ck),
                 "--snapshot-every", "10", "--out", str(tmp_path / "a.jsonl")]) == 0
    capsys.readouterr()
    assert main(["run", "--resume", str(ck), "--from-step", "15", "--steps", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "no snapshot at step 15; kept: 0, 10, 20, 30" in err and "\n" not in err
    assert main(["run", "--resume", str(ck), "--from-step", "10", "--steps", "5",
                 "--set", "model.hidden=[4]"]) == 2
    assert "layout" in capsys.readouterr().err
    assert main(["run", *SMALL, "--from-step", "10"]) == 2


def test_resuming_into_a_checkpoint_keeps_its_earlier_snapshots(tmp_path):
    from nnsim.engine.checkpoint import snapshot_steps

    ck, out = tmp_path / "ck", ["--out", str(tmp_path / "r.jsonl")]
    assert main(["run", *SMALL, "--steps", "30", "--checkpoint", str(ck),
                 "--snapshot-every", "10", *out]) == 0
    assert main(["run", "--resume", str(ck), "--steps", "20", "--checkpoint", str(ck),
                 "--snapshot-every", "10", *out]) == 0
    assert snapshot_steps(ck) == [0, 10, 20, 30, 40, 50]
    # and the run can still branch from before the resume, as it goes on from there
    assert main(["run", "--resume", str(ck), "--from-step", "10", "--steps", "5",
                 "--checkpoint", str(tmp_path / "branch"), *out]) == 0
    assert snapshot_steps(tmp_path / "branch") == [0, 10]
