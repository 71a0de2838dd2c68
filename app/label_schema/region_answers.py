"""Answers of the region controls (spans, boxes, polygons, keypoints, time segments): each
region's keys, coordinates and label, its per-region attributes, how often each label is used,
and overlaps where a control forbids them.

On the submit hot path: each check has a fast path for the common well-formed region and builds
pointers only when something is wrong (`answers.validate_answer` dispatches here).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from app.label_schema.answer_checks import (
    AnswerPath,
    Payload,
    add_problem,
    check_count,
    check_label_list,
    check_object,
    check_rating_value,
    is_finite,
    read_integer,
    read_number,
)
from app.label_schema.model import Problem, json_type
from app.label_schema.region_controls import (
    Attribute,
    BoxesControl,
    ChoicesAttribute,
    ImageControl,
    KeypointsControl,
    ListControl,
    MessagesControl,
    PolygonsControl,
    RangesControl,
    SegmentsControl,
    SpansControl,
    TextAttribute,
)


def _within(value: float, extent: float | None) -> bool:
    return value >= 0 and (extent is None or value <= extent + _slack(extent))


def _extent(payload: Payload, field: str | None) -> float | None:
    """The extent held in `payload[field]` (an image's width or height, a media's duration in
    seconds), when it is a positive finite number."""
    if payload is None or field is None:
        return None
    value = payload.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 < value < math.inf else None


def _image_size(payload: Payload, control: ImageControl) -> tuple[float | None, float | None]:
    width_key, height_key = control.size_keys
    return _extent(payload, width_key), _extent(payload, height_key)


def _slack(extent: float) -> float:
    # Coordinates converted from percentages (Label Studio) carry float rounding: a shape that
    # ends a hair past the edge still counts as inside.
    return extent * 1e-9


def _check_region(
    problems: list[Problem],
    path: AnswerPath,
    item: object,
    keys: tuple[str, ...],
    control: ListControl,
) -> Mapping[str, Any] | None:
    """A region's keys and, when the control asks per-region questions, its `attributes`."""
    if not control.attributes:
        return check_object(problems, path, item, keys)
    label = item.get("label") if isinstance(item, Mapping) else None
    # Attributes asked only of other labels (`when_labels`) are not required of this region.
    required = any(a.required and a.applies_to(label) for a in control.attributes)
    region = check_object(
        problems,
        path,
        item,
        (*keys, "attributes") if required else keys,
        () if required else ("attributes",),
    )
    if region is not None and "attributes" in region:
        _check_attributes(problems, [*path, "attributes"], region["attributes"], control, label)
    return region


def _check_attributes(
    problems: list[Problem],
    path: AnswerPath,
    value: object,
    control: ListControl,
    label: object = None,
) -> None:
    if not isinstance(value, Mapping):
        add_problem(problems, path, f"expected an object of attributes, got {json_type(value)}")
        return
    for name in value:
        if control.attribute(name) is None:
            add_problem(problems, [*path, name], f"unknown attribute {name!r}")
    for attribute in control.attributes:
        if not attribute.applies_to(label):
            if attribute.name in value:
                shown = ", ".join(map(repr, attribute.when_labels or ()))
                add_problem(
                    problems,
                    [*path, attribute.name],
                    f"attribute {attribute.name!r} is asked only of regions labelled {shown}",
                )
        elif attribute.name in value:
            _check_attribute(problems, [*path, attribute.name], attribute, value[attribute.name])
        elif attribute.required:
            add_problem(problems, [*path, attribute.name], "required attribute is missing")


