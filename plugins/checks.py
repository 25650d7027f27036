"""Built-in checks of the doctor: the pathologies the lecture teaches, each judged by the
thresholds declared in nnsim.doctor.THRESHOLDS, each with the lecture's remedy."""

from __future__ import annotations

import math
import statistics

from nnsim import hookimpl
from nnsim.components import DoctorCheck, Finding

ARCH = "Architectural Considerations"
INIT = "Initialization"
PREP = "Preprocessing, Normalization, and Augmentation"
OPT = "Optimizers"
PROCESS = "The Process of Training Neural Networks"
REG = "Regularization"


def _decades(value: float, threshold: float) -> float:
    """How far past a threshold, in decades (> 0 when past it)."""
    if not (value > 0 and threshold > 0):
        return math.inf if value != value or value <= 0 else 0.0
    return abs(math.log10(value / threshold))


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _times(x: float) -> str:
    """A ratio for people: 12×, 340×, 65,600×, and past a million in powers of ten (1e+299×
    was written out in 300 digits)."""
    if x >= 1e6:
        return f"{x:.1e}×".replace("e+0", "e").replace("e+", "e")
    return f"{x:,.0f}×" if x >= 100 else f"{x:.2g}×"


def _scale_fix(ev) -> tuple[str, tuple]:
    """The first of the lecture's two cures for a network whose activations sit in the
    wrong range that is not in place yet: ("initializer", its fix) when the initializer is
    not the lecture's for the activation, else ("normalizer", batch norm) when there is no
    normalizer, else ("", ()): a remedy names what `f` applies."""
    good = ev.good_initializer()
    if ev.config.model.initializer.name != good:
        return "initializer", (("model.initializer", good),)
    if ev.config.model.normalizer.name == "none":
        return "normalizer", (("model.normalizer", "batchnorm"),)
    return "", ()


class VanishingGradients(DoctorCheck):
    """The first hidden layer's gradient is orders of magnitude below the last's."""

    name = "vanishing_gradients"

    def examine(self, ev):
        hidden = ev.hidden
        if len(hidden) < 3:
            return []
        first, last = (ev.layer_median("grad_norm", i) for i in (hidden[0], hidden[-1]))
        limit = ev.threshold("vanishing")
        if not (first >= 0 and last > 0) or first / last >= limit:
            return []
        activation = ev.activation
        remedy = ("use ReLU (with He initialization) instead of "
                  f"{activation}, or add batch norm" if activation in ("sigmoid", "tanh")
                  else "add batch norm, or check the initialization")
        fix = (("model.activation", "relu"), ("model.initializer", "he_normal")) \
            if activation in ("sigmoid", "tanh") else (("model.normalizer", "batchnorm"),)
        return [Finding(
            self.name, f"vanishing gradients: layer {hidden[0]}'s ‖∂L/∂W‖ is "
                       f"{_times(last / max(first, 1e-300))} smaller than layer {hidden[-1]}'s",
            f"median ‖∂L/∂W‖ {_fmt(first)} (L{hidden[0]}) vs {_fmt(last)} (L{hidden[-1]}), "
            f"ratio below {limit:g}", remedy, f"{ARCH} › sigmoid",
            _decades(first / last, limit), (hidden[0],), ev.steps, fix)]


class ExplodingGradients(DoctorCheck):
    """The first hidden layer's gradient is orders of magnitude above the last's."""

    name = "exploding_gradients"

    def examine(self, ev):
        hidden = ev.hidden
        if len(hidden) < 3:
            return []
        first, last = (ev.layer_median("grad_norm", i) for i in (hidden[0], hidden[-1]))
        limit = ev.threshold("exploding")
        if not (last > 0 and first / last > limit):
            return []
        lr = ev.config.optimizer.hypers.get("lr")
        return [Finding(
            self.name, f"exploding gradients: layer {hidden[0]}'s ‖∂L/∂W‖ is "
                       f"{_times(first / last)} layer {hidden[-1]}'s",
            f"median ‖∂L/∂W‖ {_fmt(first)} (L{hidden[0]}) vs {_fmt(last)} (L{hidden[-1]})",
            "scale the initial weights down (Xavier or He), clip gradients, or add batch norm",
            INIT, _decades(first / last, limit), (hidden[0],), ev.steps,
            (("model.initializer", ev.good_initializer()),) if lr else ())]


