"""Built-in lessons: the claims of the lecture on training deep networks, each one a small
experiment from one seed with a check that proves it with numbers, and a control (the same
experiment with the claimed cause removed, or the comparison made fair) that the same check
must fail.

Every condition of a check is a `Margin`: ln(measured / threshold), > 0 when it holds.
Accuracies are judged as error rates (1 − accuracy) on whole splits in inference mode.
"""

from __future__ import annotations

import math
import statistics

import numpy as np

from nnsim import hookimpl
from nnsim.components import Lesson, Verdict, above, below

DEEP = [32] * 6

# sections of the lecture (reference/lecture-optimization-of-deep-networks.md)
ARCH = "Architectural Considerations"
SIGMOID = "Architectural Considerations › sigmoid"
RELU = "Architectural Considerations › ReLU"
LEAKY = "Architectural Considerations › Leaky ReLU"
POOR_INIT = "Initialization › Poor initialization"
NORMAL_INIT = "Initialization › Normal Initialization"
XAVIER = "Initialization › Xavier Initialization"
XAVIER2 = "Initialization › (Simpler) Xavier and Xavier2 Initialization"
PREPROCESS = "Preprocessing, Normalization, and Augmentation"
OPTIMIZERS = "Optimizers"
NOISY = "Optimizers › Noisy gradients"
MOMENTUM = "Optimizers › Adding momentum"
REGULARIZATION = "Regularization"
AUGMENTATION = "Data Augmentation"
PROCESS = "The Process of Training Neural Networks"


def _layer_means(result, field: str, step_slice=slice(0, 5)) -> list[float]:
    """Per hidden layer, the mean of a layer field over a few steps."""
    records = result.records[step_slice]
    n = len(records[0].layers) - 1
    return [statistics.fmean(getattr(r.layers[i], field) for r in records) for i in range(n)]


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _train_loss(result, last: int = 50) -> float:
    """Mean minibatch loss over the last steps (training mode); inf once diverged."""
    return math.inf if result.diverged else result.mean("loss", last)


def _weights(sim, layer: int) -> slice:
    """Where layer `layer`'s (from 1) weight matrix sits in the flat parameter vector."""
    seg = next(s for s in sim.net.segments if s.name == "W" and s.layer == layer - 1)
    return slice(seg.start, seg.stop)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    return float(np.dot(a, b)) / (na * nb) if na * nb > 0 else 0.0


# ---------------------------------------------------------------- architecture

class LinearCollapse(Lesson):
    """Without non-linearities, depth adds nothing."""

    name = "linear_collapse"
    title = "Linear layers alone collapse to one linear map"
    section = ARCH
    explanation = ("Stacking Dense layers with no non-linearity between them multiplies their "
                   "matrices into a single one: a deep identity network draws only straight "
                   "boundaries, so it cannot separate xor's four quadrants. Put tanh between "
                   "the same layers and it can.")
    watch = "The accuracy in the status line; panel 4 shows the identity network's straight cut."
    panel = "boundary"
    base = {"data.name": "xor", "model.hidden": [16, 16, 16, 16]}
    runs = {"identity": {"model.activation": "identity"}, "tanh": {"model.activation": "tanh"}}
    control = {"identity": {"data.name": "gauss"}, "tanh": {"data.name": "gauss"}}
    control_note = ("two Gaussian blobs, which one straight line separates: the same identity "
                    "network then has nothing it cannot draw")
    steps = 600

    def check(self, results):
        return Verdict.of(
            above("identity training error", results["identity"].error(), 0.2),
            below("tanh training error", results["tanh"].error(), 0.1))


class SigmoidVanishing(Lesson):
    """Sigmoid gradients vanish with depth; ReLU's do not."""

    name = "sigmoid_vanishing"
    focus = "grad_norm"
    title = "Sigmoid gradients vanish with depth, ReLU's do not"
    section = SIGMOID
    explanation = ("The sigmoid's derivative is at most 0.25, so every layer the gradient "
                   "flows back through multiplies it by a quarter or less: eight layers down, "
                   "the first layer's weights hardly get a gradient. ReLU passes the gradient "
                   "through unchanged wherever it is active.")
    watch = "‖∂L/∂W‖ column: a staircase down towards layer 1 for sigmoid, flat for ReLU."
    base = {"model.hidden": [32] * 8}
    runs = {"sigmoid": {"model.activation": "sigmoid"},
            "relu": {"model.activation": "relu", "model.initializer": "he_normal"}}
    control = {"sigmoid": {"model.hidden": [32, 32]}, "relu": {"model.hidden": [32, 32]}}
    control_note = "two hidden layers instead of eight: too shallow for the product to vanish"
    steps = 20

    def check(self, results):
        ratios = {}
        for label, result in results.items():
            grads = _layer_means(result, "grad_norm", slice(0, 20))
            ratios[label] = grads[0] / grads[-1]
        return Verdict.of(
            below("sigmoid ‖∂L/∂W‖ layer 1 ÷ last hidden", ratios["sigmoid"], 1e-3),
            above("relu ‖∂L/∂W‖ layer 1 ÷ last hidden", ratios["relu"], 0.1))


class SigmoidPositive(Lesson):
    """Sigmoid outputs are always positive: a unit's incoming weight gradients share a sign."""

    name = "sigmoid_positive"
    focus = "act_mean"
    title = "Sigmoid's outputs are all positive, so a unit's weight gradients share one sign"
    section = SIGMOID
    explanation = ("The gradient of a weight is its input times the unit's error signal. "
                   "After a sigmoid every input to the next layer is positive, so for one "
                   "example all the weights into a unit get gradients of the same sign: they "
                   "can only all grow or all shrink together, and reaching a mix of signs takes "
                   "a zig-zag. tanh's outputs are centred, and the signs mix.")
    watch = "act mean: about 0.5 in every sigmoid layer, about 0 for tanh."
    base = {"model.hidden": [32, 32, 32], "train.batch_size": 16}
    runs = {"sigmoid": {"model.activation": "sigmoid"}, "tanh": {"model.activation": "tanh"}}
    control = {"sigmoid": {"model.normalizer": "layernorm", "model.norm_position": "after"}}
    control_note = ("layer norm after each sigmoid: the next layer's inputs are centred, with "
                    "signs of both kinds")
    steps = 50

    @staticmethod
    def same_sign(result, examples: int = 32) -> float:
        """Over single examples, the share of layer-2 units whose incoming weight gradients
        all have one sign."""
        sim = result.sim
        where = _weights(sim, 2)
        shape = sim.net.hidden[1].W.shape
        shares = []
        for i in range(examples):
            g = result.gradient(sim.data.train_x[i:i + 1], sim.data.train_y[i:i + 1])
            gw = g[where].reshape(shape)
            live = np.abs(gw).max(axis=0) > 0
            same = (np.all(gw >= 0, axis=0) | np.all(gw <= 0, axis=0)) & live
            shares.append(same.sum() / max(live.sum(), 1))
        return float(np.mean(shares))

    def check(self, results):
        return Verdict.of(
            above("sigmoid: share of units with same-sign weight gradients",
                  self.same_sign(results["sigmoid"]), 0.9),
            below("tanh: share of units with same-sign weight gradients",
                  self.same_sign(results["tanh"]), 0.1))