def _check_attribute(
    problems: list[Problem], path: AnswerPath, attribute: Attribute, value: object
) -> None:
    if isinstance(attribute, ChoicesAttribute):
        labels = frozenset(attribute.labels)
        if not attribute.multiple:
            if not isinstance(value, str):
                add_problem(problems, path, f"expected a label (string), got {json_type(value)}")
            elif value not in labels:
                add_problem(problems, path, f"unknown label {value!r}")
            return
        if not isinstance(value, list):
            add_problem(problems, path, f"expected an array of labels, got {json_type(value)}")
            return
        low = 1 if attribute.required else 0
        check_count(problems, path, len(value), low, len(labels), "labels")
        check_label_list(problems, path, value, labels)
    elif isinstance(attribute, TextAttribute):
        if not isinstance(value, str):
            add_problem(problems, path, f"expected a string, got {json_type(value)}")
        else:
            low = 1 if attribute.required else 0
            check_count(problems, path, len(value), low, attribute.max_length, "characters")
    else:
        check_rating_value(problems, path, attribute, value)


def _check_label(
    problems: list[Problem],
    path: AnswerPath,
    item: Mapping[str, Any],
    labels: frozenset[str] | None,
) -> None:
    if "label" not in item:
        return  # already reported as missing
    label = item["label"]
    if not isinstance(label, str):
        add_problem(
            problems, [*path, "label"], f"expected a label (string), got {json_type(label)}"
        )
    elif labels is not None and label not in labels:
        add_problem(problems, [*path, "label"], f"unknown label {label!r}")


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
            add_problem(
                problems,
                [control.name],
                f"label {label!r} is used {count} times; at most {limit} allowed",
            )


def _check_list(
    problems: list[Problem], control: ListControl, value: object, noun: str
) -> list[Any] | None:
    if not isinstance(value, list):
        add_problem(
            problems, [control.name], f"expected an array of {noun}, got {json_type(value)}"
        )
        return None
    check_count(problems, [control.name], len(value), control.min, control.max, noun)
    return value


def _coordinate(
    problems: list[Problem], path: AnswerPath, value: object, axis: str, extent: float | None
) -> float | None:
    """A point's x or y: a number ≥ 0, and ≤ the image's width or height when that is known."""
    number = read_number(problems, path, value)
    if number is None:
        return None
    if number < 0:
        add_problem(problems, path, f"{axis} {number} is negative")
        return None
    if extent is not None and number > extent + _slack(extent):
        side = "width" if axis == "x" else "height"
        add_problem(problems, path, f"{axis} {number} is outside the image ({side} {extent:g})")
        return None
    return number


_SPAN_KEYS = ("start", "end", "label")


def check_spans(problems: list[Problem], control: Any, value: object, payload: Payload) -> None:
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
        path: AnswerPath = [c.name, i]
        span = _check_region(problems, path, item, _SPAN_KEYS, c)
        if span is None:
            continue
        start = read_integer(problems, [*path, "start"], span["start"]) if "start" in span else None
        end = read_integer(problems, [*path, "end"], span["end"]) if "end" in span else None
        if start is not None and start < 0:
            add_problem(problems, [*path, "start"], f"start {start} is negative")
            start = None
        if start is not None and length is not None and start >= length:
            add_problem(
                problems,
                [*path, "start"],
                f"start {start} is past the end of the text ({length} characters)",
            )
            start = None
        if end is not None and length is not None and end > length:
            add_problem(
                problems,
                [*path, "end"],
                f"end {end} is past the end of the text ({length} characters)",
            )
            end = None
        if start is not None and end is not None:
            if end <= start:
                add_problem(
                    problems, [*path, "end"], f"end {end} must be greater than start {start}"
                )
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
        add_problem(
            problems, [name, index], f"overlaps span {other}; this control forbids overlaps"
        )


_BOX_KEYS = ("x", "y", "width", "height", "label")


def check_boxes(problems: list[Problem], control: Any, value: object, payload: Payload) -> None:
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
                is_finite(x)
                and is_finite(y)
                and is_finite(w)
                and is_finite(h)
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
        path: AnswerPath = [c.name, i]
        box = _check_region(problems, path, item, _BOX_KEYS, c)
        if box is None:
            continue
        _check_box_axis(problems, path, box, "x", "width", image_w)
        _check_box_axis(problems, path, box, "y", "height", image_h)
        _check_label(problems, path, box, labels)
    _check_label_usage(problems, c, boxes)


