"""Time segments: intervals of one label are clustered across annotators (single linkage on
interval IoU ≥ the control's threshold, at most one interval per annotator in a cluster); a
cluster backed by a strict majority of the annotators becomes one consensus segment (median
start, median end, attributes by `attributes.aggregate_attributes`).

The confidence follows the majority vote's meaning: the share of annotators who agree with what
was decided, so a job's per-item confidence stays comparable across controls.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from app.consensus.attributes import aggregate_attributes
from app.label_schema import Attribute
from app.label_schema.matching import interval_iou


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