class TanhSaturation(Lesson):
    """Too-large initial weights saturate tanh."""

    name = "tanh_saturation"
    focus = "saturated"
    title = "tanh saturates under too-large initial weights"
    section = NORMAL_INIT
    explanation = ("With N(0, 1) weights a unit sums 32 inputs of size about one: its input is "
                   "far out on tanh's flat tails, where the derivative is nearly zero. Most "
                   "units are saturated and learn slowly. Xavier's √(1/fan_in) keeps the "
                   "inputs in tanh's steep middle.")
    watch = "saturated % column, and panel 3: the histograms pile up at ±1."
    panel = "distributions"
    base = {"model.activation": "tanh", "model.hidden": DEEP}
    runs = {"normal(1.0)": {"model.initializer": {"name": "normal", "std": 1.0}},
            "xavier": {"model.initializer": "xavier_normal"}}
    control = {"normal(1.0)": {"model.initializer": {"name": "normal", "std": 0.177}}}
    control_note = "the same normal initializer at std 0.177 = √(1/32), Xavier's scale"
    steps = 5

    def check(self, results):
        big = statistics.fmean(_layer_means(results["normal(1.0)"], "saturated")[1:])
        good = statistics.fmean(_layer_means(results["xavier"], "saturated")[1:])
        return Verdict.of(above("saturated share of layers 2-6, normal(1.0)", big, 0.5),
                          below("saturated share of layers 2-6, Xavier", good, 0.15))


def _negative_everywhere(result) -> float:
    """Share of hidden units whose input is ≤ 0 on every training example (inference mode):
    where a ReLU is dead; a leaky ReLU there still passes its slope's share of the gradient."""
    net = result.sim.net
    net.forward(result.sim.data.train_x, training=False)
    return statistics.fmean(float(np.mean(np.all(layer.z <= 0, axis=0))) for layer in net.hidden)


class DeadRelu(Lesson):
    """Too-large steps kill ReLUs during training; leaky ReLU's units stay alive."""

    name = "dead_relu"
    focus = "dead"
    title = "ReLUs die during training from too-large steps; leaky ReLU's units stay alive"
    section = RELU
    explanation = ("A ReLU whose input is negative for every example of the data passes no "
                   "gradient: it is dead, and nothing moves its weights again. Too-large steps "
                   "(Adam at lr 0.03 here) throw units' weights and biases to where that is so, "
                   "and they die during training. A leaky ReLU keeps a slope below zero (0.2 "
                   "here): a unit pushed there still gets a fifth of its gradient and can walk "
                   "back, so far fewer end up there.")
    watch = ("dead % column (units inactive on every one of the last 1,000 training "
             "examples): low at the start, rising for ReLU. The leaky ReLU's slope (0.2) is "
             "a fifth of its largest, above the 5 % that counts as saturated, so its dead "
             "column reads 0 by definition; the check counts units whose input is ≤ 0 on "
             "every example, in both runs.")
    base = {"model.hidden": [32, 32, 32], "model.initializer": "he_normal",
            "optimizer.name": "adam", "optimizer.lr": 0.03}
    runs = {"relu": {"model.activation": "relu"},
            # slope 0.2: at 0.1 the leaky run's share of units below zero everywhere came
            # within round-off of half the ReLU run's at one seed of ten on one machine
            "leaky_relu": {"model.activation": {"name": "leaky_relu", "slope": 0.2}}}
    control = {"relu": {"optimizer.lr": 0.001}, "leaky_relu": {"optimizer.lr": 0.001}}
    control_note = "Adam at lr 0.001 instead of 0.03: steps too small to kill units"
    steps = 300

    def check(self, results):
        relu = results["relu"]
        start = statistics.fmean(_layer_means(relu, "dead", slice(0, 1)))
        end = statistics.fmean(_layer_means(relu, "dead", slice(-1, None)))
        neg = {k: _negative_everywhere(r) for k, r in results.items()}
        return Verdict.of(
            above("relu: dead share gained during training", end - start, 0.05),
            below("units with input ≤ 0 on every example, leaky ÷ relu",
                  neg["leaky_relu"] / max(neg["relu"], 1e-9), 0.5),
            note=f"relu dead share {_fmt(start)} at step 1, {_fmt(end)} at the end")


class ReluRevival(Lesson):
    """A dead ReLU in a deeper layer can come back when the layers below change."""

    name = "relu_revival"
    focus = "dead"
    title = "Dead ReLUs in deeper layers can come back"
    section = RELU
    explanation = ("A dead ReLU gets no gradient, so its own weights never move. But a unit "
                   "in a deeper layer is dead only for the inputs it gets now, and those are "
                   "the outputs of the layers below, which keep learning: when they change, "
                   "some dead units see a positive input again and come back to life. Here "
                   "plain SGD at lr 1.0 kills many units and the last hidden layer's dead "
                   "share then falls back. A unit of a one-hidden-layer network sees the data "
                   "itself, which never changes: dead there, dead for good.")
    watch = "dead % column of layer 3: it climbs, then falls as units come back."
    base = {"model.hidden": [32, 32, 32], "model.initializer": "he_normal",
            "model.activation": "relu", "optimizer.name": "sgd", "optimizer.lr": 1.0}
    runs = {"relu": {}}
    control = {"relu": {"model.hidden": [32],
                        "model.bias_initializer": {"name": "constant", "value": -1.0}}}
    control_note = ("one hidden layer, with biases of −1 so that many of its units start "
                    "dead: its inputs are the data, which never change, so nothing brings them "
                    "back")
    steps = 600

    def check(self, results):
        r = results["relu"]
        last = len(r.sim.net.hidden)
        dead = r.series("dead", last)
        came_back = float(np.max(np.maximum.accumulate(dead) - dead))
        return Verdict.of(
            above("last hidden layer: largest fall of the dead share from its peak",
                  came_back, 0.1),
            note=f"dead share peaked at {_fmt(dead.max())}, {_fmt(dead[-1])} at the end")


