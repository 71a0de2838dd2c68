"""Consensus for the controls a plain majority vote cannot aggregate: pure functions, per control.

Each `aggregate_*` takes the values several annotators gave one control of one item and returns
the consensus value with a confidence in [0, 1]; `aggregate_control` picks the right one, so the
job's consensus (and, later, the quality package's dispatcher) calls one function per control.

- Time segments: intervals of one label are clustered across annotators (single linkage on
  interval IoU ≥ the control's threshold, at most one interval per annotator in a cluster); a
  cluster backed by a strict majority of the annotators becomes one consensus segment (median
  start, median end, attributes by `aggregate_attributes`).
- Pairwise preferences: the Bradley–Terry model (Bradley & Terry 1952), fitted by Hunter's MM
  algorithm (Hunter 2004, "MM algorithms for generalized Bradley–Terry models"). With the two
  candidates of one item its maximum-likelihood preference is the share of annotators
  preferring a side, which is the confidence.
- Rankings: a Borda count (each annotator gives a candidate as many points as candidates it beats
  in their order) or a Bradley–Terry fit over the pairs each ranking implies; the confidence is
  the annotators' mean agreement with the consensus order, (Kendall τ + 1) / 2.
- Taxonomies: path voting. Every node an annotator's paths pass through gets that annotator's
  vote; the deepest nodes backed by a strict majority are the consensus paths.
- Per-region attributes: a majority per attribute among the regions of one cluster; free text
  by the medoid (the answer closest, in normalized edit distance, to all the others).

Confidences here follow the majority vote's meaning: the share of annotators who agree with what
was decided, so a job's per-item confidence stays comparable across controls.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import numpy as np
from rapidfuzz.distance import Levenshtein

from app.label_schema.item_controls import PairwiseControl, RankingControl, TaxonomyControl
from app.label_schema.model import Control
from app.label_schema.region_controls import Attribute, SegmentsControl, TextAttribute

H = TypeVar("H", bound=Hashable)
RankingMethod = Literal["borda", "bradley_terry"]


def aggregate_control(control: Control, values: Sequence[Any]) -> tuple[Any, float] | None:
    """The consensus of `values` (one per annotator who answered `control`) and its confidence,
    for the controls aggregated here (segments, pairwise, ranking, taxonomy); None for the
    others, which a vote over whole values settles."""
    if not values:
        return None
    if isinstance(control, SegmentsControl):
        return aggregate_segments(values, control.iou_threshold, control.attributes)
    if isinstance(control, PairwiseControl):
        return aggregate_pairwise(values)
    if isinstance(control, RankingControl):
        return aggregate_ranking(values)
    if isinstance(control, TaxonomyControl):
        return aggregate_taxonomy(values)
    return None


# --- time segments --------------------------------------------------------------------------------


def interval_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Overlap / union of two [start, end] intervals (0 when they only touch or are apart)."""
    overlap = min(a[1], b[1]) - max(a[0], b[0])
    if overlap <= 0:
        return 0.0
    union = (a[1] - a[0]) + (b[1] - b[0]) - overlap
    return overlap / union if union > 0 else 0.0


def aggregate_segments(
    values: Sequence[Sequence[Mapping[str, Any]]],
    iou_threshold: float,
    attributes: Sequence[Attribute] = (),
) -> tuple[list[dict[str, Any]], float]:
    """Consensus time segments from each annotator's segments (see the module docstring).

    Confidence: over all clusters, the mean share of annotators agreeing with the decision taken
    on it (kept: the share backing it; dropped: the share not backing it); 1 when no annotator
    marked anything.
    """
    voters = len(values)
    members: list[tuple[int, dict[str, Any]]] = [
        (annotator, dict(segment)) for annotator, answer in enumerate(values) for segment in answer
    ]
    clusters = _cluster_intervals(members, iou_threshold)
    consensus: list[dict[str, Any]] = []
    agreement: list[float] = []
    for cluster in clusters:
        support = len({annotator for annotator, _ in cluster})
        share = support / voters
        if support * 2 > voters:
            segments = [segment for _, segment in cluster]
            start = statistics.median(s["start"] for s in segments)
            end = statistics.median(s["end"] for s in segments)
            if not end > start:  # a chain of overlaps can order the medians oddly
                start, end = min(s["start"] for s in segments), max(s["end"] for s in segments)
            merged: dict[str, Any] = {"start": start, "end": end, "label": segments[0]["label"]}
            agreed = aggregate_attributes(attributes, segments)
            if agreed:
                merged["attributes"] = agreed
            consensus.append(merged)
            agreement.append(share)
        else:
            agreement.append(1.0 - share)
    consensus.sort(key=lambda s: (s["start"], s["end"], s["label"]))
    return consensus, (math.fsum(agreement) / len(agreement) if agreement else 1.0)


