"""Built-in lessons: the claims of the lecture on training deep networks, each one a few runs
from one seed and a check that proves it with numbers."""

from __future__ import annotations

import math
import statistics

import numpy as np

from nnsim import hookimpl
from nnsim.components import Lesson, Verdict

DEEP = [32] * 6


def _layer_means(result, field: str, step_slice=slice(0, 5)) -> list[float]:
    """Per hidden layer, the mean of a layer field over a few steps."""
    records = result.records[step_slice]
    n = len(records[0].layers) - 1
    return [statistics.fmean(getattr(r.layers[i], field) for r in records) for i in range(n)]


def _fmt(x: float) -> str:
    return f"{x:.3g}"


class LinearCollapse(Lesson):
    """Without non-linearities, depth adds nothing."""

    name = "linear_collapse"
    title = "Linear layers alone collapse to one linear map"
    explanation = ("Stacking Dense layers with no non-linearity between them multiplies their "
                   "matrices into a single one: a deep identity network draws only straight "
                   "boundaries, so it cannot separate xor's four quadrants. Put tanh between "
                   "the same layers and it can.")
    watch = "The accuracy in the status line; panel 4 shows the identity network's straight cut."
    panel = "boundary"
    base = {"data.name": "xor", "model.hidden": [16, 16, 16, 16]}
    runs = {"identity": {"model.activation": "identity"}, "tanh": {"model.activation": "tanh"}}
    steps = 800

    def check(self, results):
        linear = results["identity"].mean("accuracy", 100)
        tanh = results["tanh"].mean("accuracy", 100)
        return Verdict(linear < 0.75 and tanh > 0.9,
                       f"training accuracy over the last 100 steps: identity {_fmt(linear)} "
                       f"(< 0.75), tanh {_fmt(tanh)} (> 0.9)")


class SigmoidVanishing(Lesson):
    """Sigmoid gradients vanish with depth; ReLU's do not."""

    name = "sigmoid_vanishing"
    focus = "grad_norm"
    title = "Sigmoid gradients vanish with depth, ReLU's do not"
    explanation = ("The sigmoid's derivative is at most 0.25, so every layer the gradient "
                   "flows back through multiplies it by a quarter or less: eight layers down, "
                   "the first layer's weights hardly get a gradient. ReLU passes the gradient "
                   "through unchanged wherever it is active.")
    watch = "‖∂L/∂W‖ column: a staircase down towards layer 1 for sigmoid, flat for ReLU."
    base = {"model.hidden": [32] * 8}
    runs = {"sigmoid": {"model.activation": "sigmoid"},
            "relu": {"model.activation": "relu", "model.initializer": "he_normal"}}
    steps = 20

    def check(self, results):
        ratios = {}
        for label, result in results.items():
            grads = _layer_means(result, "grad_norm", slice(0, 20))
            ratios[label] = grads[0] / grads[-1]
        return Verdict(ratios["sigmoid"] < 1e-3 and ratios["relu"] > 0.1,
                       f"‖∂L/∂W‖ of layer 1 ÷ layer 8: sigmoid {_fmt(ratios['sigmoid'])} "
                       f"(< 1e-3), relu {_fmt(ratios['relu'])} (> 0.1)")


class TanhSaturation(Lesson):
    """Too-large initial weights saturate tanh."""

    name = "tanh_saturation"
    focus = "saturated"
    title = "tanh saturates under too-large initial weights"
    explanation = ("With N(0, 1) weights a unit sums 32 inputs of size about one: its input is "
                   "far out on tanh's flat tails, where the derivative is nearly zero. Most "
                   "units are saturated and learn slowly. Xavier's √(1/fan_in) keeps the "
                   "inputs in tanh's steep middle.")
    watch = "saturated % column, and panel 3: the histograms pile up at ±1."
    panel = "distributions"
    base = {"model.activation": "tanh", "model.hidden": DEEP}
    runs = {"normal(1.0)": {"model.initializer": {"name": "normal", "std": 1.0}},
            "xavier": {"model.initializer": "xavier_normal"}}
    steps = 5

    def check(self, results):
        big = statistics.fmean(_layer_means(results["normal(1.0)"], "saturated")[1:])
        good = statistics.fmean(_layer_means(results["xavier"], "saturated")[1:])
        return Verdict(big > 0.5 and good < 0.15,
                       f"saturated share of layers 2-6: N(0, 1) {_fmt(big)} (> 0.5), "
                       f"Xavier {_fmt(good)} (< 0.15)")


