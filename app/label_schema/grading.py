"""Grading: how close an answer is to a key, per control and overall (docs/label-schema.md).

Pure functions, shared by gold checks at submit time and by qualification test attempts. Every
score is in [0, 1].

Answers reach the graders already validated, but a malformed answer value still scores 0 instead
of raising: grading runs on the submit hot path and must not fail an annotator's request. A
malformed key raises ValueError: keys are validated when they are imported, so a bad one is a bug
to surface, not the annotator's fault.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, TypeVar, assert_never

import numpy as np
import numpy.typing as npt
import shapely
from rapidfuzz.distance import Levenshtein
from scipy.optimize import linear_sum_assignment

from app.label_schema import (
    Attribute,
    BoxesControl,
    ChoicesAttribute,
    ChoicesControl,
    Control,
    KeypointsControl,
    LabelSchema,
    NumberControl,
    PairwiseControl,
    PolygonsControl,
    RankingControl,
    RatingControl,
    SegmentsControl,
    SpansControl,
    TaxonomyControl,
    TextAttribute,
    TextControl,
)
from app.label_schema.aggregation import kendall_tau

__all__ = [
    "grade_answer",
    "grade_boxes",
    "grade_choices",
    "grade_controls",
    "grade_keypoints",
    "grade_number",
    "grade_pairwise",
    "grade_polygons",
    "grade_ranking",
    "grade_rating",
    "grade_segments",
    "grade_spans",
    "grade_taxonomy",
    "grade_text",
]

# Coordinates arrive as JSON decimals, so a pair that is exactly at the threshold on paper can land
# an ulp below it in binary floating point (0.1 + 0.2 style). These slacks make the documented
# "≤ tolerance" / "≥ iou_threshold" boundaries inclusive in practice; they are far below anything
# a person could draw or type.
_IOU_SLACK = 1e-9
_RELATIVE_SLACK = 1e-12

T = TypeVar("T")
IntArray = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]


class _MalformedError(Exception):
    """A value does not have the shape of its control's answers."""


class _MalformedKeyError(ValueError):
    """The key's value does not have the shape of its control's answers."""


class _Box(NamedTuple):
    left: float
    top: float
    right: float
    bottom: float
    label: str


class _Polygon(NamedTuple):
    points: tuple[tuple[float, float], ...]
    label: str


class _Keypoint(NamedTuple):
    x: float
    y: float
    label: str


class _Pairs(NamedTuple):
    """Candidate matches, one per position: answer item, key item, quality (higher is better)."""

    answer: IntArray
    key: IntArray
    quality: FloatArray


_NO_PAIRS = _Pairs(np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp), np.empty(0))


# Parsing: turn a JSON value into a typed value or raise _MalformedError.


def _label(value: object) -> str:
    if not isinstance(value, str):
        raise _MalformedError("label must be a string")
    return value


def _number(value: object) -> int | float:
    # bool is an int subclass; the contract never accepts it where a number is expected.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _MalformedError("expected a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise _MalformedError("expected a finite number")
    return value


def _coordinate(value: object) -> float:
    try:
        coordinate = float(_number(value))
    except OverflowError:  # an int too large for a float
        raise _MalformedError("coordinate out of range") from None
    if not math.isfinite(coordinate):
        raise _MalformedError("coordinate out of range")
    return coordinate


def _offset(value: object) -> int:
    number = _number(value)
    if isinstance(number, float):
        if not number.is_integer():
            raise _MalformedError("offsets are whole characters")
        return int(number)
    return number


