"""What every answer check is built from: reporting a problem at a pointer into the answer, and
reading numbers, counts, objects, label lists and ratings the same way for every control (the
whole-item checks in `answers` and the region checks in `region_answers`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeGuard

from app.core.errors import json_pointer
from app.label_schema.item_controls import RatingControl
from app.label_schema.model import Problem, json_type
from app.label_schema.region_controls import RatingAttribute

AnswerPath = list[str | int]  # where in the answer: keys and indexes, made a pointer on report
Payload = Mapping[str, Any] | None  # the item's data, when the caller has it


def add_problem(problems: list[Problem], path: AnswerPath, detail: str) -> None:
    """Report `detail` at `path` (an RFC 6901 pointer into the answer)."""
    problems.append({"pointer": json_pointer(path), "detail": detail})


def read_number(problems: list[Problem], path: AnswerPath, value: object) -> float | None:
    """`value` if it is a finite JSON number (never a boolean), else report it and return None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        add_problem(problems, path, f"{value} is not a finite number")
        return None
    add_problem(problems, path, f"expected a number, got {json_type(value)}")
    return None


def read_integer(problems: list[Problem], path: AnswerPath, value: object) -> int | None:
    """`value` if it is a JSON integer (not 2.0, not a boolean), else report it and return None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    add_problem(problems, path, f"expected an integer, got {json_type(value)}")
    return None


def is_finite(value: object) -> TypeGuard[float]:
    """Whether `value` is a finite JSON number (never a boolean); the fast paths' test."""
    if type(value) is int:
        return True
    return type(value) is float and math.isfinite(value)


def check_count(
    problems: list[Problem], path: AnswerPath, count: int, low: int, high: int, noun: str
) -> None:
    if count < low:
        add_problem(problems, path, f"{count} {noun} given; at least {low} needed")
    elif count > high:
        add_problem(problems, path, f"{count} {noun} given; at most {high} allowed")


def check_object(
    problems: list[Problem],
    path: AnswerPath,
    item: object,
    keys: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> Mapping[str, Any] | None:
    """`item` if it is an object, after reporting its missing and unexpected keys (`optional`
    keys may be left out)."""
    if not isinstance(item, Mapping):
        add_problem(problems, path, f"expected an object, got {json_type(item)}")
        return None
    missing = [key for key in keys if key not in item]
    for key in missing:
        add_problem(problems, [*path, key], f"missing {key!r}")
    if len(item) + len(missing) > len(keys):
        for key in item:
            if key not in keys and key not in optional:
                add_problem(problems, [*path, key], f"unexpected key {key!r}")
    return item


def check_label_list(
    problems: list[Problem], path: AnswerPath, value: list[Any], labels: frozenset[str] | None
) -> None:
    """Each entry a known label (any string when `labels` is None), none repeated."""
    seen: set[str] = set()
    for i, label in enumerate(value):
        if not isinstance(label, str):
            add_problem(problems, [*path, i], f"expected a label (string), got {json_type(label)}")
        elif labels is not None and label not in labels:
            add_problem(problems, [*path, i], f"unknown label {label!r}")
        elif label in seen:
            add_problem(problems, [*path, i], f"label {label!r} is chosen more than once")
        else:
            seen.add(label)


def check_rating_value(
    problems: list[Problem],
    path: AnswerPath,
    control: RatingControl | RatingAttribute,
    value: object,
) -> None:
    rating = read_integer(problems, path, value)
    if rating is not None and not 1 <= rating <= control.max:
        add_problem(problems, path, f"rating {rating} is outside 1..{control.max}")
