"""Answer validation: does one item's answer fit the label schema (docs/label-schema.md)?

`validate_answer` runs on the submit hot path: plain type checks on the decoded JSON, one dispatch
per control type, a fast path for the common well-formed region, and pointers built only when
something is wrong. Every problem is reported (not just the first), each with an RFC 6901 pointer
into the answer.

The checks of the whole-item controls are here, those of the region controls in
`region_answers`, and what both are built from in `answer_checks`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from app.label_schema.answer_checks import (
    Payload,
    add_problem,
    check_count,
    check_label_list,
    check_rating_value,
    read_integer,
    read_number,
)
from app.label_schema.item_controls import (
    ChoicesControl,
    NumberControl,
    PairwiseControl,
    RankingControl,
    RatingControl,
    TaxonomyControl,
    TextControl,
    candidate_ids,
)
from app.label_schema.model import LabelSchema, Problem, json_type
from app.label_schema.region_answers import (
    check_boxes,
    check_keypoints,
    check_messages,
    check_polygons,
    check_ranges,
    check_segments,
    check_spans,
)


def _check_choices(problems: list[Problem], control: Any, value: object, payload: Payload) -> None:
    c: ChoicesControl = control
    labels = c.labels_for(payload)
    if not c.multiple:
        if not isinstance(value, str):
            add_problem(problems, [c.name], f"expected a label (string), got {json_type(value)}")
        elif labels is not None and value not in labels:
            add_problem(problems, [c.name], f"unknown label {value!r}")
        return
    if not isinstance(value, list):
        add_problem(problems, [c.name], f"expected an array of labels, got {json_type(value)}")
        return
    check_count(problems, [c.name], len(value), c.min_count, c.max_count, "labels")
    check_label_list(problems, [c.name], value, labels)


def _check_text(problems: list[Problem], control: Any, value: object, payload: Payload) -> None:
    c: TextControl = control
    if not isinstance(value, str):
        add_problem(problems, [c.name], f"expected a string, got {json_type(value)}")
        return
    check_count(problems, [c.name], len(value), c.min_chars, c.max_length, "characters")


def _check_rating(problems: list[Problem], control: Any, value: object, payload: Payload) -> None:
    c: RatingControl = control
    check_rating_value(problems, [c.name], c, value)


def _check_number(problems: list[Problem], control: Any, value: object, payload: Payload) -> None:
    c: NumberControl = control
    number = (
        read_integer(problems, [c.name], value)
        if c.integer
        else read_number(problems, [c.name], value)
    )
    if number is None:
        return
    if c.min is not None and number < c.min:
        add_problem(problems, [c.name], f"{number} is below the minimum {c.min:g}")
    elif c.max is not None and number > c.max:
        add_problem(problems, [c.name], f"{number} is above the maximum {c.max:g}")


def _check_pairwise(problems: list[Problem], control: Any, value: object, payload: Payload) -> None:
    c: PairwiseControl = control
    if value not in ("left", "right") or not isinstance(value, str):
        add_problem(problems, [c.name], f'expected "left" or "right", got {_shown(value)}')


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else json_type(value)


def _check_ranking(problems: list[Problem], control: Any, value: object, payload: Payload) -> None:
    c: RankingControl = control
    if not isinstance(value, list):
        add_problem(
            problems, [c.name], f"expected an array of candidate ids, got {json_type(value)}"
        )
        return
    known = candidate_ids(payload.get(c.field)) if payload is not None else None
    candidates = frozenset(known) if known is not None else None
    seen: set[str] = set()
    for i, ident in enumerate(value):
        if not isinstance(ident, str):
            add_problem(
                problems, [c.name, i], f"expected a candidate id (string), got {json_type(ident)}"
            )
        elif candidates is not None and ident not in candidates:
            add_problem(problems, [c.name, i], f"unknown candidate {ident!r}")
        elif ident in seen:
            add_problem(problems, [c.name, i], f"candidate {ident!r} is ranked more than once")
        else:
            seen.add(ident)
    if candidates is not None:
        missing = [ident for ident in known or () if ident not in seen]
        if missing:
            shown = ", ".join(map(repr, missing[:10])) + (", ..." if len(missing) > 10 else "")
            add_problem(problems, [c.name], f"every candidate must be ranked; missing: {shown}")
    elif not value:
        add_problem(problems, [c.name], "0 candidates given; rank every candidate")


def _check_taxonomy(problems: list[Problem], control: Any, value: object, payload: Payload) -> None:
    c: TaxonomyControl = control
    if not isinstance(value, list):
        add_problem(problems, [c.name], f"expected an array of paths, got {json_type(value)}")
        return
    check_count(problems, [c.name], len(value), c.min_count, c.max_count, "paths")
    tree = c.paths
    seen: set[tuple[str, ...]] = set()
    for i, path_value in enumerate(value):
        if not isinstance(path_value, list) or not path_value:
            add_problem(
                problems,
                [c.name, i],
                "expected a path: a non-empty array of labels from a root down, "
                f"got {json_type(path_value) if path_value != [] else 'an empty array'}",
            )
            continue
        if not all(isinstance(step, str) for step in path_value):
            add_problem(problems, [c.name, i], "every step of a path is a label (string)")
            continue
        path = tuple(path_value)
        leaf = tree.get(path)
        if leaf is None:
            add_problem(
                problems, [c.name, i], f"{' / '.join(path)!r} is not a path of the taxonomy"
            )
        elif c.leafs_only and not leaf:
            add_problem(problems, [c.name, i], f"{' / '.join(path)!r} is not a leaf; choose a leaf")
        elif path in seen:
            add_problem(problems, [c.name, i], f"{' / '.join(path)!r} is chosen more than once")
        else:
            seen.add(path)


# One check per control type; each appends to `problems` what is wrong with the control's value.
_CHECKS: dict[str, Callable[[list[Problem], Any, object, Payload], None]] = {
    "choices": _check_choices,
    "spans": check_spans,
    "boxes": check_boxes,
    "polygons": check_polygons,
    "keypoints": check_keypoints,
    "segments": check_segments,
    "ranges": check_ranges,
    "messages": check_messages,
    "text": _check_text,
    "rating": _check_rating,
    "number": _check_number,
    "pairwise": _check_pairwise,
    "ranking": _check_ranking,
    "taxonomy": _check_taxonomy,
}


def validate_answer(
    schema: LabelSchema, answer: object, payload: Mapping[str, Any] | None = None
) -> list[Problem]:
    """Check one item's answer against `schema`; return every problem, or [] when it is valid.

    Each problem is `{"pointer": "#/entities/2/end", "detail": "..."}`: an RFC 6901 pointer (as a
    URI fragment) to the bad value in the answer, or to where a missing one belongs. With `payload`
    (the item's data) spans are checked against the length of the text in `payload[field]`,
    image shapes against the image size (`ImageControl.size_keys`), time segments against the
    duration in `payload[duration_field]`, rankings against the candidates in `payload[field]`
    and labels of a control with `labels_field` against the item's options; without it, or where
    those values are absent or unusable, the checks that need them are skipped. `null` is never a
    valid value: an optional control is left out instead.
    """
    if not isinstance(answer, Mapping):
        detail = f"an answer is an object keyed by control name, got {json_type(answer)}"
        return [{"pointer": "#", "detail": detail}]
    problems: list[Problem] = []
    for name in answer:
        if schema.control(name) is None:
            add_problem(problems, [name], f"unknown control {name!r}")
    for control in schema.controls:
        if control.name in answer:
            _CHECKS[control.type](problems, control, answer[control.name], payload)
        elif control.required:
            add_problem(problems, [control.name], "required control is missing")
    return problems
