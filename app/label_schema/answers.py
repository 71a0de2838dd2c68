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
from app.label_schema.region_controls import (
    Attribute,
    BoxesControl,
    ChoicesAttribute,
    ImageControl,
    KeypointsControl,
    ListControl,
    PolygonsControl,
    RatingAttribute,
    SegmentsControl,
    SpansControl,
    TextAttribute,
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


def _extent(payload: _Payload, field: str | None) -> float | None:
    """The extent held in `payload[field]` (an image's width or height, a media's duration in
    seconds), when it is a positive finite number."""
    if payload is None or field is None:
        return None
    value = payload.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 < value < math.inf else None


def _image_size(payload: _Payload, control: ImageControl) -> tuple[float | None, float | None]:
    width_key, height_key = control.size_keys
    return _extent(payload, width_key), _extent(payload, height_key)


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
    problems: list[Problem],
    path: _Path,
    item: object,
    keys: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> Mapping[str, Any] | None:
    """`item` if it is an object, after reporting its missing and unexpected keys (`optional`
    keys may be left out)."""
    if not isinstance(item, Mapping):
        _add(problems, path, f"expected an object, got {json_type(item)}")
        return None
    missing = [key for key in keys if key not in item]
    for key in missing:
        _add(problems, [*path, key], f"missing {key!r}")
    if len(item) + len(missing) > len(keys):
        for key in item:
            if key not in keys and key not in optional:
                _add(problems, [*path, key], f"unexpected key {key!r}")
    return item


def _check_region(
    problems: list[Problem], path: _Path, item: object, keys: tuple[str, ...], control: ListControl
) -> Mapping[str, Any] | None:
    """A region's keys and, when the control asks per-region questions, its `attributes`."""
    if not control.attributes:
        return _check_item(problems, path, item, keys)
    required = any(a.required for a in control.attributes)
    region = _check_item(
        problems,
        path,
        item,
        (*keys, "attributes") if required else keys,
        () if required else ("attributes",),
    )
    if region is not None and "attributes" in region:
        _check_attributes(problems, [*path, "attributes"], region["attributes"], control)
    return region


def _check_attributes(
    problems: list[Problem], path: _Path, value: object, control: ListControl
) -> None:
    if not isinstance(value, Mapping):
        _add(problems, path, f"expected an object of attributes, got {json_type(value)}")
        return
    for name in value:
        if control.attribute(name) is None:
            _add(problems, [*path, name], f"unknown attribute {name!r}")
    for attribute in control.attributes:
        if attribute.name in value:
            _check_attribute(problems, [*path, attribute.name], attribute, value[attribute.name])
        elif attribute.required:
            _add(problems, [*path, attribute.name], "required attribute is missing")


def _check_attribute(
    problems: list[Problem], path: _Path, attribute: Attribute, value: object
) -> None:
    if isinstance(attribute, ChoicesAttribute):
        labels = frozenset(attribute.labels)
        if not attribute.multiple:
            if not isinstance(value, str):
                _add(problems, path, f"expected a label (string), got {json_type(value)}")
            elif value not in labels:
                _add(problems, path, f"unknown label {value!r}")
            return
        if not isinstance(value, list):
            _add(problems, path, f"expected an array of labels, got {json_type(value)}")
            return
        low = 1 if attribute.required else 0
        _check_count(problems, path, len(value), low, len(labels), "labels")
        _check_label_list(problems, path, value, labels)
    elif isinstance(attribute, TextAttribute):
        if not isinstance(value, str):
            _add(problems, path, f"expected a string, got {json_type(value)}")
        else:
            low = 1 if attribute.required else 0
            _check_count(problems, path, len(value), low, attribute.max_length, "characters")
    else:
        _check_rating_value(problems, path, attribute, value)


def _check_label_list(
    problems: list[Problem], path: _Path, value: list[Any], labels: frozenset[str] | None
) -> None:
    """Each entry a known label (any string when `labels` is None), none repeated."""
    seen: set[str] = set()
    for i, label in enumerate(value):
        if not isinstance(label, str):
            _add(problems, [*path, i], f"expected a label (string), got {json_type(label)}")
        elif labels is not None and label not in labels:
            _add(problems, [*path, i], f"unknown label {label!r}")
        elif label in seen:
            _add(problems, [*path, i], f"label {label!r} is chosen more than once")
        else:
            seen.add(label)


def _check_label(
    problems: list[Problem], path: _Path, item: Mapping[str, Any], labels: frozenset[str] | None
) -> None:
    if "label" not in item:
        return  # already reported as missing
    label = item["label"]
    if not isinstance(label, str):
        _add(problems, [*path, "label"], f"expected a label (string), got {json_type(label)}")
    elif labels is not None and label not in labels:
        _add(problems, [*path, "label"], f"unknown label {label!r}")


def _check_label_usage(problems: list[Problem], control: ListControl, regions: list[Any]) -> None:
    """`max_per_label` and `label_limits`: how often each label may be used in one answer."""
    if control.max_per_label is None and not control.label_limits:
        return
    counts: dict[str, int] = {}
    for region in regions:
        label = region.get("label") if isinstance(region, Mapping) else None
        if isinstance(label, str):
            counts[label] = counts.get(label, 0) + 1
    for label, count in counts.items():
        limit = control.label_limits.get(label, control.max_per_label)
        if limit is not None and count > limit:
            _add(
                problems,
                [control.name],
                f"label {label!r} is used {count} times; at most {limit} allowed",
            )


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
    labels = c.labels_for(payload)
    if not c.multiple:
        if not isinstance(value, str):
            _add(problems, [c.name], f"expected a label (string), got {json_type(value)}")
        elif labels is not None and value not in labels:
            _add(problems, [c.name], f"unknown label {value!r}")
        return
    if not isinstance(value, list):
        _add(problems, [c.name], f"expected an array of labels, got {json_type(value)}")
        return
    _check_count(problems, [c.name], len(value), c.min_count, c.max_count, "labels")
    _check_label_list(problems, [c.name], value, labels)


_SPAN_KEYS = ("start", "end", "label")


def _check_spans(problems: list[Problem], control: Any, value: object, payload: _Payload) -> None:
    c: SpansControl = control
    spans = _check_list(problems, c, value, "spans")
    if spans is None:
        return
    text = payload.get(c.field) if payload is not None else None
    length = len(text) if isinstance(text, str) else None
    placed: list[tuple[int, int, int]] = []  # (start, end, index) of the well-formed spans
    labels = c.labels_for(payload)
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
                and (labels is None or label in labels)
                and not c.attributes
            ):
                placed.append((start, end, i))
                continue
        path: _Path = [c.name, i]
        span = _check_region(problems, path, item, _SPAN_KEYS, c)
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
        _check_label(problems, path, span, labels)
    _check_label_usage(problems, c, spans)
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
    image_w, image_h = _image_size(payload, c)
    labels = c.labels_for(payload)
    fast = not c.attributes
    for i, item in enumerate(boxes):
        if fast and type(item) is dict and len(item) == 5:
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
                and (labels is None or label in labels)
            ):
                continue
        path: _Path = [c.name, i]
        box = _check_region(problems, path, item, _BOX_KEYS, c)
        if box is None:
            continue
        _check_box_axis(problems, path, box, "x", "width", image_w)
        _check_box_axis(problems, path, box, "y", "height", image_h)
        _check_label(problems, path, box, labels)
    _check_label_usage(problems, c, boxes)


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
    image_w, image_h = _image_size(payload, c)
    labels = c.labels_for(payload)
    fast = not c.attributes
    for i, item in enumerate(polygons):
        if fast and type(item) is dict and len(item) == 2:
            points, label = item.get("points"), item.get("label")
            if (
                type(label) is str
                and (labels is None or label in labels)
                and type(points) is list
                and c.min_points <= len(points) <= c.max_points
                and all(_point_fits(point, image_w, image_h) for point in points)
            ):
                continue
        path: _Path = [c.name, i]
        polygon = _check_region(problems, path, item, _POLYGON_KEYS, c)
        if polygon is None:
            continue
        if "points" in polygon:
            _check_points(problems, [*path, "points"], polygon["points"], c, image_w, image_h)
        _check_label(problems, path, polygon, labels)
    _check_label_usage(problems, c, polygons)


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
    image_w, image_h = _image_size(payload, c)
    labels = c.labels_for(payload)
    fast = not c.attributes
    for i, item in enumerate(keypoints):
        if fast and type(item) is dict and len(item) == 3:
            x, y, label = item.get("x"), item.get("y"), item.get("label")
            if (
                _finite(x)
                and _finite(y)
                and _within(x, image_w)
                and _within(y, image_h)
                and type(label) is str
                and (labels is None or label in labels)
            ):
                continue
        path: _Path = [c.name, i]
        point = _check_region(problems, path, item, _KEYPOINT_KEYS, c)
        if point is None:
            continue
        if "x" in point:
            _coordinate(problems, [*path, "x"], point["x"], "x", image_w)
        if "y" in point:
            _coordinate(problems, [*path, "y"], point["y"], "y", image_h)
        _check_label(problems, path, point, labels)
    _check_label_usage(problems, c, keypoints)