class DeadRelu(Lesson):
    """A negative bias kills ReLUs; leaky ReLU and PReLU keep their units alive."""

    name = "dead_relu"
    focus = "dead"
    title = "Dead ReLUs, and leaky ReLU / PReLU keeping units alive"
    explanation = ("A ReLU whose input is negative for every example passes no gradient: it "
                   "is dead and nothing will revive it. A negative bias (or a step that "
                   "throws the weights too far) kills many at once. Leaky ReLU and PReLU keep "
                   "a small slope below zero, so every unit still gets a gradient and can "
                   "come back.")
    watch = "dead % column: high for ReLU, zero for leaky ReLU and PReLU; and the loss."
    base = {"model.hidden": DEEP, "model.initializer": "he_normal",
            "model.bias_initializer": {"name": "constant", "value": -1.0}}
    runs = {"relu": {"model.activation": "relu"},
            "leaky_relu": {"model.activation": {"name": "leaky_relu", "slope": 0.2}},
            "prelu": {"model.activation": "prelu"}}
    steps = 500

    def check(self, results):
        dead = {k: statistics.fmean(_layer_means(r, "dead", slice(-20, None)))
                for k, r in results.items()}
        loss = {k: r.mean("loss", 50) for k, r in results.items()}
        ok = (dead["relu"] > 0.3 and dead["leaky_relu"] == 0 and dead["prelu"] == 0
              and loss["leaky_relu"] < 0.8 * loss["relu"] and loss["prelu"] < 0.8 * loss["relu"])
        return Verdict(ok, f"dead share of hidden units: relu {_fmt(dead['relu'])} (> 0.3), "
                           f"leaky {_fmt(dead['leaky_relu'])}, prelu {_fmt(dead['prelu'])} "
                           f"(0); loss: relu {_fmt(loss['relu'])}, leaky "
                           f"{_fmt(loss['leaky_relu'])}, prelu {_fmt(loss['prelu'])} "
                           f"(< 0.8 × relu)")


class ConstantInit(Lesson):
    """Constant initialization keeps every unit of a layer identical forever."""

    name = "constant_init"
    focus = "act_std"
    title = "Constant initialization keeps every unit of a layer identical forever"
    explanation = ("If every weight starts equal, every unit of a layer computes the same "
                   "output, receives the same gradient and takes the same step: they stay "
                   "copies of each other however long you train, and the layer is as good as "
                   "one unit wide. Random initialization breaks the symmetry.")
    watch = "act std and the histograms (panel 3): one spike per layer, and a loss that stalls."
    panel = "distributions"
    base = {"model.hidden": [16, 16, 16]}
    runs = {"constant": {"model.initializer": {"name": "constant", "value": 0.1}},
            "xavier": {"model.initializer": "xavier_normal"}}
    steps = 300

    def check(self, results):
        spreads = {}
        for label, result in results.items():
            spreads[label] = max(float(np.abs(layer.W - layer.W[:, :1]).max())
                                 for layer in result.sim.net.hidden)
        loss = {k: r.mean("loss", 50) for k, r in results.items()}
        ok = spreads["constant"] < 1e-6 and spreads["xavier"] > 0.1 and \
            loss["xavier"] < loss["constant"]
        return Verdict(ok, f"largest difference between two units' weights after "
                           f"{self.steps} steps: constant {spreads['constant']:.2g} (< 1e-6), "
                           f"xavier {_fmt(spreads['xavier'])}; loss constant "
                           f"{_fmt(loss['constant'])}, xavier {_fmt(loss['xavier'])}")


