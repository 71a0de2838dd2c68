"""Converters of Label Studio's classification tags, whose answer is about the item as a whole:
Choices, TextArea, Rating, Number, Taxonomy, Pairwise and Ranker (`app.label_schema.item_controls`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.label_schema.item_controls import (
    ChoicesControl,
    NumberControl,
    PairwiseControl,
    RatingControl,
    TaxonomyControl,
)
from app.label_schema.label_studio.converter import (
    BoundObject,
    ObjectNeed,
    Result,
    ResultError,
    TagAttributes,
    TagConverter,
    Targets,
    value_key,
)
from app.label_schema.model import Control


class ChoicesConverter(TagConverter):
    tag = "Choices"
    control_type = "choices"
    child_tag = "Choice"
    max_objects = 10
    dynamic_labels = True
    attribute_type = "choices"

    def read(self, tag: TagAttributes, document: dict[str, Any]) -> None:
        choice = tag.get("choice", "single").lower()
        if choice not in ("single", "single-radio", "multiple"):
            tag.report(
                f'{tag.where}: choice="{choice}" is not one of single, single-radio, multiple'
            )
        document["multiple"] = choice == "multiple"

    def config_attributes(self, control: Control) -> dict[str, str]:
        assert isinstance(control, ChoicesControl)
        multiple = {"choice": "multiple"} if control.multiple else {}
        return {**multiple, **self.required_attribute(control)}

    def results(
        self,
        control: Control,
        value: Any,
        targets: Targets,
        payload: Mapping[str, Any] | None,
    ) -> list[Result]:
        chosen = value if isinstance(value, list) else [value]
        return [self.result(control, targets, {"choices": list(chosen)})] if chosen else []

    def answer_value(
        self, control: Control, entries: list[tuple[int, Result]], payload: Mapping[str, Any]
    ) -> Any:
        assert isinstance(control, ChoicesControl)
        entry = self.single(entries, control)
        chosen = value_key(entry, "choices", list)
        if control.multiple:
            return chosen
        if len(chosen) != 1:
            raise ResultError(entry[0], f"{control.name!r} is a single choice")
        return chosen[0]


class TextAreaConverter(TagConverter):
    tag = "TextArea"
    control_type = "text"
    child_tag = "Shortcut"  # keyboard shortcuts for canned text: allowed, not labels
    children_are_labels = False
    max_objects = 10
    attribute_type = "text"

    def config_attributes(self, control: Control) -> dict[str, str]:
        return {**self.required_attribute(control), "maxSubmissions": "1"}  # one answer string

    def results(
        self,
        control: Control,
        value: Any,
        targets: Targets,
        payload: Mapping[str, Any] | None,
    ) -> list[Result]:
        return [self.result(control, targets, {"text": [value]})] if value else []

    def answer_value(
        self, control: Control, entries: list[tuple[int, Result]], payload: Mapping[str, Any]
    ) -> Any:
        return text_value(self.single(entries, control))


def text_value(entry: tuple[int, Result]) -> str:
    # A TextArea without maxSubmissions="1" may hold several submissions: one line each.
    texts = value_key(entry, "text", (list, str))
    if isinstance(texts, str):
        return texts
    if not all(isinstance(t, str) for t in texts):
        raise ResultError(entry[0], "value.text holds strings")
    return "\n".join(texts)


class RatingConverter(TagConverter):
    tag = "Rating"
    control_type = "rating"
    needs_field = False
    max_objects = 10
    attribute_type = "rating"
    attribute_names = {"max": "maxRating"}

    def read(self, tag: TagAttributes, document: dict[str, Any]) -> None:
        max_rating = tag.number("maxrating", integer=True)
        if max_rating is not None:
            document["max"] = max_rating

    def config_attributes(self, control: Control) -> dict[str, str]:
        assert isinstance(control, RatingControl)
        return {**self.required_attribute(control), "maxRating": str(control.max)}

    def results(
        self,
        control: Control,
        value: Any,
        targets: Targets,
        payload: Mapping[str, Any] | None,
    ) -> list[Result]:
        return [self.result(control, targets, {"rating": value})]

    def answer_value(
        self, control: Control, entries: list[tuple[int, Result]], payload: Mapping[str, Any]
    ) -> Any:
        return value_key(self.single(entries, control), "rating", int)


class NumberConverter(TagConverter):
    tag = "Number"
    control_type = "number"
    needs_field = False
    max_objects = 10

    def read(self, tag: TagAttributes, document: dict[str, Any]) -> None:
        low = tag.number("min")
        high = tag.number("max")
        step = tag.number("step")
        if low is not None:
            document["min"] = low
        if high is not None:
            document["max"] = high
        # Label Studio enforces `step` (counted from `min`) only when it is given; a whole step
        # from a whole minimum admits whole numbers only.
        document["integer"] = (
            step is not None
            and float(step).is_integer()
            and step >= 1
            and (low is None or float(low).is_integer())
        )

    def config_attributes(self, control: Control) -> dict[str, str]:
        assert isinstance(control, NumberControl)
        attrs = self.required_attribute(control)
        if control.min is not None:
            attrs["min"] = _format_number(control.min)
        if control.max is not None:
            attrs["max"] = _format_number(control.max)
        if control.integer:
            attrs["step"] = "1"
        return attrs

    def results(
        self,
        control: Control,
        value: Any,
        targets: Targets,
        payload: Mapping[str, Any] | None,
    ) -> list[Result]:
        return [self.result(control, targets, {"number": value})]

    def answer_value(
        self, control: Control, entries: list[tuple[int, Result]], payload: Mapping[str, Any]
    ) -> Any:
        return value_key(self.single(entries, control), "number", (int, float))


def _format_number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class TaxonomyConverter(TagConverter):
    """Hierarchical choices: nested `<Choice>` tags; results carry every chosen path."""

    tag = "Taxonomy"
    control_type = "taxonomy"
    child_tag = "Choice"
    nested_children = True
    max_objects = 10
    attribute_names = {"max": "maxUsages", "leafs_only": "leafsOnly"}

    def read(self, tag: TagAttributes, document: dict[str, Any]) -> None:
        max_usages = tag.number("maxusages", integer=True)
        if max_usages is not None:
            document["max"] = max_usages
        leafs_only = tag.flag("leafsonly", default=False)
        if leafs_only is not None:
            document["leafs_only"] = leafs_only
        if tag.get("apiurl"):
            tag.report(f"{tag.where}: a taxonomy loaded from apiUrl is not supported")

    def config_attributes(self, control: Control) -> dict[str, str]:
        assert isinstance(control, TaxonomyControl)
        attrs = self.required_attribute(control)
        if control.max is not None:
            attrs["maxUsages"] = str(control.max)
        if control.leafs_only:
            attrs["leafsOnly"] = "true"
        return attrs

    def results(
        self,
        control: Control,
        value: Any,
        targets: Targets,
        payload: Mapping[str, Any] | None,
    ) -> list[Result]:
        paths = [list(path) for path in value]
        return [self.result(control, targets, {"taxonomy": paths})] if paths else []

    def answer_value(
        self, control: Control, entries: list[tuple[int, Result]], payload: Mapping[str, Any]
    ) -> Any:
        entry = self.single(entries, control)
        paths = value_key(entry, "taxonomy", list)
        if not all(isinstance(p, list) and all(isinstance(s, str) for s in p) for p in paths):
            raise ResultError(entry[0], "value.taxonomy is a list of paths (lists of labels)")
        return paths


class PairwiseConverter(TagConverter):
    """A preference between two objects: `toName="left,right"`, results `{"selected": ...}`."""

    tag = "Pairwise"
    control_type = "pairwise"
    min_objects = max_objects = 2
    required_default = True

    def bind(
        self, tag: TagAttributes, document: dict[str, Any], objects: Sequence[BoundObject]
    ) -> None:
        literal = [o for o in objects if o.field is None]
        if literal:
            tag.report(
                f'{tag.where} compares <{literal[0].shown} name="{literal[0].name}">, whose value '
                'is not a "$field" reference to the item payload'
            )
            return
        document["left_field"], document["right_field"] = objects[0].field, objects[1].field

    def objects_needed(self, control: Control) -> list[ObjectNeed]:
        assert isinstance(control, PairwiseControl)
        return [ObjectNeed("Text", control.left_field), ObjectNeed("Text", control.right_field)]

    def results(
        self,
        control: Control,
        value: Any,
        targets: Targets,
        payload: Mapping[str, Any] | None,
    ) -> list[Result]:
        return [self.result(control, targets, {"selected": value})]

    def answer_value(
        self, control: Control, entries: list[tuple[int, Result]], payload: Mapping[str, Any]
    ) -> Any:
        return value_key(self.single(entries, control), "selected", str)


class RankerConverter(TagConverter):
    """An order of a `List` object's items (without `<Bucket>`s): results
    `{"ranker": {"<ranker name>": [ids, best first]}}`."""

    tag = "Ranker"
    control_type = "ranking"
    object_kinds = ("list",)
    required_default = True

    def objects_needed(self, control: Control) -> list[ObjectNeed]:
        return [ObjectNeed("List", getattr(control, "field", None))]

    def results(
        self,
        control: Control,
        value: Any,
        targets: Targets,
        payload: Mapping[str, Any] | None,
    ) -> list[Result]:
        return [self.result(control, targets, {"ranker": {control.name: list(value)}})]

    def answer_value(
        self, control: Control, entries: list[tuple[int, Result]], payload: Mapping[str, Any]
    ) -> Any:
        entry = self.single(entries, control)
        ranker = value_key(entry, "ranker", Mapping)
        if control.name in ranker:
            order = ranker[control.name]
        elif len(ranker) == 1:
            order = next(iter(ranker.values()))
        else:
            raise ResultError(entry[0], "value.ranker holds buckets; only one order is supported")
        if not isinstance(order, list) or not all(isinstance(i, str) for i in order):
            raise ResultError(entry[0], "value.ranker holds a list of item ids")
        return order
