"""Rewind and branch: a snapshot restored replays the run bit for bit; a branch equals a
straight run with the change made at the same step."""

import dataclasses

import numpy as np
import pytest

from nnsim.engine.rewind import SnapshotStore, branch, restore, take
from nnsim.engine.simulation import Simulation
from nnsim.errors import ConfigError
from tests.helpers import small_config

CONFIGS = [
    small_config(),
    small_config(("model.normalizer", "batchnorm"), ("model.dropout", 0.2),
                 ("data.augment", 0.1), ("optimizer.name", "adam")),
    small_config(("model.activation", "prelu"), ("train.early_stopping", 2)),
    # units that die and come back: the dead-unit window is part of the state
    small_config(("model.activation", "relu"), ("model.hidden", [16, 16, 16]),
                 ("model.bias_initializer", {"name": "constant", "value": -0.3}),
                 ("train.batch_size", 4)),
]


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "bn-dropout-adam", "prelu",
                                                 "dying-relu"])
def test_rewind_and_replay_equals_the_straight_run(config):
    sim = Simulation(config)
    straight = sim.run(330)
    sim = Simulation(config)
    sim.run(30)
    snap = take(sim)
    sim.run(300)  # another future...
    restore(sim, snap)  # ...undone
    assert sim.step_count == 30
    assert sim.run(300) == straight[30:]


def test_a_branch_equals_the_change_made_at_that_step():
    config = small_config()
    faster = config.with_overrides([("optimizer.lr", 0.2)])
    # straight: run to 40, change the lr live, go on
    straight = Simulation(config)
    straight.run(40)
    straight.reconfigure(faster)
    expected = straight.run(30)
    # rewound: run to 90, go back to the snapshot at 40, branch with the new lr
    sim = Simulation(config)
    store = SnapshotStore(interval=20)
    for _ in range(90):
        sim.step()
        store.keep(sim)
    assert store.steps() == [20, 40, 60, 80]
    fork = branch(store.get(40), faster)
    assert fork.run(30) == expected
    assert fork.lr == 0.2 and sim.step_count == 90  # the original goes on untouched


def test_a_branch_may_change_the_activation_but_not_the_layout():
    sim = Simulation(small_config())
    sim.run(10)
    snap = take(sim)
    relu = branch(snap, sim.config.with_overrides([("model.activation", "relu")]))
    assert np.array_equal(relu.net.params, sim.net.params) and relu.step_count == 10
    with pytest.raises(ConfigError, match="layout"):
        branch(snap, sim.config.with_overrides([("model.hidden", [4, 4])]))


def test_the_store_keeps_the_whole_run_within_its_budget():
    sim = Simulation(small_config())
    one = take(sim).nbytes
    store = SnapshotStore(budget=one * 6, interval=5)
    for _ in range(200):
        sim.step()
        store.keep(sim)
    steps = store.steps()
    assert store.nbytes <= one * 6 and len(steps) >= 3
    assert steps[-1] == 200 and steps[0] <= 200 // 3  # still spans the run
    assert store.interval > 5  # thinned by doubling the spacing
    store.truncate(100)
    assert all(s <= 100 for s in store.steps())


def test_the_stores_running_total_is_the_sum_of_what_it_keeps():
    """`keep` adds each snapshot to a running total instead of summing every kept one on
    every step; whatever changes the kept set, the total is their sum."""
    sim = Simulation(small_config())
    one = take(sim).nbytes
    store = SnapshotStore(budget=one * 9, interval=3)

    def check():
        assert store.nbytes == sum(s.nbytes for s in store.snapshots.values())
        assert store.nbytes <= store.budget

    for step in range(1, 120):
        sim.step()
        store.keep(sim)
        check()
        if step == 40:
            store.truncate(30)
            restore(sim, store.get(30))
            store.keep(sim)  # the same step again: replaced, not counted twice
            check()
        if step == 80:
            del store.snapshots[max(store.snapshots)]
            check()
            store.adopt({1: dataclasses.replace(take(sim), step=1)})
            check()
    store.clear()
    assert store.nbytes == 0
