"""Answer validation: does one item's answer fit the label schema (docs/label-schema.md)?

`validate_answer` runs on the submit hot path: plain type checks on the decoded JSON, one dispatch
per control type, a fast path for the common well-formed region, and pointers built only when
something is wrong. Every problem is reported (not just the first), each with an RFC 6901 pointer
into the answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard

from app.core.errors import json_pointer
from app.label_schema.model import (
    BoxesControl,
    ChoicesControl,
    KeypointsControl,
    LabelSchema,
    ListControl,
    NumberControl,
    PolygonsControl,
    Problem,
    RatingControl,
    SpansControl,
    TextControl,
    json_type,
)

_Path = list[str | int]
_Payload = Mapping[str, Any] | None


def _add(problems: list[Problem], path: _Path, detail: str) -> None:
    problems.append({"pointer": json_pointer(path), "detail": detail})


def _number(problems: list[Problem], path: _Path, value: object) -> float | None:
    """`value` if it is a finite JSON number (never a boolean), else report it and return None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        _add(problems, path, f"{value} is not a finite number")
        return None
    _add(problems, path, f"expected a number, got {json_type(value)}")
    return None


def _integer(problems: list[Problem], path: _Path, value: object) -> int | None:
    """`value` if it is a JSON integer (not 2.0, not a boolean), else report it and return None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    _add(problems, path, f"expected an integer, got {json_type(value)}")
    return None


def _finite(value: object) -> TypeGuard[float]:
    """Whether `value` is a finite JSON number (never a boolean); the fast paths' test."""
    if type(value) is int:
        return True
    return type(value) is float and math.isfinite(value)


def _within(value: float, extent: float | None) -> bool:
    return value >= 0 and (extent is None or value <= extent + _slack(extent))


def _image_extent(payload: _Payload, field: str | None) -> float | None:
    """The image width or height held in `payload[field]`, when it is a positive finite number."""
    if payload is None or field is None:
        return None
    value = payload.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 < value < math.inf else None


def _slack(extent: float) -> float:
    # Coordinates converted from percentages (Label Studio) carry float rounding: a shape that
    # ends a hair past the edge still counts as inside.
    return extent * 1e-9


def _check_count(
    problems: list[Problem], path: _Path, count: int, low: int, high: int, noun: str
) -> None:
    if count < low:
        _add(problems, path, f"{count} {noun} given; at least {low} needed")
    elif count > high:
        _add(problems, path, f"{count} {noun} given; at most {high} allowed")


def _check_item(
    problems: list[Problem], path: _Path, item: object, keys: tuple[str, ...]
) -> Mapping[str, Any] | None:
    """`item` if it is an object, after reporting its missing and unexpected keys."""
    if not isinstance(item, Mapping):
        _add(problems, path, f"expected an object, got {json_type(item)}")
        return None
    missing = [key for key in keys if key not in item]
    for key in missing:
        _add(problems, [*path, key], f"missing {key!r}")
    if len(item) + len(missing) > len(keys):
        for key in item:
            if key not in keys:
                _add(problems, [*path, key], f"unexpected key {key!r}")
    return item


def _check_label(
    problems: list[Problem], path: _Path, item: Mapping[str, Any], labels: frozenset[str]
) -> None:
    if "label" not in item:
        return  # already reported as missing
    label = item["label"]
    if not isinstance(label, str):
        _add(problems, [*path, "label"], f"expected a label (string), got {json_type(label)}")
    elif label not in labels:
        _add(problems, [*path, "label"], f"unknown label {label!r}")


def _check_list(
    problems: list[Problem], control: ListControl, value: object, noun: str
) -> list[Any] | None:
    if not isinstance(value, list):
        _add(problems, [control.name], f"expected an array of {noun}, got {json_type(value)}")
        return None
    _check_count(problems, [control.name], len(value), control.min, control.max, noun)
    return value