def _cluster_intervals(
    members: list[tuple[int, dict[str, Any]]], iou_threshold: float
) -> list[list[tuple[int, dict[str, Any]]]]:
    """Single-linkage clusters of same-label intervals, linking the closest pairs first and never
    putting two intervals of one annotator in one cluster."""
    parent = list(range(len(members)))
    annotators = [{annotator} for annotator, _ in members]

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    links = []
    for i, (ann_i, seg_i) in enumerate(members):
        for j in range(i + 1, len(members)):
            ann_j, seg_j = members[j]
            if ann_i == ann_j or seg_i["label"] != seg_j["label"]:
                continue
            iou = interval_iou((seg_i["start"], seg_i["end"]), (seg_j["start"], seg_j["end"]))
            if iou > 0 and iou >= iou_threshold - 1e-9:
                links.append((-iou, i, j))
    for _, i, j in sorted(links):
        a, b = root(i), root(j)
        if a != b and not annotators[a] & annotators[b]:
            parent[b] = a
            annotators[a] |= annotators[b]
    clusters: dict[int, list[tuple[int, dict[str, Any]]]] = {}
    for i, member in enumerate(members):
        clusters.setdefault(root(i), []).append(member)
    return list(clusters.values())


# --- per-region attributes ---------------------------------------------------------------------