class Saturation(DoctorCheck):
    """A large share of a layer's units sit where their derivative is near zero."""

    name = "saturation"

    def examine(self, ev):
        if not ev.saturating:
            return []
        limit = ev.threshold("saturated")
        shares = {i: ev.layer_median("saturated", i) for i in ev.hidden}
        mean = statistics.fmean(shares.values()) if shares else 0.0
        bad = [i for i, v in shares.items() if v > limit]
        if not bad or mean <= limit:
            return []
        worst = max(bad, key=lambda i: shares[i])
        lecture = ev.good_initializer().replace("_normal", "")
        # the remedy starts from what is not in place yet, and `f` applies that (it said
        # "smaller initial weights (Xavier)" to a network initialized with Xavier)
        missing, fix = _scale_fix(ev)
        remedy = {
            "initializer": f"smaller initial weights ({lecture} for {ev.activation}), batch "
                           "norm, or a non-saturating activation (ReLU)",
            "normalizer": f"the initialization is already the lecture's ({lecture}): batch "
                          "norm, which keeps each layer's inputs where the activation has a "
                          "slope, standardized inputs, or a non-saturating activation (ReLU)",
            "": f"the initialization ({lecture}) and a normalizer are in place: standardized "
                "inputs, a smaller learning rate, or a non-saturating activation (ReLU)",
        }[missing]
        return [Finding(
            self.name, f"saturation: {shares[worst]:.0%} of layer {worst}'s units are saturated",
            ", ".join(f"L{i} {shares[i]:.0%}" for i in bad) + f" saturated; {mean:.0%} over "
            f"the hidden layers (limit {limit:.0%})", remedy, f"{ARCH} › TanH",
            mean / limit - 1 + 0.5, tuple(bad), ev.steps, fix)]


class DeadUnits(DoctorCheck):
    """Units inactive on every example of the recent data: dead ReLUs."""

    name = "dead_units"

    def examine(self, ev):
        limit = ev.threshold("dead")
        last = ev.measured[-1] if ev.measured else None
        if last is None:
            return []
        shares = {layer.index: layer.dead for layer in last.layers if layer.kind == "hidden"}
        bad = [i for i, v in shares.items() if v > limit]
        if not bad:
            return []
        worst = max(bad, key=lambda i: shares[i])
        return [Finding(
            self.name, f"dead units: {shares[worst]:.0%} of layer {worst}'s units never fire",
            ", ".join(f"L{i} {shares[i]:.0%}" for i in bad) + " of units inactive on every "
            f"example of the last ≥ 1,000 (over {limit:.0%})",
            "a smaller learning rate, leaky ReLU, or biases that start at 0",
            f"{ARCH} › ReLU", shares[worst] / limit - 1 + 0.5, tuple(bad), ev.steps,
            (("model.activation", "leaky_relu"),))]


class LearningRateHigh(DoctorCheck):
    """The loss diverged or rises, or the updates are far above 1e-3 of the weights."""

    name = "learning_rate_high"

    def examine(self, ev):
        lr = ev.config.optimizer.hypers.get("lr")
        fix = (("optimizer.lr", lr / 10),) if lr else ()
        remedy = "lower the learning rate by 10×" + (f" (to {_fmt(lr / 10)})" if lr else "")
        diverged = ev.diverged
        if diverged is not None:
            return [Finding(self.name, f"learning rate too high: the run diverged at step "
                                       f"{diverged.step}",
                            f"non-finite {diverged.nonfinite} at step {diverged.step}", remedy,
                            PROCESS, 3.0, (), (diverged.step, diverged.step), fix)]
        found = []
        high = ev.threshold("update_high")
        # the first steps, but not of a batch-normalized network: its layers' outputs do
        # not depend on the scale of their weights, so large first updates of small
        # weights (N(0, 0.01) under batch norm: 0.25 of them) only turn the weights and
        # grow them, and the ratio falls by itself; the steps since are judged as any
        early = [r for r in ev.records if r.layers][:int(ev.threshold("early"))] \
            if ev.config.model.normalizer.name != "batchnorm" else []
        for records, when in ((ev.measured, "per step"), (early, "in the first steps")):
            ratios = [statistics.median(layer.update_ratio for layer in r.layers
                                        if layer.kind == "hidden") for r in records
                      if any(layer.kind == "hidden" for layer in r.layers)]
            ratios = [r for r in ratios if math.isfinite(r)]
            if len(ratios) >= 3 and statistics.median(ratios) > high:
                r = statistics.median(ratios)
                span = (records[0].step, records[-1].step)
                found.append(Finding(self.name, f"learning rate too high: updates were "
                                                f"{_fmt(r)} of the weights {when}",
                                     f"median ‖ΔW‖/‖W‖ {_fmt(r)} over the hidden layers at "
                                     f"steps {span[0]}–{span[1]} (rule of thumb 1e-3, limit "
                                     f"{high:g})", remedy, PROCESS, _decades(r, high),
                                     tuple(ev.hidden), span, fix))
                break
        losses = ev.losses()
        recent = ev.losses(20)
        if not found and len(losses) >= max(40, ev.threshold("min_steps")):
            low = min(statistics.fmean(losses[i:i + 10]) for i in range(0, len(losses) - 9, 5))
            # the fall is measured from the run's first loss, not the window's: the TUI's
            # doctor sees the newest 600 steps, and a fall that happened before them is
            # still one the loss has not given back
            first = ev.first.loss if ev.first is not None else math.nan
            start = first if math.isfinite(first) else losses[0]
            now = statistics.fmean(recent)
            # rising: well above its lowest, and having given back a real part of what it
            # had gained (a converged loss's noise near 0 is neither)
            if low > 0 and now > ev.threshold("rising") * low and \
                    now - low > ev.threshold("given_back") * max(start - low, 0.0):
                found.append(Finding(self.name, "learning rate too high: the loss is rising",
                                     f"recent mean loss {_fmt(now)} vs its lowest {_fmt(low)}",
                                     remedy, PROCESS, math.log(now / low), (), ev.steps, fix))
        return found