# ---------------------------------------------------------------- initialization

class ConstantInit(Lesson):
    """Constant initialization keeps every unit of a layer identical forever."""

    name = "constant_init"
    focus = "act_std"
    title = "Constant initialization keeps every unit of a layer identical forever"
    section = POOR_INIT
    explanation = ("If every weight starts equal, every unit of a layer computes the same "
                   "output, receives the same gradient and takes the same step: they stay "
                   "copies of each other however long you train, and the layer is as good as "
                   "one unit wide. Random initialization breaks the symmetry.")
    watch = "act std and the histograms (panel 3): one spike per layer, and a loss that stalls."
    panel = "distributions"
    base = {"model.hidden": [16, 16, 16]}
    runs = {"constant": {"model.initializer": {"name": "constant", "value": 0.1}},
            "xavier": {"model.initializer": "xavier_normal"}}
    control = {"constant": {"model.dropout": 0.1}}
    control_note = ("dropout on the constant network: its random masks treat the copies "
                    "differently, which is all it takes to break the symmetry")
    steps = 300

    def check(self, results):
        spreads = {}
        for label, result in results.items():
            spreads[label] = max(float(np.abs(layer.W - layer.W[:, :1]).max())
                                 for layer in result.sim.net.hidden)
        return Verdict.of(
            below("largest difference between two units' weights, constant",
                  spreads["constant"], 1e-6),
            above("the same, Xavier", spreads["xavier"], 0.1))


class InitScale(Lesson):
    """Small random weights shrink activations; Xavier and He keep their spread."""

    name = "init_scale"
    focus = "act_std"
    title = "N(0, 0.01) shrinks activations; Xavier keeps tanh's, He keeps ReLU's"
    section = XAVIER2
    explanation = ("Each layer multiplies the spread of its input by about √fan_in·σ. With "
                   "σ = 0.01 and 256 inputs that is 0.16: the activations shrink sixfold "
                   "per layer and the deep ones are almost zero. Xavier (σ = √(1/fan_in)) "
                   "keeps the spread through tanh without pushing it into saturation; ReLU "
                   "zeroes half its inputs, so it needs He's √(2/fan_in): with Xavier, ReLU "
                   "halves the variance layer after layer.")
    watch = "act std column (log scale) and panel 3: the histograms, layer by layer."
    panel = "distributions"
    base = {"model.hidden": [256] * 6, "train.batch_size": 256}
    runs = {"tanh normal(0.01)": {"model.activation": "tanh", "model.initializer": "normal"},
            "tanh xavier": {"model.activation": "tanh", "model.initializer": "xavier_normal"},
            "relu he": {"model.activation": "relu", "model.initializer": "he_normal"},
            "relu xavier": {"model.activation": "relu", "model.initializer": "xavier_normal"}}
    control = {"tanh normal(0.01)": {"model.initializer": {"name": "normal", "std": 0.0625}},
               "tanh xavier": {"model.initializer": {"name": "xavier_normal", "gain": 3.0}},
               "relu he": {"model.initializer": {"name": "he_normal", "gain": 2.0}},
               "relu xavier": {"model.initializer": "he_normal"}}
    control_note = ("every scale changed: normal at √(1/256), Xavier with gain 3, He with gain "
                    "2, He where Xavier was")
    steps = 1

    def check(self, results):
        std = {k: _layer_means(r, "act_std", slice(0, 1)) for k, r in results.items()}
        sat = {k: statistics.fmean(_layer_means(r, "saturated", slice(0, 1))[1:])
               for k, r in results.items()}
        ratio = {k: v[-1] / v[0] for k, v in std.items()}
        halving = statistics.fmean((b / a) ** 2 for a, b in zip(std["relu xavier"][1:],
                                                                 std["relu xavier"][2:]))
        return Verdict.of(
            below("act std layer 6 ÷ 1, tanh normal(0.01)", ratio["tanh normal(0.01)"], 0.05),
            above("the same, tanh Xavier (does not vanish)", ratio["tanh xavier"], 0.3),
            below("saturated share of layers 2-6, tanh Xavier (does not saturate)",
                  sat["tanh xavier"], 0.05),
            above("act std layer 6 ÷ 1, relu He", ratio["relu he"], 0.5),
            below("the same, relu He", ratio["relu he"], 2.0),
            above("variance ratio per layer, relu Xavier", halving, 0.35),
            below("the same, relu Xavier", halving, 0.65))


class DepthInit(Lesson):
    """Deeper networks are more sensitive to initialization."""

    name = "depth_init"
    focus = "act_std"
    title = "Deeper networks are more sensitive to initialization"
    section = NORMAL_INIT
    explanation = ("A scale slightly off is multiplied once per layer: with weights 0.6 of "
                   "Xavier's scale, two tanh layers keep over a third of the input's spread, "
                   "ten layers keep almost none, and their gradients shrink alike. The same "
                   "initializer is fine for a shallow network and ruins a deep one.")
    watch = "act std column: the deep run's staircase down through the layers."
    panel = "distributions"
    base = {"model.activation": "tanh", "train.batch_size": 256, "data.samples": 2000,
            "model.initializer": {"name": "xavier_normal", "gain": 0.6}}
    runs = {"2 layers": {"model.hidden": [64] * 2}, "10 layers": {"model.hidden": [64] * 10}}
    control = {"2 layers": {"model.initializer": {"name": "xavier_normal", "gain": 1.0}},
               "10 layers": {"model.initializer": {"name": "xavier_normal", "gain": 1.0}}}
    control_note = "Xavier's own scale (gain 1): nothing is off, so depth costs nothing"
    steps = 1

    def check(self, results):
        first_to_last = {k: (lambda s: s[-1] / s[0])(_layer_means(r, "act_std", slice(0, 1)))
                         for k, r in results.items()}
        return Verdict.of(
            above("act std last ÷ first hidden layer, 2 layers", first_to_last["2 layers"], 0.4),
            below("the same, 10 layers", first_to_last["10 layers"], 0.05))


# ---------------------------------------------------------------- normalization

