"""The label schema model: controls, the schema, and how its validation errors are located.

A schema is a list of controls, each bound to a field of the item payload (docs/label-schema.md).
These pydantic models check the schema itself; reading a schema document (JSON or Label Studio
XML) is `documents`, checking an answer against a schema is `answers`. Everything here is plain
data and depends on nothing else in the package, so every other module can build on it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

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


class ControlBase(BaseModel):
    """What every control has: a unique name, whether the answer must carry it, a description."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ControlName
    required: bool = True
    description: str | None = Field(default=None, max_length=2000)

    def payload_fields(self) -> list[str]:
        """Payload fields an item must carry for this control."""
        return []


class LabelledControl(ControlBase):
    """A control whose answer picks from a fixed list of labels, over one payload field."""

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
    def _index_labels(self) -> LabelledControl:
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


class ListControl(LabelledControl):
    """A control whose answer is a list of labelled regions (spans, shapes), `min`..`max` long."""

    min: int = Field(default=0, ge=0, le=MAX_ITEMS)
    max: int = Field(default=MAX_ITEMS, ge=1, le=MAX_ITEMS)

    @model_validator(mode="after")
    def _min_le_max(self) -> ListControl:
        if self.min > self.max:
            raise ValueError("min must not exceed max")
        return self


class ImageControl(ListControl):
    """Shapes on an image; the image's size may be given by two payload fields."""

    width_field: FieldName | None = None
    height_field: FieldName | None = None

    def payload_fields(self) -> list[str]:
        extra = [f for f in (self.width_field, self.height_field) if f]
        return [self.field, *extra]


class ChoicesControl(LabelledControl):
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


class SpansControl(ListControl):
    type: Literal["spans"] = "spans"
    allow_overlap: bool = True


class BoxesControl(ImageControl):
    type: Literal["boxes"] = "boxes"
    iou_threshold: float = Field(default=0.5, gt=0, le=1)


class PolygonsControl(ImageControl):
    type: Literal["polygons"] = "polygons"
    min_points: int = Field(default=3, ge=3, le=10_000)
    max_points: int = Field(default=1000, ge=3, le=10_000)
    iou_threshold: float = Field(default=0.5, gt=0, le=1)


class KeypointsControl(ImageControl):
    type: Literal["keypoints"] = "keypoints"
    tolerance: float = Field(default=10.0, ge=0, allow_inf_nan=False)


class TextControl(ControlBase):
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


class RatingControl(ControlBase):
    type: Literal["rating"] = "rating"
    field: FieldName | None = None
    max: int = Field(default=5, ge=2, le=10)
    tolerance: int = Field(default=0, ge=0)

    def payload_fields(self) -> list[str]:
        return [self.field] if self.field else []


class NumberControl(ControlBase):
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

# --- locating problems ------------------------------------------------------------------------

CONTROL_TYPES = frozenset(
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
            and loc[2] in CONTROL_TYPES
        ):
            del loc[2]
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc.append("type")
        message = str(err["msg"]).removeprefix("Value error, ")
        out.append((loc, message))
    return out


def json_type(value: object) -> str:
    """How a problem names the JSON type of `value` ("an integer", "an array", ...)."""
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
