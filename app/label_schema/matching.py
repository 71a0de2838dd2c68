"""Matching: when two answers (or their parts) are the same, one definition for grading a key
(`grading`), merging a crowd's answers (`app.consensus`) and everything else that compares them.

- Parsing: a JSON answer value into typed regions (`parse_boxes`, `parse_spans`, …), or
  `MalformedError` when it does not have its control's shape.
- Candidate pairs: `box_pairs`, `polygon_pairs` and `segment_pairs` by IoU, `keypoint_pairs` by
  distance, `span_pairs` by exact (start, end, label); each a `Pairs` of answer index, key index
  and quality.
- One-to-one matching over pairs (`max_matching`, `soft_matching`) and its F1 (`f1`).
- Values: `within_tolerance` (numbers), `normalize_text` (text compared with case and whitespace
  ignored), `path_agreement` (taxonomy paths), `kendall_tau` (rankings), `interval_iou` (time
  intervals).

Pure functions of plain values, no session and no clock.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import shapely
from scipy.optimize import linear_sum_assignment

# Coordinates arrive as JSON decimals, so a pair that is exactly at the threshold on paper can land
# an ulp below it in binary floating point (0.1 + 0.2 style). These slacks make the documented
# "≤ tolerance" / "≥ iou_threshold" boundaries inclusive in practice; they are far below anything
# a person could draw or type.
_IOU_SLACK = 1e-9
_RELATIVE_SLACK = 1e-12

IntArray = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]


class MalformedError(Exception):
    """A value does not have the shape of its control's answers."""


class Box(NamedTuple):
    left: float
    top: float
    right: float
    bottom: float
    label: str


class Polygon(NamedTuple):
    points: tuple[tuple[float, float], ...]
    label: str


class Keypoint(NamedTuple):
    x: float
    y: float
    label: str


class Pairs(NamedTuple):
    """Candidate matches, one per position: answer item, key item, quality (higher is better)."""

    answer: IntArray
    key: IntArray
    quality: FloatArray


_NO_PAIRS = Pairs(np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp), np.empty(0))

# Parsing: turn a JSON value into a typed value or raise MalformedError.


def _label(value: object) -> str:
    if not isinstance(value, str):
        raise MalformedError("label must be a string")
    return value


def parse_number(value: object) -> int | float:
    # bool is an int subclass; the contract never accepts it where a number is expected.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedError("expected a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise MalformedError("expected a finite number")
    return value


def _coordinate(value: object) -> float:
    try:
        coordinate = float(parse_number(value))
    except OverflowError:  # an int too large for a float
        raise MalformedError("coordinate out of range") from None
    if not math.isfinite(coordinate):
        raise MalformedError("coordinate out of range")
    return coordinate


def _offset(value: object) -> int:
    number = parse_number(value)
    if isinstance(number, float):
        if not number.is_integer():
            raise MalformedError("offsets are whole characters")
        return int(number)
    return number