class BatchNormRescue(Lesson):
    """Batch norm rescues a bad initialization and trains at a higher learning rate."""

    name = "batchnorm_rescue"
    focus = "act_std"
    title = "Batch norm rescues a bad initialization and takes a higher learning rate"
    section = PREPROCESS
    explanation = ("N(0, 0.01) weights squeeze a deep tanh network's activations towards "
                   "zero and its gradients with them: it barely learns. Batch norm "
                   "re-standardizes every layer's inputs over the batch, so the same bad start "
                   "trains. And it keeps training at a learning rate (0.5) that breaks even a "
                   "well-initialized (Xavier) plain network.")
    watch = "loss and act std; compare the runs."
    base = {"model.hidden": DEEP}
    runs = {"plain N(0,0.01)": {"model.initializer": "normal"},
            "batchnorm N(0,0.01)": {"model.initializer": "normal",
                                    "model.normalizer": "batchnorm"},
            "plain xavier lr 0.5": {"optimizer.lr": 0.5},
            "batchnorm lr 0.5": {"model.normalizer": "batchnorm", "optimizer.lr": 0.5}}
    control = {"plain N(0,0.01)": {"model.initializer": "xavier_normal"},
               "plain xavier lr 0.5": {"optimizer.lr": 0.05}}
    control_note = ("the plain network gets what it needs without batch norm: Xavier instead "
                    "of N(0, 0.01), and its own learning rate 0.05 instead of 0.5")
    steps = 500

    def check(self, results):
        loss = {k: _train_loss(r) for k, r in results.items()}
        ln_c = math.log(results["plain N(0,0.01)"].sim.data.outputs)
        return Verdict.of(
            below("training loss ÷ ln C, plain N(0,0.01): distance from 1 (stuck)",
                  abs(loss["plain N(0,0.01)"] / ln_c - 1), 0.05),
            below("training loss ÷ ln C, batchnorm N(0,0.01) (trains)",
                  loss["batchnorm N(0,0.01)"] / ln_c, 0.8),
            below("training loss batchnorm lr 0.5 ÷ plain Xavier lr 0.5",
                  loss["batchnorm lr 0.5"] / loss["plain xavier lr 0.5"], 0.5),
            note="training loss: mean minibatch loss over the last 50 steps")


class BatchNormPosition(Lesson):
    """Normalization matters most before the non-linearity."""

    name = "batchnorm_position"
    focus = "saturated"
    title = "Batch norm before the non-linearity prevents saturation; after it, it cannot"
    section = PREPROCESS
    explanation = ("Very large inputs push tanh onto its flat tails. Batch norm placed before "
                   "the activation standardizes those inputs, so they land in tanh's steep "
                   "middle whatever the weights' scale. Placed after it, batch norm only "
                   "rescales outputs that are already stuck at ±1.")
    watch = "saturated % column: low with batch norm before tanh, high after."
    panel = "distributions"
    base = {"model.activation": "tanh", "model.hidden": [32] * 4,
            "model.normalizer": "batchnorm",
            "model.initializer": {"name": "normal", "std": 1.0}}
    runs = {"before": {"model.norm_position": "before"},
            "after": {"model.norm_position": "after"}}
    control = {"before": {"model.initializer": "xavier_normal"},
               "after": {"model.initializer": "xavier_normal"}}
    control_note = "Xavier weights: no input is large, so there is nothing for the position to fix"
    steps = 20

    def check(self, results):
        sat = {k: statistics.fmean(_layer_means(r, "saturated", slice(None))) for k, r in
               results.items()}
        return Verdict.of(below("saturated share, batch norm before tanh", sat["before"], 0.1),
                          above("the same, after tanh", sat["after"], 0.3))


class BatchNormStatistics(Lesson):
    """Batch norm's batch statistics are noisy in tiny batches: the same weights compute a
    different function."""

    name = "batchnorm_statistics"
    title = "Batch norm in tiny batches: noisy statistics, a different function"
    section = PREPROCESS
    explanation = ("In training, batch norm standardizes with the mean and variance of the "
                   "current batch; at inference with running averages over the data. A batch "
                   "of 4 gives noisy estimates, so the same trained weights compute a "
                   "different, worse function in training mode than at inference; a batch of "
                   "128 gives nearly the running values. Measured on one trained network, so "
                   "ordinary minibatch noise in SGD plays no part.")
    watch = "the loss curve (panel 2) and the layer table: the same network, its statistics."
    panel = "curves"
    base = {"model.hidden": [32, 32, 32], "model.normalizer": "batchnorm"}
    runs = {"batchnorm": {}}
    control = {"batchnorm": {"model.normalizer": "layernorm"}}
    control_note = ("layer norm, which standardizes each example over its own units: its "
                    "statistics do not depend on the batch at all")
    steps = 300

    @staticmethod
    def training_mode_loss(result, batch: int, n: int) -> float:
        """Loss over the first `n` training examples in training mode, in batches of
        `batch` (the running statistics are left as they were)."""
        sim = result.sim
        net, x, y = sim.net, sim.data.train_x, sim.data.train_y
        saved = {k: v.copy() for k, v in net.buffers().items()}
        losses = []
        for i in range(0, n, batch):
            logits = net.forward(x[i:i + batch], training=True)
            losses.append(sim._loss(logits, y[i:i + batch], want_grad=False)[0])
        for layer in net.hidden:
            if layer.norm is not None:
                for k, v in layer.norm.buffers.items():
                    v[...] = saved[f"layer{layer.index}.{k}"]
        return float(np.mean(losses))

    def check(self, results):
        r = results["batchnorm"]
        n = len(r.sim.data.train_x) // 128 * 128  # the same examples for both batch sizes
        small, large = self.training_mode_loss(r, 4, n), self.training_mode_loss(r, 128, n)
        return Verdict.of(
            above("training-mode loss, batches of 4 ÷ batches of 128", small / large, 1.5),
            note=f"training-mode loss {_fmt(small)} in batches of 4, {_fmt(large)} in batches "
                 f"of 128; inference-mode loss {_fmt(r.full_loss())}")


