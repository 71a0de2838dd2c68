"""Calibration: whether a confidence of 0.9 is right nine times in ten, and a temperature to make
it so.

Expected calibration error with equal-width bins (Naeini, Cooper & Hauskrecht, "Obtaining well
calibrated probabilities using Bayesian binning", AAAI 2015; 15 bins as in Guo, Pleiss, Sun &
Weinberger, "On calibration of modern neural networks", ICML 2017). Temperature scaling (Guo et
al.) divides log-probabilities by one scalar T fitted by maximum likelihood on items whose true
label is known: T > 1 softens an over-confident model without changing which label wins.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize_scalar

from app.quality.estimator import softmax_rows
from app.quality.votes import FloatArray, IntArray

ECE_BINS = 15

# Temperatures outside this range mean a broken model or too little gold, not a calibration.
TEMPERATURE_BOUNDS = (0.25, 50.0)


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
    """The T in TEMPERATURE_BOUNDS maximising Σ log softmax(log_scores / T)[truth]."""
    if truth.size == 0:
        return 1.0
    rows = np.arange(truth.size)

    def negative_log_likelihood(log_t: float) -> float:
        scaled = log_scores / np.exp(log_t)
        top = scaled.max(axis=1)
        normaliser = top + np.log(np.exp(scaled - top[:, None]).sum(axis=1))
        return float(np.sum(normaliser - scaled[rows, truth]))

    low, high = np.log(TEMPERATURE_BOUNDS[0]), np.log(TEMPERATURE_BOUNDS[1])
    result = minimize_scalar(negative_log_likelihood, bounds=(low, high), method="bounded")
    return float(np.exp(result.x))