class InitScale(Lesson):
    """Small random weights shrink activations; Xavier and He keep their spread."""

    name = "init_scale"
    focus = "act_std"
    title = "N(0, 0.01) shrinks activations; Xavier keeps tanh's, He keeps ReLU's"
    explanation = ("Each layer multiplies the spread of its input by about √fan_in·σ. With "
                   "σ = 0.01 and 256 inputs that is 0.16: the activations shrink sixfold "
                   "per layer and the deep ones are almost zero. Xavier (σ = √(1/fan_in)) "
                   "keeps the spread through tanh; ReLU zeroes half its inputs, so it needs "
                   "He's √(2/fan_in): with Xavier, ReLU halves the variance layer after layer.")
    watch = "act std column (log scale) and panel 3: the histograms, layer by layer."
    panel = "distributions"
    base = {"model.hidden": [256] * 6, "train.batch_size": 256}
    runs = {"tanh normal(0.01)": {"model.activation": "tanh", "model.initializer": "normal"},
            "tanh xavier": {"model.activation": "tanh", "model.initializer": "xavier_normal"},
            "relu he": {"model.activation": "relu", "model.initializer": "he_normal"},
            "relu xavier": {"model.activation": "relu", "model.initializer": "xavier_normal"}}
    steps = 1

    def check(self, results):
        std = {k: _layer_means(r, "act_std", slice(0, 1)) for k, r in results.items()}
        ratio = {k: v[-1] / v[0] for k, v in std.items()}
        halving = statistics.fmean((b / a) ** 2 for a, b in zip(std["relu xavier"][1:],
                                                                 std["relu xavier"][2:]))
        ok = (ratio["tanh normal(0.01)"] < 0.05 and ratio["tanh xavier"] > 0.3
              and ratio["relu he"] > 0.5 and 0.35 < halving < 0.65)
        return Verdict(ok, f"act std layer 6 ÷ layer 1: normal(0.01) "
                           f"{ratio['tanh normal(0.01)']:.2g} (< 0.05), tanh xavier "
                           f"{_fmt(ratio['tanh xavier'])} (> 0.3), relu he "
                           f"{_fmt(ratio['relu he'])} (> 0.5); relu xavier variance ratio per "
                           f"layer {_fmt(halving)} (≈ 0.5)")


class BatchNormRescue(Lesson):
    """Batch norm rescues a bad initialization and trains at a higher learning rate."""

    name = "batchnorm_rescue"
    focus = "act_std"
    title = "Batch norm rescues a bad initialization and takes a higher learning rate"
    explanation = ("N(0, 0.01) weights squeeze a deep tanh network's activations towards "
                   "zero and its gradients with them: it barely learns. Batch norm "
                   "re-standardizes every layer's inputs over the batch, so the same bad start "
                   "trains, and it keeps training at a learning rate that breaks the plain "
                   "network.")
    watch = "loss and act std; compare the runs."
    base = {"model.hidden": DEEP, "model.initializer": "normal"}
    runs = {"plain": {},
            "batchnorm": {"model.normalizer": "batchnorm"},
            "batchnorm lr×10": {"model.normalizer": "batchnorm", "optimizer.lr": 0.5},
            "plain lr×10": {"optimizer.lr": 0.5}}
    steps = 400

    def check(self, results):
        loss = {k: r.mean("loss", 50) for k, r in results.items()}
        for k, r in results.items():
            if r.last.nonfinite is not None:
                loss[k] = math.inf
        ok = (loss["batchnorm"] < 0.7 * loss["plain"]
              and loss["batchnorm lr×10"] < loss["plain lr×10"])
        return Verdict(ok, "loss over the last 50 steps: " + ", ".join(
            f"{k} {_fmt(v)}" for k, v in loss.items()) + " (batchnorm < 0.7 × plain, and "
            "better than plain at lr×10)")