class BatchNormGammaBeta(Lesson):
    """γ and β let a batch-normalized layer learn to leave the normalization."""

    name = "batchnorm_gamma_beta"
    title = "Batch norm's γ and β learn to undo the normalization where the task needs it"
    section = PREPROCESS
    explanation = ("Batch norm outputs γ·x̂ + β: the standardized input x̂ (mean 0, std 1 over "
                   "the batch), then a learned scale and shift per unit, starting at 1 and 0. "
                   "They are trained like weights, so the network can learn not to normalize: "
                   "on the spiral, tanh units need other scales and offsets than (1, 0), and "
                   "γ and β move far from where they started. On two blobs, which the "
                   "standardized layer already separates, they have no reason to move.")
    watch = "the γ and β columns (learnable means) of each layer, and their spread."
    base = {"data.name": "spiral", "model.hidden": [32, 32], "model.activation": "tanh",
            "model.normalizer": "batchnorm"}
    runs = {"batchnorm": {}}
    control = {"batchnorm": {"data.name": "gauss"}}
    control_note = ("two Gaussian blobs: standardized inputs already serve the task, nothing "
                    "to undo")
    steps = 500

    def check(self, results):
        net = results["batchnorm"].sim.net
        gamma = np.concatenate([layer.norm.params["gamma"] for layer in net.hidden])
        beta = np.concatenate([layer.norm.params["beta"] for layer in net.hidden])
        return Verdict.of(
            above("mean distance of γ from 1 over the units", float(np.mean(np.abs(gamma - 1))),
                  0.2),
            above("mean size of β over the units", float(np.mean(np.abs(beta))), 0.2))


class BatchNormSmallBatch(Lesson):
    """Batch norm needs batches large enough for its statistics; layer norm does not."""

    name = "batchnorm_small_batch"
    title = "Batch norm fails with batches of 4; layer norm trains on the same batches"
    section = PREPROCESS
    explanation = ("Batch norm standardizes each unit over the batch: from 4 examples its "
                   "mean and variance are so noisy that the network learns a function of "
                   "its batch-mates, and at inference, with the running statistics, it is no "
                   "better than chance. Layer norm standardizes each example over its own "
                   "units: the same 4-example batches, the same SGD noise, and it trains. With "
                   "batches of 64 batch norm works too.")
    watch = "the loss curve of each run, and the validation accuracy in the status line."
    panel = "curves"
    base = {"model.hidden": [32, 32, 32], "optimizer.lr": 0.02, "train.batch_size": 4}
    runs = {"batchnorm": {"model.normalizer": "batchnorm"},
            "layernorm": {"model.normalizer": "layernorm"}}
    control = {"batchnorm": {"train.batch_size": 64}, "layernorm": {"train.batch_size": 64}}
    control_note = "batches of 64: enough examples for batch norm's statistics"
    steps = 1000

    def check(self, results):
        ln_c = math.log(results["batchnorm"].sim.data.outputs)
        bn, ln = (results[k].full_loss() / ln_c for k in ("batchnorm", "layernorm"))
        return Verdict.of(
            below("batchnorm: training loss ÷ ln C, inference mode: distance from 1 (chance)",
                  abs(bn - 1), 0.1),
            below("layernorm: the same (it trains)", ln, 0.7))


# ---------------------------------------------------------------- optimizers

class BatchNoise(Lesson):
    """Minibatch gradient noise falls like 1/√batch."""

    name = "batch_noise"
    focus = "grad_norm"
    title = "Noisy gradients: the noise falls like 1/√batch"
    section = NOISY
    explanation = ("A minibatch gradient is an estimate of the full gradient from a sample of "
                   "independent examples: its error ‖g_B − g‖ relative to ‖g‖ falls like "
                   "1/√batch. 64 times the batch, 8 times less noise.")
    watch = "the ‖∂L/∂W‖ sparklines: ragged for small batches, smooth for large ones."
    base = {"data.name": "teacher", "data.samples": 4000, "model.hidden": [32, 32],
            "optimizer.name": "sgd", "optimizer.lr": 0.01}
    runs = {"batch 8": {"train.batch_size": 8}, "batch 64": {"train.batch_size": 64},
            "batch 512": {"train.batch_size": 512}}
    control = {"batch 8": {"train.batch_size": 64}, "batch 512": {"train.batch_size": 64}}
    control_note = "every run at batch 64: the same batch size, the same noise"
    steps = 50

    @staticmethod
    def relative_noise(result, draws: int = 40) -> float:
        """√(mean ‖g_B − g‖²) / ‖g‖ over independent minibatches of the run's batch size,
        g the gradient of the whole training split, at the run's final weights."""
        sim = result.sim
        x, y = sim.data.train_x, sim.data.train_y
        b = sim.config.train.batch_size
        full = result.gradient(x, y)
        rng = np.random.default_rng(1)
        sq = [float(np.sum((result.gradient(x[idx], y[idx]) - full) ** 2))
              for idx in (rng.integers(0, len(x), b) for _ in range(draws))]
        return math.sqrt(statistics.fmean(sq)) / float(np.linalg.norm(full))

    def check(self, results):
        noise = {k: self.relative_noise(r) for k, r in results.items()}
        a, b, c = (noise[k] for k in ("batch 8", "batch 64", "batch 512"))
        return Verdict.of(
            above("noise batch 8 ÷ batch 64 (√8 = 2.83)", a / b, 2.0),
            below("noise batch 8 ÷ batch 64 (√8 = 2.83)", a / b, 4.0),
            above("noise batch 64 ÷ batch 512 (√8 = 2.83)", b / c, 2.0),
            below("noise batch 64 ÷ batch 512 (√8 = 2.83)", b / c, 4.0),
            note="relative noise ‖g_B − g‖/‖g‖: " + ", ".join(f"{k} {_fmt(v)}"
                                                           for k, v in noise.items()))


