"""The label schema: what an answer must look like (see docs/label-schema.md).

A schema is a list of controls, each bound to a field of the item payload. These pydantic models
parse and check the schema document itself; `validate_answer` (below) checks answers against it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ControlName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
FieldName = Annotated[str, Field(min_length=1, max_length=128)]
Label = Annotated[str, Field(min_length=1, max_length=200)]
Labels = Annotated[list[Label], Field(min_length=1, max_length=1000)]

MAX_ITEMS = 1000


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

    @model_validator(mode="after")
    def _unique_labels(self) -> _LabelledControl:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be unique")
        return self

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
    tolerance: float = Field(default=10.0, ge=0)


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
    min: float | None = None
    max: float | None = None
    integer: bool = False
    tolerance: float = Field(default=0, ge=0)

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

    @model_validator(mode="after")
    def _unique_names(self) -> LabelSchema:
        names = [c.name for c in self.controls]
        if len(set(names)) != len(names):
            raise ValueError("control names must be unique")
        return self

    def control(self, name: str) -> Control | None:
        return next((c for c in self.controls if c.name == name), None)


def required_fields(schema: LabelSchema) -> list[str]:
    """Payload fields every item must carry for `schema`, in first-use order."""
    seen: dict[str, None] = {}
    for control in schema.controls:
        for name in control.payload_fields():
            seen.setdefault(name, None)
    return list(seen)


Problem = dict[str, Any]  # {"pointer": "#/control/0/x", "detail": "..."}