_SEGMENT_KEYS = ("start", "end", "label")


def _check_segments(
    problems: list[Problem], control: Any, value: object, payload: _Payload
) -> None:
    c: SegmentsControl = control
    segments = _check_list(problems, c, value, "segments")
    if segments is None:
        return
    duration = _extent(payload, c.duration_field)
    labels = c.labels_for(payload)
    for i, item in enumerate(segments):
        path: _Path = [c.name, i]
        segment = _check_region(problems, path, item, _SEGMENT_KEYS, c)
        if segment is None:
            continue
        start = (
            _number(problems, [*path, "start"], segment["start"]) if "start" in segment else None
        )
        end = _number(problems, [*path, "end"], segment["end"]) if "end" in segment else None
        if start is not None and start < 0:
            _add(problems, [*path, "start"], f"start {start} is negative")
            start = None
        if end is not None and duration is not None and end > duration + _slack(duration):
            _add(
                problems,
                [*path, "end"],
                f"end {end} is past the end of the media ({duration:g} seconds)",
            )
        elif start is not None and end is not None and end <= start:
            _add(problems, [*path, "end"], f"end {end} must be greater than start {start}")
        _check_label(problems, path, segment, labels)
    _check_label_usage(problems, c, segments)


def _check_text(problems: list[Problem], control: Any, value: object, payload: _Payload) -> None:
    c: TextControl = control
    if not isinstance(value, str):
        _add(problems, [c.name], f"expected a string, got {json_type(value)}")
        return
    _check_count(problems, [c.name], len(value), c.min_chars, c.max_length, "characters")