class MomentumIllConditioned(Lesson):
    """Momentum beats plain SGD on an ill-conditioned problem, at equal effective lr."""

    name = "momentum_ill_conditioned"
    title = "In a narrow valley, momentum settles where SGD at the same step zig-zags"
    section = MOMENTUM
    explanation = ("When one input is scaled 20× the other, the loss is a long narrow valley. "
                   "Give plain SGD momentum's effective step lr/(1−β) = 0.1: in the steep "
                   "direction that step overshoots, and SGD zig-zags from wall to wall, its "
                   "loss going up on a large share of its steps, never settling. Momentum's "
                   "velocity v ← βv + ∂L/∂w cancels the alternating steep component and keeps the "
                   "consistent one along the valley: it settles where the gradient is zero. "
                   "On well-scaled inputs there is no valley and the two end alike. Full-batch "
                   "gradients, so every zig-zag is the valley's, not noise.")
    watch = ("the loss curve in raw mode (press m): a thick band for sgd (up, down, up), a "
             "thin line for momentum.")
    panel = "curves"
    base = {"data.name": "gauss", "data.noise": 1.0, "data.samples": 250,
            "data.stretch": 20.0, "data.preprocess": "none", "model.hidden": [8],
            "model.activation": "tanh", "train.batch_size": 200}
    runs = {"sgd lr 0.1": {"optimizer.name": "sgd", "optimizer.lr": 0.1},
            "momentum lr 0.01": {"optimizer.name": "momentum", "optimizer.lr": 0.01,
                                 "optimizer.beta": 0.9}}
    control = {"sgd lr 0.1": {"data.stretch": 1.0}, "momentum lr 0.01": {"data.stretch": 1.0}}
    control_note = "well-scaled inputs (stretch 1): no narrow valley for momentum to help in"
    steps = 300

    @staticmethod
    def rises(result) -> float:
        """Share of the last 200 steps on which the (full-batch) loss went up."""
        loss = result.series("loss")[-201:]
        return float(np.mean(np.diff(loss) > 0))

    def check(self, results):
        grad = {}
        for label, r in results.items():
            g = r.gradient(r.sim.data.train_x, r.sim.data.train_y)
            grad[label] = math.inf if r.diverged else float(np.linalg.norm(g))
        return Verdict.of(
            below("‖∂L/∂w‖ at the end, momentum ÷ sgd",
                  grad["momentum lr 0.01"] / grad["sgd lr 0.1"], 0.25),
            above("sgd: share of steps on which the loss rose (zig-zag)",
                  self.rises(results["sgd lr 0.1"]), 0.1),
            note=f"momentum's loss rose on {self.rises(results['momentum lr 0.01']):.0%} of "
                 f"steps; training loss sgd {_fmt(results['sgd lr 0.1'].full_loss())}, "
                 f"momentum {_fmt(results['momentum lr 0.01'].full_loss())}")


class MomentumNoise(Lesson):
    """Momentum's velocity averages noisy minibatch gradients."""

    name = "momentum_noise"
    focus = "update_cos"
    title = "With noisy gradients, momentum's step is an average, not the newest minibatch"
    section = NOISY
    explanation = ("A gradient from 4 examples is mostly noise. Plain SGD steps along each "
                   "one as it comes (update cos = 1). Momentum's velocity v ← βv + ∂L/∂w is a "
                   "running sum of the last 1/(1−β) = 10 gradients: their noise partly cancels "
                   "and their common part adds up, so its step points well away from any one "
                   "minibatch's gradient. With exact (full-batch) gradients successive "
                   "gradients agree and the velocity lines up with each of them again.")
    watch = "panel 5 and the update cos column: 1 for sgd, far below 1 for momentum."
    panel = "optimizer"
    base = {"data.name": "spiral", "model.hidden": [32, 32], "train.batch_size": 4}
    runs = {"sgd lr 0.1": {"optimizer.name": "sgd", "optimizer.lr": 0.1},
            "momentum lr 0.01": {"optimizer.name": "momentum", "optimizer.lr": 0.01}}
    control = {"sgd lr 0.1": {"train.batch_size": 800},
               "momentum lr 0.01": {"train.batch_size": 800}}
    control_note = ("full-batch gradients (all 800 training examples): no noise to average, "
                    "successive gradients agree")
    steps = 100

    def check(self, results):
        cos = {k: statistics.fmean(_layer_means(r, "update_cos", slice(10, None)))
               for k, r in results.items()}
        return Verdict.of(
            below("momentum: mean cos(step, minibatch gradient)", cos["momentum lr 0.01"], 0.5),
            note=f"sgd {_fmt(cos['sgd lr 0.1'])}")


class SaddlePoint(Lesson):
    """Near a saddle the loss plateaus, and training escapes."""

    name = "saddle_point"
    focus = "grad_norm"
    title = "A plateau at the start is a saddle point, not a local minimum: training escapes"
    section = OPTIMIZERS
    explanation = ("Weights near zero sit next to a saddle point of the loss: every unit "
                   "computes almost nothing, the gradient is tiny in almost every direction, "
                   "and the loss stays flat at ln C. It is not a minimum: a few directions "
                   "lead down, the gradient grows along them, and the loss drops. Xavier "
                   "weights start away from the saddle and never see the plateau.")
    watch = "the loss curve: flat at ln 3 for a while, then a drop; ‖∂L/∂W‖ rising from tiny."
    panel = "curves"
    base = {"model.hidden": [32, 32, 32], "optimizer.lr": 0.1}
    runs = {"near the saddle": {"model.initializer": {"name": "normal", "std": 0.03}}}
    control = {"near the saddle": {"model.initializer": "xavier_normal"}}
    control_note = "Xavier weights, away from the saddle: no plateau to escape from"
    steps = 800

    def check(self, results):
        r = results["near the saddle"]
        loss, grad = r.series("loss"), r.series("grad_norm")
        ln_c = math.log(r.sim.data.outputs)
        return Verdict.of(
            below("loss over the first 100 steps ÷ ln C: distance from 1 (a plateau)",
                  abs(float(np.mean(loss[:100])) / ln_c - 1), 0.03),
            above("‖∂L/∂w‖ over the last 100 steps ÷ the first 100 (growing: not a minimum)",
                  float(np.mean(grad[-100:]) / np.mean(grad[:100])), 3.0),
            below("training loss at the end ÷ ln C (escaped)", r.full_loss() / ln_c, 0.6))


# ---------------------------------------------------------------- data

class Preprocessing(Lesson):
    """Standardizing or whitening the inputs speeds training."""

    name = "preprocessing"
    focus = "saturated"
    title = "Standardizing or whitening the inputs speeds training"
    section = PREPROCESS
    explanation = ("Raw inputs that sit far from zero and differ in scale make the first "
                   "layer's units saturate and the loss surface lopsided. Subtracting the "
                   "mean and dividing by the standard deviation (or whitening with PCA), "
                   "fitted on the training split, puts every input on the same footing.")
    watch = "the loss, and layer 1's saturated % without preprocessing."
    base = {"data.name": "moons", "data.offset": 5.0, "data.stretch": 10.0,
            "model.hidden": [32, 32]}
    runs = {"none": {"data.preprocess": "none"},
            "standardize": {"data.preprocess": "standardize"},
            "whiten": {"data.preprocess": "whiten"}}
    control = {label: {"data.offset": 0.0, "data.stretch": 1.0} for label in runs}
    control_note = "inputs already centred and of one scale: nothing for preprocessing to fix"
    steps = 300

    def check(self, results):
        loss = {k: r.full_loss() for k, r in results.items()}
        return Verdict.of(below("training loss standardize ÷ none",
                                loss["standardize"] / loss["none"], 0.5),
                          below("training loss whiten ÷ none", loss["whiten"] / loss["none"],
                                0.5))