class LearningRateLow(DoctorCheck):
    """Updates far below 1e-3 of the weights while the signal through the net is fine."""

    name = "learning_rate_low"

    def examine(self, ev):
        hidden = ev.hidden
        if not hidden:
            return []
        ratios = [ev.layer_median("update_ratio", i) for i in hidden]
        ratios = [r for r in ratios if math.isfinite(r)]
        low = ev.threshold("update_low")
        signal = ev.layer_median("act_std", hidden[-1])
        if not ratios or statistics.median(ratios) >= low or not signal >= ev.threshold(
                "signal"):
            return []
        losses = ev.losses()
        if len(losses) >= 20 and statistics.fmean(losses[-10:]) < ev.threshold(
                "progress") * statistics.fmean(losses[:10]):
            return []  # the loss has come down: small steps near a minimum are fine
        r = statistics.median(ratios)
        lr = ev.config.optimizer.hypers.get("lr")
        return [Finding(
            self.name, f"learning rate too low: updates are {_fmt(r)} of the weights per step",
            f"median ‖ΔW‖/‖W‖ {_fmt(r)} (rule of thumb 1e-3, limit {low:g}) while the last "
            f"hidden layer's act std is {_fmt(signal)}",
            "raise the learning rate by 10×" + (f" (to {_fmt(lr * 10)})" if lr else ""),
            PROCESS, _decades(r, low), tuple(hidden), ev.steps,
            (("optimizer.lr", lr * 10),) if lr else ())]


class StuckAtChance(DoctorCheck):
    """After many steps the loss is still ln C: the network predicts the class prior."""

    name = "stuck_at_chance"

    def examine(self, ev):
        if not ev.classes or ev.classes < 2 or ev.step < ev.threshold("chance_steps"):
            return []
        recent = ev.losses(20)
        if not recent:
            return []
        chance = math.log(ev.classes)
        loss = statistics.fmean(recent)
        off = abs(loss - chance) / chance
        limit = ev.threshold("chance")
        if off >= limit:
            return []
        lecture = ev.good_initializer().replace("_normal", "")
        # the remedy names what `f` applies: the initializer, or batch norm when it is
        # already the lecture's (it said "check the initialization" beside a batch-norm fix)
        missing, fix = _scale_fix(ev)
        remedy = {
            "initializer": f"check the initialization (for {ev.activation} the lecture's is "
                           f"{lecture}) and the learning rate",
            "normalizer": f"the initialization is already the lecture's ({lecture}): try batch "
                          "norm, which keeps each layer's inputs where the activation has a "
                          "slope, and check the learning rate",
            "": f"the initialization ({lecture}) and the normalizer are in place: check the "
                "learning rate and the data",
        }[missing]
        return [Finding(
            self.name, f"no learning: the loss is still ln {ev.classes} = {chance:.3g} after "
                       f"{ev.step:,} steps",
            f"mean loss {_fmt(loss)} over the last 20 steps, within {limit:.0%} of ln C",
            f"{remedy}; make sure the net can overfit a small batch first", PROCESS,
            math.log(limit / max(off, 1e-9)), (), ev.steps, fix)]


