"""One converter per Label Studio control tag, used in both directions.

A converter says how its tag becomes a Tessera control (`read`, `bind`: the attributes and
objects particular to the tag), how a control is written back as that tag (`config_attributes`,
`objects_needed`), how an answer becomes the tag's annotation results (`results`) and how those
results become an answer again (`answer_value`). What every control tag has in common (its name,
the objects it labels through `toName`, `required`, the `<Label>`/`<Choice>` children carrying
its labels, a `Header` before it) is read by `parse` and written by `config` for all tags alike.

Region tags (spans, shapes, time segments) share `RegionConverter`, which also carries their
per-region attributes both ways: Label Studio stores an attribute as a result of its own
(`from_name` the `perRegion` tag) with the region's `id` and the region's position repeated in
its `value`.

To support another Label Studio tag: write a `TagConverter` subclass here and add an instance to
`_ALL`. `parse`, `config` and `results` find it there and need no change (a tag that needs a new
kind of control needs that control in `app.label_schema.model` and its check in `answers`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeGuard

from app.core.errors import ValidationFailed, json_pointer
from app.label_schema.item_controls import (
    ChoicesControl,
    NumberControl,
    PairwiseControl,
    RatingControl,
    TaxonomyControl,
)
from app.label_schema.model import Control
from app.label_schema.region_controls import (
    Attribute,
    ChoicesAttribute,
    ImageControl,
    ListControl,
    RatingAttribute,
    SegmentsControl,
    SpansControl,
    TextAttribute,
)

Result = dict[str, Any]  # one entry of a Label Studio annotation's `result` list


@dataclass(frozen=True)
class ObjectTarget:
    """An object tag a control labels (`<Text name="review" value="$text"/>`)."""

    tag: str  # as written: "Text", "Image", "Audio", "List", ...
    name: str
    field: str | None  # None: a literal value (rating and number controls without a field)


Targets = tuple[ObjectTarget, ...]  # the objects of a control's toName, in order


@dataclass(frozen=True)
class BoundObject:
    """An object tag of a config being read, as a control's `toName` names it."""

    tag: str  # lower case
    shown: str  # as written
    name: str
    field: str | None  # None when `value` is literal content rather than "$field"
    video_sync: bool = False  # an Audio synced to a Video showing the same field


@dataclass(frozen=True)
class ObjectNeed:
    """An object tag a control needs in a generated config: its tag (None: any object showing
    the field will do, a Text when none does) and the field it shows; `video_sync` asks for a
    Video with an Audio synced to it (how Label Studio segments a video's timeline)."""

    tag: str | None
    field: str | None
    video_sync: bool = False


class ResultError(Exception):
    """A Label Studio result Tessera cannot read; `index` is its position in the result list."""

    def __init__(self, index: int | None, detail: str) -> None:
        super().__init__(detail)
        self.index, self.detail = index, detail


@dataclass(frozen=True)
class TagAttributes:
    """A control tag being read: its attributes (names lower-cased, as Label Studio reads them
    regardless of case), how messages name it (`<Choices name="sentiment">`), and where its
    problems go (with the tag's line)."""

    attrs: Mapping[str, str]
    where: str
    report: Callable[[str], None]

    def get(self, key: str, default: str = "") -> str:
        return self.attrs.get(key, default)

    def flag(self, key: str, *, default: bool) -> bool | None:
        """`true`/`false` (any case); None (reported) for anything else."""
        raw = self.attrs.get(key)
        if raw is None:
            return default
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        self.report(f'{self.where}: {key}="{raw}" is neither true nor false')
        return None

    def number(self, key: str, *, integer: bool = False) -> float | None:
        """A finite number (a whole one with `integer`); None when absent or (reported) bad."""
        raw = self.attrs.get(key)
        if raw is None:
            return None
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            kind = "a whole number" if integer else "a number"
            self.report(f'{self.where}: {key}="{raw}" is not {kind}')
            return None
        if value != value or value in (float("inf"), float("-inf")):
            self.report(f'{self.where}: {key}="{raw}" is not a finite number')
            return None
        return value


