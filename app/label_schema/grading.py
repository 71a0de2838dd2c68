"""Grading: how close an answer is to a key, per control and overall (docs/label-schema.md).

Pure functions, shared by gold checks at submit time, qualification test attempts and consensus
(which grades each annotator's answer against the merged one). Every score is in [0, 1]. What
counts as the same region or value (parsing, IoU pairs, matchings, tolerances) is `matching`'s.

Answers reach the graders already validated, but a malformed answer value still scores 0 instead
of raising: grading runs on the submit hot path and must not fail an annotator's request. A
malformed key raises ValueError: keys are validated when they are imported, so a bad one is a bug
to surface, not the annotator's fault.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, TypeVar, assert_never

import numpy as np
from rapidfuzz.distance import Levenshtein
from scipy.optimize import linear_sum_assignment

from app.label_schema.item_controls import (
    ChoicesControl,
    NumberControl,
    PairwiseControl,
    RankingControl,
    RatingControl,
    TaxonomyControl,
    TextControl,
)
from app.label_schema.matching import (
    FloatArray,
    MalformedError,
    Pairs,
    box_pairs,
    f1,
    kendall_tau,
    keypoint_pairs,
    max_matching,
    normalize_text,
    parse_attributes,
    parse_boxes,
    parse_keypoints,
    parse_messages,
    parse_multiple_choice,
    parse_number,
    parse_paths,
    parse_polygons,
    parse_ranges,
    parse_ranking,
    parse_segments,
    parse_side,
    parse_single_choice,
    parse_spans,
    parse_text,
    path_agreement,
    polygon_pairs,
    segment_pairs,
    soft_matching,
    span_pairs,
    within_tolerance,
)
from app.label_schema.model import Control, LabelSchema
from app.label_schema.region_controls import (
    Attribute,
    BoxesControl,
    ChoicesAttribute,
    KeypointsControl,
    MessagesControl,
    PolygonsControl,
    RangesControl,
    SegmentsControl,
    SpansControl,
    TextAttribute,
)

__all__ = [
    "grade_answer",
    "grade_boxes",
    "grade_choices",
    "grade_controls",
    "grade_keypoints",
    "grade_messages",
    "grade_number",
    "grade_pairwise",
    "grade_polygons",
    "grade_ranges",
    "grade_ranking",
    "grade_rating",
    "grade_segments",
    "grade_spans",
    "grade_taxonomy",
    "grade_text",
]

T = TypeVar("T")


class _MalformedKeyError(ValueError):
    """The key's value does not have the shape of its control's answers."""


def _parse_both(parse: Callable[[object], T], answer: object, key: object) -> tuple[T | None, T]:
    """(parsed answer or None when malformed, parsed key); a malformed key raises ValueError."""
    try:
        parsed_key = parse(key)
    except MalformedError as exc:
        raise _MalformedKeyError(f"malformed key: {exc}") from None
    try:
        return parse(answer), parsed_key
    except MalformedError:
        return None, parsed_key


def _attribute_weights(
    pairs: Pairs,
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
    pairs: Pairs,
    answer: object,
    key: object,
    answer_count: int,
    key_count: int,
    attributes: Sequence[Attribute],
) -> float:
    """F1 of the best matching over `pairs`; with per-region attributes, each matched pair
    counts by how well its attributes agree."""
    if not attributes:
        return f1(max_matching(pairs), answer_count, key_count)
    try:
        key_attributes = parse_attributes(key)
    except MalformedError as exc:
        raise _MalformedKeyError(f"malformed key: {exc}") from None
    try:
        answer_attributes = parse_attributes(answer)
    except MalformedError:
        answer_attributes = [{} for _ in range(answer_count)]
    weight = _attribute_weights(pairs, attributes, answer_attributes, key_attributes)
    return soft_matching(pairs, weight, answer_count, key_count)


# Public graders, one per control type.


def grade_choices(answer: object, key: object, *, multiple: bool) -> float:
    """Score a `choices` answer.

    Single choice: 1 if the labels are equal, else 0. Multiple: Jaccard similarity of the two label
    sets, size of the intersection over size of the union (both empty → 1). A malformed answer
    scores 0; a malformed key raises ValueError.
    """
    if not multiple:
        single_answer, single_key = _parse_both(parse_single_choice, answer, key)
        return 1.0 if single_answer == single_key else 0.0
    chosen, expected = _parse_both(parse_multiple_choice, answer, key)
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
    return _grade_exact(parse_spans, answer, key, attributes)


def grade_ranges(answer: object, key: object, *, attributes: Sequence[Attribute] = ()) -> float:
    """Score a `ranges` answer as `grade_spans` does: F1 of exact matches (same start, start
    offset, end, end offset and label), attributes weighing matched pairs."""
    return _grade_exact(parse_ranges, answer, key, attributes)


def grade_messages(answer: object, key: object, *, attributes: Sequence[Attribute]) -> float:
    """Score a `messages` answer: the same message answered in both counts by how well its
    attributes agree (the mean over those the key gives), an F1 over the messages."""
    return _grade_exact(parse_messages, answer, key, attributes)


def _grade_exact(
    parse: Callable[[object], Sequence[Hashable]],
    answer: object,
    key: object,
    attributes: Sequence[Attribute],
) -> float:
    regions, expected = _parse_both(parse, answer, key)
    if regions is None:
        return 0.0
    if attributes:
        pairs = span_pairs(regions, expected)
        return _region_score(pairs, answer, key, len(regions), len(expected), attributes)
    matched = sum((Counter(regions) & Counter(expected)).values())
    return f1(matched, len(regions), len(expected))


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
    boxes, expected = _parse_both(parse_boxes, answer, key)
    if boxes is None:
        return 0.0
    if not boxes or not expected:
        return f1(0, len(boxes), len(expected))
    pairs = box_pairs(boxes, expected, iou_threshold)
    return _region_score(pairs, answer, key, len(boxes), len(expected), attributes)


def grade_polygons(
    answer: object, key: object, *, iou_threshold: float, attributes: Sequence[Attribute] = ()
) -> float:
    """Score a `polygons` answer: as `grade_boxes`, with the IoU of the enclosed areas.

    Polygons may be non-convex; self-intersecting ones are repaired (a bow-tie counts as its two
    triangles), never rejected. A zero-area polygon matches only an identical copy of itself. A
    malformed answer scores 0; a malformed key raises ValueError.
    """
    polygons, expected = _parse_both(parse_polygons, answer, key)
    if polygons is None:
        return 0.0
    if not polygons or not expected:
        return f1(0, len(polygons), len(expected))
    pairs = polygon_pairs(polygons, expected, iou_threshold)
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
    points, expected = _parse_both(parse_keypoints, answer, key)
    if points is None:
        return 0.0
    if not points or not expected:
        return f1(0, len(points), len(expected))
    pairs = keypoint_pairs(points, expected, tolerance)
    return _region_score(pairs, answer, key, len(points), len(expected), attributes)


def grade_segments(
    answer: object, key: object, *, iou_threshold: float, attributes: Sequence[Attribute] = ()
) -> float:
    """Score a `segments` answer: as `grade_boxes`, with the IoU of time intervals
    (overlap / union of the two [start, end] intervals, same label).

    Intervals that only touch never match. A malformed answer scores 0; a malformed key raises
    ValueError.
    """
    segments, expected = _parse_both(parse_segments, answer, key)
    if segments is None:
        return 0.0
    if not segments or not expected:
        return f1(0, len(segments), len(expected))
    pairs = segment_pairs(segments, expected, iou_threshold)
    return _region_score(pairs, answer, key, len(segments), len(expected), attributes)


def grade_pairwise(answer: object, key: object) -> float:
    """Score a `pairwise` answer: 1 when the same side is preferred, else 0."""
    side, expected = _parse_both(parse_side, answer, key)
    return 1.0 if side == expected else 0.0


def grade_ranking(answer: object, key: object) -> float:
    """Score a `ranking` answer by its Kendall rank correlation τ with the key, mapped to [0, 1]:
    (τ + 1) / 2, so the key's order scores 1, its reverse 0, and each discordant pair of
    candidates costs the same. τ = (concordant − discordant pairs) / (n(n − 1)/2); a single
    candidate scores 1. An answer that does not rank exactly the key's candidates scores 0; a
    malformed key raises ValueError.
    """
    ranking, expected = _parse_both(parse_ranking, answer, key)
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
    paths, expected = _parse_both(parse_paths, answer, key)
    if paths is None:
        return 0.0
    if not paths or not expected:
        return f1(0, len(paths), len(expected))
    agreement = np.array([[path_agreement(a, k) for k in expected] for a in paths])
    row_ind, col_ind = linear_sum_assignment(agreement, maximize=True)
    total = float(agreement[row_ind, col_ind].sum())
    return 2.0 * total / (len(paths) + len(expected))


def grade_text(answer: object, key: object, *, normalize: bool) -> float:
    """Score a `text` answer: 1 - min(1, Levenshtein(answer, key) / len(key)).

    Distances count Unicode code points. With `normalize`, both sides are case-folded and runs of
    whitespace collapsed to one space and stripped first. An empty key scores 1 against an empty
    answer and 0 against anything else. A malformed answer scores 0; a malformed key raises
    ValueError.
    """
    text, expected = _parse_both(parse_text, answer, key)
    if text is None:
        return 0.0
    if normalize:
        text, expected = normalize_text(text), normalize_text(expected)
    if not expected:
        return 1.0 if not text else 0.0
    # The cutoff lets the C++ implementation stop early once the score is bound to be 0.
    distance = Levenshtein.distance(text, expected, score_cutoff=len(expected))
    return 1.0 - min(1.0, distance / len(expected))


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
    number, expected = _parse_both(parse_number, answer, key)
    if number is None:
        return 0.0
    return 1.0 if within_tolerance(number, expected, tolerance) else 0.0


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
        case RangesControl():
            return grade_ranges(answer, key, attributes=control.attributes)
        case MessagesControl():
            return grade_messages(answer, key, attributes=control.attributes)
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