class Whitening(Lesson):
    """Standardizing leaves correlated inputs correlated; whitening decorrelates them."""

    name = "whitening"
    title = "Correlated inputs: standardizing keeps the correlation, whitening (PCA) removes it"
    section = PREPROCESS
    explanation = ("Standardizing scales each input on its own: two strongly correlated "
                   "inputs stay just as correlated, and the first layer sees a narrow, "
                   "tilted cloud. Whitening rotates to the principal axes and scales each to "
                   "variance one: the cloud becomes round. It also blows up directions of tiny "
                   "variance (here, noise) to the same size as the signal, which is why the "
                   "lecture calls it not common and often not necessary: compare the losses.")
    watch = "panel 4: the tilted cloud (standardize) against the round one (whiten)."
    panel = "boundary"
    base = {"data.name": "gauss", "data.noise": 0.02, "model.hidden": [16],
            "optimizer.name": "sgd", "optimizer.lr": 0.1, "train.batch_size": 32}
    runs = {"standardize": {"data.preprocess": "standardize"},
            "whiten": {"data.preprocess": "whiten"}}
    control = {label: {"data.noise": 1.0} for label in runs}
    control_note = ("noisy blobs whose two inputs are nearly uncorrelated: standardizing is "
                    "already whitening")
    steps = 150

    @staticmethod
    def correlation(result) -> float:
        x = result.sim.data.train_x.astype(np.float64)
        return abs(float(np.corrcoef(x[:, 0], x[:, 1])[0, 1]))

    def check(self, results):
        corr = {k: self.correlation(r) for k, r in results.items()}
        return Verdict.of(
            above("size of the correlation of the two inputs, standardized",
                  corr["standardize"], 0.5),
            below("the same, whitened", corr["whiten"], 0.01),
            note="training loss " + ", ".join(f"{k} {_fmt(r.full_loss())}"
                                             for k, r in results.items()))


# ---------------------------------------------------------------- regularization

#: 60 training examples of two overlapping Gaussian blobs (noise 0.7: many examples sit on
#: the other class's side) and a wide network that memorizes them; 540 validation examples
OVERFIT = {"data.name": "gauss", "data.noise": 0.7, "data.samples": 600, "data.validation": 0.9,
           "model.hidden": [64, 64], "model.activation": "relu",
           "model.initializer": "he_normal", "train.batch_size": 30, "train.eval_every": 25,
           "optimizer.name": "momentum", "optimizer.lr": 0.05}


def _gap(result) -> float:
    """Validation error − training error, both on the whole split in inference mode."""
    return result.error("val") - result.error("train")


def _narrower(gap: float, plain: float) -> float:
    """A gap as a share of the plain run's (inf when the plain run has no gap to narrow)."""
    return gap / plain if plain > 0 else math.inf


class Regularization(Lesson):
    """L2 and dropout narrow the train–validation gap on a small training set."""

    name = "regularization"
    title = "L2 and dropout narrow the gap between training and validation"
    section = REGULARIZATION
    explanation = ("A wide network on 60 training examples of two overlapping classes "
                   "memorizes them, the ones on the wrong side included: it gets every training "
                   "example right and a fifth of new ones wrong. An L2 penalty keeps the weights "
                   "small and dropout keeps units from relying on each other: both give up "
                   "training accuracy for a narrower gap. Accuracies in inference mode (dropout "
                   "off) on the whole splits.")
    watch = "panel 2: training and validation accuracy apart, closer with L2 or dropout."
    panel = "curves"
    base = OVERFIT
    runs = {"plain": {}, "l2": {"train.l2": 0.01}, "dropout": {"model.dropout": 0.5}}
    control = {"l2": {"train.l2": 0.0}, "dropout": {"model.dropout": 0.0}}
    control_note = "the penalty and dropout switched off: nothing left to narrow the gap"
    steps = 600

    def check(self, results):
        gap = {k: _gap(r) for k, r in results.items()}
        return Verdict.of(
            below("error gap validation − training, l2 ÷ plain",
                  _narrower(gap["l2"], gap["plain"]), 1.0),
            below("the same, dropout ÷ plain", _narrower(gap["dropout"], gap["plain"]), 1.0),
            note="gaps " + ", ".join(f"{k} {_fmt(v)}" for k, v in gap.items()) +
                 "; validation error " + ", ".join(f"{k} {_fmt(r.error('val'))}"
                                                   for k, r in results.items()))


class Augmentation(Lesson):
    """Input-noise augmentation reduces overfitting."""

    name = "augmentation"
    title = "Noise augmentation narrows the gap between training and validation"
    section = AUGMENTATION
    explanation = ("Adding fresh Gaussian noise to every training batch shows the network a "
                   "slightly different version of each example every time, so it cannot "
                   "memorize the exact points and must learn the shape around them: the gap "
                   "between training and validation accuracy (inference mode, whole splits) "
                   "narrows.")
    watch = "panel 2: training and validation accuracy closer together; panel 4: smoother."
    panel = "curves"
    base = OVERFIT
    runs = {"plain": {}, "noise 0.5": {"data.augment": 0.5}}
    control = {"noise 0.5": {"data.augment": 0.0}}
    control_note = "the noise switched off"
    steps = 600

    def check(self, results):
        gap = {k: _gap(r) for k, r in results.items()}
        return Verdict.of(
            below("error gap validation − training, noise 0.5 ÷ plain",
                  _narrower(gap["noise 0.5"], gap["plain"]), 1.0),
            note="gaps " + ", ".join(f"{k} {_fmt(v)}" for k, v in gap.items()) +
                 "; validation error " + ", ".join(f"{k} {_fmt(r.error('val'))}"
                                                   for k, r in results.items()))