@dataclass
class Entries:
    """The results of one annotation, indexed for the converters reading them back."""

    results: Sequence[Any]
    by_from_name: dict[str, list[tuple[int, Result]]] = field(default_factory=dict)

    @classmethod
    def of(cls, results: Sequence[Any]) -> Entries:
        entries = cls(results)
        for index, entry in enumerate(results):
            if not isinstance(entry, Mapping):
                raise ResultError(index, "a result entry is an object")
            if entry.get("type") == "relation":
                continue  # relations between regions carry no answer Tessera keeps
            name = entry.get("from_name")
            if not isinstance(name, str):
                raise ResultError(index, "a result entry needs a from_name")
            if not isinstance(entry.get("value"), Mapping):
                raise ResultError(index, "a result entry needs a value object")
            entries.by_from_name.setdefault(name, []).append((index, dict(entry)))
        return entries

    def of_control(self, name: str) -> list[tuple[int, Result]]:
        return self.by_from_name.get(name, [])


class TagConverter:
    """One Label Studio control tag and the Tessera control type it stands for."""

    tag: ClassVar[str]  # as Label Studio writes it: "RectangleLabels"
    control_type: ClassVar[str]  # the Tessera control: "boxes"
    # The child tag a control may contain ("Label", "Choice"), and whether each one is a label.
    child_tag: ClassVar[str | None] = None
    children_are_labels: ClassVar[bool] = True
    # Whether the children nest (Taxonomy's `<Choice>` inside `<Choice>`).
    nested_children: ClassVar[bool] = False
    # The object tags (lower case) the tag may label; empty: any.
    object_kinds: ClassVar[tuple[str, ...]] = ()
    # Region tags label parts of their object (spans, shapes, segments).
    is_region: ClassVar[bool] = False
    # How many objects `toName` may name.
    min_objects: ClassVar[int] = 1
    max_objects: ClassVar[int] = 1
    # Whether the control must name a payload field through the object it labels.
    needs_field: ClassVar[bool] = True
    # Whether `value="$field"` may load the labels from the task data.
    dynamic_labels: ClassVar[bool] = False
    # Whether the tag may be a per-region attribute (`perRegion="true"`), and as what.
    attribute_type: ClassVar[str | None] = None
    # Whether the control must be answered unless the tag says otherwise (None: region tags).
    required_default: ClassVar[bool | None] = None
    # Schema keys Label Studio spells otherwise, for messages: {"max": "maxRating"}.
    attribute_names: ClassVar[Mapping[str, str]] = {}

    @property
    def kind(self) -> str:
        """The `type` of this tag's annotation results: the tag in lower case."""
        return self.tag.lower()

    @property
    def required_by_default(self) -> bool:
        # Label Studio's classification tags are optional unless they say required="true"; its
        # region tags have no such attribute and an empty list is a valid answer, so they keep
        # Tessera's default (the control must be present in the answer).
        return self.is_region if self.required_default is None else self.required_default

    # --- Label Studio -> Tessera

    def read(self, tag: TagAttributes, document: dict[str, Any]) -> None:
        """Add what is particular to this tag to the control `document` being built; report
        anything Tessera cannot express. The common attributes are already in `document`."""

    def bind(
        self, tag: TagAttributes, document: dict[str, Any], objects: Sequence[BoundObject]
    ) -> None:
        """Record in `document` the payload fields the objects of `toName` show: `field`, or
        `fields` for several objects."""
        fields = [o.field for o in objects]
        if any(f is None for f in fields):
            if self.needs_field:
                literal = next(o for o in objects if o.field is None)
                tag.report(
                    f'{tag.where} labels <{literal.shown} name="{literal.name}">, whose value is '
                    'not a "$field" reference to the item payload'
                )
            if len(objects) == 1:
                return
        if len(objects) == 1:
            document["field"] = fields[0]
        elif all(f is not None for f in fields):
            document["fields"] = fields
        else:
            tag.report(f'{tag.where}: every object of toName must show a "$field" of the item')

    def answer_value(
        self, control: Control, entries: list[tuple[int, Result]], payload: Mapping[str, Any]
    ) -> Any:
        """The answer value of `control` from its result entries (at least one); ResultError
        when they cannot be read."""
        raise NotImplementedError

    # --- Tessera -> Label Studio

    def objects_needed(self, control: Control) -> list[ObjectNeed]:
        """The object tags a generated config shows for `control`, in `toName` order."""
        fields = getattr(control, "fields", None) or [getattr(control, "field", None)]
        return [ObjectNeed(None, name) for name in fields]

    def config_attributes(self, control: Control) -> dict[str, str]:
        """The tag's attributes besides `name` and `toName`, in the order they are written."""
        return self.required_attribute(control)

    def required_attribute(self, control: Control) -> dict[str, str]:
        if control.required == self.required_by_default:
            return {}
        return {"required": "true" if control.required else "false"}

    def results(
        self,
        control: Control,
        value: Any,
        targets: Targets,
        payload: Mapping[str, Any] | None,
    ) -> list[Result]:
        """The annotation results for one (validated) answer `value` of `control`."""
        raise NotImplementedError

    def result(
        self, control: Control, targets: Targets, value: Result, region: int | None = None
    ) -> Result:
        return {
            "id": control.name if region is None else f"{control.name}-{region}",
            "from_name": control.name,
            "to_name": to_name(control, targets),
            "type": self.kind,
            "value": value,
        }

    def single(self, entries: list[tuple[int, Result]], control: Control) -> tuple[int, Result]:
        """The one entry a classification control has; ResultError for several."""
        if len(entries) > 1:
            raise ResultError(entries[1][0], f"{control.name!r} has more than one result")
        return entries[0]


