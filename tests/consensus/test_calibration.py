from __future__ import annotations

import numpy as np
import pytest

from app.consensus.calibration import (
    expected_calibration_error,
    fit_mixture_weight,
    fit_temperature,
    tempered,
)


def test_expected_calibration_error_by_hand() -> None:
    # Bin (0.8, 0.867]: confidences 0.85, 0.85, accuracy 1/2 -> gap 0.35, weight 2/4.
    # Bin (0.933, 1]: confidences 1.0, 1.0, accuracy 1 -> gap 0, weight 2/4.
    ece = expected_calibration_error([0.85, 0.85, 1.0, 1.0], [True, False, True, True])
    assert ece == pytest.approx(0.5 * 0.35)
    assert expected_calibration_error([0.9] * 10, [True] * 9 + [False]) == pytest.approx(0.0)


def test_fit_temperature_recovers_the_temperature_that_generated_the_labels() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=4.0, size=(20_000, 4))
    # Labels drawn from softmax(logits / 2.5): the logits are over-confident by T = 2.5.
    probas = tempered(logits, 2.5)
    truth = (probas.cumsum(axis=1) < rng.random(20_000)[:, None]).sum(axis=1)
    assert fit_temperature(logits, truth) == pytest.approx(2.5, rel=0.05)


def test_fit_mixture_weight_recovers_the_mixture_that_generated_the_outcomes() -> None:
    rng = np.random.default_rng(0)
    first, second = rng.uniform(0.05, 0.95, 50_000), rng.uniform(0.05, 0.95, 50_000)
    # Outcomes drawn with P(y = 1) = 0.3·first + 0.7·second.
    y = rng.random(50_000) < 0.3 * first + 0.7 * second
    weight = fit_mixture_weight(np.where(y, first, 1 - first), np.where(y, second, 1 - second))
    assert weight == pytest.approx(0.7, abs=0.03)


def test_fit_mixture_weight_stays_in_the_unit_interval() -> None:
    better, worse = np.array([0.9, 0.8, 0.7]), np.array([0.1, 0.2, 0.3])
    assert fit_mixture_weight(better, worse) == 0.0
    assert fit_mixture_weight(worse, better) == 1.0
    assert fit_mixture_weight(np.empty(0), np.empty(0)) == 0.0
