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
    ValidationInfo,
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
Labels = Annotated[list[Label], Field(max_length=1000)]

MAX_ITEMS = 1000
MAX_ATTRIBUTES = 20


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
    """A control whose answer picks from a list of labels, over one payload field.

    The labels are fixed (`labels`), taken from each item (`labels_field`: the payload holds the
    item's options, Label Studio's `value="$options"`), or both: the item's options add to the
    fixed ones.
    """

    field: FieldName
    labels_field: FieldName | None = None  # declared before `labels`, whose check reads it
    labels: Labels = Field(default_factory=list)
    # Built once per schema so that checking an answer's labels is a set lookup.
    _label_set: frozenset[str] = PrivateAttr(default=frozenset())

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: list[str], info: ValidationInfo) -> list[str]:
        if not labels and info.data.get("labels_field") is None:
            raise ValueError(
                "at least one label is needed (or labels_field, to take them from each item)"
            )
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

    def labels_for(self, payload: Mapping[str, Any] | None) -> frozenset[str] | None:
        """The labels an answer may use for the item `payload`; None when they cannot be known
        (labels taken from the item, and no usable item given): then any label is accepted."""
        if self.labels_field is None:
            return self.label_set
        options = item_options(payload.get(self.labels_field) if payload is not None else None)
        if options is None:
            return None
        return self.label_set | frozenset(options)

    def payload_fields(self) -> list[str]:
        return [self.field] if self.labels_field is None else [self.field, self.labels_field]


def item_options(value: object) -> list[str] | None:
    """The labels an item offers in its `labels_field`: a list of strings or of objects with a
    string `value` (Label Studio's format, `[{"value": "cat"}, ...]`); None when malformed."""
    if not isinstance(value, list) or not 0 < len(value) <= MAX_ITEMS:
        return None
    options: list[str] = []
    for option in value:
        if isinstance(option, Mapping):
            option = option.get("value")
        if not isinstance(option, str) or not option:
            return None
        options.append(option)
    return options


# --- per-region attributes ---------------------------------------------------------------------