def _coordinate(
    problems: list[Problem], path: _Path, value: object, axis: str, extent: float | None
) -> float | None:
    """A point's x or y: a number ≥ 0, and ≤ the image's width or height when that is known."""
    number = _number(problems, path, value)
    if number is None:
        return None
    if number < 0:
        _add(problems, path, f"{axis} {number} is negative")
        return None
    if extent is not None and number > extent + _slack(extent):
        side = "width" if axis == "x" else "height"
        _add(problems, path, f"{axis} {number} is outside the image ({side} {extent:g})")
        return None
    return number


def _check_choices(problems: list[Problem], control: Any, value: object, payload: _Payload) -> None:
    c: ChoicesControl = control
    labels = c.label_set
    if not c.multiple:
        if not isinstance(value, str):
            _add(problems, [c.name], f"expected a label (string), got {json_type(value)}")
        elif value not in labels:
            _add(problems, [c.name], f"unknown label {value!r}")
        return
    if not isinstance(value, list):
        _add(problems, [c.name], f"expected an array of labels, got {json_type(value)}")
        return
    _check_count(problems, [c.name], len(value), c.min_count, c.max_count, "labels")
    seen: set[str] = set()
    for i, label in enumerate(value):
        if not isinstance(label, str):
            _add(problems, [c.name, i], f"expected a label (string), got {json_type(label)}")
        elif label not in labels:
            _add(problems, [c.name, i], f"unknown label {label!r}")
        elif label in seen:
            _add(problems, [c.name, i], f"label {label!r} is chosen more than once")
        else:
            seen.add(label)


_SPAN_KEYS = ("start", "end", "label")


def _check_spans(problems: list[Problem], control: Any, value: object, payload: _Payload) -> None:
    c: SpansControl = control
    spans = _check_list(problems, c, value, "spans")
    if spans is None:
        return
    text = payload.get(c.field) if payload is not None else None
    length = len(text) if isinstance(text, str) else None
    placed: list[tuple[int, int, int]] = []  # (start, end, index) of the well-formed spans
    labels = c.label_set
    for i, item in enumerate(spans):
        # Fast path for the common well-formed span; anything else gets the full explanation.
        if type(item) is dict and len(item) == 3:
            start, end, label = item.get("start"), item.get("end"), item.get("label")
            if (
                type(start) is int
                and type(end) is int
                and 0 <= start < end
                and (length is None or end <= length)
                and type(label) is str
                and label in labels
            ):
                placed.append((start, end, i))
                continue
        path: _Path = [c.name, i]
        span = _check_item(problems, path, item, _SPAN_KEYS)
        if span is None:
            continue
        start = _integer(problems, [*path, "start"], span["start"]) if "start" in span else None
        end = _integer(problems, [*path, "end"], span["end"]) if "end" in span else None
        if start is not None and start < 0:
            _add(problems, [*path, "start"], f"start {start} is negative")
            start = None
        if start is not None and length is not None and start >= length:
            _add(
                problems,
                [*path, "start"],
                f"start {start} is past the end of the text ({length} characters)",
            )
            start = None
        if end is not None and length is not None and end > length:
            _add(
                problems,
                [*path, "end"],
                f"end {end} is past the end of the text ({length} characters)",
            )
            end = None
        if start is not None and end is not None:
            if end <= start:
                _add(problems, [*path, "end"], f"end {end} must be greater than start {start}")
            else:
                placed.append((start, end, i))
        _check_label(problems, path, span, c.label_set)
    if not c.allow_overlap and len(placed) > 1:
        _check_overlaps(problems, c.name, placed)


def _check_overlaps(problems: list[Problem], name: str, placed: list[tuple[int, int, int]]) -> None:
    """Report each span that starts before an earlier-starting span has ended (end exclusive)."""
    placed.sort()
    overlaps: list[tuple[int, int]] = []  # (index of the span, index of one it overlaps)
    reach_end, reach_index = placed[0][1], placed[0][2]
    for start, end, index in placed[1:]:
        if start < reach_end:
            overlaps.append((index, reach_index))
        if end > reach_end:
            reach_end, reach_index = end, index
    for index, other in sorted(overlaps):
        _add(problems, [name, index], f"overlaps span {other}; this control forbids overlaps")


_BOX_KEYS = ("x", "y", "width", "height", "label")


