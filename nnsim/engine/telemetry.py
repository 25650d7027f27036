"""Per-layer statistics of a training step, computed with as few NumPy calls as possible.

A sample of every hidden layer's activations is copied side by side into one buffer, so the
histograms of all layers are one `np.bincount` whatever the depth. Sums of squares (activation variance around the
mean, norms of weights, gradients, updates and optimizer state) are BLAS dot products.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from nnsim.engine.network import Network
from nnsim.engine.records import LayerRecord
from nnsim.errors import PluginError, raised
from nnsim.pluginmanager import numpy_state, plugin_failure, restore_numpy_state

HIST_BINS = 20
#: histograms count at most about this many activations per layer: the first rows of the
#: (shuffled) batch, a random sample; mean, std, saturation and dead units use every row
HIST_SAMPLE = 4096
#: a unit is dead when it has been saturated (inactive) on every one of at least this many
#: consecutive training examples
DEAD_WINDOW = 1000


class Telemetry:
    """Preallocated scratch space and segment tables for one network."""

    def __init__(self, net: Network, optimizer_state: dict[str, np.ndarray],
                 step_buffer: bool = False) -> None:
        self.net = net
        self.state = optimizer_state
        #: whether the optimizer reports its step (see `after_update`): no copy of the weights
        self.step_buffer = step_buffer
        dt = net.dtype
        hidden = net.hidden
        self.n_hidden = n = len(hidden)
        b = net.batch_size
        sizes = [b * layer.fan_out for layer in hidden]
        self.act_sizes = [float(size) for size in sizes]
        self.centred = [np.empty((b, layer.fan_out), dt) for layer in hidden]

        # Histograms count the first `rows` rows of each layer's batch, copied side by side
        # into one buffer so that one bincount serves every layer.
        rows = [min(b, max(1, math.ceil(HIST_SAMPLE / layer.fan_out))) for layer in hidden]
        self.sample_rows = rows
        counts = np.array([r * layer.fan_out for r, layer in zip(rows, hidden)], dtype=np.intp)
        # where the sample holds every layer's whole batch (small layers), the activation
        # means and variances of every layer are computed from it at once; layers of one
        # size (the common case) make it a matrix, one row a layer, with the squares below
        # it: the sums and sums of squares of every layer are one small matrix product
        self.whole_batch = all(r == b for r in rows)
        same = self.whole_batch and len(set(sizes)) == 1
        self.sample_moments = np.empty((2 * n, sizes[0]) if same else (0, 0), dt)
        self.sample = self.sample_moments[:n].reshape(-1) if same else \
            np.empty(int(counts.sum()), dt)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
        self.sample_views = [self.sample[s:s + c].reshape(r, layer.fan_out)
                             for s, c, r, layer in zip(starts, counts, rows, hidden)]
        elem_layer = np.repeat(np.arange(n), counts)
        ranges = np.array([layer.activation.hist_range for layer in hidden], dtype=np.float64)
        lo, hi = ranges[:, 0], ranges[:, 1]
        scale = HIST_BINS / np.maximum(hi - lo, 1e-12)
        base = np.arange(n) * HIST_BINS
        # bin (as a float) = a · scale + shift, clipped into the layer's own block of bins
        self.hist_scale = scale[elem_layer].astype(dt)
        self.hist_shift = (base - lo * scale)[elem_layer].astype(dt)
        self.hist_low = base[elem_layer].astype(dt)
        self.hist_high = (base + HIST_BINS - 0.5)[elem_layer].astype(dt)
        self.hist_float = np.empty(int(counts.sum()), dt)
        self.hist_int = np.empty(int(counts.sum()), np.intp)
        self.hist_ranges = [(float(r[0]), float(r[1])) for r in ranges]
        self.sample_starts = starts
        self.sample_sq = np.empty(int(counts.sum()) if self.whole_batch else 0, dt)
        self.act_size_array = np.array(self.act_sizes)
        self.sample_ones = np.ones(sizes[0] if same else 0, dt)

        self.old = np.empty(0 if step_buffer else net.size, dt)
        extra = [s for s in net.segments if s.name not in ("W", "b")]
        self.extra = extra
        self.extra_start = net.n_weights + net.n_biases
        self.extra_offsets = np.array([s.start - self.extra_start for s in extra], dtype=np.intp)
        self.extra_sizes = np.array([s.stop - s.start for s in extra], dtype=np.float64)

        # Dead units: per hidden unit, the number of consecutive training examples (whole
        # minibatches) since the last one on which it was active. One vector for every layer.
        # The batch's "inactive on every row" flags of all layers sit side by side, so the
        # counters of every layer are updated and counted in a few calls whatever the depth.
        widths = [layer.fan_out for layer in hidden]
        units = sum(widths)
        self.inactive_run = np.zeros(units, np.int64)
        self.inactive = np.empty(units, bool)
        self.dead_flag = np.empty(units, bool)
        bounds = np.concatenate([[0], np.cumsum(widths)]).astype(np.intp)
        self.unit_starts = bounds[:-1]
        self.unit_widths = np.array(widths, dtype=np.float64)
        self.inactive_views = [self.inactive[a:z] for a, z in zip(bounds[:-1], bounds[1:])]
        self._masks = np.empty((b, units), bool)  # a batch's saturation masks, side by side
        self.unit_sizes = self.unit_widths * b  # entries of each layer's mask
        self.saturated = [0.0] * n
        #: batches that make up the window: a unit is dead when inactive on each of the last
        #: `dead_batches` batches (see `Simulation.steps`)
        self.dead_batches = -(-DEAD_WINDOW // b)
        self.dead = [0.0] * n
        #: whether the window holds examples yet (`prime` fills it at the first step)
        self.primed = False
        #: whether every unit was active in the last batch `activity` counted
        self.all_fired = False
        #: the newest measured steps' layer records, each with the histogram counts of every
        #: layer as the one array they were counted in (`keep_counts`; None: not kept)
        self.counts: deque[tuple[tuple[LayerRecord, ...], np.ndarray]] | None = None
        self._counted_state: tuple[str, ...] = ()

    def keep_counts(self, n: int) -> None:
        """From now on keep, for each of the newest `n` measured steps, its layer records
        with the histogram counts of all its layers as one array (every layer's 20 bins in
        turn), as they were counted. A checkpoint saved every N ≤ `n` steps takes them as its
        histogram columns and knows the records' layout from them, where it would otherwise
        read a hundred numbers a step back out of the records (`checkpoint.encode_history`)."""
        self.counts = deque(maxlen=max(1, n))

    def _saturated(self, layer) -> np.ndarray:
        act = layer.activation
        state = numpy_state()
        try:
            mask = act.saturated(layer.z, layer.a)
        except PluginError as exc:
            raise exc.placed(act, "saturated") from exc.__cause__
        except BaseException as exc:
            if not plugin_failure(exc):
                raise
            raise PluginError.at(act, "saturated", raised(exc)) \
                from exc
        finally:
            if numpy_state() != state:
                restore_numpy_state(state)
        if type(mask) is not np.ndarray or mask.shape != layer.a.shape:
            raise PluginError.at(act, "saturated", f"must return a boolean array of shape "
                                                   f"{layer.a.shape}")
        return mask

    def prime(self, train_x: np.ndarray) -> None:
        """Fill the dead-unit window before the first step, at the weights that step uses.

        The first min(len(train_x), DEAD_WINDOW rounded up to whole batches) training
        examples go through the network in training mode, in batches of the training batch
        size, as the steps will see them; normalizer buffers are restored afterwards and no
        random stream of the run is drawn from. When this covers the whole training split, a
        unit inactive on all of it is dead at once. The window is then full from step 1.
        """
        net = self.net
        b = net.batch_size
        m = min(len(train_x), -(-DEAD_WINDOW // b) * b)
        saved = [(layer.norm, {k: v.copy() for k, v in layer.norm.buffers.items()})
                 for layer in net.hidden if layer.norm is not None]
        rng = np.random.default_rng(0)  # dropout masks of the priming pass only
        all_rows = np.logical_and.reduce
        runs = self.inactive_run
        runs[...] = 0
        done = 0
        while done < m:
            start = min(done, m - b)  # the last batch may overlap the one before it
            net.forward(train_x[start:start + b], training=True, rng=rng)
            for layer, view in zip(net.hidden, self.inactive_views):
                all_rows(self._saturated(layer), axis=0, out=view)
            runs += start + b - done  # only the new rows count
            runs *= self.inactive
            done = start + b
        if m == len(train_x):  # every example of the data seen
            runs[runs >= m] = max(m, DEAD_WINDOW)
        for norm, buffers in saved:
            for k, v in buffers.items():
                norm.buffers[k] = v
        self.primed = True

    def before_update(self, grad_sq: list[float]) -> None:
        """Measure the forward and backward pass (`grad_sq`: the gradient's sums of squares
        per part, `Network.square_norms`); remember the weights if the update must be
        measured by difference."""
        net = self.net
        for view, layer, rows in zip(self.sample_views, net.hidden, self.sample_rows):
            np.copyto(view, layer.a[:rows])
        if self.sample_moments.size:  # one matrix product: [sample; sample²] @ ones
            moments, n = self.sample_moments, self.n_hidden
            np.multiply(moments[:n], moments[:n], out=moments[n:])
            size = self.act_sizes[0]
            sums = [x / size for x in np.matmul(moments, self.sample_ones).tolist()]
            means = sums[:n]
            variances = [q - m * m for q, m in zip(sums[n:], means)]
        elif self.whole_batch:  # the sample is every layer's whole batch: one reduceat each
            sq = self.sample_sq
            np.multiply(self.sample, self.sample, out=sq)
            means = (np.add.reduceat(self.sample, self.sample_starts, dtype=np.float64)
                     / self.act_size_array)
            second = np.add.reduceat(sq, self.sample_starts, dtype=np.float64) \
                / self.act_size_array
            variances = (second - means * means).tolist()
            means = means.tolist()
        else:
            means, variances = [], []
            add = np.add.reduce
            for layer, size in zip(net.hidden, self.act_sizes):
                a = layer.a
                m = float(add(a, axis=None)) / size
                means.append(m)
                variances.append(float(np.vdot(a, a)) / size - m * m)
        for i, (layer, c, size) in enumerate(zip(net.hidden, self.centred, self.act_sizes)):
            m, var = means[i], variances[i]
            if not var > 1e-3 * m * m:
                # E[a²] − m² loses the digits when the spread is tiny beside the mean (a
                # sigmoid layer near 0.5): measure around the mean instead
                np.subtract(layer.a, m, out=c)
                variances[i] = float(np.vdot(c, c)) / size
        self.act_mean, self.act_var = means, variances

        h = self.hist_float
        np.multiply(self.sample, self.hist_scale, out=h)
        h += self.hist_shift
        if not math.isfinite(sum(means)):
            np.nan_to_num(h, copy=False, nan=0.0, posinf=1e30, neginf=-1e30)
        np.maximum(h, self.hist_low, out=h)
        np.minimum(h, self.hist_high, out=h)
        np.copyto(self.hist_int, h, casting="unsafe")
        self.hist_counts = np.bincount(self.hist_int, minlength=self.n_hidden * HIST_BINS)
        self.hist = self.hist_counts.reshape(self.n_hidden, HIST_BINS).tolist()

        self.grad_sq = grad_sq
        self.weight_sq = net.square_norms(net.params)
        if self.extra:  # learnable parameters (γ, β, PReLU slopes) before the update
            self.extra_mean = (np.add.reduceat(net.params[self.extra_start:], self.extra_offsets,
                                               dtype=np.float64) / self.extra_sizes).tolist()
        if not self.step_buffer:
            np.copyto(self.old, net.params)

    def activity(self, measured: bool = True) -> None:
        """The dead-unit counters, on every training step, measured or not, so that `dead`
        means the same whichever steps are measured; on measured steps also the saturated
        shares and the dead shares. An unmeasured step costs one `saturated()` call per layer
        and a few calls for all of them, and nothing more when every unit fired in the
        batch."""
        masks = [self._saturated(layer) for layer in self.net.hidden]
        # the layers' masks side by side, (batch, every unit): one reduction for all
        if masks[0].shape[0] == self._masks.shape[0]:
            batch = np.concatenate(masks, axis=1, out=self._masks, casting="unsafe")
            sizes = self.unit_sizes
        else:  # a batch of another size than the network's
            batch = np.concatenate(masks, axis=1).astype(bool, copy=False)
            sizes = self.unit_widths * batch.shape[0]
        np.logical_and.reduce(batch, axis=0, out=self.inactive)
        if measured:
            counts = np.add.reduceat(np.count_nonzero(batch, axis=0), self.unit_starts)
            self.saturated = (counts / sizes).tolist()
        # examples since each unit was last active: + this batch, or 0 if active in it
        runs = self.inactive_run
        self.all_fired = not self.inactive.any()
        if not self.all_fired:
            runs += self.net.batch_size
            runs *= self.inactive
            if measured:
                np.greater_equal(runs, DEAD_WINDOW, out=self.dead_flag)
                self.dead = (np.add.reduceat(self.dead_flag, self.unit_starts, dtype=np.intp)
                             / self.unit_widths).tolist()
        else:  # every unit fired in this batch (the common case): nothing is dead
            runs.fill(0)
            if measured:
                self.dead = [0.0] * self.n_hidden

    def after_update(self, grad_scale: float = 1.0, step: np.ndarray | None = None) -> None:
        """Measure what the optimizer did to the weights. `grad_scale` is the factor the
        gradients were multiplied by between `before_update` and the update (clipping);
        `step` the optimizer's own step buffer when it reports one (the update was exactly
        params −= step), else the change is the difference from the copy."""
        net = self.net
        self.grad_scale = grad_scale
        delta = np.subtract(net.params, self.old, out=self.old) if step is None else step
        # ‖ΔW‖², ΔW·g and every state's squares, per layer, in one pass over them
        sums = net.dot_parts([(delta, delta), (delta, net.grads),
                              *((v, v) for v in self.state.values())])
        self.delta_sq = sums[0]
        # with the step buffer, ΔW = −step
        self.delta_dot_grad = sums[1] if step is None else [-x for x in sums[1]]
        sqrt = math.sqrt
        self.state_norm = {name: [sqrt(x) if x >= 0 else math.nan for x in values]
                           for name, values in zip(self.state, sums[2:])}

    def layers(self, logits: np.ndarray) -> tuple[LayerRecord, ...]:
        """Assemble the LayerRecords of this step."""
        net = self.net
        sqrt = math.sqrt
        learnable: list[list[tuple[str, float]]] = [[] for _ in net.dense]
        for seg, mean in zip(self.extra, self.extra_mean if self.extra else ()):
            learnable[seg.layer].append((seg.name, mean))
        states = list(self.state_norm.items())
        means, variances, hist = self.act_mean, self.act_var, self.hist
        n_logits = logits.size
        logit_mean = float(np.add.reduce(logits, axis=None)) / n_logits
        logit_var = float(np.vdot(logits, logits)) / n_logits - logit_mean * logit_mean
        n_hidden = self.n_hidden
        records = []
        for i, dense in enumerate(net.dense):
            g2, w2, d2 = self.grad_sq[i], self.weight_sq[i], self.delta_sq[i]
            gn = sqrt(g2) if g2 >= 0 else math.nan
            wn = sqrt(w2) if w2 >= 0 else math.nan
            dn = sqrt(d2) if d2 >= 0 else math.nan
            ratio = dn / wn if wn > 0 else 0.0
            step = dn / gn if gn > 0 else 0.0
            # the gradient the optimizer saw is the clipped one: its norm is gn · grad_scale
            gs = gn * self.grad_scale
            cos = -self.delta_dot_grad[i] / (dn * gs) if dn * gs > 0 else 0.0
            cos = 1.0 if cos > 1.0 else (-1.0 if cos < -1.0 else cos)  # round-off
            state = tuple([(name, values[i]) for name, values in states])
            gin = dense.grad_in_sq
            gin = sqrt(gin) if gin >= 0 else math.nan
            if i < n_hidden:
                v = variances[i]
                records.append(LayerRecord(
                    i + 1, "hidden", dense.fan_out, means[i], sqrt(v) if v >= 0 else math.nan,
                    tuple(hist[i]), self.hist_ranges[i], self.saturated[i], self.dead[i], gn,
                    gin, wn, ratio, cos, step, state, tuple(learnable[i])))
            else:
                records.append(LayerRecord(
                    i + 1, "output", dense.fan_out, logit_mean,
                    sqrt(logit_var) if logit_var >= 0 else (0.0 if logit_var > -1e-12
                                                            else math.nan),
                    (), (0.0, 0.0), 0.0, 0.0, gn, gin, wn, ratio, cos, step, state, ()))
        out = tuple(records)
        if self.counts is not None:
            # every kept step has one layout: the state names are the only part that could
            # change (an optimizer adding a state vector), so a change starts afresh
            names = tuple(self.state_norm)
            if names != self._counted_state:
                self.counts.clear()
                self._counted_state = names
            self.counts.append((out, self.hist_counts))
        return out
