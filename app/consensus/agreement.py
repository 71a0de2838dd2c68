"""Agreement: how much annotators agree with each other, and each with the consensus.

- Percent agreement: per item with two or more answers, the share of ordered pairs of answers
  that agree; averaged over those items (Fleiss's P̄).
- Fleiss' kappa (Fleiss, "Measuring nominal scale agreement among many raters", Psychological
  Bulletin 76(5), 1971): (P̄ − P̄e) / (1 − P̄e), with P̄e from the pooled label shares. Fleiss
  assumed the same number of answers per item; items with different counts enter with their own
  per-item agreement (the common generalisation), which is Fleiss's formula when counts are equal.
- Krippendorff's alpha (Krippendorff, "Computing Krippendorff's alpha-reliability", 2011):
  1 − D_o / D_e over pairable values (units with two or more values), nominal (δ = 0 when equal,
  else 1) or interval (δ² = squared difference), missing answers allowed.

All are written as sums over votes, never as item × label or value × value matrices, so a job's
million answers or a number control's thousands of distinct values cost O(votes).
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import numpy.typing as npt

from app.consensus.votes import NO_LABEL, FloatArray, IntArray, Votes


class Level(StrEnum):
    nominal = "nominal"
    interval = "interval"


def _item_agreement(votes: Votes) -> tuple[FloatArray, FloatArray]:
    """(per-item agreeing-pair share, per-item answer count) over items with ≥ 2 answers."""
    counts = votes.vote_counts()
    n = counts.sum(axis=1)
    pairable = n >= 2
    counts, n = counts[pairable], n[pairable]
    agreeing = (counts * (counts - 1)).sum(axis=1)
    return agreeing / (n * (n - 1)), n


def percent_agreement(votes: Votes) -> float:
    """Mean over items with two or more answers of the share of agreeing answer pairs; NaN
    when no item has two answers."""
    shares, _ = _item_agreement(votes)
    return float(shares.mean()) if shares.size else float("nan")


def fleiss_kappa(votes: Votes) -> float:
    """Fleiss' kappa over items with two or more answers; NaN when undefined (no such item, or
    every answer the same label, where chance agreement is already 1)."""
    shares, _ = _item_agreement(votes)
    if not shares.size:
        return float("nan")
    counts = votes.vote_counts()
    counts = counts[counts.sum(axis=1) >= 2]
    proportions = counts.sum(axis=0) / counts.sum()
    expected = float((proportions**2).sum())
    if expected >= 1.0:
        return float("nan")
    return (float(shares.mean()) - expected) / (1.0 - expected)


def krippendorff_alpha(
    units: npt.ArrayLike, values: npt.ArrayLike, level: Level = Level.nominal
) -> float:
    """Krippendorff's alpha of `values[v]` given to unit `units[v]` (one value per answer; a
    missing answer is simply absent). Nominal values are compared for equality (label indices
    will do); interval values are numbers. NaN when fewer than two pairable values exist or
    all pairable values are equal (no expected disagreement)."""
    unit = np.asarray(units, dtype=np.int64)
    value = np.asarray(values)
    if unit.shape != value.shape or unit.ndim != 1:
        raise ValueError("units and values must be one-dimensional and of equal length")
    if unit.size == 0:
        return float("nan")
    _, unit = np.unique(unit, return_inverse=True)
    m = np.bincount(unit).astype(np.float64)  # answers per unit
    pairable = m[unit] >= 2
    unit, value = unit[pairable], value[pairable]
    n = float(unit.size)
    if n < 2:
        return float("nan")
    units = np.flatnonzero(m >= 2)
    # observed = Σ_u Σ_{ordered pairs i≠j in u} δ(i, j) / (m_u − 1) = Σ_ck o_ck δ_ck;
    # expected = Σ_{ordered pairs over all pairable values} δ / (n − 1). α = 1 − obs / exp.
    if level is Level.nominal:
        _, code = np.unique(value, return_inverse=True)
        n_codes = int(code.max()) + 1
        cells, cell_counts = np.unique(unit * n_codes + code, return_counts=True)
        # Within a unit, ordered pairs that differ: m_u² − Σ_c n_uc².
        same = np.bincount(cells // n_codes, weights=cell_counts**2.0, minlength=m.size)
        observed = float(np.sum((m[units] ** 2 - same[units]) / (m[units] - 1)))
        totals = np.bincount(code).astype(np.float64)
        expected = (n * n - float((totals**2).sum())) / (n - 1)
    else:
        x = value.astype(np.float64)
        # Σ over ordered pairs of (x_i − x_j)² = 2 m Σx² − 2 (Σx)², per unit and overall.
        sums = np.bincount(unit, weights=x, minlength=m.size)
        squares = np.bincount(unit, weights=x * x, minlength=m.size)
        observed = float(
            np.sum((2 * m[units] * squares[units] - 2 * sums[units] ** 2) / (m[units] - 1))
        )
        expected = (2 * n * float((x * x).sum()) - 2 * float(x.sum()) ** 2) / (n - 1)
    if expected <= 0:
        return float("nan")
    return 1.0 - observed / expected


def agreement_with_consensus(votes: Votes, consensus: IntArray) -> FloatArray:
    """Per annotator, the share of their answers equal to the item's consensus label (items
    without one ignored); NaN for an annotator with no such answer."""
    decided = consensus[votes.items] != NO_LABEL
    hits = decided & (consensus[votes.items] == votes.labels)
    agree = np.bincount(votes.annotators, weights=hits, minlength=votes.n_annotators)
    total = np.bincount(votes.annotators, weights=decided, minlength=votes.n_annotators)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares: FloatArray = agree / total
    return shares
