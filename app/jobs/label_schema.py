"""The label schema: what an answer must look like (see docs/label-schema.md).

A schema is a list of controls, each bound to a field of the item payload. These pydantic models
parse and check the schema document itself (`parse_label_schema`); `validate_answer` checks one
item's answer against it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeGuard

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from app.core.errors import ValidationFailed, json_pointer

# Control characters are never meaningful in a label or field name, and most cannot be written
# in XML at all (Label Studio configs).
_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f\ufffe\uffff]")


def _printable(value: str) -> str:
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters")
    return value


ControlName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
FieldName = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_printable)]
Label = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_printable)]
Labels = Annotated[list[Label], Field(min_length=1, max_length=1000)]

MAX_ITEMS = 1000


def _repeated(values: Sequence[str]) -> list[str]:
    """Values that occur more than once, each named once, in order of first repeat."""
    seen: set[str] = set()
    repeated: dict[str, None] = {}
    for value in values:
        if value in seen:
            repeated.setdefault(value, None)
        seen.add(value)
    return list(repeated)


class _Control(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ControlName
    required: bool = True
    description: str | None = Field(default=None, max_length=2000)

    def payload_fields(self) -> list[str]:
        """Payload fields an item must carry for this control."""
        return []


class _LabelledControl(_Control):
    field: FieldName
    labels: Labels
    # Built once per schema so that checking an answer's labels is a set lookup.
    _label_set: frozenset[str] = PrivateAttr(default=frozenset())

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: list[str]) -> list[str]:
        duplicates = _repeated(labels)
        if duplicates:
            raise ValueError(f"labels must be unique; repeated: {', '.join(map(repr, duplicates))}")
        return labels

    @model_validator(mode="after")
    def _index_labels(self) -> _LabelledControl:
        self._label_set = frozenset(self.labels)
        return self

    @property
    def label_set(self) -> frozenset[str]:
        # Read from pydantic's private-attribute slot directly: `self._label_set` goes through
        # BaseModel.__getattr__, some 50x slower, and this is on the submit hot path.
        labels: frozenset[str] = self.__pydantic_private__["_label_set"]  # type: ignore[index]
        return labels

    def payload_fields(self) -> list[str]:
        return [self.field]


class _ListControl(_LabelledControl):
    min: int = Field(default=0, ge=0, le=MAX_ITEMS)
    max: int = Field(default=MAX_ITEMS, ge=1, le=MAX_ITEMS)

    @model_validator(mode="after")
    def _min_le_max(self) -> _ListControl:
        if self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


class _ImageControl(_ListControl):
    width_field: FieldName | None = None
    height_field: FieldName | None = None

    def payload_fields(self) -> list[str]:
        extra = [f for f in (self.width_field, self.height_field) if f]
        return [self.field, *extra]


class ChoicesControl(_LabelledControl):
    type: Literal["choices"] = "choices"
    multiple: bool = False
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=1)

    @property
    def min_count(self) -> int:
        if self.min is not None:
            return self.min
        return 1 if self.required else 0

    @property
    def max_count(self) -> int:
        if self.max is not None:
            return self.max
        return len(self.labels) if self.multiple else 1

    @model_validator(mode="after")
    def _counts(self) -> ChoicesControl:
        if self.min_count > self.max_count:
            raise ValueError("min must not exceed max")
        if self.min_count > len(self.labels):
            raise ValueError("min must not exceed the number of labels (choices are unique)")
        if not self.multiple and self.max_count > 1:
            raise ValueError("a single choice has max 1; set multiple: true for more")
        return self


class SpansControl(_ListControl):
    type: Literal["spans"] = "spans"
    allow_overlap: bool = True


class BoxesControl(_ImageControl):
    type: Literal["boxes"] = "boxes"
    iou_threshold: float = Field(default=0.5, gt=0, le=1)


class PolygonsControl(_ImageControl):
    type: Literal["polygons"] = "polygons"
    min_points: int = Field(default=3, ge=3, le=10_000)
    max_points: int = Field(default=1000, ge=3, le=10_000)
    iou_threshold: float = Field(default=0.5, gt=0, le=1)


class KeypointsControl(_ImageControl):
    type: Literal["keypoints"] = "keypoints"
    tolerance: float = Field(default=10.0, ge=0, allow_inf_nan=False)


class TextControl(_Control):
    type: Literal["text"] = "text"
    field: FieldName
    min_length: int | None = Field(default=None, ge=0)
    max_length: int = Field(default=10_000, ge=1, le=1_000_000)
    normalize: bool = True

    @property
    def min_chars(self) -> int:
        if self.min_length is not None:
            return self.min_length
        return 1 if self.required else 0

    def payload_fields(self) -> list[str]:
        return [self.field]


class RatingControl(_Control):
    type: Literal["rating"] = "rating"
    field: FieldName | None = None
    max: int = Field(default=5, ge=2, le=10)
    tolerance: int = Field(default=0, ge=0)

    def payload_fields(self) -> list[str]:
        return [self.field] if self.field else []


class NumberControl(_Control):
    type: Literal["number"] = "number"
    field: FieldName | None = None
    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)
    integer: bool = False
    tolerance: float = Field(default=0, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _range(self) -> NumberControl:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        return self

    def payload_fields(self) -> list[str]:
        return [self.field] if self.field else []


Control = Annotated[
    ChoicesControl
    | SpansControl
    | BoxesControl
    | PolygonsControl
    | KeypointsControl
    | TextControl
    | RatingControl
    | NumberControl,
    Field(discriminator="type"),
]


class LabelSchema(BaseModel):
    """A job's label schema: one or more controls with unique names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    controls: Annotated[list[Control], Field(min_length=1, max_length=50)]
    _by_name: dict[str, Control] = PrivateAttr(default_factory=dict)

    @field_validator("controls")
    @classmethod
    def _unique_names(cls, controls: list[Control]) -> list[Control]:
        duplicates = _repeated([c.name for c in controls])
        if duplicates:
            raise ValueError(
                f"control names must be unique; repeated: {', '.join(map(repr, duplicates))}"
            )
        return controls

    @model_validator(mode="after")
    def _index_names(self) -> LabelSchema:
        self._by_name = {c.name: c for c in self.controls}
        return self

    def control(self, name: str) -> Control | None:
        by_name: dict[str, Control] = self.__pydantic_private__["_by_name"]  # type: ignore[index]
        return by_name.get(name)  # (private slot read directly: see label_set)