def _check_box_axis(
    problems: list[Problem],
    path: AnswerPath,
    box: Mapping[str, Any],
    origin: str,
    size: str,
    extent: float | None,
) -> None:
    """One axis of a box: `origin` (x or y) ≥ 0, `size` > 0, origin + size ≤ the image extent."""
    start = (
        _coordinate(problems, [*path, origin], box[origin], origin, None) if origin in box else None
    )
    length = read_number(problems, [*path, size], box[size]) if size in box else None
    if length is not None and length <= 0:
        add_problem(problems, [*path, size], f"{size} must be greater than 0, got {length}")
        length = None
    if extent is None or start is None:
        return
    if start >= extent:
        side = "width" if origin == "x" else "height"
        add_problem(
            problems, [*path, origin], f"{origin} {start} is outside the image ({side} {extent:g})"
        )
    elif length is not None and start + length > extent + _slack(extent):
        add_problem(
            problems,
            [*path, size],
            f"the box ends past the edge of the image: {origin} + {size} = "
            f"{start + length:g} > {extent:g}",
        )


_POLYGON_KEYS = ("points", "label")


def check_polygons(problems: list[Problem], control: Any, value: object, payload: Payload) -> None:
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
        path: AnswerPath = [c.name, i]
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
    return is_finite(x) and is_finite(y) and _within(x, image_w) and _within(y, image_h)


def _check_points(
    problems: list[Problem],
    path: AnswerPath,
    points: object,
    control: PolygonsControl,
    image_w: float | None,
    image_h: float | None,
) -> None:
    if not isinstance(points, list):
        add_problem(problems, path, f"expected an array of [x, y] points, got {json_type(points)}")
        return
    check_count(problems, path, len(points), control.min_points, control.max_points, "points")
    for j, point in enumerate(points):
        if not isinstance(point, list) or len(point) != 2:
            got = f"an array of {len(point)}" if isinstance(point, list) else json_type(point)
            add_problem(problems, [*path, j], f"expected an [x, y] pair, got {got}")
            continue
        _coordinate(problems, [*path, j, 0], point[0], "x", image_w)
        _coordinate(problems, [*path, j, 1], point[1], "y", image_h)


_KEYPOINT_KEYS = ("x", "y", "label")


def check_keypoints(problems: list[Problem], control: Any, value: object, payload: Payload) -> None:
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
                is_finite(x)
                and is_finite(y)
                and _within(x, image_w)
                and _within(y, image_h)
                and type(label) is str
                and (labels is None or label in labels)
            ):
                continue
        path: AnswerPath = [c.name, i]
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


def check_segments(problems: list[Problem], control: Any, value: object, payload: Payload) -> None:
    c: SegmentsControl = control
    segments = _check_list(problems, c, value, "segments")
    if segments is None:
        return
    duration = _extent(payload, c.duration_field)
    labels = c.labels_for(payload)
    for i, item in enumerate(segments):
        path: AnswerPath = [c.name, i]
        segment = _check_region(problems, path, item, _SEGMENT_KEYS, c)
        if segment is None:
            continue
        start = (
            read_number(problems, [*path, "start"], segment["start"])
            if "start" in segment
            else None
        )
        end = read_number(problems, [*path, "end"], segment["end"]) if "end" in segment else None
        if start is not None and start < 0:
            add_problem(problems, [*path, "start"], f"start {start} is negative")
            start = None
        if end is not None and duration is not None and end > duration + _slack(duration):
            add_problem(
                problems,
                [*path, "end"],
                f"end {end} is past the end of the media ({duration:g} seconds)",
            )
        elif start is not None and end is not None and end < start:
            add_problem(problems, [*path, "end"], f"end {end} must not be before start {start}")
        elif start is not None and end is not None and end == start and c.media != "timeseries":
            # Only a time series marks instants; audio and video segments have a length.
            add_problem(problems, [*path, "end"], f"end {end} must be greater than start {start}")
        _check_label(problems, path, segment, labels)
    _check_label_usage(problems, c, segments)