def to_name(control: Control, targets: Targets) -> str:
    # Label Studio checks that a result's to_name is one of its control's toName objects; a
    # control with several (Pairwise, toName="a,b") names the first.
    return targets[0].name if targets else control.name


def _value_key(entry: tuple[int, Result], key: str, kind: type | tuple[type, ...]) -> Any:
    index, result = entry
    value = result["value"].get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ResultError(index, f"value.{key} is missing or malformed")
    return value


# --- classification tags ------------------------------------------------------------------------


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
        chosen = _value_key(entry, "choices", list)
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
    texts = _value_key(entry, "text", (list, str))
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
        return _value_key(self.single(entries, control), "rating", int)


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
        return _value_key(self.single(entries, control), "number", (int, float))


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
        paths = _value_key(entry, "taxonomy", list)
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
        return _value_key(self.single(entries, control), "selected", str)


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
        ranker = _value_key(entry, "ranker", Mapping)
        if control.name in ranker:
            order = ranker[control.name]
        elif len(ranker) == 1:
            order = next(iter(ranker.values()))
        else:
            raise ResultError(entry[0], "value.ranker holds buckets; only one order is supported")
        if not isinstance(order, list) or not all(isinstance(i, str) for i in order):
            raise ResultError(entry[0], "value.ranker holds a list of item ids")
        return order


# --- region tags --------------------------------------------------------------------------------