class EarlyStopping(Lesson):
    """The best validation loss comes early; training on makes it worse."""

    name = "early_stopping"
    title = "Early stopping: the best validation loss comes before the end"
    section = REGULARIZATION
    explanation = ("On a small training set the validation loss falls, bottoms out and "
                   "climbs again while the training loss keeps falling: from then on the "
                   "network memorizes. Early stopping watches the validation loss and stops "
                   "once it has not improved for a few evaluations, keeping most of the best.")
    watch = "panel 2: the validation loss turning up while the training loss goes on down."
    panel = "curves"
    base = OVERFIT
    runs = {"to the end": {}, "early stopping": {"train.early_stopping": 5}}
    control = {label: {"data.samples": 2000, "data.validation": 0.5} for label in runs}
    control_note = "1,000 training examples: the validation loss keeps improving to the end"
    steps = 600

    def check(self, results):
        full, early = results["to the end"], results["early stopping"]
        vals = [r.val_loss for r in full.records if r.val_loss is not None]
        best = min(vals)
        return Verdict.of(
            above("validation loss at the end ÷ the best", full.full_loss("val") / best, 1.3),
            below("validation loss at the stop ÷ at the end",
                  early.full_loss("val") / full.full_loss("val"), 0.8),
            note=f"stopped after {early.last.step} of {self.steps} steps")


# ---------------------------------------------------------------- the process

class LearningRate(Lesson):
    """Babysitting the learning rate: too high, too low, about right."""

    name = "learning_rate"
    focus = "update_ratio"
    title = "Babysitting the learning rate: too high diverges, too low crawls"
    section = PROCESS
    explanation = ("The loss curve and ‖ΔW‖/‖W‖ tell the learning rate. Too high: the "
                   "loss jumps up or goes non-finite within a few steps. Too low: the loss "
                   "barely moves and the updates are a millionth of the weights. About "
                   "right: the loss falls steadily and ‖ΔW‖/‖W‖ is near 1e-3.")
    watch = "update ratio column and the loss curve of each run."
    panel = "curves"
    base = {"model.hidden": [32, 32], "model.activation": "relu",
            "model.initializer": "he_normal", "optimizer.name": "sgd"}
    runs = {"lr 10": {"optimizer.lr": 10.0}, "lr 1e-5": {"optimizer.lr": 1e-5},
            "lr 0.1": {"optimizer.lr": 0.1}}
    control = {"lr 10": {"optimizer.lr": 0.1}, "lr 1e-5": {"optimizer.lr": 0.1}}
    control_note = "every run at lr 0.1: nothing too high or too low to see"
    steps = 500

    def check(self, results):
        high, low, right = (results[k] for k in ("lr 10", "lr 1e-5", "lr 0.1"))

        def moved(r) -> float:  # loss over the last 20 steps ÷ over the first 20
            loss = r.series("loss")
            return float(np.mean(loss[-20:]) / np.mean(loss[:20]))

        loss = high.series("loss")
        jump = math.inf if high.diverged else float(np.max(loss) / loss[0])
        ratio = {k: statistics.fmean(_layer_means(r, "update_ratio", slice(None)))
                 for k, r in results.items()}
        return Verdict.of(
            above("lr 10: largest loss ÷ the first (it jumps up, or diverges)", jump, 2.0),
            below("lr 1e-5: loss at the end ÷ at the start: distance from 1 (barely moves)",
                  abs(moved(low) - 1), 0.05),
            below("lr 1e-5: mean ‖ΔW‖/‖W‖", ratio["lr 1e-5"], 1e-5),
            below("lr 0.1: loss at the end ÷ at the start", moved(right), 0.5),
            above("lr 0.1: mean ‖ΔW‖/‖W‖ (near 1e-3)", ratio["lr 0.1"], 1e-4),
            below("lr 0.1: mean ‖ΔW‖/‖W‖ (near 1e-3)", ratio["lr 0.1"], 1e-2),
            note="lr 10 " + (f"diverged at step {high.sim.divergence.step}" if high.diverged
                             else f"training loss {_fmt(high.full_loss())}"))


class InitialLoss(Lesson):
    """At the start, the loss of a C-class softmax should be ln C."""

    name = "initial_loss"
    title = "Sanity check: the initial loss is ln C"
    section = PROCESS
    explanation = ("Before training, small weights give nearly equal scores to every class, "
                   "so the softmax puts 1/C on each and the cross-entropy is −ln(1/C) = ln C: "
                   "1.10 for three classes, 2.30 for ten. A first loss far from that means the "
                   "weights (or the loss) are not what you think.")
    watch = "the loss of step 1 in the status line and panel 2."
    panel = "curves"
    base = {"data.name": "spiral", "data.classes": 10, "model.hidden": [32, 32]}
    runs = {"small weights": {"model.initializer": {"name": "normal", "std": 0.01}}}
    control = {"small weights": {"model.initializer": {"name": "normal", "std": 1.0}}}
    control_note = "N(0, 1) weights: large, confident, random scores from the first step"
    steps = 1

    def check(self, results):
        r = results["small weights"]
        ln_c = math.log(r.sim.data.outputs)
        first = r.records[0].loss
        return Verdict.of(below("first loss ÷ ln C: distance from 1", abs(first / ln_c - 1), 0.02),
                          note=f"first loss {_fmt(first)}, ln C {_fmt(ln_c)}")


class OverfitSmallBatch(Lesson):
    """A network that cannot overfit a tiny training set has a bug."""

    name = "overfit_small_batch"
    title = "Sanity check: overfit a tiny training set first"
    section = PROCESS
    explanation = ("Before training on all the data, train on 20 examples with "
                   "regularization off: a working network and optimizer drive the training "
                   "loss to near zero and get every example right. If they cannot, something "
                   "is broken, and more data will not fix it.")
    watch = "the loss curve heading for zero, the accuracy for 1."
    panel = "curves"
    base = {"data.name": "spiral", "data.samples": 25, "data.validation": 0.2,
            "model.hidden": [32, 32], "optimizer.name": "adam", "optimizer.lr": 0.01,
            "train.batch_size": 20}
    runs = {"20 examples": {}}
    control = {"20 examples": {"train.l2": 0.5}}
    control_note = "a strong L2 penalty (0.5) left on: the network may not fit the examples"
    steps = 300

    def check(self, results):
        r = results["20 examples"]
        return Verdict.of(below("training loss", r.full_loss(), 0.05),
                          below("training error", r.error(), 0.01))


LESSONS = (LinearCollapse, SigmoidVanishing, SigmoidPositive, TanhSaturation, DeadRelu,
           ReluRevival, ConstantInit, InitScale, DepthInit, BatchNormRescue, BatchNormPosition,
           BatchNormStatistics, BatchNormGammaBeta, BatchNormSmallBatch, BatchNoise,
           MomentumIllConditioned, MomentumNoise, SaddlePoint, Preprocessing, Whitening,
           Regularization, Augmentation, EarlyStopping, LearningRate, InitialLoss,
           OverfitSmallBatch)


@hookimpl
def register_lessons(register):
    for cls in LESSONS:
        register(cls)
