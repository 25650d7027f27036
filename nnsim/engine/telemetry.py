"""Per-layer statistics of a training step, reduced over all layers at once.

Activations of every hidden layer sit in one flat workspace and weights in the first block of
the flat parameter vector, so each statistic is one `np.add.reduceat` over segment offsets
instead of a Python loop of small NumPy calls per layer.
"""

from __future__ import annotations

import math

import numpy as np

from nnsim.engine.network import Network
from nnsim.engine.records import LayerRecord

HIST_BINS = 20


class Telemetry:
    """Preallocated scratch space and segment tables for one network."""

    def __init__(self, net: Network, optimizer_state: dict[str, np.ndarray]) -> None:
        self.net = net
        self.state = optimizer_state
        dt = net.dtype
        hidden = net.hidden
        self.n_hidden = len(hidden)
        sizes = np.array([layer.a_buf.size for layer in hidden], dtype=np.intp)
        self.act_sizes = sizes.astype(np.float64)
        n = int(sizes.sum())
        elem_layer = np.repeat(np.arange(self.n_hidden), sizes)
        self.elem_layer = elem_layer
        ranges = np.array([layer.activation.hist_range for layer in hidden], dtype=np.float64)
        lo, hi = ranges[:, 0], ranges[:, 1]
        scale = HIST_BINS / np.maximum(hi - lo, 1e-12)
        base = np.arange(self.n_hidden) * HIST_BINS
        # bin index (float) = a * scale + shift, clipped into the layer's own block of bins
        self.hist_scale = scale[elem_layer].astype(dt)
        self.hist_shift = (base - lo * scale)[elem_layer].astype(dt)
        self.hist_low = base[elem_layer].astype(dt)
        self.hist_high = (base + HIST_BINS - 0.5)[elem_layer].astype(dt)
        self.hist_ranges = [tuple(map(float, r)) for r in ranges]
        self.scratch = np.empty(n, dt)
        self.scratch_int = np.empty(n, np.intp)
        self.nw = net.n_weights
        self.w_offsets = np.array([s.start for s in net.segment_slices("W")], dtype=np.intp)
        self.sq = np.empty(self.nw, dt)
        self.old = np.empty(net.size, dt)
        extra = [s for s in net.segments if s.name not in ("W", "b")]
        self.extra = extra
        self.extra_start = net.n_weights + net.n_biases
        self.extra_offsets = np.array([s.start - self.extra_start for s in extra], dtype=np.intp)
        self.extra_sizes = np.array([s.stop - s.start for s in extra], dtype=np.float64)

    def _reduce(self, values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, offsets, dtype=np.float64)

    def before_update(self) -> None:
        """Measure the forward and backward pass; remember the weights for the update."""
        net = self.net
        acts = net.acts
        s = self.scratch
        offsets = net.act_offsets
        means = self._reduce(acts, offsets) / self.act_sizes
        self.finite_acts = np.isfinite(means)
        np.take(means.astype(net.dtype), self.elem_layer, out=s)
        np.subtract(acts, s, out=s)
        np.multiply(s, s, out=s)
        self.act_mean = means
        self.act_std = np.sqrt(self._reduce(s, offsets) / self.act_sizes)
        np.multiply(acts, self.hist_scale, out=s)
        s += self.hist_shift
        if not self.finite_acts.all():
            np.nan_to_num(s, copy=False, nan=0.0, posinf=1e30, neginf=-1e30)
        np.clip(s, self.hist_low, self.hist_high, out=s)
        np.copyto(self.scratch_int, s, casting="unsafe")
        self.hist = np.bincount(self.scratch_int, minlength=self.n_hidden * HIST_BINS).reshape(
            self.n_hidden, HIST_BINS)

        saturated, dead = [], []
        for layer in net.hidden:
            mask = layer.activation.saturated(layer.z, layer.a)
            saturated.append(np.count_nonzero(mask) / mask.size)
            dead.append(np.count_nonzero(mask.all(axis=0)) / mask.shape[1])
        self.saturated, self.dead = saturated, dead

        nw, sq = self.nw, self.sq
        gw = net.grads[:nw]
        np.multiply(gw, gw, out=sq)
        self.grad_sq = self._reduce(sq, self.w_offsets)
        pw = net.params[:nw]
        np.multiply(pw, pw, out=sq)
        self.weight_sq = self._reduce(sq, self.w_offsets)
        np.copyto(self.old, net.params)

    def after_update(self) -> None:
        """Measure what the optimizer did to the weights."""
        net, nw, sq = self.net, self.nw, self.sq
        delta = self.old
        np.subtract(net.params, delta, out=delta)
        d = delta[:nw]
        np.multiply(d, d, out=sq)
        self.delta_sq = self._reduce(sq, self.w_offsets)
        np.multiply(d, net.grads[:nw], out=sq)
        self.delta_dot_grad = self._reduce(sq, self.w_offsets)
        self.state_sq = {}
        for name, vec in self.state.items():
            v = vec[:nw]
            np.multiply(v, v, out=sq)
            self.state_sq[name] = self._reduce(sq, self.w_offsets)
        if self.extra:
            self.extra_mean = self._reduce(net.params[self.extra_start:],
                                           self.extra_offsets) / self.extra_sizes

    def layers(self, logits: np.ndarray) -> tuple[LayerRecord, ...]:
        """Assemble the LayerRecords of this step."""
        net = self.net
        grad_norm = np.sqrt(self.grad_sq)
        weight_norm = np.sqrt(self.weight_sq)
        delta_norm = np.sqrt(self.delta_sq)
        with np.errstate(divide="ignore", invalid="ignore"):
            update_ratio = np.where(weight_norm > 0, delta_norm / weight_norm, 0.0)
            step_size = np.where(grad_norm > 0, delta_norm / grad_norm, 0.0)
            denom = delta_norm * grad_norm
            update_cos = np.where(denom > 0, -self.delta_dot_grad / denom, 0.0)
        state = {k: np.sqrt(v).tolist() for k, v in self.state_sq.items()}
        learnable: list[list[tuple[str, float]]] = [[] for _ in net.dense]
        if self.extra:
            for seg, mean in zip(self.extra, self.extra_mean.tolist()):
                learnable[seg.layer].append((seg.name, mean))
        gn, wn = grad_norm.tolist(), weight_norm.tolist()
        ur, ss, uc = update_ratio.tolist(), step_size.tolist(), update_cos.tolist()
        means, stds = self.act_mean.tolist(), self.act_std.tolist()
        hist = self.hist.tolist()
        records = []
        for i, layer in enumerate(net.hidden):
            records.append(LayerRecord(
                i + 1, "hidden", layer.fan_out, means[i], stds[i], tuple(hist[i]),
                self.hist_ranges[i], self.saturated[i], self.dead[i], gn[i],
                math.sqrt(layer.grad_in_sq), wn[i], ur[i], uc[i], ss[i],
                tuple((k, v[i]) for k, v in state.items()), tuple(learnable[i])))
        out = net.output
        o = len(net.hidden)
        records.append(LayerRecord(
            o + 1, "output", out.fan_out, float(logits.mean()), float(logits.std()), (),
            (0.0, 0.0), 0.0, 0.0, gn[o], math.sqrt(out.grad_in_sq), wn[o], ur[o], uc[o], ss[o],
            tuple((k, v[o]) for k, v in state.items()), ()))
        return tuple(records)

    def first_nonfinite(self) -> str | None:
        """The first non-finite per-layer quantity of this step, e.g. 'layer 2 act_mean'
        (layers count from 1; the output layer is the last)."""
        checks = [("act_mean", self.act_mean), ("grad_norm", self.grad_sq),
                  ("weight_norm", self.weight_sq)]
        for name, values in checks:
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                return f"layer {int(bad[0]) + 1} {name}"
        return None