def _check_boxes(problems: list[Problem], control: Any, value: object, payload: _Payload) -> None:
    c: BoxesControl = control
    boxes = _check_list(problems, c, value, "boxes")
    if boxes is None:
        return
    image_w = _image_extent(payload, c.width_field)
    image_h = _image_extent(payload, c.height_field)
    labels = c.label_set
    for i, item in enumerate(boxes):
        if type(item) is dict and len(item) == 5:
            x, y, w, h = item.get("x"), item.get("y"), item.get("width"), item.get("height")
            label = item.get("label")
            if (
                _finite(x)
                and _finite(y)
                and _finite(w)
                and _finite(h)
                and w > 0
                and h > 0
                and (image_w is None or x < image_w)
                and (image_h is None or y < image_h)
                and _within(x + w, image_w)
                and _within(y + h, image_h)
                and x >= 0
                and y >= 0
                and type(label) is str
                and label in labels
            ):
                continue
        path: _Path = [c.name, i]
        box = _check_item(problems, path, item, _BOX_KEYS)
        if box is None:
            continue
        _check_box_axis(problems, path, box, "x", "width", image_w)
        _check_box_axis(problems, path, box, "y", "height", image_h)
        _check_label(problems, path, box, c.label_set)


def _check_box_axis(
    problems: list[Problem],
    path: _Path,
    box: Mapping[str, Any],
    origin: str,
    size: str,
    extent: float | None,
) -> None:
    """One axis of a box: `origin` (x or y) ≥ 0, `size` > 0, origin + size ≤ the image extent."""
    start = (
        _coordinate(problems, [*path, origin], box[origin], origin, None) if origin in box else None
    )
    length = _number(problems, [*path, size], box[size]) if size in box else None
    if length is not None and length <= 0:
        _add(problems, [*path, size], f"{size} must be greater than 0, got {length}")
        length = None
    if extent is None or start is None:
        return
    if start >= extent:
        side = "width" if origin == "x" else "height"
        _add(
            problems, [*path, origin], f"{origin} {start} is outside the image ({side} {extent:g})"
        )
    elif length is not None and start + length > extent + _slack(extent):
        _add(
            problems,
            [*path, size],
            f"the box ends past the edge of the image: {origin} + {size} = "
            f"{start + length:g} > {extent:g}",
        )


_POLYGON_KEYS = ("points", "label")


def _check_polygons(
    problems: list[Problem], control: Any, value: object, payload: _Payload
) -> None:
    c: PolygonsControl = control
    polygons = _check_list(problems, c, value, "polygons")
    if polygons is None:
        return
    image_w = _image_extent(payload, c.width_field)
    image_h = _image_extent(payload, c.height_field)
    labels = c.label_set
    for i, item in enumerate(polygons):
        if type(item) is dict and len(item) == 2:
            points, label = item.get("points"), item.get("label")
            if (
                type(label) is str
                and label in labels
                and type(points) is list
                and c.min_points <= len(points) <= c.max_points
                and all(_point_fits(point, image_w, image_h) for point in points)
            ):
                continue
        path: _Path = [c.name, i]
        polygon = _check_item(problems, path, item, _POLYGON_KEYS)
        if polygon is None:
            continue
        if "points" in polygon:
            _check_points(problems, [*path, "points"], polygon["points"], c, image_w, image_h)
        _check_label(problems, path, polygon, c.label_set)


def _point_fits(point: object, image_w: float | None, image_h: float | None) -> bool:
    if type(point) is not list or len(point) != 2:
        return False
    x, y = point
    return _finite(x) and _finite(y) and _within(x, image_w) and _within(y, image_h)


def _check_points(
    problems: list[Problem],
    path: _Path,
    points: object,
    control: PolygonsControl,
    image_w: float | None,
    image_h: float | None,
) -> None:
    if not isinstance(points, list):
        _add(problems, path, f"expected an array of [x, y] points, got {json_type(points)}")
        return
    _check_count(problems, path, len(points), control.min_points, control.max_points, "points")
    for j, point in enumerate(points):
        if not isinstance(point, list) or len(point) != 2:
            got = f"an array of {len(point)}" if isinstance(point, list) else json_type(point)
            _add(problems, [*path, j], f"expected an [x, y] pair, got {got}")
            continue
        _coordinate(problems, [*path, j, 0], point[0], "x", image_w)
        _coordinate(problems, [*path, j, 1], point[1], "y", image_h)