def required_fields(schema: LabelSchema) -> list[str]:
    """Payload fields every item must carry for `schema`, in first-use order."""
    seen: dict[str, None] = {}
    for control in schema.controls:
        for name in control.payload_fields():
            seen.setdefault(name, None)
    return list(seen)


Problem = dict[str, Any]  # {"pointer": "#/entities/2/end", "detail": "..."}, or "line" for XML


# --- Schema documents -------------------------------------------------------------------------

_CONTROL_TYPES = frozenset(
    ("choices", "spans", "boxes", "polygons", "keypoints", "text", "rating", "number")
)


def schema_error_paths(error: ValidationError) -> list[tuple[list[str | int], str]]:
    """(path into the schema document, message) for each error pydantic found in it.

    Pydantic puts the discriminator value into the location of a control's errors
    (`controls.0.choices.labels`); it is not part of the document, so it is dropped. A missing or
    unknown `type` is reported at the control's `type` key.
    """
    out: list[tuple[list[str | int], str]] = []
    for err in error.errors(include_url=False):
        loc = list(err["loc"])
        if (
            len(loc) >= 3
            and loc[0] == "controls"
            and isinstance(loc[1], int)
            and loc[2] in _CONTROL_TYPES
        ):
            del loc[2]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc.append("type")
        message = str(err["msg"]).removeprefix("Value error, ")
        out.append((loc, message))
    return out


