"""Boxes, polygons and keypoints: cluster the shapes drawn by different annotators, keep the
clusters enough annotators drew, merge each into one shape.

Clustering crowd regions and then consolidating each cluster follows Adams et al., "Grouper:
optimizing crowdsourced face annotations" (CVPR Workshops 2016); picking a representative
member for free-form regions follows the retrieval-based methods of Das Sarma, Jain, Nandi,
Parameswaran & Widom, "Aggregating crowdsourced image segmentations" (HCOMP 2018 workshops).

1. Candidate pairs: two shapes of the same label, drawn by different annotators, with IoU at or
   above the control's `iou_threshold` (keypoints: within `tolerance` pixels). The pair finders
   are the graders' own (`app.label_schema.matching`), so "the same box" means the same thing
   when grading gold and when merging.
2. Clusters: pairs are joined best first (highest IoU), never putting two shapes of one
   annotator in a cluster: an annotator who drew two boxes around one object does not count
   twice, and two nearby objects drawn by everyone stay two clusters.
3. A cluster is kept when the weight of the annotators who drew it is more than `min_share` of
   the weight of all annotators who answered: a box only a minority saw is dropped.
4. Merge: boxes and keypoints are the weighted mean of the members' coordinates; a polygon is the
   weighted medoid (the member with the highest weighted IoU with the others), since outlines
   with different numbers of points have no mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from app.consensus.attributes import aggregate_attributes
from app.consensus.merging import Merged, graded, normalised_weights
from app.consensus.votes import FloatArray, IntArray
from app.label_schema import Attribute
from app.label_schema.grading import grade_boxes, grade_keypoints, grade_polygons
from app.label_schema.matching import (
    MalformedError,
    Pairs,
    box_pairs,
    keypoint_pairs,
    parse_boxes,
    parse_keypoints,
    parse_polygons,
    polygon_pairs,
)

MIN_SHARE = 0.5


def _parsed(parse: Callable[[object], list[Any]], answers: Sequence[object]) -> list[list[Any]]:
    out = []
    for answer in answers:
        try:
            out.append(parse(answer))
        except MalformedError:
            out.append([])  # validated at submit; a malformed answer contributes nothing
    return out


def _raw_regions(answers: Sequence[object], parsed: list[list[Any]]) -> list[Any]:
    """The answers' region objects, flattened in the order `_flatten` lays out `parsed` (each
    parser keeps its answer's order), for their per-region attributes."""
    raw: list[Any] = []
    for answer, shapes in zip(answers, parsed, strict=True):
        raw.extend(answer[: len(shapes)] if shapes and isinstance(answer, list) else [])
    return raw


def _with_attributes(
    shape: dict[str, Any], attributes: Sequence[Attribute], regions: Sequence[Any]
) -> dict[str, Any]:
    """`shape` with the consensus of its cluster's per-region attributes (when the control has
    any)."""
    if attributes:
        shape["attributes"] = aggregate_attributes(attributes, regions)
    return shape


def _clusters(owner: IntArray, pairs: Pairs) -> IntArray:
    """Cluster index per shape: pairs joined best first, two shapes of one owner never joined."""
    n = owner.size
    parent = list(range(n))
    owners: list[set[int]] = [{int(o)} for o in owner]

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    keep = (pairs.answer < pairs.key) & (owner[pairs.answer] != owner[pairs.key])
    rows, cols, quality = pairs.answer[keep], pairs.key[keep], pairs.quality[keep]
    # Best first; equal qualities in shape order, so the result does not depend on sort details.
    for n_pair in np.lexsort((cols, rows, -quality)):
        a, b = root(int(rows[n_pair])), root(int(cols[n_pair]))
        if a != b and not owners[a] & owners[b]:
            parent[b] = a
            owners[a] |= owners[b]
    roots = np.array([root(i) for i in range(n)], dtype=np.int64)
    _, cluster = np.unique(roots, return_inverse=True)
    return cluster.astype(np.int64)


def _kept_clusters(
    owner: IntArray, cluster: IntArray, weights: FloatArray, min_share: float
) -> list[IntArray]:
    """Member indices of each cluster whose owners' weight exceeds `min_share` (weights sum to
    1 over all annotators who answered)."""
    kept = []
    for c in range(int(cluster.max()) + 1 if cluster.size else 0):
        members = np.flatnonzero(cluster == c)
        if weights[owner[members]].sum() > min_share + 1e-12:
            kept.append(members)
    return kept


def _flatten(shapes: list[list[Any]]) -> tuple[list[Any], IntArray]:
    flat = [shape for per_annotator in shapes for shape in per_annotator]
    owner = np.repeat(np.arange(len(shapes)), [len(s) for s in shapes]).astype(np.int64)
    return flat, owner


def _limit(merged: list[tuple[float, dict[str, Any]]], maximum: int | None) -> list[dict[str, Any]]:
    """The merged shapes in a stable order (label, then position); past `maximum`, the best
    supported ones."""
    if maximum is not None and len(merged) > maximum:
        merged = sorted(merged, key=lambda sw: -sw[0])[:maximum]
    shapes = [shape for _, shape in merged]
    return sorted(shapes, key=_position)


