"""Taxonomies: path voting. Every node an annotator's paths pass through gets that annotator's
vote; the deepest nodes backed by a strict majority are the consensus paths.

The confidence follows the majority vote's meaning: the share of annotators who agree with what
was decided, so a job's per-item confidence stays comparable across controls.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


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
