"""Spans: a weighted vote over whole spans.

A span is its exact (start, end, label), the unit of strict-match evaluation in named-entity
recognition (Tjong Kim Sang & De Meulder, "Introduction to the CoNLL-2003 shared task", 2003)
and of the span grader (`app.label_schema.grading.grade_spans`, which parses spans with
`matching.parse_spans` as this module does). Each distinct span is kept
when the annotators who marked it carry more than `min_share` of the weight of all who answered
the item. Where the control forbids overlaps, kept spans are taken best supported first and a
span overlapping one already taken is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from app.consensus.attributes import aggregate_attributes
from app.consensus.merging import Merged, graded, normalised_weights
from app.label_schema import Attribute
from app.label_schema.grading import grade_messages, grade_ranges, grade_spans
from app.label_schema.matching import (
    MalformedError,
    Range,
    parse_messages,
    parse_ranges,
    parse_spans,
)

MIN_SHARE = 0.5


def merge_spans(
    answers: Sequence[object],
    weights: Sequence[float] | None = None,
    *,
    allow_overlap: bool = True,
    min_share: float = MIN_SHARE,
    maximum: int | None = None,
    attributes: Sequence[Attribute] = (),
) -> Merged:
    """Merge one item's `spans` answers (one list of spans per annotator)."""
    return _merge_exact(
        answers,
        weights,
        parse_spans,
        lambda span: {"start": span[0], "end": span[1], "label": span[2]},
        lambda answer, value: grade_spans(answer, value, attributes=attributes),
        allow_overlap=allow_overlap,
        min_share=min_share,
        maximum=maximum,
        attributes=attributes,
    )


def merge_ranges(
    answers: Sequence[object],
    weights: Sequence[float] | None = None,
    *,
    min_share: float = MIN_SHARE,
    maximum: int | None = None,
    attributes: Sequence[Attribute] = (),
) -> Merged:
    """Merge one item's `ranges` answers (paragraph or HTML selections) as spans are merged:
    each exact range is kept when more than `min_share` of the weight marked it."""

    def region(found: Range) -> dict[str, Any]:
        (start, start_offset), (end, end_offset), label = found
        return {
            "start": start,
            "start_offset": start_offset,
            "end": end,
            "end_offset": end_offset,
            "label": label,
        }

    return _merge_exact(
        answers,
        weights,
        parse_ranges,
        region,
        lambda answer, value: grade_ranges(answer, value, attributes=attributes),
        allow_overlap=True,
        min_share=min_share,
        maximum=maximum,
        attributes=attributes,
    )


def merge_messages(
    answers: Sequence[object],
    weights: Sequence[float] | None = None,
    *,
    min_share: float = MIN_SHARE,
    maximum: int | None = None,
    attributes: Sequence[Attribute] = (),
) -> Merged:
    """Merge one item's `messages` answers: a message is kept when more than `min_share` of
    the weight answered questions about it, with its attributes by majority."""
    return _merge_exact(
        answers,
        weights,
        parse_messages,
        lambda found: {"message": found[0]},
        lambda answer, value: grade_messages(answer, value, attributes=attributes),
        allow_overlap=True,
        min_share=min_share,
        maximum=maximum,
        attributes=attributes,
    )


def _merge_exact(
    answers: Sequence[object],
    weights: Sequence[float] | None,
    parse: Callable[[object], Sequence[Any]],
    region_of: Callable[[Any], dict[str, Any]],
    grade: Callable[[object, object], float],
    *,
    allow_overlap: bool,
    min_share: float,
    maximum: int | None,
    attributes: Sequence[Attribute],
) -> Merged:
    w = normalised_weights(weights, len(answers))
    support: dict[Any, float] = {}
    regions: dict[Any, list[Any]] = {}  # per span, its regions (attributes)
    for answer, weight in zip(answers, w, strict=True):
        try:
            parsed = parse(answer)
        except MalformedError:
            continue
        for span, region in zip(parsed, answer if isinstance(answer, list) else [], strict=False):
            regions.setdefault(span, []).append(region)
        for span in set(parsed):  # a span marked twice by one annotator counts once
            support[span] = support.get(span, 0.0) + float(weight)
    kept = [(s, v) for s, v in support.items() if v > min_share + 1e-12]
    # Best supported first; then position, so that equal support is decided the same every time.
    kept.sort(key=lambda sv: (-sv[1], sv[0]))
    chosen: list[Any] = []
    for span, _ in kept:
        if maximum is not None and len(chosen) >= maximum:
            break
        if allow_overlap or all(span[1] <= s[0] or s[1] <= span[0] for s in chosen):
            chosen.append(span)
    value: list[dict[str, Any]] = []
    for span in sorted(chosen):
        merged = region_of(span)
        if attributes:
            merged["attributes"] = aggregate_attributes(attributes, regions[span])
        value.append(merged)
    return graded(value, [grade(a, value) for a in answers], w)