def _position(shape: dict[str, Any]) -> tuple[Any, ...]:
    if "points" in shape:
        first = shape["points"][0]
        return (shape["label"], first[0], first[1])
    return (shape["label"], shape["x"], shape["y"])


def _average(rows: FloatArray, weights: FloatArray) -> FloatArray:
    """The weighted mean of `rows`, taken as offsets from the first row: members that agree
    give back exactly their common value (a plain mean of 10.0s can come out 10.000000000000002,
    which exports would then show)."""
    base = rows[0]
    return base + np.average(rows - base, axis=0, weights=weights)  # type: ignore[no-any-return]


def merge_boxes(
    answers: Sequence[object],
    weights: Sequence[float] | None = None,
    *,
    iou_threshold: float = 0.5,
    min_share: float = MIN_SHARE,
    maximum: int | None = None,
    attributes: Sequence[Attribute] = (),
) -> Merged:
    """Merge one item's `boxes` answers (one list of boxes per annotator)."""
    w = normalised_weights(weights, len(answers))
    parsed = _parsed(parse_boxes, answers)
    flat, owner = _flatten(parsed)
    raw = _raw_regions(answers, parsed)
    merged: list[tuple[float, dict[str, Any]]] = []
    if flat:
        cluster = _clusters(owner, box_pairs(flat, flat, iou_threshold))
        for members in _kept_clusters(owner, cluster, w, min_share):
            member_w = w[owner[members]]
            corners = np.array([flat[m][:4] for m in members], dtype=np.float64)
            left, top, right, bottom = _average(corners, _safe(member_w))
            box = {
                "x": float(left),
                "y": float(top),
                "width": float(right - left),
                "height": float(bottom - top),
                "label": flat[members[0]].label,
            }
            box = _with_attributes(box, attributes, [raw[m] for m in members])
            merged.append((float(member_w.sum()), box))
    value = _limit(merged, maximum)
    scores = [
        grade_boxes(a, value, iou_threshold=iou_threshold, attributes=attributes) for a in answers
    ]
    return graded(value, scores, w)


def merge_polygons(
    answers: Sequence[object],
    weights: Sequence[float] | None = None,
    *,
    iou_threshold: float = 0.5,
    min_share: float = MIN_SHARE,
    maximum: int | None = None,
    attributes: Sequence[Attribute] = (),
) -> Merged:
    """Merge one item's `polygons` answers (one list of polygons per annotator)."""
    w = normalised_weights(weights, len(answers))
    parsed = _parsed(parse_polygons, answers)
    flat, owner = _flatten(parsed)
    raw = _raw_regions(answers, parsed)
    merged: list[tuple[float, dict[str, Any]]] = []
    if flat:
        pairs = polygon_pairs(flat, flat, iou_threshold)
        cluster = _clusters(owner, pairs)
        # Each member's weighted IoU with the other members of its cluster (pairs below the
        # threshold count 0), summed over the candidate pairs: no shapes × shapes matrix.
        inside = (cluster[pairs.answer] == cluster[pairs.key]) & (pairs.answer != pairs.key)
        support = np.bincount(
            pairs.answer[inside],
            weights=w[owner[pairs.key[inside]]] * pairs.quality[inside],
            minlength=len(flat),
        )
        for members in _kept_clusters(owner, cluster, w, min_share):
            best = members[int(np.argmax(support[members]))]  # first on ties: answer order
            polygon = flat[best]
            shape = {"points": [list(p) for p in polygon.points], "label": polygon.label}
            shape = _with_attributes(shape, attributes, [raw[m] for m in members])
            merged.append((float(w[owner[members]].sum()), shape))
    value = _limit(merged, maximum)
    scores = [
        grade_polygons(a, value, iou_threshold=iou_threshold, attributes=attributes)
        for a in answers
    ]
    return graded(value, scores, w)


def merge_keypoints(
    answers: Sequence[object],
    weights: Sequence[float] | None = None,
    *,
    tolerance: float = 10.0,
    min_share: float = MIN_SHARE,
    maximum: int | None = None,
    attributes: Sequence[Attribute] = (),
) -> Merged:
    """Merge one item's `keypoints` answers (one list of points per annotator)."""
    w = normalised_weights(weights, len(answers))
    parsed = _parsed(parse_keypoints, answers)
    flat, owner = _flatten(parsed)
    raw = _raw_regions(answers, parsed)
    merged: list[tuple[float, dict[str, Any]]] = []
    if flat:
        cluster = _clusters(owner, keypoint_pairs(flat, flat, tolerance))
        for members in _kept_clusters(owner, cluster, w, min_share):
            member_w = w[owner[members]]
            xy = np.array([(flat[m].x, flat[m].y) for m in members], dtype=np.float64)
            x, y = _average(xy, _safe(member_w))
            point = {"x": float(x), "y": float(y), "label": flat[members[0]].label}
            point = _with_attributes(point, attributes, [raw[m] for m in members])
            merged.append((float(member_w.sum()), point))
    value = _limit(merged, maximum)
    scores = [
        grade_keypoints(a, value, tolerance=tolerance, attributes=attributes) for a in answers
    ]
    return graded(value, scores, w)


def _safe(weights: FloatArray) -> FloatArray:
    return weights if weights.sum() > 0 else np.ones_like(weights)