_KEYPOINT_KEYS = ("x", "y", "label")


def _check_keypoints(
    problems: list[Problem], control: Any, value: object, payload: _Payload
) -> None:
    c: KeypointsControl = control
    keypoints = _check_list(problems, c, value, "keypoints")
    if keypoints is None:
        return
    image_w = _image_extent(payload, c.width_field)
    image_h = _image_extent(payload, c.height_field)
    labels = c.label_set
    for i, item in enumerate(keypoints):
        if type(item) is dict and len(item) == 3:
            x, y, label = item.get("x"), item.get("y"), item.get("label")
            if (
                _finite(x)
                and _finite(y)
                and _within(x, image_w)
                and _within(y, image_h)
                and type(label) is str
                and label in labels
            ):
                continue
        path: _Path = [c.name, i]
        point = _check_item(problems, path, item, _KEYPOINT_KEYS)
        if point is None:
            continue
        if "x" in point:
            _coordinate(problems, [*path, "x"], point["x"], "x", image_w)
        if "y" in point:
            _coordinate(problems, [*path, "y"], point["y"], "y", image_h)
        _check_label(problems, path, point, c.label_set)


def _check_text(problems: list[Problem], control: Any, value: object, payload: _Payload) -> None:
    c: TextControl = control
    if not isinstance(value, str):
        _add(problems, [c.name], f"expected a string, got {json_type(value)}")
        return
    _check_count(problems, [c.name], len(value), c.min_chars, c.max_length, "characters")


def _check_rating(problems: list[Problem], control: Any, value: object, payload: _Payload) -> None:
    c: RatingControl = control
    rating = _integer(problems, [c.name], value)
    if rating is not None and not 1 <= rating <= c.max:
        _add(problems, [c.name], f"rating {rating} is outside 1..{c.max}")


def _check_number(problems: list[Problem], control: Any, value: object, payload: _Payload) -> None:
    c: NumberControl = control
    number = (
        _integer(problems, [c.name], value) if c.integer else _number(problems, [c.name], value)
    )
    if number is None:
        return
    if c.min is not None and number < c.min:
        _add(problems, [c.name], f"{number} is below the minimum {c.min:g}")
    elif c.max is not None and number > c.max:
        _add(problems, [c.name], f"{number} is above the maximum {c.max:g}")


# One check per control type; each appends to `problems` what is wrong with the control's value.
_CHECKS: dict[str, Callable[[list[Problem], Any, object, _Payload], None]] = {
    "choices": _check_choices,
    "spans": _check_spans,
    "boxes": _check_boxes,
    "polygons": _check_polygons,
    "keypoints": _check_keypoints,
    "text": _check_text,
    "rating": _check_rating,
    "number": _check_number,
}


def validate_answer(
    schema: LabelSchema, answer: object, payload: Mapping[str, Any] | None = None
) -> list[Problem]:
    """Check one item's answer against `schema`; return every problem, or [] when it is valid.

    Each problem is `{"pointer": "#/entities/2/end", "detail": "..."}`: an RFC 6901 pointer (as a
    URI fragment) to the bad value in the answer, or to where a missing one belongs. With `payload`
    (the item's data) spans are checked against the length of the text in `payload[field]`, and
    image shapes against the size in `payload[width_field]` / `payload[height_field]`; without it,
    or where those values are absent or unusable (not a positive number), the checks that need
    them are skipped. `null` is never a valid value: an optional control is left out instead.
    """
    if not isinstance(answer, Mapping):
        detail = f"an answer is an object keyed by control name, got {json_type(answer)}"
        return [{"pointer": "#", "detail": detail}]
    problems: list[Problem] = []
    for name in answer:
        if schema.control(name) is None:
            _add(problems, [name], f"unknown control {name!r}")
    for control in schema.controls:
        if control.name in answer:
            _CHECKS[control.type](problems, control, answer[control.name], payload)
        elif control.required:
            _add(problems, [control.name], "required control is missing")
    return problems
