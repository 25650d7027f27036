"""The MLP: (Dense → normalizer → activation → dropout) × depth → Dense, over flat parameters.

Every trainable parameter lives in one contiguous vector (`params`), with its gradient at the
same offsets in `grads`: all weight matrices first, then all biases, then the learnable
parameters of normalizers and activations. Layers see views into these vectors, so the
optimizer updates everything in a few vectorized calls whatever the depth. Matrix products
of training batches write into preallocated workspaces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nnsim.components import Activation, Normalizer
from nnsim.config import ModelConfig
from nnsim.errors import ConfigError, PluginError, raised
from nnsim.pluginmanager import (Registry, call_plugin, numpy_state, plugin_failure,
                                 restore_numpy_state)


#: flat vectors up to this many entries have their per-part sums of squares taken in two
#: NumPy calls (a square and a reduceat); longer ones in one BLAS dot product per part
SMALL_VECTOR = 1 << 16


@dataclass(frozen=True)
class Segment:
    """Where one parameter tensor sits in the flat vectors."""

    layer: int
    name: str
    start: int
    stop: int
    shape: tuple[int, ...]


class Dense:
    """One affine map x @ W + b; W has shape (fan_in, fan_out)."""

    def __init__(self, index: int, fan_in: int, fan_out: int) -> None:
        self.index = index
        self.fan_in = fan_in
        self.fan_out = fan_out
        self.W = self.b = self.gW = self.gb = np.empty(0)
        self.h_in = np.empty(0)  # the batch's input, kept for backward
        self.grad_in_sq = math.nan  # ‖∂L/∂input‖², set by backward(input_grad=True)


class HiddenLayer(Dense):
    """Dense, then optionally a normalizer, the activation and dropout."""

    def __init__(self, index: int, fan_in: int, fan_out: int, activation: Activation,
                 norm: Normalizer | None, norm_after: bool, dropout: float) -> None:
        super().__init__(index, fan_in, fan_out)
        self.activation = activation
        self.norm = norm
        self.norm_after = norm_after
        self.dropout = dropout
        self.act_learnable = activation.learnable()
        self.act_grads: dict[str, np.ndarray] = {}
        self.norm_grads: dict[str, np.ndarray] = {}
        self.mask: np.ndarray | None = None
        self.fixed_mask: np.ndarray | None = None  # for gradient checks
        # the training batch's pre-activations and activations, and their workspaces
        self.z = self.a = self.z_buf = self.gin_buf = np.empty(0)


def _store(component, method: str, views: dict[str, np.ndarray], values: dict) -> None:
    """Copy a plugin's parameter gradients into the flat gradient vector, checking shapes."""
    for key, view in views.items():
        value = values.get(key) if isinstance(values, dict) else None
        if value is None or np.shape(value) != view.shape:
            raise PluginError.at(component, method, f"must return a gradient of shape "
                                 f"{view.shape} for {key!r}, got "
                                 f"{None if value is None else np.shape(value)}")
        np.copyto(view, value, casting="unsafe")


def _check_shape(component, method: str, value, like: np.ndarray) -> np.ndarray:
    """Raise a PluginError unless `value` is an array shaped and typed like `like`."""
    if not isinstance(value, np.ndarray) or value.shape != like.shape:
        got = value.shape if isinstance(value, np.ndarray) else type(value).__name__
        raise PluginError.at(component, method, f"must return an array of shape {like.shape}, "
                                                f"got {got}")
    if value.dtype != like.dtype:
        raise PluginError.at(component, method, f"must return {like.dtype} for {like.dtype} "
                                                f"input, got {value.dtype}")
    return value