def _items(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        raise MalformedError("expected a list of objects")
    items: list[Mapping[str, Any]] = []
    for item in value:
        if not isinstance(item, Mapping):
            raise MalformedError("expected a list of objects")
        items.append(item)
    return items


def _field(item: Mapping[str, Any], name: str) -> object:
    if name not in item:
        raise MalformedError(f"missing {name!r}")
    return item[name]


def parse_single_choice(value: object) -> str:
    return _label(value)


def parse_multiple_choice(value: object) -> frozenset[str]:
    if not isinstance(value, list):
        raise MalformedError("expected a list of labels")
    return frozenset(_label(item) for item in value)


def parse_spans(value: object) -> list[tuple[int, int, str]]:
    spans = []
    for item in _items(value):
        start, end = _offset(_field(item, "start")), _offset(_field(item, "end"))
        if not 0 <= start < end:
            raise MalformedError("a span needs 0 <= start < end")
        spans.append((start, end, _label(_field(item, "label"))))
    return spans


#: A range of structured text: ((start, start_offset), (end, end_offset), label), where start and
#: end are paragraph indexes or XPaths. Like a span, a whole range is the unit of a match.
Range = tuple[tuple[Any, int], tuple[Any, int], str]


def parse_ranges(value: object) -> list[Range]:
    ranges: list[Range] = []
    for item in _items(value):
        ends = []
        for position_key, offset_key in (("start", "start_offset"), ("end", "end_offset")):
            position = _field(item, position_key)
            if isinstance(position, bool) or not isinstance(position, int | str):
                raise MalformedError("a range's start and end are paragraph indexes or XPaths")
            ends.append((position, _offset(_field(item, offset_key))))
        ranges.append((ends[0], ends[1], _label(_field(item, "label"))))
    return ranges


def parse_messages(value: object) -> list[tuple[int]]:
    """The messages a `messages` answer asks about, each as a one-element tuple (an exact key,
    as spans and ranges are matched)."""
    return [(_offset(_field(item, "message")),) for item in _items(value)]


def parse_boxes(value: object) -> list[Box]:
    boxes = []
    for item in _items(value):
        x, y = _coordinate(_field(item, "x")), _coordinate(_field(item, "y"))
        width, height = _coordinate(_field(item, "width")), _coordinate(_field(item, "height"))
        if width <= 0 or height <= 0:
            raise MalformedError("width and height must be positive")
        right, bottom = x + width, y + height
        if not (math.isfinite(right) and math.isfinite(bottom)):
            raise MalformedError("box out of range")
        boxes.append(Box(x, y, right, bottom, _label(_field(item, "label"))))
    return boxes


def parse_polygons(value: object) -> list[Polygon]:
    polygons = []
    for item in _items(value):
        points = _field(item, "points")
        if not isinstance(points, list) or len(points) < 3:
            raise MalformedError("a polygon needs at least 3 points")
        parsed = []
        for point in points:
            if not isinstance(point, list | tuple) or len(point) != 2:
                raise MalformedError("a point is [x, y]")
            parsed.append((_coordinate(point[0]), _coordinate(point[1])))
        polygons.append(Polygon(tuple(parsed), _label(_field(item, "label"))))
    return polygons


def parse_keypoints(value: object) -> list[Keypoint]:
    return [
        Keypoint(
            _coordinate(_field(item, "x")),
            _coordinate(_field(item, "y")),
            _label(_field(item, "label")),
        )
        for item in _items(value)
    ]


class Segment(NamedTuple):
    start: float
    end: float
    label: str


def parse_segments(value: object) -> list[Segment]:
    segments = []
    for item in _items(value):
        start, end = _coordinate(_field(item, "start")), _coordinate(_field(item, "end"))
        if not 0 <= start <= end:
            raise MalformedError("a segment needs 0 <= start <= end")
        segments.append(Segment(start, end, _label(_field(item, "label"))))
    return segments


def parse_side(value: object) -> str:
    if value not in ("left", "right"):
        raise MalformedError('expected "left" or "right"')
    return str(value)


def parse_ranking(value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise MalformedError("expected a non-empty list of candidate ids")
    ranking = [_label(item) for item in value]
    if len(set(ranking)) != len(ranking):
        raise MalformedError("a candidate is ranked twice")
    return ranking


def parse_paths(value: object) -> list[tuple[str, ...]]:
    if not isinstance(value, list):
        raise MalformedError("expected a list of paths")
    paths = []
    for path in value:
        if not isinstance(path, list) or not path:
            raise MalformedError("a path is a non-empty list of labels")
        paths.append(tuple(_label(step) for step in path))
    return paths


def parse_attributes(value: object) -> list[Mapping[str, Any]]:
    """Each region's `attributes` object ({} where it has none)."""
    out: list[Mapping[str, Any]] = []
    for item in _items(value):
        attributes = item.get("attributes", {})
        if not isinstance(attributes, Mapping):
            raise MalformedError("attributes must be an object")
        out.append(attributes)
    return out


def parse_text(value: object) -> str:
    if not isinstance(value, str):
        raise MalformedError("expected a string")
    return value


# Matching: one-to-one assignment of answer items to key items.


def f1(matched: int, answer_count: int, key_count: int) -> float:
    # Precision m/a and recall m/k give F1 = 2m/(a+k); both lists empty is a perfect "nothing here".
    total = answer_count + key_count
    return 1.0 if total == 0 else 2.0 * matched / total


def max_matching(pairs: Pairs) -> int:
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


def soft_matching(pairs: Pairs, weight: FloatArray, answer_count: int, key_count: int) -> float:
    """F1 of a one-to-one matching in which each matched pair counts `weight` (in [0, 1]) rather
    than 1: the matching maximises the number of pairs first, then their total weight."""
    if not pairs.answer.size:
        return f1(0, answer_count, key_count)
    bonus = min(answer_count, key_count) + 1.0
    weights = np.zeros((answer_count, key_count))
    weights[pairs.answer, pairs.key] = bonus + np.clip(weight, 0.0, 1.0)
    row_ind, col_ind = linear_sum_assignment(weights, maximize=True)
    chosen = weights[row_ind, col_ind]
    total = float(np.sum(chosen[chosen > 0] - bonus))
    return 2.0 * total / (answer_count + key_count)


def _label_ids(answer: Sequence[str], key: Sequence[str]) -> tuple[IntArray, IntArray]:
    ids: dict[str, int] = {}
    answer_ids = np.array([ids.setdefault(label, len(ids)) for label in answer], dtype=np.intp)
    key_ids = np.array([ids.setdefault(label, len(ids)) for label in key], dtype=np.intp)
    return answer_ids, key_ids


def box_pairs(answer: Sequence[Box], key: Sequence[Box], iou_threshold: float) -> Pairs:
    """Every pair of boxes with the same label and IoU ≥ `iou_threshold` (touching never pairs)."""
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
    return Pairs(rows, cols, iou[rows, cols])


def _regions(polygons: Sequence[Polygon]) -> ObjectArray:
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


def polygon_pairs(answer: Sequence[Polygon], key: Sequence[Polygon], iou_threshold: float) -> Pairs:
    """Every pair of polygons with the same label and IoU of their enclosed areas ≥
    `iou_threshold`; a zero-area outline pairs only with an exact copy of itself."""
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
    return Pairs(rows[passed], cols[passed], iou[passed])


def _passes(iou: FloatArray, iou_threshold: float) -> npt.NDArray[np.bool_]:
    # Touching or disjoint shapes never match, however small the threshold.
    return (iou > 0) & (iou >= iou_threshold - _IOU_SLACK)


def segment_pairs(answer: Sequence[Segment], key: Sequence[Segment], iou_threshold: float) -> Pairs:
    """Every pair of time segments with the same label and interval IoU ≥ `iou_threshold`."""
    a = np.array([(seg.start, seg.end) for seg in answer], dtype=float)
    k = np.array([(seg.start, seg.end) for seg in key], dtype=float)
    inter = np.clip(
        np.minimum(a[:, None, 1], k[None, :, 1]) - np.maximum(a[:, None, 0], k[None, :, 0]),
        0.0,
        None,
    )
    union = (a[:, None, 1] - a[:, None, 0]) + (k[None, :, 1] - k[None, :, 0]) - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    # Instants (a time series' zero-length regions) are the same when they are at the same time.
    iou[(union == 0) & (a[:, None, 0] == k[None, :, 0])] = 1.0
    answer_labels, key_labels = _label_ids(
        [seg.label for seg in answer], [seg.label for seg in key]
    )
    same_label = answer_labels[:, None] == key_labels[None, :]
    rows, cols = np.nonzero(same_label & _passes(iou, iou_threshold))
    return Pairs(rows, cols, iou[rows, cols])


def span_pairs(answer: Sequence[Hashable], key: Sequence[Hashable]) -> Pairs:
    """Every exact match (same start, end and label: spans or ranges) as a candidate pair."""
    positions: dict[Hashable, list[int]] = {}
    for j, span in enumerate(key):
        positions.setdefault(span, []).append(j)
    rows = [i for i, span in enumerate(answer) for _ in positions.get(span, ())]
    cols = [j for span in answer for j in positions.get(span, ())]
    return Pairs(np.array(rows, dtype=np.intp), np.array(cols, dtype=np.intp), np.ones(len(rows)))


def keypoint_pairs(answer: Sequence[Keypoint], key: Sequence[Keypoint], tolerance: float) -> Pairs:
    """Every pair of points with the same label at most `tolerance` apart; quality is closeness."""
    a = np.array([(p.x, p.y) for p in answer], dtype=float)
    k = np.array([(p.x, p.y) for p in key], dtype=float)
    distance = np.hypot(a[:, None, 0] - k[None, :, 0], a[:, None, 1] - k[None, :, 1])
    scale = max(1.0, float(np.abs(a).max()), float(np.abs(k).max()))
    limit = tolerance + _RELATIVE_SLACK * scale
    answer_labels, key_labels = _label_ids([p.label for p in answer], [p.label for p in key])
    same_label = answer_labels[:, None] == key_labels[None, :]
    rows, cols = np.nonzero(same_label & (distance <= limit))
    closeness = 1.0 - distance[rows, cols] / tolerance if tolerance > 0 else np.ones(rows.size)
    return Pairs(rows, cols, closeness)


def within_tolerance(answer: int | float, key: int | float, tolerance: int | float) -> bool:
    """|answer − key| ≤ tolerance, the boundary inclusive also after binary rounding."""
    if isinstance(answer, int) and isinstance(key, int) and isinstance(tolerance, int):
        return abs(answer - key) <= tolerance  # exact: no rounding to forgive
    try:
        slack = _RELATIVE_SLACK * max(abs(answer), abs(key), tolerance)
        return abs(answer - key) <= tolerance + slack
    except OverflowError:  # an int beyond float range against a float: cannot be that close
        return False


def normalize_text(text: str) -> str:
    """Case-folded, runs of whitespace collapsed to one space and stripped."""
    return " ".join(text.split()).casefold()


def path_agreement(path: tuple[str, ...], other: tuple[str, ...]) -> float:
    """The share of two taxonomy paths' shared prefix: common leading steps / the longer one."""
    shared = 0
    for step, other_step in zip(path, other, strict=False):
        if step != other_step:
            break
        shared += 1
    return shared / max(len(path), len(other))


def interval_iou(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Overlap / union of two [start, end] intervals (0 when they only touch or are apart)."""
    if a[0] == a[1] and b[0] == b[1]:
        return 1.0 if a[0] == b[0] else 0.0  # instants: the same time or not
    overlap = min(a[1], b[1]) - max(a[0], b[0])
    if overlap <= 0:
        return 0.0
    union = (a[1] - a[0]) + (b[1] - b[0]) - overlap
    return overlap / union if union > 0 else 0.0


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