class BatchNormStatistics(Lesson):
    """Batch norm's training and inference statistics differ; tiny batches make them noisy."""

    name = "batchnorm_statistics"
    title = "Batch norm: batch statistics in training, running ones at inference"
    explanation = ("In training, batch norm standardizes with the mean and variance of the "
                   "current batch; at inference it uses running averages. With a tiny batch "
                   "those batch statistics are noisy estimates, so the network sees inputs "
                   "normalized differently at every step and the loss jitters; a large "
                   "batch gives stable estimates close to the running ones.")
    watch = "the loss curve (panel 2): ragged with batch 4, smooth with batch 128."
    panel = "curves"
    base = {"model.normalizer": "batchnorm", "model.hidden": [32, 32, 32]}
    runs = {"batch 4": {"train.batch_size": 4}, "batch 128": {"train.batch_size": 128}}
    steps = 200

    def check(self, results):
        noise, gap = {}, {}
        for label, result in results.items():
            sim = result.sim
            layer = sim.net.hidden[0]
            bn = layer.norm
            z_all = sim.data.train_x @ layer.W + layer.b
            b = sim.config.train.batch_size
            rng = np.random.default_rng(0)
            means = [z_all[rng.choice(len(z_all), b, replace=False)].mean(axis=0)
                     for _ in range(100)]
            noise[label] = float(np.std(means, axis=0).mean())
            x = sim.data.train_x[:b]
            train_out = bn.forward(x @ layer.W + layer.b, training=True)
            infer_out = bn.forward(x @ layer.W + layer.b, training=False)
            gap[label] = float(np.abs(train_out - infer_out).mean())
        ok = noise["batch 4"] > 3 * noise["batch 128"] and gap["batch 4"] > gap["batch 128"]
        return Verdict(ok, f"spread of the batch mean of layer 1's inputs: batch 4 "
                           f"{_fmt(noise['batch 4'])}, batch 128 {_fmt(noise['batch 128'])} "
                           f"(> 3×); |training − inference output|: batch 4 "
                           f"{_fmt(gap['batch 4'])}, batch 128 {_fmt(gap['batch 128'])}")


class MomentumIllConditioned(Lesson):
    """Momentum beats plain SGD on an ill-conditioned problem."""

    name = "momentum_ill_conditioned"
    title = "Momentum beats plain SGD on an ill-conditioned problem"
    explanation = ("When one input is scaled 20× the other, the loss is a long narrow valley: "
                   "a learning rate small enough for the steep direction crawls along the "
                   "shallow one. Momentum's velocity v ← βv + ∂L/∂w accumulates the small, "
                   "consistent gradient along the valley and gets there many times faster.")
    watch = "panel 5: velocity and the step size growing towards lr/(1−β); the loss curve."
    panel = "optimizer"
    base = {"data.name": "gauss", "data.stretch": 20.0, "data.preprocess": "none",
            "model.hidden": [8], "model.activation": "tanh", "optimizer.lr": 0.002}
    runs = {"sgd": {"optimizer.name": "sgd", "optimizer.lr": 0.002},
            "momentum": {"optimizer.name": "momentum", "optimizer.lr": 0.002}}
    steps = 300

    def check(self, results):
        sgd = results["sgd"].mean("loss", 30)
        mom = results["momentum"].mean("loss", 30)
        return Verdict(mom < 0.5 * sgd, f"loss over the last 30 of {self.steps} steps: sgd "
                                        f"{_fmt(sgd)}, momentum {_fmt(mom)} (< half)")


class BatchNoise(Lesson):
    """Gradient noise shrinks as the batch grows."""

    name = "batch_noise"
    focus = "grad_norm"
    title = "Noisy gradients: the noise shrinks with the batch size"
    explanation = ("A minibatch gradient is an estimate of the full gradient from a sample: "
                   "its noise falls like 1/√batch. With 8 examples the gradient norm jumps "
                   "from step to step; with 512 it is nearly steady.")
    watch = "the ‖∂L/∂W‖ sparklines: ragged for small batches, smooth for large ones."
    base = {"data.name": "teacher", "data.samples": 4000, "model.hidden": [32, 32],
            "optimizer.name": "sgd", "optimizer.lr": 1e-5}
    runs = {"batch 8": {"train.batch_size": 8}, "batch 64": {"train.batch_size": 64},
            "batch 512": {"train.batch_size": 512}}
    steps = 100

    def check(self, results):
        cv = {}
        for label, result in results.items():
            norms = [r.grad_norm for r in result.records]
            cv[label] = statistics.pstdev(norms) / statistics.fmean(norms)
        ok = cv["batch 8"] > cv["batch 64"] > cv["batch 512"] and cv["batch 512"] < 0.5 * cv["batch 8"]
        return Verdict(ok, "spread ÷ mean of the gradient norm over 100 steps of a nearly "
                           "frozen network: " + ", ".join(
            f"{k} {_fmt(v)}" for k, v in cv.items()) + " (decreasing; 512 under half of 8)")