class Network:
    """The multi-layer perceptron, its flat parameter vectors and training workspaces."""

    def __init__(self, input_dim: int, outputs: int, cfg: ModelConfig, registry: Registry,
                 rng: np.random.Generator, batch_size: int) -> None:
        self.dtype = np.dtype(cfg.dtype)
        self.batch_size = batch_size
        #: whose plugin method is running (component, method), to name it in a failure
        self._where: tuple[Any, str] | None = None
        widths = [input_dim, *cfg.hidden, outputs]
        self.widths = widths
        norm_cls = registry.get("normalizer", cfg.normalizer.name)
        self.hidden: list[HiddenLayer] = []
        for i, (fan_in, fan_out) in enumerate(zip(widths[:-2], widths[1:-1])):
            act = cfg.activation.build(registry, "activation")
            norm = None if getattr(norm_cls, "passthrough", False) else \
                cfg.normalizer.build(registry, "normalizer")
            self.hidden.append(HiddenLayer(i, fan_in, fan_out, act, norm,
                                           cfg.norm_position == "after", cfg.dropout))
        self.output = Dense(len(self.hidden), widths[-2], widths[-1])
        self.dense: list[Dense] = [*self.hidden, self.output]
        self._layout(cfg, registry, rng)
        self._workspaces()

    # ------------------------------------------------------------ parameters

    def _layout(self, cfg: ModelConfig, registry: Registry, rng: np.random.Generator) -> None:
        weight_init = cfg.initializer.build(registry, "initializer")
        bias_init = cfg.bias_initializer.build(registry, "initializer")
        shapes: list[tuple[int, str, tuple[int, ...]]] = []
        shapes += [(d.index, "W", (d.fan_in, d.fan_out)) for d in self.dense]
        shapes += [(d.index, "b", (d.fan_out,)) for d in self.dense]
        initial: dict[tuple[int, str], np.ndarray] = {}
        owners: dict[tuple[int, str], tuple[Any, str]] = {}
        for layer in self.hidden:
            w = layer.fan_out
            parts: list[tuple[Any, dict]] = []
            if layer.norm is not None:
                norm = layer.norm
                parts.append((norm, call_plugin(norm, "init_params", w, self.dtype)))
                buffers = call_plugin(norm, "init_buffers", w, self.dtype)
                norm.buffers = {k: np.array(v, dtype=self.dtype) for k, v in buffers.items()}
            act = layer.activation
            parts.append((act, call_plugin(act, "init_params", w, self.dtype)))
            for component, values in parts:
                component.params = {}
                for name, value in values.items():
                    # the flat name is unique per layer: an activation's "beta" next to
                    # batch norm's "beta" becomes "act_beta"
                    flat = name if (layer.index, name) not in owners else f"act_{name}"
                    value = np.asarray(value)
                    shapes.append((layer.index, flat, value.shape))
                    initial[(layer.index, flat)] = value
                    owners[(layer.index, flat)] = (component, name)

        segments, offset = [], 0
        for index, name, shape in shapes:
            size = int(np.prod(shape))
            segments.append(Segment(index, name, offset, offset + size, shape))
            offset += size
        self.segments: list[Segment] = segments
        self.size = offset
        self.n_weights = sum(d.fan_in * d.fan_out for d in self.dense)
        self.n_biases = sum(d.fan_out for d in self.dense)
        self.params = np.zeros(offset, self.dtype)
        self.grads = np.zeros(offset, self.dtype)
        self._parts()

        def view(flat: np.ndarray, seg: Segment) -> np.ndarray:
            return flat[seg.start:seg.stop].reshape(seg.shape)

        for seg in segments:
            dense = self.dense[seg.layer]
            p, g = view(self.params, seg), view(self.grads, seg)
            if seg.name == "W":
                dense.W, dense.gW = p, g
                p[...] = self._draw(weight_init, seg.shape, dense, rng, "model.initializer")
            elif seg.name == "b":
                dense.b, dense.gb = p, g
                p[...] = self._draw(bias_init, seg.shape, dense, rng, "model.bias_initializer")
            else:
                hidden = self.hidden[seg.layer]
                p[...] = initial[(seg.layer, seg.name)]
                owner, name = owners[(seg.layer, seg.name)]
                owner.params[name] = p
                grads = hidden.norm_grads if owner is hidden.norm else hidden.act_grads
                grads[name] = g

    def _draw(self, init, shape, layer: Dense, rng, key: str) -> np.ndarray:
        state = numpy_state()
        try:
            value = np.asarray(init.sample(shape, layer.fan_in, layer.fan_out, rng))
        except ValueError as exc:  # the initializer refuses this use (e.g. orthogonal biases)
            raise ConfigError(key, f"{init.name}: {exc}") from None
        except BaseException as exc:
            if not plugin_failure(exc):
                raise
            raise PluginError.at(init, "sample", raised(exc)) \
                from exc
        finally:
            restore_numpy_state(state)
        if value.shape != tuple(shape):
            raise PluginError.at(init, "sample", f"must return an array of shape "
                                                 f"{tuple(shape)}, got {value.shape}")
        if not np.isfinite(value).all():
            raise PluginError.at(init, "sample", "returned non-finite values")
        return value

    def segment_slices(self, name: str) -> list[Segment]:
        return [s for s in self.segments if s.name == name]

    def _parts(self) -> None:
        """The flat vectors in parts: each dense layer's W, then everything else (biases and
        learnable parameters) as one part. `square_norms` sums squares part by part."""
        stops = [s.stop for s in self.segment_slices("W")]
        starts = [0, *stops[:-1]]
        if self.size > stops[-1]:
            starts.append(stops[-1])
            stops.append(self.size)
        self.part_bounds = list(zip(starts, stops))
        #: small vectors: one square and one reduceat (two calls, whatever the depth); large
        #: ones: one BLAS dot product per part (one read of the vector, nothing written)
        self.small = self.size <= SMALL_VECTOR
        self._square = np.empty(self.size, self.dtype) if self.small else None
        self._part_starts = np.array(starts, dtype=np.intp)
        self._rows: dict[int, np.ndarray] = {}  # scratch rows of `dot_parts`, by count

    def square_norms(self, flat: np.ndarray) -> list[float]:
        """Sums of squares of `flat` (params, grads or an optimizer state, laid out like
        `params`) per part: each dense layer's weights, then the rest (see `_parts`). They
        add up to the squared norm of the whole vector: the gradient norm, its finite
        check and the per-layer gradient norms come from this one pass."""
        sq = self._square
        if sq is not None:
            np.multiply(flat, flat, out=sq)
            return np.add.reduceat(sq, self._part_starts).tolist()
        return [float(np.vdot(v, v)) for v in (flat[a:z] for a, z in self.part_bounds)]

    def dot_parts(self, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[list[float]]:
        """Dot products of pairs of flat vectors part by part (see `square_norms`); for
        small vectors one reduceat serves every pair."""
        if self._square is None:
            return [[float(np.vdot(a[i:j], b[i:j])) for i, j in self.part_bounds]
                    for a, b in pairs]
        rows = self._rows.get(len(pairs))
        if rows is None:
            rows = self._rows[len(pairs)] = np.empty((len(pairs), self.size), self.dtype)
        for row, (a, b) in zip(rows, pairs):
            np.multiply(a, b, out=row)
        return np.add.reduceat(rows, self._part_starts, axis=1).tolist()

    # ------------------------------------------------------------ workspaces

    def _workspaces(self) -> None:
        b, dt = self.batch_size, self.dtype
        for layer in self.hidden:
            layer.z_buf = np.empty((b, layer.fan_out), dt)
            layer.gin_buf = np.empty((b, layer.fan_in), dt)
        self.logits_buf = np.empty((b, self.output.fan_out), dt)
        self.gout_buf = np.empty((b, self.output.fan_in), dt)
        self.ones = np.ones(b, dt)  # bias gradients as ones @ g: a BLAS product, not a reduce

    # ------------------------------------------------------------ passes

    def forward(self, x: np.ndarray, training: bool = True, rng: np.random.Generator | None = None
                ) -> np.ndarray:
        """Logits for a batch. In training mode caches what `backward` needs (batch_size rows)."""
        self._where, self._np = None, numpy_state()
        try:
            return self._forward(x, training, rng)
        except PluginError as exc:
            raise self._place(exc) from exc.__cause__
        except BaseException as exc:
            raise self._blame(exc)

    def backward(self, grad_logits: np.ndarray, input_grad: bool = False) -> None:
        """Fill `grads` from ∂L/∂logits. Sets each layer's `grad_in_sq` (‖∂L/∂input‖²) when
        `input_grad`; the first layer's input gradient is only computed then."""
        self._where, self._np = None, numpy_state()
        try:
            self._backward(grad_logits, input_grad)
        except PluginError as exc:
            raise self._place(exc) from exc.__cause__
        except BaseException as exc:
            raise self._blame(exc)

    def _place(self, exc: PluginError) -> PluginError:
        """A PluginError a plugin raised with a message alone, naming the method running."""
        return exc if self._where is None else exc.placed(*self._where)

    def _blame(self, exc: BaseException) -> BaseException:
        """A failure inside a plugin's method becomes a PluginError naming it (`plugin_failure`);
        any other failure is the engine's own, or the user's Ctrl-C, and propagates as it is."""
        if self._where is None or not plugin_failure(exc):
            return exc
        component, method = self._where
        error = PluginError.at(component, method, raised(exc))
        error.__cause__ = exc
        return error

    # The passes call plugin methods directly (no wrapper per call: a toy step makes dozens),
    # noting in `_where` whose method is running so that a failure can name it.

    def _forward(self, x, training, rng):
        reuse = training and x.shape[0] == self.batch_size
        h = x
        for layer in self.hidden:
            if reuse:
                z = np.matmul(h, layer.W, out=layer.z_buf)
                z += layer.b
            else:
                z = h @ layer.W + layer.b
            layer.h_in = h
            norm = layer.norm
            if norm is not None and not layer.norm_after:
                z = self._norm_forward(norm, z, training)
            act = layer.activation
            self._where = (act, "forward")
            a = act.forward(z)
            self._where = None
            if numpy_state() != self._np:  # a plugin changed NumPy's error state: undo
                restore_numpy_state(self._np)
            if type(a) is not np.ndarray or a.shape != z.shape or a.dtype != z.dtype:
                _check_shape(act, "forward", a, z)
            layer.z, layer.a = z, a
            h = a
            if norm is not None and layer.norm_after:
                h = self._norm_forward(norm, h, training)
            if training and layer.dropout > 0.0:
                if layer.fixed_mask is not None:
                    mask = layer.fixed_mask
                else:
                    keep = 1.0 - layer.dropout
                    mask = (rng.random(h.shape, dtype=self.dtype) < keep) * self.dtype.type(
                        1.0 / keep)
                layer.mask = mask
                h = h * mask
            else:
                layer.mask = None
        self.h_last = h
        if reuse:
            logits = np.matmul(h, self.output.W, out=self.logits_buf)
            logits += self.output.b
            return logits
        return h @ self.output.W + self.output.b

    def _norm_forward(self, norm: Normalizer, x: np.ndarray, training: bool) -> np.ndarray:
        self._where = (norm, "forward")
        y = norm.forward(x, training)
        self._where = None
        if numpy_state() != self._np:  # a plugin changed NumPy's error state: undo
            restore_numpy_state(self._np)
        if type(y) is not np.ndarray or y.shape != x.shape or y.dtype != x.dtype:
            _check_shape(norm, "forward", y, x)
        return y

    def _norm_backward(self, layer: HiddenLayer, g: np.ndarray) -> np.ndarray:
        norm = layer.norm
        assert norm is not None
        self._where = (norm, "backward")
        result = norm.backward(g)
        self._where = None
        if numpy_state() != self._np:  # a plugin changed NumPy's error state: undo
            restore_numpy_state(self._np)
        if not isinstance(result, tuple) or len(result) != 2:
            raise PluginError.at(norm, "backward", "must return (grad_x, {param: grad})")
        gx, pg = result
        _store(norm, "backward", layer.norm_grads, pg)
        if type(gx) is not np.ndarray or gx.shape != g.shape or gx.dtype != g.dtype:
            _check_shape(norm, "backward", gx, g)
        return gx

    def _backward(self, grad_logits, input_grad):
        out = self.output
        g = grad_logits
        reuse = g.shape[0] == self.batch_size
        ones = self.ones if reuse else np.ones(g.shape[0], self.dtype)
        np.matmul(self.h_last.T, g, out=out.gW)
        np.matmul(ones, g, out=out.gb)
        g = np.matmul(g, out.W.T, out=self.gout_buf if reuse else None)
        if input_grad:
            out.grad_in_sq = float(np.vdot(g, g))
        for layer in reversed(self.hidden):
            if layer.mask is not None:
                g = g * layer.mask
            if layer.norm is not None and layer.norm_after:
                g = self._norm_backward(layer, g)
            act = layer.activation
            self._where = (act, "backward")
            result = act.backward(layer.z, layer.a, g)
            self._where = None
            if numpy_state() != self._np:  # a plugin changed NumPy's error state: undo
                restore_numpy_state(self._np)
            if layer.act_learnable:
                if not isinstance(result, tuple) or len(result) != 2:
                    raise PluginError.at(act, "backward", f"must return (grad_x, {{param: "
                                         f"grad}}) for learnable "
                                         f"{', '.join(layer.act_learnable)}")
                result, pg = result
                _store(act, "backward", layer.act_grads, pg)
            if type(result) is not np.ndarray or result.shape != g.shape or \
                    result.dtype != g.dtype:
                _check_shape(act, "backward", result, g)
            g = result
            if layer.norm is not None and not layer.norm_after:
                g = self._norm_backward(layer, g)
            np.matmul(layer.h_in.T, g, out=layer.gW)
            np.matmul(ones, g, out=layer.gb)
            if layer.index > 0 or input_grad:
                g = np.matmul(g, layer.W.T, out=layer.gin_buf if reuse else None)
                if input_grad:
                    layer.grad_in_sq = float(np.vdot(g, g))

    # ------------------------------------------------------------ state

    def buffers(self) -> dict[str, np.ndarray]:
        """Normalizer buffers by 'layer{i}.{name}' (running statistics; not trained)."""
        return {f"layer{layer.index}.{k}": v for layer in self.hidden if layer.norm is not None
                for k, v in layer.norm.buffers.items()}