def aggregate_attributes(
    attributes: Sequence[Attribute], regions: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The consensus attributes of regions judged to be one object (a cluster): for each
    attribute that at least half of the regions answer, the most common answer (multiple
    choices compared as sets; ties to the first seen), or for text the medoid."""
    agreed: dict[str, Any] = {}
    for attribute in attributes:
        given = [
            r["attributes"][attribute.name]
            for r in regions
            if isinstance(r.get("attributes"), Mapping) and attribute.name in r["attributes"]
        ]
        if not given or len(given) * 2 < len(regions):
            continue
        if isinstance(attribute, TextAttribute):
            agreed[attribute.name] = medoid_text(given)
        else:
            agreed[attribute.name] = majority(given)
    return agreed


def majority(values: Sequence[Any]) -> Any:
    """The most common value (compared as canonical JSON, label lists as sets); ties go to the
    value seen first."""
    counts = Counter(_canonical(v) for v in values)
    winner, _ = max(counts.items(), key=lambda kv: kv[1])
    return json.loads(winner)


def _canonical(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = sorted(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def medoid_text(texts: Sequence[str]) -> str:
    """The text with the smallest total normalized edit distance to the others."""
    totals = [
        math.fsum(Levenshtein.normalized_distance(text, other) for other in texts) for text in texts
    ]
    return texts[totals.index(min(totals))]


# --- pairwise preferences and rankings -----------------------------------------------------------


def bradley_terry(
    comparisons: Iterable[tuple[H, H]],
    *,
    prior: float = 0.0,
    iterations: int = 1000,
    tolerance: float = 1e-10,
) -> dict[H, float]:
    """Bradley–Terry strengths (summing to 1) from (winner, loser) pairs, by Hunter's MM
    algorithm: p_i ← (W_i + prior) / Σ_j n_ij / (p_i + p_j), then normalized; P(i beats j) is
    p_i / (p_i + p_j). `prior` adds that many pseudo-wins to every candidate, which keeps the
    strengths positive when a candidate never wins (the plain maximum-likelihood estimate, with
    `prior=0`, gives it 0). One iteration is O(candidates²) array arithmetic."""
    index: dict[H, int] = {}
    pairs: list[tuple[int, int]] = []
    for winner, loser in comparisons:
        pairs.append((index.setdefault(winner, len(index)), index.setdefault(loser, len(index))))
    if not index:
        return {}
    n = len(index)
    wins = np.zeros(n)
    games = np.zeros((n, n))
    for winner_at, loser_at in pairs:
        wins[winner_at] += 1
        games[winner_at, loser_at] += 1
        games[loser_at, winner_at] += 1
    strength = np.full(n, 1.0 / n)
    played = games.sum(axis=1) > 0
    for _ in range(iterations):
        pair = strength[:, None] + strength[None, :]
        ratio = np.divide(games, pair, out=np.zeros_like(games), where=pair > 0)
        denominator = ratio.sum(axis=1)
        updated = np.where(
            played & (denominator > 0),
            (wins + prior) / np.where(denominator > 0, denominator, 1),
            strength,
        )
        total = updated.sum()
        if total <= 0:
            break
        updated = updated / total
        change = float(np.abs(updated - strength).max())
        strength = updated
        if change < tolerance:
            break
    return {item: float(strength[at]) for item, at in index.items()}


def aggregate_pairwise(values: Sequence[str]) -> tuple[str, float]:
    """The preferred side and the Bradley–Terry probability that it is preferred, which for one
    pair is the share of annotators preferring it (ties go to the side chosen first)."""
    strength = bradley_terry(
        ("left", "right") if value == "left" else ("right", "left") for value in values
    )
    first = values[0]
    other = "right" if first == "left" else "left"
    winner = first if strength[first] >= strength[other] else other
    pair = strength[first] + strength[other]
    return winner, strength[winner] / pair if pair > 0 else 0.5


def kendall_tau(ranking: Sequence[str], reference: Sequence[str]) -> float:
    """Kendall's τ between two orders of the same candidates: (concordant − discordant pairs) /
    (n(n − 1)/2); 1 for one candidate."""
    n = len(reference)
    if n < 2:
        return 1.0
    position = {candidate: i for i, candidate in enumerate(ranking)}
    order = np.array([position[candidate] for candidate in reference])
    # Pairs (i < j) of the reference that the ranking keeps in the same order.
    upper = np.triu(np.ones((n, n), dtype=bool), 1)
    concordant = int(np.count_nonzero((order[None, :] > order[:, None]) & upper))
    pairs = n * (n - 1) // 2
    return (2 * concordant - pairs) / pairs


def aggregate_ranking(
    values: Sequence[Sequence[str]], method: RankingMethod = "borda"
) -> tuple[list[str], float]:
    """A consensus order of the candidates from each annotator's order (best first).

    `borda`: candidates by total points (n − 1 − position in each order); `bradley_terry`: by
    Bradley–Terry strength over the pairs every order implies (with half a pseudo-win each, so
    no strength is 0). Ties go to the first annotator's order. Confidence: the annotators' mean
    (τ + 1) / 2 with the consensus; annotators who ranked other candidates than the first
    annotator are left out of it.
    """
    first = list(values[0])
    candidates = set(first)
    orders = [list(v) for v in values if set(v) == candidates and len(v) == len(first)]
    tie_break = {candidate: i for i, candidate in enumerate(first)}
    if method == "borda":
        points: Counter[str] = Counter()
        for order in orders:
            for position, candidate in enumerate(order):
                points[candidate] += len(order) - 1 - position
        score = {candidate: float(points[candidate]) for candidate in first}
    else:
        comparisons = [
            (order[i], order[j])
            for order in orders
            for i in range(len(order))
            for j in range(i + 1, len(order))
        ]
        strengths = bradley_terry(comparisons, prior=0.5)
        score = {candidate: strengths.get(candidate, 0.0) for candidate in first}
    consensus = sorted(first, key=lambda c: (-score[c], tie_break[c]))
    agreement = [(kendall_tau(order, consensus) + 1) / 2 for order in orders]
    return consensus, math.fsum(agreement) / len(agreement)


# --- taxonomies -----------------------------------------------------------------------------------


def aggregate_taxonomy(values: Sequence[Sequence[Sequence[str]]]) -> tuple[list[list[str]], float]:
    """Consensus taxonomy paths by path voting (see the module docstring).

    Confidence: the mean share of annotators backing each consensus path; with no consensus
    path, the share of annotators not backing the most-voted root (1 when nobody chose
    anything).
    """
    voters = len(values)
    votes: Counter[tuple[str, ...]] = Counter()
    first_seen: dict[tuple[str, ...], int] = {}
    for answer in values:
        prefixes = {tuple(path[: depth + 1]) for path in answer for depth in range(len(path))}
        for prefix in prefixes:
            votes[prefix] += 1
        for path in answer:
            for depth in range(len(path)):
                first_seen.setdefault(tuple(path[: depth + 1]), len(first_seen))
    backed = {prefix for prefix, count in votes.items() if count * 2 > voters}
    deepest = [
        prefix
        for prefix in backed
        if not any(other[: len(prefix)] == prefix and len(other) > len(prefix) for other in backed)
    ]
    deepest.sort(key=lambda prefix: first_seen[prefix])
    if deepest:
        confidence = math.fsum(votes[p] / voters for p in deepest) / len(deepest)
    else:
        roots = [count for prefix, count in votes.items() if len(prefix) == 1]
        confidence = 1.0 - max(roots) / voters if roots else 1.0
    return [list(prefix) for prefix in deepest], confidence