class Regularization(Lesson):
    """L2 and dropout narrow the train–validation gap on a small training set."""

    name = "regularization"
    title = "L2 and dropout narrow the gap between training and validation"
    explanation = ("A wide network on 60 training examples memorizes them: it gets every "
                   "training example right and many validation examples wrong. An L2 penalty "
                   "keeps the weights small and dropout keeps units from relying on each "
                   "other: both give up a little training accuracy for a smaller gap.")
    watch = "panel 2: training and validation accuracy apart, closer with L2 or dropout."
    panel = "curves"
    base = {"data.name": "spiral", "data.samples": 120, "data.validation": 0.5,
            "data.noise": 0.1, "model.hidden": [128, 128], "model.activation": "relu",
            "model.initializer": "he_normal", "train.batch_size": 30, "train.eval_every": 25,
            "optimizer.name": "adam", "optimizer.lr": 0.01}
    runs = {"plain": {}, "l2": {"train.l2": 0.01}, "dropout": {"model.dropout": 0.5}}
    steps = 1500

    def check(self, results):
        gap = {}
        for label, result in results.items():
            gap[label] = result.mean("accuracy", 250) - statistics.fmean(
                r.val_accuracy for r in result.evals())
        ok = gap["l2"] < 0.85 * gap["plain"] and gap["dropout"] < 0.85 * gap["plain"]
        return Verdict(ok, "training − validation accuracy at the end: " + ", ".join(
            f"{k} {_fmt(v)}" for k, v in gap.items()) + " (L2 and dropout < 0.85 × plain)")


class Preprocessing(Lesson):
    """Standardizing or whitening the inputs speeds training."""

    name = "preprocessing"
    focus = "saturated"
    title = "Standardizing or whitening the inputs speeds training"
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
    steps = 300

    def check(self, results):
        loss = {k: r.mean("loss", 30) for k, r in results.items()}
        ok = loss["standardize"] < 0.5 * loss["none"] and loss["whiten"] < 0.5 * loss["none"]
        return Verdict(ok, "loss over the last 30 steps: " + ", ".join(
            f"{k} {_fmt(v)}" for k, v in loss.items()) + " (preprocessed < half of none)")


class Augmentation(Lesson):
    """Input-noise augmentation reduces overfitting."""

    name = "augmentation"
    title = "Noise augmentation reduces overfitting"
    explanation = ("Adding fresh Gaussian noise to every training batch shows the network a "
                   "slightly different version of each example every time, so it cannot "
                   "memorize the exact points and must learn the shape around them.")
    watch = "panel 2: the validation loss stays down with augmentation; panel 4: smoother."
    panel = "curves"
    base = Regularization.base
    runs = {"plain": {}, "noise 0.3": {"data.augment": 0.3}}
    steps = 1500

    def check(self, results):
        val = {}
        for label, result in results.items():
            val[label] = statistics.fmean(r.val_loss for r in result.evals())
        ok = val["noise 0.3"] < 0.8 * val["plain"]
        return Verdict(ok, f"validation loss at the end: plain {_fmt(val['plain'])}, "
                           f"noise 0.3 {_fmt(val['noise 0.3'])} (< 0.8 × plain)")


LESSONS = (LinearCollapse, SigmoidVanishing, TanhSaturation, DeadRelu, ConstantInit, InitScale,
           BatchNormRescue, BatchNormStatistics, MomentumIllConditioned, BatchNoise,
           Regularization, Preprocessing, Augmentation)


@hookimpl
def register_lessons(register):
    for cls in LESSONS:
        register(cls)