class Overfitting(DoctorCheck):
    """Validation loss well above the training loss, and rising."""

    name = "overfitting"

    def examine(self, ev):
        evals = ev.evals
        if len(evals) < 3:
            return []
        train = statistics.fmean(ev.losses(50))
        val = evals[-1].val_loss
        best = min(e.val_loss for e in evals)
        gap, rise = ev.threshold("gap"), ev.threshold("val_rise")
        if not (train > 0 and val > gap * train and val > rise * best):
            return []
        since_best = len(evals) - 1 - [e.val_loss for e in evals].index(best)
        if since_best < ev.threshold("stale_evals"):
            return []  # a bump, not yet a trend (batch norm's statistics lag early on)
        accs = [r.accuracy for r in ev.records[-50:] if r.accuracy is not None]
        if accs and evals[-1].val_accuracy is not None:  # classification: does it matter?
            acc_gap = statistics.fmean(accs) - evals[-1].val_accuracy
            if acc_gap <= ev.threshold("gap_accuracy"):
                return []
        l2 = ev.config.train.l2
        return [Finding(
            self.name, f"overfitting: validation loss {_fmt(val)} is {val / train:.1f}× the "
                       "training loss, and rising",
            f"training loss {_fmt(train)}, validation {_fmt(val)} (best {_fmt(best)} at step "
            f"{next(e.step for e in evals if e.val_loss == best)})",
            "regularize: L2, dropout, data augmentation, or stop early", REG,
            math.log(val / (gap * train)) + 0.5, (), (evals[0].step, evals[-1].step),
            (("train.l2", 1e-3),) if not l2 else (("model.dropout", 0.2),))]


class ActivationScale(DoctorCheck):
    """Activations shrink (or grow) by orders of magnitude from the first hidden layer to
    the last: the initialization's scale is off."""

    name = "activation_scale"

    def examine(self, ev):
        hidden = ev.hidden
        if len(hidden) < 2:
            return []
        # the first hidden layer against the deeper one furthest from it: with N(0, 0.01)
        # the last layer's std climbs back a little (the output's gradient feeds it), and
        # first-to-last said 65× where layer 4 was 1,400× below layer 1
        stds = {i: ev.layer_median("act_std", i) for i in hidden}
        first = stds[hidden[0]]
        deeper = [i for i in hidden[1:] if stds[i] >= 0]  # (NaN compares False)
        if not (first > 0 and deeper):
            return []
        collapse, growth = ev.threshold("collapse"), ev.threshold("growth")
        low, high = min(deeper, key=stds.__getitem__), max(deeper, key=stds.__getitem__)
        at = low if stds[low] / first < collapse else high
        ratio = stds[at] / first
        profile = "act std by layer: " + ", ".join(f"L{i} {_fmt(stds[i])}" for i in hidden)
        good = ev.good_initializer()
        fix = (("model.initializer", good),) if ev.config.model.initializer.name != good \
            else (("model.normalizer", "batchnorm"),)
        remedy = (f"initialize at the right scale: {good.replace('_normal', '')} for "
                  f"{ev.activation}, or add batch norm")
        if ratio < collapse:
            return [Finding(
                self.name, "activations collapse with depth: act std falls "
                           + (_times(1 / ratio) if ratio > 0 else "to 0")
                           + f" from layer {hidden[0]} to layer {at}",
                profile, remedy, f"{INIT} › Normal Initialization",
                _decades(max(ratio, 1e-300), collapse), tuple(hidden), ev.steps, fix)]
        if ratio > growth:
            return [Finding(
                self.name, f"activations grow with depth: act std rises {_times(ratio)} from "
                           f"layer {hidden[0]} to layer {at}",
                profile, remedy, f"{INIT} › Normal Initialization",
                _decades(ratio, growth), tuple(hidden), ev.steps, fix)]
        return []


class NoisyTraining(DoctorCheck):
    """A tiny batch gives each step a gradient far from the true one."""

    name = "noisy_training"

    def examine(self, ev):
        batch = ev.config.train.batch_size
        if batch > ev.threshold("small_batch") or ev.step < ev.threshold("min_steps"):
            return []
        noise = ev.gradient_noise
        limit = ev.threshold("noise")
        if noise is None or noise <= limit:
            return []
        return [Finding(
            self.name, f"noisy training: at batch {batch} a step's gradient is off by "
                       f"{noise:.1f}× the true gradient's size",
            f"‖g_B − g‖/‖g‖ = {noise:.2f} at the current weights (limit {limit:g}), over "
            f"{int(ev.threshold('noise_batches'))} batches of {batch}",
            "a larger batch (the noise falls as 1/√batch), or a smaller learning rate",
            f"{OPT} › Noisy gradients", math.log(noise / limit) + 0.5, (), ev.steps,
            (("train.batch_size", 64),))]


BUILTIN_CHECKS = (VanishingGradients, ExplodingGradients, Saturation, DeadUnits,
                  LearningRateHigh, LearningRateLow, StuckAtChance, Overfitting,
                  ActivationScale, NoisyTraining)


@hookimpl
def register_checks(register):
    for cls in BUILTIN_CHECKS:
        register(cls)