_RANGE_KEYS = ("start", "start_offset", "end", "end_offset", "label")


def check_ranges(problems: list[Problem], control: Any, value: object, payload: Payload) -> None:
    c: RangesControl = control
    ranges = _check_list(problems, c, value, "ranges")
    if ranges is None:
        return
    texts = _paragraph_texts(payload, c) if c.media == "paragraphs" else None
    labels = c.labels_for(payload)
    for i, item in enumerate(ranges):
        path: AnswerPath = [c.name, i]
        region = _check_region(problems, path, item, _RANGE_KEYS, c)
        if region is None:
            continue
        ends = [
            _range_end(problems, path, region, c, texts, position, offset)
            for position, offset in (("start", "start_offset"), ("end", "end_offset"))
        ]
        start, end = ends
        if start is not None and end is not None and not start < end:
            add_problem(problems, [*path, "end"], "a range must end after it starts")
        _check_label(problems, path, region, labels)
    _check_label_usage(problems, c, ranges)


def _paragraph_texts(payload: Payload, control: RangesControl) -> list[str] | None:
    """Each paragraph's text, when the payload holds the paragraphs as Label Studio shows them."""
    paragraphs = payload.get(control.field) if payload is not None else None
    if not isinstance(paragraphs, list):
        return None
    texts = [p.get(control.text_key) if isinstance(p, Mapping) else None for p in paragraphs]
    return texts if all(isinstance(t, str) for t in texts) else None  # type: ignore[return-value]


def _range_end(
    problems: list[Problem],
    path: AnswerPath,
    region: Mapping[str, Any],
    control: RangesControl,
    texts: list[str] | None,
    position_key: str,
    offset_key: str,
) -> tuple[Any, int] | None:
    """One end of a range, (position, offset), comparable with the other end for paragraphs;
    None when it is bad (reported) or missing."""
    if position_key not in region or offset_key not in region:
        return None
    offset = read_integer(problems, [*path, offset_key], region[offset_key])
    if offset is not None and offset < 0:
        add_problem(problems, [*path, offset_key], f"{offset_key} {offset} is negative")
        offset = None
    position = region[position_key]
    if control.media == "hypertext":
        if not isinstance(position, str) or not position:
            add_problem(
                problems,
                [*path, position_key],
                "expected the XPath of a text node (a non-empty string), got "
                + ("an empty string" if position == "" else json_type(position)),
            )
        return None  # XPaths do not order: only paragraphs are checked for start < end
    index = read_integer(problems, [*path, position_key], position)
    if index is None or offset is None:
        return None
    if index < 0 or (texts is not None and index >= len(texts)):
        extent = f" (the item has {len(texts)} paragraphs)" if texts is not None else ""
        add_problem(problems, [*path, position_key], f"no paragraph {index}{extent}")
        return None
    if texts is not None and offset > len(texts[index]):
        add_problem(
            problems,
            [*path, offset_key],
            f"{offset_key} {offset} is past the end of paragraph {index} "
            f"({len(texts[index])} characters)",
        )
        return None
    return index, offset


def check_messages(problems: list[Problem], control: Any, value: object, payload: Payload) -> None:
    c: MessagesControl = control
    regions = _check_list(problems, c, value, "messages")
    if regions is None:
        return
    messages = payload.get(c.field) if payload is not None else None
    count = len(messages) if isinstance(messages, list) else None
    seen: set[int] = set()
    for i, item in enumerate(regions):
        path: AnswerPath = [c.name, i]
        region = _check_region(problems, path, item, ("message",), c)
        if region is None or "message" not in region:
            continue
        index = read_integer(problems, [*path, "message"], region["message"])
        if index is None:
            continue
        if index < 0 or (count is not None and index >= count):
            extent = f" (the conversation has {count})" if count is not None else ""
            add_problem(problems, [*path, "message"], f"no message {index}{extent}")
        elif index in seen:
            add_problem(problems, [*path, "message"], f"message {index} is answered twice")
        seen.add(index)