class AttributeBase(BaseModel):
    """A question asked about each region of a region control (Label Studio's `perRegion`
    classification tags): its value sits in the region's `attributes` object."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ControlName
    required: bool = False
    description: str | None = Field(default=None, max_length=2000)


class ChoicesAttribute(AttributeBase):
    type: Literal["choices"] = "choices"
    labels: Annotated[list[Label], Field(min_length=1, max_length=1000)]
    multiple: bool = False

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: list[str]) -> list[str]:
        duplicates = _repeated(labels)
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
        duplicates = _repeated([a.name for a in self.attributes])
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


class ObjectsMixin(BaseModel):
    """Classification controls may label several payload fields together (Label Studio's
    `toName="a,b"`: "how alike are these two images"): `fields` lists them, and `field` is then
    the first of them."""

    fields: Annotated[list[FieldName], Field(min_length=2, max_length=10)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _field_from_fields(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("fields") and data.get("field") is None:
            fields = data["fields"]
            if isinstance(fields, list) and fields:
                return {**data, "field": fields[0]}
        return data

    def _check_fields(self, field: str | None) -> None:
        if self.fields is None:
            return
        duplicates = _repeated(self.fields)
        if duplicates:
            raise ValueError(f"fields must be unique; repeated: {', '.join(map(repr, duplicates))}")
        if field != self.fields[0]:
            raise ValueError("field must be the first of fields")

    def _payload_fields(self, field: str | None) -> list[str]:
        if self.fields is not None:
            return list(self.fields)
        return [field] if field else []


class ChoicesControl(ObjectsMixin, LabelledControl):
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
        if not self.multiple:
            return 1
        return len(self.labels) if self.labels_field is None else MAX_ITEMS

    @model_validator(mode="after")
    def _counts(self) -> ChoicesControl:
        self._check_fields(self.field)
        if self.min_count > self.max_count:
            raise ValueError("min must not exceed max")
        if self.min_count > len(self.labels) and self.labels_field is None:
            raise ValueError("min must not exceed the number of labels (choices are unique)")
        if not self.multiple and self.max_count > 1:
            raise ValueError("a single choice has max 1; set multiple: true for more")
        return self

    def payload_fields(self) -> list[str]:
        extra = [self.labels_field] if self.labels_field else []
        return [*self._payload_fields(self.field), *extra]


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
    """Time segments of an audio or video payload field: start and end in seconds.

    `duration_field` optionally names the payload key holding the media's length in seconds, so
    segments past the end are refused; `media` says what the field holds (the object tag of the
    generated Label Studio config)."""

    type: Literal["segments"] = "segments"
    media: Literal["audio", "video"] = "audio"
    duration_field: FieldName | None = None
    iou_threshold: float = Field(default=0.5, gt=0, le=1)

    def payload_fields(self) -> list[str]:
        extra = [f for f in (self.duration_field,) if f]
        return [*super().payload_fields(), *extra]


class TextControl(ObjectsMixin, ControlBase):
    type: Literal["text"] = "text"
    field: FieldName
    min_length: int | None = Field(default=None, ge=0)
    max_length: int = Field(default=10_000, ge=1, le=1_000_000)
    normalize: bool = True

    @model_validator(mode="after")
    def _fields(self) -> TextControl:
        self._check_fields(self.field)
        return self

    @property
    def min_chars(self) -> int:
        if self.min_length is not None:
            return self.min_length
        return 1 if self.required else 0

    def payload_fields(self) -> list[str]:
        return self._payload_fields(self.field)


class RatingControl(ObjectsMixin, ControlBase):
    type: Literal["rating"] = "rating"
    field: FieldName | None = None
    max: int = Field(default=5, ge=2, le=10)
    tolerance: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _fields(self) -> RatingControl:
        self._check_fields(self.field)
        return self

    def payload_fields(self) -> list[str]:
        return self._payload_fields(self.field)


class NumberControl(ObjectsMixin, ControlBase):
    type: Literal["number"] = "number"
    field: FieldName | None = None
    min: float | None = Field(default=None, allow_inf_nan=False)
    max: float | None = Field(default=None, allow_inf_nan=False)
    integer: bool = False
    tolerance: float = Field(default=0, ge=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _range(self) -> NumberControl:
        self._check_fields(self.field)
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not exceed max")
        return self

    def payload_fields(self) -> list[str]:
        return self._payload_fields(self.field)


class PairwiseControl(ControlBase):
    """A preference between two payload fields (two responses to one prompt, say): the answer is
    `"left"` or `"right"`."""

    type: Literal["pairwise"] = "pairwise"
    left_field: FieldName
    right_field: FieldName

    @model_validator(mode="after")
    def _two_fields(self) -> PairwiseControl:
        if self.left_field == self.right_field:
            raise ValueError("left_field and right_field must differ")
        return self

    def payload_fields(self) -> list[str]:
        return [self.left_field, self.right_field]


class RankingControl(ControlBase):
    """An order of the candidates in `payload[field]` (a list of objects with a string `id`, as
    Label Studio's List tag shows them): the answer lists every candidate id, best first."""

    type: Literal["ranking"] = "ranking"
    field: FieldName

    def payload_fields(self) -> list[str]:
        return [self.field]


def candidate_ids(value: object) -> list[str] | None:
    """The candidate ids of a ranking item (`[{"id": "a", ...}, ...]`); None when malformed
    (not a list of 1..1000 objects with unique non-empty string ids)."""
    if not isinstance(value, list) or not 0 < len(value) <= MAX_ITEMS:
        return None
    ids: list[str] = []
    for candidate in value:
        if not isinstance(candidate, Mapping):
            return None
        ident = candidate.get("id")
        if not isinstance(ident, str) or not ident:
            return None
        ids.append(ident)
    return ids if len(set(ids)) == len(ids) else None


class TaxonomyNode(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: Label
    children: list[TaxonomyNode] = Field(default_factory=list, max_length=1000)

    @field_validator("children")
    @classmethod
    def _unique_children(cls, children: list[TaxonomyNode]) -> list[TaxonomyNode]:
        duplicates = _repeated([c.value for c in children])
        if duplicates:
            raise ValueError(
                f"sibling values must be unique; repeated: {', '.join(map(repr, duplicates))}"
            )
        return children


class TaxonomyControl(ObjectsMixin, ControlBase):
    """Hierarchical choices: the answer is a list of paths from a root of `taxonomy` down to the
    chosen node (`[["Animal", "Cat"], ["Plant"]]`), `min`..`max` of them; with `leafs_only` every
    path ends at a leaf."""

    type: Literal["taxonomy"] = "taxonomy"
    field: FieldName
    taxonomy: Annotated[list[TaxonomyNode], Field(min_length=1, max_length=1000)]
    leafs_only: bool = False
    min: int | None = Field(default=None, ge=0, le=MAX_ITEMS)
    max: int | None = Field(default=None, ge=1, le=MAX_ITEMS)
    # Every path of the tree, for the answer's look-ups.
    _paths: dict[tuple[str, ...], bool] = PrivateAttr(default_factory=dict)

    @field_validator("taxonomy")
    @classmethod
    def _unique_roots(cls, roots: list[TaxonomyNode]) -> list[TaxonomyNode]:
        duplicates = _repeated([r.value for r in roots])
        if duplicates:
            raise ValueError(
                f"sibling values must be unique; repeated: {', '.join(map(repr, duplicates))}"
            )
        return roots

    @model_validator(mode="after")
    def _index_paths(self) -> TaxonomyControl:
        self._check_fields(self.field)
        if self.min_count > self.max_count:
            raise ValueError("min must not exceed max")
        paths: dict[tuple[str, ...], bool] = {}
        stack: list[tuple[tuple[str, ...], TaxonomyNode]] = [((), n) for n in self.taxonomy]
        while stack:
            prefix, node = stack.pop()
            path = (*prefix, node.value)
            paths[path] = not node.children  # is a leaf
            stack.extend((path, child) for child in node.children)
            if len(paths) > 10_000:
                raise ValueError("a taxonomy has at most 10000 nodes")
        self._paths = paths
        return self

    @property
    def min_count(self) -> int:
        if self.min is not None:
            return self.min
        return 1 if self.required else 0

    @property
    def max_count(self) -> int:
        return self.max if self.max is not None else MAX_ITEMS

    @property
    def paths(self) -> dict[tuple[str, ...], bool]:
        """Every path of the tree (root first), mapped to whether it ends at a leaf."""
        paths: dict[tuple[str, ...], bool] = self.__pydantic_private__["_paths"]  # type: ignore[index]
        return paths

    def payload_fields(self) -> list[str]:
        return self._payload_fields(self.field)


Control = Annotated[
    ChoicesControl
    | SpansControl
    | BoxesControl
    | PolygonsControl
    | KeypointsControl
    | SegmentsControl
    | TextControl
    | RatingControl
    | NumberControl
    | PairwiseControl
    | RankingControl
    | TaxonomyControl,
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
        # Label Studio names tags globally, and per-region attributes are tags of their own: an
        # attribute may be shared by region controls on one field (one tag there), never clash.
        shared: dict[str, tuple[str, Attribute]] = {}
        for control in self.controls:
            if not isinstance(control, ListControl):
                continue
            for attribute in control.attributes:
                if attribute.name in self._by_name:
                    raise ValueError(
                        f"attribute {attribute.name!r} of {control.name!r} is named like a control"
                    )
                seen = shared.setdefault(attribute.name, (control.field, attribute))
                if seen != (control.field, attribute):
                    raise ValueError(
                        f"attribute {attribute.name!r} is defined differently on two controls; "
                        "one name is one question (on one field)"
                    )
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
    (
        "choices",
        "spans",
        "boxes",
        "polygons",
        "keypoints",
        "segments",
        "text",
        "rating",
        "number",
        "pairwise",
        "ranking",
        "taxonomy",
    )
)
ATTRIBUTE_TYPES = frozenset(("choices", "text", "rating"))


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
        if (
            len(loc) >= 5
            and loc[2] == "attributes"
            and isinstance(loc[3], int)
            and loc[4] in ATTRIBUTE_TYPES
        ):
            del loc[4]
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