def _check_rating(problems: list[Problem], control: Any, value: object, payload: _Payload) -> None:
    c: RatingControl = control
    _check_rating_value(problems, [c.name], c, value)


def _check_rating_value(
    problems: list[Problem], path: _Path, control: RatingControl | RatingAttribute, value: object
) -> None:
    rating = _integer(problems, path, value)
    if rating is not None and not 1 <= rating <= control.max:
        _add(problems, path, f"rating {rating} is outside 1..{control.max}")


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


def _check_pairwise(
    problems: list[Problem], control: Any, value: object, payload: _Payload
) -> None:
    c: PairwiseControl = control
    if value not in ("left", "right") or not isinstance(value, str):
        _add(problems, [c.name], f'expected "left" or "right", got {_shown(value)}')


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else json_type(value)


def _check_ranking(problems: list[Problem], control: Any, value: object, payload: _Payload) -> None:
    c: RankingControl = control
    if not isinstance(value, list):
        _add(problems, [c.name], f"expected an array of candidate ids, got {json_type(value)}")
        return
    known = candidate_ids(payload.get(c.field)) if payload is not None else None
    candidates = frozenset(known) if known is not None else None
    seen: set[str] = set()
    for i, ident in enumerate(value):
        if not isinstance(ident, str):
            _add(problems, [c.name, i], f"expected a candidate id (string), got {json_type(ident)}")
        elif candidates is not None and ident not in candidates:
            _add(problems, [c.name, i], f"unknown candidate {ident!r}")
        elif ident in seen:
            _add(problems, [c.name, i], f"candidate {ident!r} is ranked more than once")
        else:
            seen.add(ident)
    if candidates is not None:
        missing = [ident for ident in known or () if ident not in seen]
        if missing:
            shown = ", ".join(map(repr, missing[:10])) + (", ..." if len(missing) > 10 else "")
            _add(problems, [c.name], f"every candidate must be ranked; missing: {shown}")
    elif not value:
        _add(problems, [c.name], "0 candidates given; rank every candidate")


def _check_taxonomy(
    problems: list[Problem], control: Any, value: object, payload: _Payload
) -> None:
    c: TaxonomyControl = control
    if not isinstance(value, list):
        _add(problems, [c.name], f"expected an array of paths, got {json_type(value)}")
        return
    _check_count(problems, [c.name], len(value), c.min_count, c.max_count, "paths")
    tree = c.paths
    seen: set[tuple[str, ...]] = set()
    for i, path_value in enumerate(value):
        if not isinstance(path_value, list) or not path_value:
            _add(
                problems,
                [c.name, i],
                "expected a path: a non-empty array of labels from a root down, "
                f"got {json_type(path_value) if path_value != [] else 'an empty array'}",
            )
            continue
        if not all(isinstance(step, str) for step in path_value):
            _add(problems, [c.name, i], "every step of a path is a label (string)")
            continue
        path = tuple(path_value)
        leaf = tree.get(path)
        if leaf is None:
            _add(problems, [c.name, i], f"{' / '.join(path)!r} is not a path of the taxonomy")
        elif c.leafs_only and not leaf:
            _add(problems, [c.name, i], f"{' / '.join(path)!r} is not a leaf; choose a leaf")
        elif path in seen:
            _add(problems, [c.name, i], f"{' / '.join(path)!r} is chosen more than once")
        else:
            seen.add(path)


# One check per control type; each appends to `problems` what is wrong with the control's value.
_CHECKS: dict[str, Callable[[list[Problem], Any, object, _Payload], None]] = {
    "choices": _check_choices,
    "spans": _check_spans,
    "boxes": _check_boxes,
    "polygons": _check_polygons,
    "keypoints": _check_keypoints,
    "segments": _check_segments,
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
            _add(problems, [name], f"unknown control {name!r}")
    for control in schema.controls:
        if control.name in answer:
            _CHECKS[control.type](problems, control, answer[control.name], payload)
        elif control.required:
            _add(problems, [control.name], "required control is missing")
    return problems