def parse_label_schema(document: object) -> LabelSchema:
    """Parse a label schema document: a JSON object (see docs/label-schema.md) or a Label Studio
    XML labeling config (a string starting with `<`), which is converted.

    Raises `ValidationFailed` listing every problem: for a JSON document each carries a `pointer`
    into it (`#/controls/0/labels`), for XML a `line` where one is known.
    """
    if isinstance(document, LabelSchema):
        return document
    if isinstance(document, str):
        if document.lstrip().startswith("<"):
            # Imported here: label_studio builds on this module's models.
            from app.jobs.label_studio import label_schema_from_label_studio

            return label_schema_from_label_studio(document)
        raise ValidationFailed(
            "A label schema is a JSON object or a Label Studio XML config",
            errors=[{"pointer": "#", "detail": "a string schema must be Label Studio XML"}],
        )
    if not isinstance(document, Mapping):
        raise ValidationFailed(
            "A label schema is a JSON object or a Label Studio XML config",
            errors=[{"pointer": "#", "detail": f"expected an object, got {_json_type(document)}"}],
        )
    try:
        # Strict: a schema is JSON, so "3" is not a number and 1 is not true.
        return LabelSchema.model_validate(dict(document), strict=True)
    except ValidationError as exc:
        problems = [
            {"pointer": json_pointer(path), "detail": message}
            for path, message in schema_error_paths(exc)
        ]
        raise ValidationFailed("The label schema is not valid", errors=problems) from None


# --- Answers ----------------------------------------------------------------------------------
#
# validate_answer runs on the submit hot path: plain type checks on the decoded JSON, one dispatch
# per control, and pointers built only when something is wrong.

_Path = list[str | int]
_Payload = Mapping[str, Any] | None


def parse_label_schema_at(document: object, pointer: str = "#/label_schema") -> LabelSchema:
    """`parse_label_schema` for a schema sent inside a request body: every problem's pointer
    is prefixed with where the schema sits in that body."""
    try:
        return parse_label_schema(document)
    except ValidationFailed as exc:
        for error in exc.errors:
            if "pointer" in error:
                error["pointer"] = pointer + str(error["pointer"]).removeprefix("#")
        raise


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


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
    _add(problems, path, f"expected a number, got {_json_type(value)}")
    return None


def _integer(problems: list[Problem], path: _Path, value: object) -> int | None:
    """`value` if it is a JSON integer (not 2.0, not a boolean), else report it and return None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    _add(problems, path, f"expected an integer, got {_json_type(value)}")
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
        _add(problems, path, f"expected an object, got {_json_type(item)}")
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
        _add(problems, [*path, "label"], f"expected a label (string), got {_json_type(label)}")
    elif label not in labels:
        _add(problems, [*path, "label"], f"unknown label {label!r}")


def _check_list(
    problems: list[Problem], control: _ListControl, value: object, noun: str
) -> list[Any] | None:
    if not isinstance(value, list):
        _add(problems, [control.name], f"expected an array of {noun}, got {_json_type(value)}")
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
            _add(problems, [c.name], f"expected a label (string), got {_json_type(value)}")
        elif value not in labels:
            _add(problems, [c.name], f"unknown label {value!r}")
        return
    if not isinstance(value, list):
        _add(problems, [c.name], f"expected an array of labels, got {_json_type(value)}")
        return
    _check_count(problems, [c.name], len(value), c.min_count, c.max_count, "labels")
    seen: set[str] = set()
    for i, label in enumerate(value):
        if not isinstance(label, str):
            _add(problems, [c.name, i], f"expected a label (string), got {_json_type(label)}")
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
        _add(problems, path, f"expected an array of [x, y] points, got {_json_type(points)}")
        return
    _check_count(problems, path, len(points), control.min_points, control.max_points, "points")
    for j, point in enumerate(points):
        if not isinstance(point, list) or len(point) != 2:
            got = f"an array of {len(point)}" if isinstance(point, list) else _json_type(point)
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
        _add(problems, [c.name], f"expected a string, got {_json_type(value)}")
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
        detail = f"an answer is an object keyed by control name, got {_json_type(answer)}"
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