def _items(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        raise _MalformedError("expected a list of objects")
    items: list[Mapping[str, Any]] = []
    for item in value:
        if not isinstance(item, Mapping):
            raise _MalformedError("expected a list of objects")
        items.append(item)
    return items


def _field(item: Mapping[str, Any], name: str) -> object:
    if name not in item:
        raise _MalformedError(f"missing {name!r}")
    return item[name]


def _parse_single_choice(value: object) -> str:
    return _label(value)


def _parse_multiple_choice(value: object) -> frozenset[str]:
    if not isinstance(value, list):
        raise _MalformedError("expected a list of labels")
    return frozenset(_label(item) for item in value)


def _parse_spans(value: object) -> list[tuple[int, int, str]]:
    spans = []
    for item in _items(value):
        start, end = _offset(_field(item, "start")), _offset(_field(item, "end"))
        if not 0 <= start < end:
            raise _MalformedError("a span needs 0 <= start < end")
        spans.append((start, end, _label(_field(item, "label"))))
    return spans


def _parse_boxes(value: object) -> list[_Box]:
    boxes = []
    for item in _items(value):
        x, y = _coordinate(_field(item, "x")), _coordinate(_field(item, "y"))
        width, height = _coordinate(_field(item, "width")), _coordinate(_field(item, "height"))
        if width <= 0 or height <= 0:
            raise _MalformedError("width and height must be positive")
        right, bottom = x + width, y + height
        if not (math.isfinite(right) and math.isfinite(bottom)):
            raise _MalformedError("box out of range")
        boxes.append(_Box(x, y, right, bottom, _label(_field(item, "label"))))
    return boxes


def _parse_polygons(value: object) -> list[_Polygon]:
    polygons = []
    for item in _items(value):
        points = _field(item, "points")
        if not isinstance(points, list) or len(points) < 3:
            raise _MalformedError("a polygon needs at least 3 points")
        parsed = []
        for point in points:
            if not isinstance(point, list | tuple) or len(point) != 2:
                raise _MalformedError("a point is [x, y]")
            parsed.append((_coordinate(point[0]), _coordinate(point[1])))
        polygons.append(_Polygon(tuple(parsed), _label(_field(item, "label"))))
    return polygons


def _parse_keypoints(value: object) -> list[_Keypoint]:
    return [
        _Keypoint(
            _coordinate(_field(item, "x")),
            _coordinate(_field(item, "y")),
            _label(_field(item, "label")),
        )
        for item in _items(value)
    ]


class _Segment(NamedTuple):
    start: float
    end: float
    label: str


def _parse_segments(value: object) -> list[_Segment]:
    segments = []
    for item in _items(value):
        start, end = _coordinate(_field(item, "start")), _coordinate(_field(item, "end"))
        if not 0 <= start < end:
            raise _MalformedError("a segment needs 0 <= start < end")
        segments.append(_Segment(start, end, _label(_field(item, "label"))))
    return segments


def _parse_side(value: object) -> str:
    if value not in ("left", "right"):
        raise _MalformedError('expected "left" or "right"')
    return str(value)


def _parse_ranking(value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _MalformedError("expected a non-empty list of candidate ids")
    ranking = [_label(item) for item in value]
    if len(set(ranking)) != len(ranking):
        raise _MalformedError("a candidate is ranked twice")
    return ranking


def _parse_paths(value: object) -> list[tuple[str, ...]]:
    if not isinstance(value, list):
        raise _MalformedError("expected a list of paths")
    paths = []
    for path in value:
        if not isinstance(path, list) or not path:
            raise _MalformedError("a path is a non-empty list of labels")
        paths.append(tuple(_label(step) for step in path))
    return paths


def _attributes_of(value: object) -> list[Mapping[str, Any]]:
    """Each region's `attributes` object ({} where it has none)."""
    out: list[Mapping[str, Any]] = []
    for item in _items(value):
        attributes = item.get("attributes", {})
        if not isinstance(attributes, Mapping):
            raise _MalformedError("attributes must be an object")
        out.append(attributes)
    return out


def _parse_text(value: object) -> str:
    if not isinstance(value, str):
        raise _MalformedError("expected a string")
    return value


def _parse_both(parse: Callable[[object], T], answer: object, key: object) -> tuple[T | None, T]:
    """(parsed answer or None when malformed, parsed key); a malformed key raises ValueError."""
    try:
        parsed_key = parse(key)
    except _MalformedError as exc:
        raise _MalformedKeyError(f"malformed key: {exc}") from None
    try:
        return parse(answer), parsed_key
    except _MalformedError:
        return None, parsed_key


# Matching: one-to-one assignment of answer items to key items.


def _f1(matched: int, answer_count: int, key_count: int) -> float:
    # Precision m/a and recall m/k give F1 = 2m/(a+k); both lists empty is a perfect "nothing here".
    total = answer_count + key_count
    return 1.0 if total == 0 else 2.0 * matched / total


def _max_matching(pairs: _Pairs) -> int:
    """Size of the best one-to-one matching over the candidate pairs.

    The score counts matches, so the assignment first maximises how many pairs are matched and
    only then the total quality (IoU, closeness): trading a match for a better IoU elsewhere would
    cost the annotator points for nothing.
    """
    count = int(pairs.answer.size)
    if count <= 1:
        return count
    # An uncontested pair (neither side appears in any other pair) is in every maximum matching;
    # the common case of a careful annotator needs no assignment solver at all.
    contested = (np.bincount(pairs.answer)[pairs.answer] > 1) | (
        np.bincount(pairs.key)[pairs.key] > 1
    )
    matched = count - int(np.count_nonzero(contested))
    if matched == count:
        return matched
    rows, row_of = np.unique(pairs.answer[contested], return_inverse=True)
    cols, col_of = np.unique(pairs.key[contested], return_inverse=True)
    # Any single match outweighs the whole quality sum, so cardinality comes first.
    bonus = min(rows.size, cols.size) + 1.0
    weights = np.zeros((rows.size, cols.size))
    weights[row_of, col_of] = bonus + np.clip(pairs.quality[contested], 0.0, 1.0)
    row_ind, col_ind = linear_sum_assignment(weights, maximize=True)
    return matched + int(np.count_nonzero(weights[row_ind, col_ind]))


def _soft_matching(pairs: _Pairs, weight: FloatArray, answer_count: int, key_count: int) -> float:
    """F1 of a one-to-one matching in which each matched pair counts `weight` (in [0, 1]) rather
    than 1: the matching maximises the number of pairs first, then their total weight."""
    if not pairs.answer.size:
        return _f1(0, answer_count, key_count)
    bonus = min(answer_count, key_count) + 1.0
    weights = np.zeros((answer_count, key_count))
    weights[pairs.answer, pairs.key] = bonus + np.clip(weight, 0.0, 1.0)
    row_ind, col_ind = linear_sum_assignment(weights, maximize=True)
    chosen = weights[row_ind, col_ind]
    total = float(np.sum(chosen[chosen > 0] - bonus))
    return 2.0 * total / (answer_count + key_count)


def _attribute_weights(
    pairs: _Pairs,
    attributes: Sequence[Attribute],
    answer: Sequence[Mapping[str, Any]],
    key: Sequence[Mapping[str, Any]],
) -> FloatArray:
    """For each candidate pair, how well the answer region's attributes agree with the key
    region's: the mean score over the attributes the key region gives (1 when it gives none)."""
    return np.array(
        [
            _attribute_agreement(attributes, answer[i], key[j])
            for i, j in zip(pairs.answer, pairs.key, strict=True)
        ],
        dtype=float,
    )


def _attribute_agreement(
    attributes: Sequence[Attribute], answer: Mapping[str, Any], key: Mapping[str, Any]
) -> float:
    scores = []
    for attribute in attributes:
        expected = key.get(attribute.name)
        if expected is None:
            continue
        given = answer.get(attribute.name)
        if isinstance(attribute, ChoicesAttribute):
            scores.append(grade_choices(given, expected, multiple=attribute.multiple))
        elif isinstance(attribute, TextAttribute):
            scores.append(grade_text(given, expected, normalize=attribute.normalize))
        else:
            scores.append(grade_number(given, expected, tolerance=attribute.tolerance))
    return math.fsum(scores) / len(scores) if scores else 1.0


def _region_score(
    pairs: _Pairs,
    answer: object,
    key: object,
    answer_count: int,
    key_count: int,
    attributes: Sequence[Attribute],
) -> float:
    """F1 of the best matching over `pairs`; with per-region attributes, each matched pair
    counts by how well its attributes agree."""
    if not attributes:
        return _f1(_max_matching(pairs), answer_count, key_count)
    try:
        key_attributes = _attributes_of(key)
    except _MalformedError as exc:
        raise _MalformedKeyError(f"malformed key: {exc}") from None
    try:
        answer_attributes = _attributes_of(answer)
    except _MalformedError:
        answer_attributes = [{} for _ in range(answer_count)]
    weight = _attribute_weights(pairs, attributes, answer_attributes, key_attributes)
    return _soft_matching(pairs, weight, answer_count, key_count)


def _label_ids(answer: Sequence[str], key: Sequence[str]) -> tuple[IntArray, IntArray]:
    ids: dict[str, int] = {}
    answer_ids = np.array([ids.setdefault(label, len(ids)) for label in answer], dtype=np.intp)
    key_ids = np.array([ids.setdefault(label, len(ids)) for label in key], dtype=np.intp)
    return answer_ids, key_ids


def _box_pairs(answer: Sequence[_Box], key: Sequence[_Box], iou_threshold: float) -> _Pairs:
    a = np.array([box[:4] for box in answer], dtype=float)
    k = np.array([box[:4] for box in key], dtype=float)
    # Areas from the same differences as the intersection, so identical boxes give IoU exactly 1.
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_k = (k[:, 2] - k[:, 0]) * (k[:, 3] - k[:, 1])
    width = np.minimum(a[:, None, 2], k[None, :, 2]) - np.maximum(a[:, None, 0], k[None, :, 0])
    height = np.minimum(a[:, None, 3], k[None, :, 3]) - np.maximum(a[:, None, 1], k[None, :, 1])
    inter = np.clip(width, 0.0, None) * np.clip(height, 0.0, None)
    union = area_a[:, None] + area_k[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    answer_labels, key_labels = _label_ids([b.label for b in answer], [b.label for b in key])
    same_label = answer_labels[:, None] == key_labels[None, :]
    rows, cols = np.nonzero(same_label & _passes(iou, iou_threshold))
    return _Pairs(rows, cols, iou[rows, cols])


def _regions(polygons: Sequence[_Polygon]) -> ObjectArray:
    """The areas the polygons enclose; self-intersecting rings are repaired, never rejected."""
    try:
        # One vectorised call for all rings: building Polygon objects one by one costs ~4x more.
        coords = np.array([point for p in polygons for point in p.points], dtype=float)
        ring_of = np.repeat(np.arange(len(polygons)), [len(p.points) for p in polygons])
        regions: ObjectArray = shapely.polygons(shapely.linearrings(coords, indices=ring_of))
    except (shapely.errors.GEOSException, ValueError):
        regions = np.array([_region(p.points) for p in polygons], dtype=object)
    invalid = ~shapely.is_valid(regions)
    if invalid.any():
        # make_valid keeps both lobes of a bow-tie; buffer(0) would silently drop one.
        regions[invalid] = [_repaired(region) for region in regions[invalid]]
    return regions


def _region(points: tuple[tuple[float, float], ...]) -> Any:
    try:
        return shapely.polygons(shapely.linearrings(np.array(points, dtype=float)))
    except (shapely.errors.GEOSException, ValueError):
        return shapely.Polygon()  # empty: overlaps nothing


def _repaired(region: Any) -> Any:
    try:
        return shapely.make_valid(region)
    except shapely.errors.GEOSException:
        return shapely.Polygon()


def _intersection_areas(left: ObjectArray, right: ObjectArray) -> FloatArray:
    try:
        return np.asarray(shapely.area(shapely.intersection(left, right)), dtype=float)
    except shapely.errors.GEOSException:
        # GEOS's robust overlay makes this rare; isolate the failing pair rather than lose all.
        areas = []
        for one, other in zip(left, right, strict=True):
            try:
                areas.append(float(shapely.area(shapely.intersection(one, other))))
            except shapely.errors.GEOSException:
                areas.append(0.0)
        return np.array(areas, dtype=float)


def _polygon_pairs(
    answer: Sequence[_Polygon], key: Sequence[_Polygon], iou_threshold: float
) -> _Pairs:
    common = {p.label for p in answer} & {p.label for p in key}
    answer_index = np.array([i for i, p in enumerate(answer) if p.label in common], dtype=np.intp)
    key_index = np.array([j for j, p in enumerate(key) if p.label in common], dtype=np.intp)
    if not answer_index.size:
        return _NO_PAIRS  # no label in common: no geometry needed
    answer_regions = _regions([answer[i] for i in answer_index])
    key_regions = _regions([key[j] for j in key_index])
    ai, kj = shapely.STRtree(key_regions).query(answer_regions, predicate="intersects")
    answer_labels, key_labels = _label_ids(
        [answer[i].label for i in answer_index], [key[j].label for j in key_index]
    )
    same_label = answer_labels[ai] == key_labels[kj]
    ai, kj = ai[same_label], kj[same_label]

    # Upper bound on IoU before the costly exact overlay: the intersection is at most the smaller
    # area and at most the bounding-box overlap, and the union is at least both areas minus it.
    area_a, area_k = shapely.area(answer_regions)[ai], shapely.area(key_regions)[kj]
    box_a, box_k = shapely.bounds(answer_regions)[ai], shapely.bounds(key_regions)[kj]
    overlap_w = np.minimum(box_a[:, 2], box_k[:, 2]) - np.maximum(box_a[:, 0], box_k[:, 0])
    overlap_h = np.minimum(box_a[:, 3], box_k[:, 3]) - np.maximum(box_a[:, 1], box_k[:, 1])
    most = np.minimum(np.minimum(area_a, area_k), overlap_w.clip(0.0) * overlap_h.clip(0.0))
    least_union = area_a + area_k - most
    possible = (least_union <= 0) | (most >= (iou_threshold - _IOU_SLACK) * least_union)
    ai, kj, area_a, area_k = ai[possible], kj[possible], area_a[possible], area_k[possible]

    inter = _intersection_areas(answer_regions[ai], key_regions[kj])
    union = area_a + area_k - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    rows, cols = answer_index[ai], key_index[kj]
    for n in np.flatnonzero(union <= 0):
        # Zero-area outlines (collinear or repeated points) enclose nothing; only an exact copy
        # is a match, so a degenerate key still grades 1 against itself.
        if answer[rows[n]].points == key[cols[n]].points:
            iou[n] = 1.0
    passed = _passes(iou, iou_threshold)
    return _Pairs(rows[passed], cols[passed], iou[passed])


def _passes(iou: FloatArray, iou_threshold: float) -> npt.NDArray[np.bool_]:
    # Touching or disjoint shapes never match, however small the threshold.
    return (iou > 0) & (iou >= iou_threshold - _IOU_SLACK)


def _segment_pairs(
    answer: Sequence[_Segment], key: Sequence[_Segment], iou_threshold: float
) -> _Pairs:
    a = np.array([(seg.start, seg.end) for seg in answer], dtype=float)
    k = np.array([(seg.start, seg.end) for seg in key], dtype=float)
    inter = np.clip(
        np.minimum(a[:, None, 1], k[None, :, 1]) - np.maximum(a[:, None, 0], k[None, :, 0]),
        0.0,
        None,
    )
    union = (a[:, None, 1] - a[:, None, 0]) + (k[None, :, 1] - k[None, :, 0]) - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    answer_labels, key_labels = _label_ids(
        [seg.label for seg in answer], [seg.label for seg in key]
    )
    same_label = answer_labels[:, None] == key_labels[None, :]
    rows, cols = np.nonzero(same_label & _passes(iou, iou_threshold))
    return _Pairs(rows, cols, iou[rows, cols])


def _span_pairs(
    answer: Sequence[tuple[int, int, str]], key: Sequence[tuple[int, int, str]]
) -> _Pairs:
    """Every exact match (same start, end and label) as a candidate pair."""
    positions: dict[tuple[int, int, str], list[int]] = {}
    for j, span in enumerate(key):
        positions.setdefault(span, []).append(j)
    rows = [i for i, span in enumerate(answer) for _ in positions.get(span, ())]
    cols = [j for span in answer for j in positions.get(span, ())]
    return _Pairs(np.array(rows, dtype=np.intp), np.array(cols, dtype=np.intp), np.ones(len(rows)))


def _keypoint_pairs(
    answer: Sequence[_Keypoint], key: Sequence[_Keypoint], tolerance: float
) -> _Pairs:
    a = np.array([(p.x, p.y) for p in answer], dtype=float)
    k = np.array([(p.x, p.y) for p in key], dtype=float)
    distance = np.hypot(a[:, None, 0] - k[None, :, 0], a[:, None, 1] - k[None, :, 1])
    scale = max(1.0, float(np.abs(a).max()), float(np.abs(k).max()))
    limit = tolerance + _RELATIVE_SLACK * scale
    answer_labels, key_labels = _label_ids([p.label for p in answer], [p.label for p in key])
    same_label = answer_labels[:, None] == key_labels[None, :]
    rows, cols = np.nonzero(same_label & (distance <= limit))
    closeness = 1.0 - distance[rows, cols] / tolerance if tolerance > 0 else np.ones(rows.size)
    return _Pairs(rows, cols, closeness)


def _within_tolerance(answer: int | float, key: int | float, tolerance: int | float) -> bool:
    if isinstance(answer, int) and isinstance(key, int) and isinstance(tolerance, int):
        return abs(answer - key) <= tolerance  # exact: no rounding to forgive
    try:
        slack = _RELATIVE_SLACK * max(abs(answer), abs(key), tolerance)
        return abs(answer - key) <= tolerance + slack
    except OverflowError:  # an int beyond float range against a float: cannot be that close
        return False


# Public graders, one per control type.


def grade_choices(answer: object, key: object, *, multiple: bool) -> float:
    """Score a `choices` answer.

    Single choice: 1 if the labels are equal, else 0. Multiple: Jaccard similarity of the two label
    sets, size of the intersection over size of the union (both empty → 1). A malformed answer
    scores 0; a malformed key raises ValueError.
    """
    if not multiple:
        single_answer, single_key = _parse_both(_parse_single_choice, answer, key)
        return 1.0 if single_answer == single_key else 0.0
    chosen, expected = _parse_both(_parse_multiple_choice, answer, key)
    if chosen is None:
        return 0.0
    union = chosen | expected
    return 1.0 if not union else len(chosen & expected) / len(union)


def grade_spans(answer: object, key: object, *, attributes: Sequence[Attribute] = ()) -> float:
    """Score a `spans` answer: F1 of exact matches (same start, end and label; both empty → 1).

    Matching is one-to-one, so a span duplicated in the answer matches at most once per copy in
    the key. A partly overlapping span does not count. With per-region `attributes`, a matched
    pair counts by how well the answer span's attributes agree with the key span's (the mean
    score of the attributes the key span gives) instead of 1. A malformed answer scores 0; a
    malformed key raises ValueError.
    """
    spans, expected = _parse_both(_parse_spans, answer, key)
    if spans is None:
        return 0.0
    if attributes:
        pairs = _span_pairs(spans, expected)
        return _region_score(pairs, answer, key, len(spans), len(expected), attributes)
    matched = sum((Counter(spans) & Counter(expected)).values())
    return _f1(matched, len(spans), len(expected))


def grade_boxes(
    answer: object, key: object, *, iou_threshold: float, attributes: Sequence[Attribute] = ()
) -> float:
    """Score a `boxes` answer: F1 of a one-to-one matching of answer boxes to key boxes.

    A pair can match when the labels are equal, the boxes overlap (touching is not enough) and
    IoU ≥ `iou_threshold`; the assignment (Hungarian) matches as many pairs as possible,
    preferring the larger total IoU among equally large matchings. Precision = matched / answer
    boxes, recall = matched / key boxes. Both empty → 1, exactly one empty → 0. Box order does not
    matter. With per-region `attributes` a matched pair counts by how well its attributes agree
    (as in `grade_spans`). A malformed answer scores 0; a malformed key raises ValueError.
    """
    boxes, expected = _parse_both(_parse_boxes, answer, key)
    if boxes is None:
        return 0.0
    if not boxes or not expected:
        return _f1(0, len(boxes), len(expected))
    pairs = _box_pairs(boxes, expected, iou_threshold)
    return _region_score(pairs, answer, key, len(boxes), len(expected), attributes)


def grade_polygons(
    answer: object, key: object, *, iou_threshold: float, attributes: Sequence[Attribute] = ()
) -> float:
    """Score a `polygons` answer: as `grade_boxes`, with the IoU of the enclosed areas.

    Polygons may be non-convex; self-intersecting ones are repaired (a bow-tie counts as its two
    triangles), never rejected. A zero-area polygon matches only an identical copy of itself. A
    malformed answer scores 0; a malformed key raises ValueError.
    """
    polygons, expected = _parse_both(_parse_polygons, answer, key)
    if polygons is None:
        return 0.0
    if not polygons or not expected:
        return _f1(0, len(polygons), len(expected))
    pairs = _polygon_pairs(polygons, expected, iou_threshold)
    return _region_score(pairs, answer, key, len(polygons), len(expected), attributes)


def grade_keypoints(
    answer: object, key: object, *, tolerance: float, attributes: Sequence[Attribute] = ()
) -> float:
    """Score a `keypoints` answer: F1 of a one-to-one matching of answer points to key points.

    A pair can match when the labels are equal and the Euclidean distance ≤ `tolerance` (pixels);
    the assignment matches as many pairs as possible, preferring the smaller total distance. Both
    empty → 1, exactly one empty → 0. A malformed answer scores 0; a malformed key raises
    ValueError.
    """
    points, expected = _parse_both(_parse_keypoints, answer, key)
    if points is None:
        return 0.0
    if not points or not expected:
        return _f1(0, len(points), len(expected))
    pairs = _keypoint_pairs(points, expected, tolerance)
    return _region_score(pairs, answer, key, len(points), len(expected), attributes)


def grade_segments(
    answer: object, key: object, *, iou_threshold: float, attributes: Sequence[Attribute] = ()
) -> float:
    """Score a `segments` answer: as `grade_boxes`, with the IoU of time intervals
    (overlap / union of the two [start, end] intervals, same label).

    Intervals that only touch never match. A malformed answer scores 0; a malformed key raises
    ValueError.
    """
    segments, expected = _parse_both(_parse_segments, answer, key)
    if segments is None:
        return 0.0
    if not segments or not expected:
        return _f1(0, len(segments), len(expected))
    pairs = _segment_pairs(segments, expected, iou_threshold)
    return _region_score(pairs, answer, key, len(segments), len(expected), attributes)


def grade_pairwise(answer: object, key: object) -> float:
    """Score a `pairwise` answer: 1 when the same side is preferred, else 0."""
    side, expected = _parse_both(_parse_side, answer, key)
    return 1.0 if side == expected else 0.0


def grade_ranking(answer: object, key: object) -> float:
    """Score a `ranking` answer by its Kendall rank correlation τ with the key, mapped to [0, 1]:
    (τ + 1) / 2, so the key's order scores 1, its reverse 0, and each discordant pair of
    candidates costs the same. τ = (concordant − discordant pairs) / (n(n − 1)/2); a single
    candidate scores 1. An answer that does not rank exactly the key's candidates scores 0; a
    malformed key raises ValueError.
    """
    ranking, expected = _parse_both(_parse_ranking, answer, key)
    if ranking is None or sorted(ranking) != sorted(expected):
        return 0.0
    return (kendall_tau(ranking, expected) + 1.0) / 2.0


def grade_taxonomy(answer: object, key: object) -> float:
    """Score a `taxonomy` answer by its paths: two paths agree by the share of their shared
    prefix (common leading steps / the longer path's length: ["Animal", "Cat"] against
    ["Animal", "Dog"] is 1/2); the paths are matched one to one to maximise the total agreement,
    and the score is 2 × total / (answer paths + key paths) (an F1 with partial credit; both
    empty → 1). A malformed answer scores 0; a malformed key raises ValueError.
    """
    paths, expected = _parse_both(_parse_paths, answer, key)
    if paths is None:
        return 0.0
    if not paths or not expected:
        return _f1(0, len(paths), len(expected))
    agreement = np.array([[_path_agreement(a, k) for k in expected] for a in paths])
    row_ind, col_ind = linear_sum_assignment(agreement, maximize=True)
    total = float(agreement[row_ind, col_ind].sum())
    return 2.0 * total / (len(paths) + len(expected))


def _path_agreement(path: tuple[str, ...], other: tuple[str, ...]) -> float:
    shared = 0
    for step, other_step in zip(path, other, strict=False):
        if step != other_step:
            break
        shared += 1
    return shared / max(len(path), len(other))


def grade_text(answer: object, key: object, *, normalize: bool) -> float:
    """Score a `text` answer: 1 - min(1, Levenshtein(answer, key) / len(key)).

    Distances count Unicode code points. With `normalize`, both sides are case-folded and runs of
    whitespace collapsed to one space and stripped first. An empty key scores 1 against an empty
    answer and 0 against anything else. A malformed answer scores 0; a malformed key raises
    ValueError.
    """
    text, expected = _parse_both(_parse_text, answer, key)
    if text is None:
        return 0.0
    if normalize:
        text, expected = _normalize_text(text), _normalize_text(expected)
    if not expected:
        return 1.0 if not text else 0.0
    # The cutoff lets the C++ implementation stop early once the score is bound to be 0.
    distance = Levenshtein.distance(text, expected, score_cutoff=len(expected))
    return 1.0 - min(1.0, distance / len(expected))


def _normalize_text(text: str) -> str:
    return " ".join(text.split()).casefold()


def grade_rating(answer: object, key: object, *, tolerance: int) -> float:
    """Score a `rating` answer: 1 if |answer - key| ≤ `tolerance`, else 0.

    A malformed answer scores 0; a malformed key raises ValueError.
    """
    return grade_number(answer, key, tolerance=tolerance)


def grade_number(answer: object, key: object, *, tolerance: float) -> float:
    """Score a `number` answer: 1 if |answer - key| ≤ `tolerance`, else 0.

    The boundary is inclusive, also after binary rounding (1.1 vs 1.0 within 0.1 scores 1).
    Booleans are not numbers. A malformed answer scores 0; a malformed key raises ValueError.
    """
    number, expected = _parse_both(_number, answer, key)
    if number is None:
        return 0.0
    return 1.0 if _within_tolerance(number, expected, tolerance) else 0.0


def grade_control(control: Control, answer: object, key: object) -> float:
    """One control's answer against its key, in [0, 1]."""
    match control:
        case ChoicesControl():
            return grade_choices(answer, key, multiple=control.multiple)
        case SpansControl():
            return grade_spans(answer, key, attributes=control.attributes)
        case BoxesControl():
            return grade_boxes(
                answer, key, iou_threshold=control.iou_threshold, attributes=control.attributes
            )
        case PolygonsControl():
            return grade_polygons(
                answer, key, iou_threshold=control.iou_threshold, attributes=control.attributes
            )
        case KeypointsControl():
            return grade_keypoints(
                answer, key, tolerance=control.tolerance, attributes=control.attributes
            )
        case SegmentsControl():
            return grade_segments(
                answer, key, iou_threshold=control.iou_threshold, attributes=control.attributes
            )
        case TextControl():
            return grade_text(answer, key, normalize=control.normalize)
        case RatingControl():
            return grade_rating(answer, key, tolerance=control.tolerance)
        case NumberControl():
            return grade_number(answer, key, tolerance=control.tolerance)
        case PairwiseControl():
            return grade_pairwise(answer, key)
        case RankingControl():
            return grade_ranking(answer, key)
        case TaxonomyControl():
            return grade_taxonomy(answer, key)
        case _:
            assert_never(control)


# Whole answers.


def grade_controls(
    schema: LabelSchema,
    answer: Mapping[str, Any],
    key: Mapping[str, Any],
    payload: Mapping[str, Any] | None = None,
) -> dict[str, float]:
    """Per-control scores in [0, 1] for the schema's controls that the key grades, in schema order.

    A control is graded when the key has a non-null value for it; key entries that name no control
    of the schema are ignored. A control the answer lacks (or holds null for) scores 0, as does a
    malformed answer value; answer entries the key does not grade are ignored. `payload` is
    accepted for symmetry with `validate_answer`; no grader needs the item today.

    Raises ValueError when the key grades no control or a key value is malformed.
    """
    del payload  # offsets and coordinates are compared with each other, never with the item
    if not isinstance(key, Mapping):
        raise ValueError("the key must be an object keyed by control name")
    if not isinstance(answer, Mapping):
        answer = {}  # defensive: every graded control then scores 0
    scores: dict[str, float] = {}
    for control in schema.controls:
        expected = key.get(control.name)
        if expected is None:
            continue
        try:
            # A missing answer value is None, which every grader scores 0 (after checking the key).
            scores[control.name] = grade_control(control, answer.get(control.name), expected)
        except _MalformedKeyError as exc:
            raise ValueError(f"key for control {control.name!r}: {exc}") from exc
    if not scores:
        raise ValueError("the key grades none of the schema's controls")
    return scores


def grade_answer(
    schema: LabelSchema,
    answer: Mapping[str, Any],
    key: Mapping[str, Any],
    payload: Mapping[str, Any] | None = None,
) -> float:
    """Score an answer against a key: the mean of `grade_controls`, in [0, 1].

    Only controls present in the key are graded (see `grade_controls`); each counts equally.
    Raises ValueError when the key grades no control or a key value is malformed.
    """
    scores = grade_controls(schema, answer, key, payload)
    return math.fsum(scores.values()) / len(scores)
