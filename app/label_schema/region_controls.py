"""Controls whose answer is a list of labelled regions: spans of a text, shapes on an image
(boxes, polygons, keypoints) and time segments of audio or video, with the questions asked about
each region (`Attribute`: Label Studio's `perRegion` tags).

Their answers are checked by `region_answers`, converted by `label_studio.region_tags`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from app.label_schema.control_base import (
    MAX_ITEMS,
    ControlName,
    FieldName,
    Label,
    LabelledControl,
    repeated_values,
)

MAX_ATTRIBUTES = 20

# --- per-region attributes ---------------------------------------------------------------------


class AttributeBase(BaseModel):
    """A question asked about each region of a region control (Label Studio's `perRegion`
    classification tags): its value sits in the region's `attributes` object."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ControlName
    required: bool = False
    description: str | None = Field(default=None, max_length=2000)
    # Asked only about regions with one of these labels (Label Studio's `whenLabelValue`);
    # None: about every region.
    when_labels: Annotated[list[Label], Field(min_length=1, max_length=1000)] | None = None

    def applies_to(self, label: object) -> bool:
        return self.when_labels is None or label in self.when_labels


class ChoicesAttribute(AttributeBase):
    type: Literal["choices"] = "choices"
    labels: Annotated[list[Label], Field(min_length=1, max_length=1000)]
    multiple: bool = False

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: list[str]) -> list[str]:
        duplicates = repeated_values(labels)
        if duplicates:
            raise ValueError(f"labels must be unique; repeated: {', '.join(map(repr, duplicates))}")
        return labels


class TextAttribute(AttributeBase):
    type: Literal["text"] = "text"
    max_length: int = Field(default=10_000, ge=1, le=1_000_000)
    normalize: bool = True


class RatingAttribute(AttributeBase):
    type: Literal["rating"] = "rating"
    max: int = Field(default=5, ge=2, le=10)
    tolerance: int = Field(default=0, ge=0)


Attribute = Annotated[
    ChoicesAttribute | TextAttribute | RatingAttribute, Field(discriminator="type")
]


# --- region controls ---------------------------------------------------------------------------


class ListControl(LabelledControl):
    """A control whose answer is a list of labelled regions (spans, shapes, time segments),
    `min`..`max` long, each optionally carrying `attributes` (per-region questions).

    `max_per_label` caps how often any one label may be used in an answer and `label_limits`
    caps single labels (Label Studio's `maxUsages` on the tag and on a `<Label>`).
    """

    min: int = Field(default=0, ge=0, le=MAX_ITEMS)
    max: int = Field(default=MAX_ITEMS, ge=1, le=MAX_ITEMS)
    max_per_label: int | None = Field(default=None, ge=1, le=MAX_ITEMS)
    label_limits: dict[Label, Annotated[int, Field(ge=1, le=MAX_ITEMS)]] = Field(
        default_factory=dict
    )
    attributes: Annotated[list[Attribute], Field(max_length=MAX_ATTRIBUTES)] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _min_le_max(self) -> ListControl:
        if self.min > self.max:
            raise ValueError("min must not exceed max")
        unknown = [label for label in self.label_limits if label not in self.label_set]
        if unknown and self.labels_field is None:
            raise ValueError(
                f"label_limits name labels the control does not have: {', '.join(unknown)}"
            )
        for attribute in self.attributes:
            strangers = [
                label for label in attribute.when_labels or () if label not in self.label_set
            ]
            if strangers and self.labels_field is None:
                raise ValueError(
                    f"attribute {attribute.name!r} is asked of labels the control does not "
                    f"have: {', '.join(strangers)}"
                )
        duplicates = repeated_values([a.name for a in self.attributes])
        if duplicates:
            raise ValueError(
                f"attribute names must be unique; repeated: {', '.join(map(repr, duplicates))}"
            )
        return self

    def attribute(self, name: str) -> Attribute | None:
        return next((a for a in self.attributes if a.name == name), None)


# Where Label Studio puts an image's size in its results, and where importing a Label Studio task
# keeps it in the payload when the schema names no size fields of its own.
DEFAULT_WIDTH_KEY, DEFAULT_HEIGHT_KEY = "original_width", "original_height"


class ImageControl(ListControl):
    """Shapes on an image; the image's size may be given by two payload fields.

    Without `width_field`/`height_field` the size is read from the payload's `original_width`
    and `original_height` when they are there (Label Studio's names; importing a Label Studio
    task puts them there from its results), but an item need not carry them.
    """

    width_field: FieldName | None = None
    height_field: FieldName | None = None

    @property
    def size_keys(self) -> tuple[str, str]:
        """The payload keys holding the image's width and height."""
        return (self.width_field or DEFAULT_WIDTH_KEY, self.height_field or DEFAULT_HEIGHT_KEY)

    def payload_fields(self) -> list[str]:
        extra = [f for f in (self.width_field, self.height_field) if f]
        return [*super().payload_fields(), *extra]


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


class SegmentsControl(ListControl):
    """Time segments of an audio, video or time-series payload field: start and end in seconds
    (a time series: in the units of its time column).

    `duration_field` optionally names the payload key holding the media's length, so segments
    past the end are refused; `media` says what the field holds (the object tag of the generated
    Label Studio config). A time series may also mark instants (`start` equal to `end`: Label
    Studio's `instant` regions)."""

    type: Literal["segments"] = "segments"
    media: Literal["audio", "video", "timeseries"] = "audio"
    duration_field: FieldName | None = None
    iou_threshold: float = Field(default=0.5, gt=0, le=1)

    def payload_fields(self) -> list[str]:
        extra = [f for f in (self.duration_field,) if f]
        return [*super().payload_fields(), *extra]


class RangesControl(ListControl):
    """Selections in structured text: the paragraphs of a dialogue or transcript (a list of
    objects whose `text_key` holds each one's text: Label Studio's Paragraphs) or an HTML
    document (Label Studio's HyperText).

    A region runs from (`start`, `start_offset`) to (`end`, `end_offset`): `start`/`end` are
    paragraph indexes (integers) for `paragraphs`, XPath expressions of text nodes (strings) for
    `hypertext`; the offsets count characters inside them. Ranges match exactly, as spans do.
    """

    type: Literal["ranges"] = "ranges"
    media: Literal["paragraphs", "hypertext"] = "paragraphs"
    text_key: FieldName = "text"


class MessagesControl(ListControl):
    """Questions about single messages of a conversation (Label Studio's `Chat` object with
    `perRegion` tags): the payload field holds the messages (`[{"role", "content"}, ...]`), and
    each region `{"message": i, "attributes": {...}}` answers the attributes about message i (an
    index into that list, each message at most once). Messages carry no labels."""

    type: Literal["messages"] = "messages"

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: list[str], info: ValidationInfo) -> list[str]:
        if labels or info.data.get("labels_field") is not None:
            raise ValueError("messages carry no labels; ask about them with attributes")
        return labels

    @model_validator(mode="after")
    def _asks_something(self) -> MessagesControl:
        if not self.attributes:
            raise ValueError("a messages control asks at least one attribute")
        return self
