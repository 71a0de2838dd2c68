"""Controls whose answer is about the item as a whole: choices, free text, a rating, a number,
a preference between two fields (pairwise), an order of candidates (ranking) and paths in a
taxonomy. Classification controls may label several payload fields together (`ObjectsMixin`).

Their answers are checked by `answers`, converted by `label_studio.classification_tags`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from app.label_schema.control_base import (
    MAX_ITEMS,
    ControlBase,
    FieldName,
    Label,
    LabelledControl,
    repeated_values,
)


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
        duplicates = repeated_values(self.fields)
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
        duplicates = repeated_values([c.value for c in children])
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
        duplicates = repeated_values([r.value for r in roots])
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
