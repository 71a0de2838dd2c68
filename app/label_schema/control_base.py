"""What every control is built from: the constrained names, fields and labels of a schema
document, the base every control shares (`ControlBase`) and the one picking from labels
(`LabelledControl`, with the item's own options, `item_options`).

Plain data depending on nothing else in the package: the region controls (`region_controls`) and
the whole-item ones (`item_controls`) build on it, and `model` puts them together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
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


def repeated_values(values: Sequence[str]) -> list[str]:
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
        duplicates = repeated_values(labels)
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