class RegionConverter(TagConverter):
    """Tags whose answer is a list of labelled regions of one object, each region with its
    per-region attributes."""

    child_tag = "Label"
    is_region = True
    dynamic_labels = True
    attribute_names = {"max_per_label": "maxUsages"}
    # The keys of a region's value that place it (everything but the label).
    value_keys: ClassVar[tuple[str, ...]] = ()

    def read(self, tag: TagAttributes, document: dict[str, Any]) -> None:
        if tag.get("choice", "single").lower() != "single":
            tag.report(f"{tag.where}: one label per region is supported, not several")
        max_usages = tag.number("maxusages", integer=True)
        if max_usages is not None:
            document["max_per_label"] = max_usages

    def config_attributes(self, control: Control) -> dict[str, str]:
        assert isinstance(control, ListControl)
        attrs = self.required_attribute(control)
        if control.max_per_label is not None:
            attrs["maxUsages"] = str(control.max_per_label)
        return attrs

    def objects_needed(self, control: Control) -> list[ObjectNeed]:
        return [ObjectNeed(self.object_kinds[0].capitalize(), getattr(control, "field", None))]

    # Each region tag places a region its own way.

    def place(self, control: ListControl, region: Mapping[str, Any], payload: Any) -> Result:
        """The region's value without its label (Tessera -> Label Studio)."""
        raise NotImplementedError

    def extras(self, control: ListControl, payload: Any) -> Result:
        """Keys the tag's results carry beside `value` (the image size, for shapes)."""
        return {}

    def locate(
        self, control: ListControl, index: int, entry: Result, payload: Mapping[str, Any]
    ) -> Result:
        """A region's Tessera keys (without its label) from a result (Label Studio -> Tessera)."""
        raise NotImplementedError

    def results(
        self,
        control: Control,
        value: Any,
        targets: Targets,
        payload: Mapping[str, Any] | None,
    ) -> list[Result]:
        assert isinstance(control, ListControl)
        if not value:
            return []
        context = self.context(control, payload)
        extras = self.extras(control, context)
        out: list[Result] = []
        for i, region in enumerate(value):
            placed = self.place(control, region, context)
            entry = self.result(control, targets, {**placed, self.kind: [region["label"]]}, i)
            entry.update(extras)
            out.append(entry)
            for name, answer in (region.get("attributes") or {}).items():
                attribute = control.attribute(name)
                assert attribute is not None  # the answer was validated
                out.append(
                    {
                        "id": entry["id"],
                        "from_name": name,
                        "to_name": entry["to_name"],
                        "type": ATTRIBUTE_KINDS[attribute.type],
                        "value": {**placed, **attribute_value(attribute, answer)},
                        **extras,
                    }
                )
        return out

    def context(self, control: ListControl, payload: Mapping[str, Any] | None) -> Any:
        """What placing regions needs from the item (the image size, the text)."""
        return payload

    def answer_value(
        self, control: Control, entries: list[tuple[int, Result]], payload: Mapping[str, Any]
    ) -> Any:
        raise NotImplementedError  # regions are read with their attributes: `answer_regions`

    def answer_regions(
        self,
        control: ListControl,
        entries: list[tuple[int, Result]],
        attributes: Mapping[str, list[tuple[int, Result]]],
        payload: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        """The regions of `control` from its entries, each with the attributes whose entries
        share its `id`."""
        regions: list[dict[str, Any]] = []
        by_id: dict[Any, dict[str, Any]] = {}
        for index, entry in entries:
            if entry.get("type") != self.kind:
                raise ResultError(index, f"type {entry.get('type')!r} is not {self.kind!r}")
            labels = entry["value"].get(self.kind)
            if not isinstance(labels, list) or len(labels) != 1 or not isinstance(labels[0], str):
                raise ResultError(index, f"value.{self.kind} must hold exactly one label")
            region = {**self.locate(control, index, entry, payload), "label": labels[0]}
            regions.append(region)
            if entry.get("id") is not None:
                by_id[entry["id"]] = region
        for name, attribute_entries in attributes.items():
            attribute = control.attribute(name)
            assert attribute is not None
            for index, entry in attribute_entries:
                owner = by_id.get(entry.get("id"))
                if owner is None:
                    continue  # the attribute of another region control on the same object
                owner.setdefault("attributes", {})[name] = read_attribute(attribute, (index, entry))
        return regions


ATTRIBUTE_KINDS = {"choices": "choices", "text": "textarea", "rating": "rating"}


def attribute_value(attribute: Attribute, value: Any) -> Result:
    if isinstance(attribute, ChoicesAttribute):
        return {"choices": value if isinstance(value, list) else [value]}
    if isinstance(attribute, TextAttribute):
        return {"text": [value]}
    return {"rating": value}


def read_attribute(attribute: Attribute, entry: tuple[int, Result]) -> Any:
    if isinstance(attribute, ChoicesAttribute):
        chosen = _value_key(entry, "choices", list)
        if attribute.multiple:
            return chosen
        if len(chosen) != 1:
            raise ResultError(entry[0], f"attribute {attribute.name!r} is a single choice")
        return chosen[0]
    if isinstance(attribute, TextAttribute):
        return text_value(entry)
    assert isinstance(attribute, RatingAttribute)
    return _value_key(entry, "rating", int)


class LabelsConverter(RegionConverter):
    """Spans: character offsets into a Text (Labels over Audio or Video are time segments,
    `SegmentsConverter`)."""

    tag = "Labels"
    control_type = "spans"
    object_kinds = ("text",)

    def place(self, control: ListControl, region: Mapping[str, Any], payload: Any) -> Result:
        assert isinstance(control, SpansControl)
        text = payload.get(control.field) if payload is not None else None
        placed: Result = {"start": region["start"], "end": region["end"]}
        if isinstance(text, str):
            placed["text"] = text[region["start"] : region["end"]]
        return placed

    def locate(
        self, control: ListControl, index: int, entry: Result, payload: Mapping[str, Any]
    ) -> Result:
        value = entry["value"]
        start, end = value.get("start"), value.get("end")
        if not _whole(start) or not _whole(end):
            raise ResultError(index, "a span's start and end are character offsets")
        return {"start": int(start), "end": int(end)}


def _whole(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


class SegmentsConverter(RegionConverter):
    """Time segments: Labels over an Audio (or a Video, or an Audio synced to a Video), start
    and end in seconds."""

    tag = "Labels"
    control_type = "segments"
    object_kinds = ("audio", "audioplus", "video")

    def bind(
        self, tag: TagAttributes, document: dict[str, Any], objects: Sequence[BoundObject]
    ) -> None:
        super().bind(tag, document, objects)
        if objects[0].tag == "video" or objects[0].video_sync:
            document["media"] = "video"

    def objects_needed(self, control: Control) -> list[ObjectNeed]:
        assert isinstance(control, SegmentsControl)
        return [ObjectNeed("Audio", control.field, video_sync=control.media == "video")]

    def place(self, control: ListControl, region: Mapping[str, Any], payload: Any) -> Result:
        return {"start": region["start"], "end": region["end"]}

    def locate(
        self, control: ListControl, index: int, entry: Result, payload: Mapping[str, Any]
    ) -> Result:
        value = entry["value"]
        start, end = value.get("start"), value.get("end")
        if not _finite(start) or not _finite(end):
            raise ResultError(index, "a segment's start and end are seconds")
        return {"start": start, "end": end}


def _finite(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class ShapeConverter(RegionConverter):
    """Shapes on an Image. Label Studio places them in percent of the image size (0-100), so the
    size must be known: the payload's size fields (`ImageControl.size_keys`)."""

    object_kinds = ("image",)

    def context(self, control: ListControl, payload: Mapping[str, Any] | None) -> Any:
        assert isinstance(control, ImageControl)
        return image_size(control, payload)

    def extras(self, control: ListControl, payload: Any) -> Result:
        width, height = payload
        return {"original_width": width, "original_height": height, "image_rotation": 0}

    def size_of(
        self, control: ListControl, index: int, entry: Result, payload: Mapping[str, Any]
    ) -> tuple[float, float]:
        """The image size a result's percentages refer to: its `original_width`/`_height`, or
        else the payload's."""
        width, height = entry.get("original_width"), entry.get("original_height")
        if _finite(width) and _finite(height) and width > 0 and height > 0:
            return width, height
        assert isinstance(control, ImageControl)
        try:
            return image_size(control, payload)
        except ValidationFailed:
            raise ResultError(index, "the image size is unknown (no original_width)") from None


class RectangleLabelsConverter(ShapeConverter):
    tag = "RectangleLabels"
    control_type = "boxes"

    def place(self, control: ListControl, region: Mapping[str, Any], payload: Any) -> Result:
        width, height = payload
        return {
            "x": _percent(region["x"], width),
            "y": _percent(region["y"], height),
            "width": _percent(region["width"], width),
            "height": _percent(region["height"], height),
            "rotation": 0,
        }

    def locate(
        self, control: ListControl, index: int, entry: Result, payload: Mapping[str, Any]
    ) -> Result:
        width, height = self.size_of(control, index, entry, payload)
        value = entry["value"]
        if not all(_finite(value.get(k)) for k in ("x", "y", "width", "height")):
            raise ResultError(index, "a rectangle needs x, y, width and height")
        if _finite(value.get("rotation")) and value["rotation"] % 360 != 0:
            raise ResultError(index, "rotated rectangles are not supported")
        return {
            "x": _pixels(value["x"], width),
            "y": _pixels(value["y"], height),
            "width": _pixels(value["width"], width),
            "height": _pixels(value["height"], height),
        }


class PolygonLabelsConverter(ShapeConverter):
    tag = "PolygonLabels"
    control_type = "polygons"

    def place(self, control: ListControl, region: Mapping[str, Any], payload: Any) -> Result:
        width, height = payload
        return {"points": [[_percent(x, width), _percent(y, height)] for x, y in region["points"]]}

    def locate(
        self, control: ListControl, index: int, entry: Result, payload: Mapping[str, Any]
    ) -> Result:
        width, height = self.size_of(control, index, entry, payload)
        points = entry["value"].get("points")
        if not isinstance(points, list) or not all(
            isinstance(p, list) and len(p) == 2 and _finite(p[0]) and _finite(p[1]) for p in points
        ):
            raise ResultError(index, "a polygon's points are [x, y] pairs")
        return {"points": [[_pixels(x, width), _pixels(y, height)] for x, y in points]}


class KeyPointLabelsConverter(ShapeConverter):
    tag = "KeyPointLabels"
    control_type = "keypoints"

    def place(self, control: ListControl, region: Mapping[str, Any], payload: Any) -> Result:
        # Label Studio tells keypoints from other shapes by `width`: the point's drawn size,
        # here one pixel.
        width, height = payload
        return {
            "x": _percent(region["x"], width),
            "y": _percent(region["y"], height),
            "width": _percent(1, width),
        }

    def locate(
        self, control: ListControl, index: int, entry: Result, payload: Mapping[str, Any]
    ) -> Result:
        width, height = self.size_of(control, index, entry, payload)
        value = entry["value"]
        if not _finite(value.get("x")) or not _finite(value.get("y")):
            raise ResultError(index, "a keypoint needs x and y")
        return {"x": _pixels(value["x"], width), "y": _pixels(value["y"], height)}


def _percent(value: float, extent: float) -> float:
    return value / extent * 100


def _pixels(percent: float, extent: float) -> float:
    value = percent * extent / 100
    # Undo the float noise of a pixels -> percent -> pixels trip (20 px of 300 comes back as
    # 20.000000000000004): a value this close to a whole pixel is that pixel.
    nearest = round(value)
    return float(nearest) if abs(value - nearest) <= 1e-9 * max(1.0, abs(value)) else value


def image_size(control: ImageControl, payload: Mapping[str, Any] | None) -> tuple[Any, Any]:
    """The image's width and height from the payload, as given there (pixels); `ValidationFailed`
    when either is missing or not a positive number."""
    size = []
    for key in control.size_keys:
        value = payload.get(key) if payload is not None else None
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValidationFailed(
                "Label Studio needs the image size",
                errors=[
                    {
                        "pointer": json_pointer([control.name]),
                        "detail": "the image size is unknown: Label Studio places shapes in "
                        "percent of it; set width_field and height_field and give them in the "
                        "item payload (or give original_width and original_height there)",
                    }
                ],
            )
        size.append(value)
    return size[0], size[1]


# --- the registry -------------------------------------------------------------------------------

_ALL: tuple[TagConverter, ...] = (
    ChoicesConverter(),
    LabelsConverter(),
    SegmentsConverter(),
    RectangleLabelsConverter(),
    PolygonLabelsConverter(),
    KeyPointLabelsConverter(),
    TextAreaConverter(),
    RatingConverter(),
    NumberConverter(),
    TaxonomyConverter(),
    PairwiseConverter(),
    RankerConverter(),
)

#: Converters by Label Studio tag in lower case (Label Studio reads tag names regardless of
#: case); a tag standing for several controls (Labels: spans or segments) has one per object kind.
_BY_TAG: dict[str, tuple[TagConverter, ...]] = {}
for _converter in _ALL:
    _BY_TAG[_converter.tag.lower()] = (*_BY_TAG.get(_converter.tag.lower(), ()), _converter)
CONVERTERS: Mapping[str, tuple[TagConverter, ...]] = _BY_TAG

#: The converter that writes each control type back.
_BY_CONTROL_TYPE: dict[str, TagConverter] = {c.control_type: c for c in _ALL}

#: For messages: the control tags Tessera reads.
SUPPORTED_TAGS = ", ".join(dict.fromkeys(c.tag for c in _ALL))


def converter_for(control: Control) -> TagConverter:
    """The converter that writes `control` as a Label Studio tag."""
    return _BY_CONTROL_TYPE[control.type]
