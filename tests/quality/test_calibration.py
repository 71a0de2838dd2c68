from __future__ import annotations

import numpy as np
import pytest

from app.quality.calibration import expected_calibration_error, fit_temperature, tempered


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
