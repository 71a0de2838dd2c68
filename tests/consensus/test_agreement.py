"""Agreement metrics against published worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from app.consensus.agreement import (
    Level,
    agreement_with_consensus,
    fleiss_kappa,
    krippendorff_alpha,
    percent_agreement,
)
from app.consensus.votes import NO_LABEL, Votes

# Fleiss (1971), "Measuring nominal scale agreement among many raters", Psychological Bulletin
# 76(5), Table 1: 30 patients, 6 psychiatrists each, 5 diagnoses (depression, personality
# disorder, schizophrenia, neurosis, other); how many of the 6 gave each diagnosis. The paper
# reports P̄ = .556 and κ = .430.
FLEISS_1971 = [
    [0, 0, 0, 6, 0], [0, 3, 0, 0, 3], [0, 1, 4, 0, 1], [0, 0, 0, 0, 6], [0, 3, 0, 3, 0],
    [2, 0, 4, 0, 0], [0, 0, 4, 0, 2], [2, 0, 3, 1, 0], [2, 0, 0, 4, 0], [0, 0, 0, 0, 6],
    [1, 0, 0, 5, 0], [1, 1, 0, 4, 0], [0, 3, 3, 0, 0], [1, 0, 0, 5, 0], [0, 2, 0, 3, 1],
    [0, 0, 5, 0, 1], [3, 0, 0, 1, 2], [5, 1, 0, 0, 0], [0, 2, 0, 4, 0], [1, 0, 2, 0, 3],
    [0, 0, 0, 0, 6], [0, 1, 0, 5, 0], [0, 2, 0, 1, 3], [2, 0, 0, 4, 0], [1, 0, 0, 4, 1],
    [0, 5, 0, 1, 0], [4, 0, 0, 0, 2], [0, 2, 0, 4, 0], [1, 0, 5, 0, 0], [0, 0, 0, 0, 6],
]  # fmt: skip

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 observers,
# 12 units, values 1-5, None where an observer coded nothing. Reported: α nominal = 0.743,
# α interval = 0.849.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def _from_counts(table: list[list[int]]) -> Votes:
    items, labels = [], []
    for item, row in enumerate(table):
        for label, count in enumerate(row):
            items += [item] * count
            labels += [label] * count
    return Votes(
        np.array(items), np.arange(len(items)), np.array(labels), len(table), len(items), 5
    )


def _units_and_values(matrix: list[list[int | None]]) -> tuple[list[int], list[int]]:
    units, values = [], []
    for row in matrix:
        for unit, value in enumerate(row):
            if value is not None:
                units.append(unit)
                values.append(value)
    return units, values


def test_fleiss_kappa_and_percent_agreement_of_fleiss_1971_table_1() -> None:
    votes = _from_counts(FLEISS_1971)
    assert percent_agreement(votes) == pytest.approx(0.556, abs=5e-4)
    assert fleiss_kappa(votes) == pytest.approx(0.430, abs=5e-4)


def test_krippendorff_alpha_of_krippendorff_2011_nominal_and_interval() -> None:
    units, values = _units_and_values(KRIPPENDORFF_2011)
    assert krippendorff_alpha(units, values, Level.nominal) == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(units, values, Level.interval) == pytest.approx(0.849, abs=5e-4)


def test_krippendorff_alpha_ignores_units_with_a_single_value() -> None:
    units, values = _units_and_values(KRIPPENDORFF_2011)
    # Unit 12 has one value (3); without it, or with any other lone value there, nothing moves.
    alone = [u for u, v in zip(units, values, strict=True) if u != 11]
    kept = [v for u, v in zip(units, values, strict=True) if u != 11]
    assert krippendorff_alpha([*alone, 11], [*kept, 1]) == krippendorff_alpha(units, values)


def test_perfect_agreement_and_undefined_cases() -> None:
    same = Votes(np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1]), np.array([0, 0, 1, 1]), 2, 2, 2)
    assert percent_agreement(same) == 1.0
    assert fleiss_kappa(same) == 1.0
    assert krippendorff_alpha([0, 0, 1, 1], [0, 0, 1, 1]) == 1.0
    one_label = Votes(np.array([0, 0]), np.array([0, 1]), np.array([1, 1]), 1, 2, 2)
    assert math.isnan(fleiss_kappa(one_label))  # chance agreement is already 1
    assert math.isnan(krippendorff_alpha([0, 1], [1, 2]))  # no unit has two values


def test_agreement_with_consensus_per_annotator() -> None:
    votes = Votes(
        np.array([0, 0, 1, 1, 2]), np.array([0, 1, 0, 1, 1]), np.array([1, 1, 0, 1, 0]), 3, 3, 2
    )
    consensus = np.array([1, 0, NO_LABEL])
    shares = agreement_with_consensus(votes, consensus)
    assert shares[0] == 1.0  # agreed on items 0 and 1
    assert shares[1] == 0.5  # agreed on item 0, not 1; item 2 has no consensus
    assert math.isnan(shares[2])  # never answered
