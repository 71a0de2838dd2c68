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

from collections.abc import Sequence
from typing import Any

from app.consensus.attributes import aggregate_attributes
from app.consensus.merging import Merged, graded, normalised_weights
from app.label_schema import Attribute
from app.label_schema.grading import grade_spans
from app.label_schema.matching import MalformedError, parse_spans

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
    w = normalised_weights(weights, len(answers))
    support: dict[tuple[int, int, str], float] = {}
    regions: dict[tuple[int, int, str], list[Any]] = {}  # per span, its regions (attributes)
    for answer, weight in zip(answers, w, strict=True):
        try:
            parsed = parse_spans(answer)
        except MalformedError:
            continue
        for span, region in zip(parsed, answer if isinstance(answer, list) else [], strict=False):
            regions.setdefault(span, []).append(region)
        for span in set(parsed):  # a span marked twice by one annotator counts once
            support[span] = support.get(span, 0.0) + float(weight)
    kept = [(s, v) for s, v in support.items() if v > min_share + 1e-12]
    # Best supported first; then position, so that equal support is decided the same every time.
    kept.sort(key=lambda sv: (-sv[1], sv[0]))
    chosen: list[tuple[int, int, str]] = []
    for span, _ in kept:
        if maximum is not None and len(chosen) >= maximum:
            break
        if allow_overlap or all(span[1] <= s[0] or s[1] <= span[0] for s in chosen):
            chosen.append(span)
    value: list[dict[str, Any]] = []
    for start, end, label in sorted(chosen):
        merged: dict[str, Any] = {"start": start, "end": end, "label": label}
        if attributes:
            merged["attributes"] = aggregate_attributes(attributes, regions[(start, end, label)])
        value.append(merged)
    return graded(value, [grade_spans(a, value, attributes=attributes) for a in answers], w)
