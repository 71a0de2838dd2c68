"""Calibration: whether a confidence of 0.9 is right nine times in ten, a temperature to make it so
where gold is known, and a mixture weight to make it so where it is not.

Expected calibration error with equal-width bins (Naeini, Cooper & Hauskrecht, "Obtaining well
calibrated probabilities using Bayesian binning", AAAI 2015; 15 bins as in Guo, Pleiss, Sun &
Weinberger, "On calibration of modern neural networks", ICML 2017). Temperature scaling (Guo et
al.) divides log-probabilities by one scalar T fitted on items whose true label is known: T > 1
softens an over-confident model without changing which label wins.

Guo et al. fit T by log-likelihood. On crowd posteriors that objective is dominated by the few
confident mistakes (a 0.999 posterior on a wrong label costs 7 nats), which drag T up and leave
the middle of the range under-confident. The Brier score, also a proper scoring rule but bounded
per item, fitted T closer to what the binned error wants: over 3 draws of 10 folds on the real
crowd sets (10% gold, ../shared/data/crowd) ECE went 0.0277 → 0.0236 on the product set, the
only one where log-likelihood missed crowd-kit's best (0.0253), at a cost of 0.004-0.009 on the
other three, which stay well inside theirs. T is kept at 1 or above: Dawid-Skene was never
under-confident in those measurements, and a small gold set that the model happens to get all
right would otherwise "sharpen" it without bound (one fold of 46 items did, to the bound).

Without gold, the only outcomes to score a calibration on are the votes themselves. Stacking
(Wolpert, "Stacked generalization", Neural Networks 1992; for predictive distributions Yao,
Vehtari, Simpson & Gelman, "Using stacking to average Bayesian predictive distributions",
Bayesian Analysis 2018) mixes two models' predictions with the weight that maximises the
leave-one-out log score of what was observed: `fit_mixture_weight` is that choice, given each
held-out observation's probability under either model. Its log score is concave in the weight,
so the maximum is unique and found by bisection on the derivative, deterministically.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.optimize import brentq, minimize_scalar

from app.consensus.estimator import softmax_rows
from app.consensus.votes import FloatArray, IntArray

ECE_BINS = 15

# Never sharpen (see above); beyond 50 a model's posteriors carry next to no information.
TEMPERATURE_BOUNDS = (1.0, 50.0)


def expected_calibration_error(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, bins: int = ECE_BINS
) -> float:
    """Σ_b (n_b / n) · |mean confidence_b − accuracy_b| over `bins` equal-width bins of
    confidence, bin b holding confidences in ((b−1)/bins, b/bins] (0 falls in the first)."""
    conf = np.asarray(confidence, dtype=np.float64)
    hits = np.asarray(correct, dtype=np.float64)
    if conf.size == 0:
        return 0.0
    which = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    # Per bin, n_b·|mean conf − accuracy| = |Σ (conf − hit)| over the bin's items.
    gap = np.bincount(which, weights=conf - hits, minlength=bins)
    return float(np.abs(gap).sum() / conf.size)


def tempered(log_scores: FloatArray, temperature: float) -> FloatArray:
    """softmax(log_scores / temperature) per row."""
    return softmax_rows(log_scores / temperature)


def fit_temperature(log_scores: FloatArray, truth: IntArray) -> float:
    """The T in TEMPERATURE_BOUNDS minimising the Brier score Σ ‖softmax(log_scores / T) − y‖²
    of the known labels `truth` (one-hot y)."""
    if truth.size == 0:
        return 1.0
    one_hot = np.zeros_like(log_scores)
    one_hot[np.arange(truth.size), truth] = 1.0

    def brier(log_t: float) -> float:
        return float(((tempered(log_scores, float(np.exp(log_t))) - one_hot) ** 2).sum())

    low, high = np.log(TEMPERATURE_BOUNDS[0]), np.log(TEMPERATURE_BOUNDS[1])
    result = minimize_scalar(brier, bounds=(low, high), method="bounded")
    return float(np.exp(result.x))


def fit_mixture_weight(first: FloatArray, second: FloatArray) -> float:
    """The w in [0, 1] maximising Σ log((1 − w)·first + w·second), where `first` and `second`
    (positive, one entry per held-out observation) are the probabilities two models gave each
    observation; 0 without observations."""
    if first.size == 0:
        return 0.0
    difference = second - first

    def slope(w: float) -> float:  # the log score's derivative, decreasing in w
        return float(np.sum(difference / (first + w * difference)))

    if slope(0.0) <= 0.0:
        return 0.0
    if slope(1.0) >= 0.0:
        return 1.0
    return float(brentq(slope, 0.0, 1.0, xtol=1e-12))
