"""The label schema model: the schema and its controls, and how its validation errors are located.

A schema is a list of controls, each bound to a field of the item payload (docs/label-schema.md):
`item_controls` (an answer about the whole item) and `region_controls` (a list of labelled
regions), both built on `control_base`, put together here as `Control` and `LabelSchema`. A new
kind of control is a class in one of those two and a member of `Control` and `CONTROL_TYPES`
here. These pydantic models check the schema itself; reading a schema document (JSON or Label
Studio XML) is `documents`, checking an answer against a schema is `answers`. Everything here is
plain data and depends on nothing else in the package, so every other module can build on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from app.label_schema.control_base import repeated_values
from app.label_schema.item_controls import (
    ChoicesControl,
    NumberControl,
    PairwiseControl,
    RankingControl,
    RatingControl,
    TaxonomyControl,
    TextControl,
)
from app.label_schema.region_controls import (
    Attribute,
    BoxesControl,
    KeypointsControl,
    ListControl,
    MessagesControl,
    PolygonsControl,
    RangesControl,
    SegmentsControl,
    SpansControl,
)

Control = Annotated[
    ChoicesControl
    | SpansControl
    | BoxesControl
    | PolygonsControl
    | KeypointsControl
    | SegmentsControl
    | RangesControl
    | MessagesControl
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
        duplicates = repeated_values([c.name for c in controls])
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
        return by_name.get(name)  # (private slot: see LabelledControl.label_set)


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
        "ranges",
        "messages",
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
