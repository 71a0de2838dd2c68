"""The aggregator of each non-categorical control: one item's answers to one control in, one
merged value out, with its confidence and each answer graded against it (`merging.Merged`).

Boxes, polygons and keypoints (`geometry`), spans (`spans`), text (`text`) and numbers
(`numbers`) and choices whose options come from the item (`dynamic_choices`) weigh each answer
by its annotator's skill; time segments (`segments`), pairwise
preferences and rankings (`rankings`) and taxonomies (`taxonomy`) count every annotator alike
(`aggregate_control`). `aggregation` calls `merge_control` in both its batch and online forms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.consensus.dynamic_choices import merge_dynamic_choices
from app.consensus.geometry import merge_boxes, merge_keypoints, merge_polygons
from app.consensus.merging import Merged
from app.consensus.numbers import merge_numbers
from app.consensus.rankings import aggregate_pairwise, aggregate_ranking
from app.consensus.segments import aggregate_segments
from app.consensus.spans import merge_messages, merge_ranges, merge_spans
from app.consensus.taxonomy import aggregate_taxonomy
from app.consensus.text import merge_text
from app.label_schema import (
    BoxesControl,
    ChoicesControl,
    Control,
    KeypointsControl,
    MessagesControl,
    NumberControl,
    PairwiseControl,
    PolygonsControl,
    RangesControl,
    RankingControl,
    SegmentsControl,
    SpansControl,
    TaxonomyControl,
    TextControl,
)
from app.label_schema.grading import grade_control


def merge_control(
    control: Control, answers: Sequence[object], weights: Sequence[float] | None
) -> Merged:
    """One item's answers to a non-categorical `control` (one per annotator, weighted by
    `weights`; None: alike) merged by the control's aggregator. Raises ValueError for a
    categorical control (single or multiple choice over fixed labels, rating)."""
    match control:
        case BoxesControl():
            return merge_boxes(
                answers,
                weights,
                iou_threshold=control.iou_threshold,
                maximum=control.max,
                attributes=control.attributes,
            )
        case PolygonsControl():
            return merge_polygons(
                answers,
                weights,
                iou_threshold=control.iou_threshold,
                maximum=control.max,
                attributes=control.attributes,
            )
        case KeypointsControl():
            return merge_keypoints(
                answers,
                weights,
                tolerance=control.tolerance,
                maximum=control.max,
                attributes=control.attributes,
            )
        case SpansControl():
            return merge_spans(
                answers,
                weights,
                allow_overlap=control.allow_overlap,
                maximum=control.max,
                attributes=control.attributes,
            )
        case RangesControl():
            return merge_ranges(
                answers, weights, maximum=control.max, attributes=control.attributes
            )
        case MessagesControl():
            return merge_messages(
                answers, weights, maximum=control.max, attributes=control.attributes
            )
        case TextControl():
            return merge_text(answers, weights, normalize=control.normalize)
        case NumberControl():
            return merge_numbers(answers, weights, tolerance=control.tolerance)
        case SegmentsControl() | PairwiseControl() | RankingControl() | TaxonomyControl():
            # Interval clustering, Bradley-Terry/Borda and path voting: unweighted; each answer
            # graded against the result for skills.
            found = aggregate_control(control, answers)
            if found is None:
                return Merged(None, 0.0, tuple(0.0 for _ in answers))
            value, confidence = found
            return Merged(
                value, confidence, tuple(grade_control(control, a, value) for a in answers)
            )
        case ChoicesControl() if control.labels_field is not None:
            return merge_dynamic_choices(control, answers, weights)
        case _:
            raise ValueError(f"control {control.name!r} is categorical, not merged")


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
