"""`LabelSchema` -> a Label Studio XML labeling config, to load a job's exported answers into.

Each control becomes its converter's tag (`tags`), bound to object tags showing its payload
fields; `generated_targets` decides those object tags, and `results` uses the same decision so the
exported annotations name the objects of this config. A control's description becomes a `Header`
before it, and per-region attributes become `perRegion` tags on their control's object.
"""

from __future__ import annotations

from dataclasses import dataclass

# The standard library only builds and serializes our own XML here.
from xml.etree.ElementTree import Element, SubElement, indent, tostring

from app.label_schema.control_base import LabelledControl
from app.label_schema.item_controls import TaxonomyControl, TaxonomyNode
from app.label_schema.label_studio.converter import ObjectNeed, ObjectTarget, Targets
from app.label_schema.label_studio.tags import converter_for
from app.label_schema.model import LabelSchema
from app.label_schema.region_controls import (
    Attribute,
    ChoicesAttribute,
    ListControl,
    RangesControl,
    RatingAttribute,
)

_ATTRIBUTE_TAGS = {"choices": "Choices", "text": "TextArea", "rating": "Rating"}


def label_studio_config(schema: LabelSchema) -> str:
    """A Label Studio XML labeling config for `schema`, to load exported answers into.

    Reading it back with `label_schema_from_label_studio` gives the same schema when the schema
    uses only what Label Studio can express; Tessera-only settings (counts, overlap, image-size
    fields, IoU thresholds, tolerances, text lengths, normalization, choices min/max) take
    their defaults.
    """
    layout = _Layout(schema)
    root = Element("View")
    shown: set[str] = set()
    for control in schema.controls:
        targets = layout.targets[control.name]
        for target in targets:
            if target.name not in shown:
                shown.add(target.name)
                _object(root, target, layout)
        converter = converter_for(control)
        if not converter.writes_tag:
            continue  # a Chat's messages: the object is the tag, their questions perRegion tags
        if control.description:
            SubElement(root, "Header", {"value": control.description})
        attrs = {
            "name": control.name,
            "toName": ",".join(t.name for t in targets) if targets else "",
            **converter.config_attributes(control),
        }
        if isinstance(control, LabelledControl) and control.labels_field:
            attrs["value"] = f"${control.labels_field}"
        element = SubElement(root, converter.tag, attrs)
        if isinstance(control, TaxonomyControl):
            _tree(element, control.taxonomy)
        elif isinstance(control, LabelledControl) and converter.child_tag is not None:
            limits = control.label_limits if isinstance(control, ListControl) else {}
            for label in control.labels:
                child = {"value": label}
                if label in limits:
                    child["maxUsages"] = str(limits[label])
                SubElement(element, converter.child_tag, child)
    _attributes(root, schema, layout)
    indent(root)
    return tostring(root, encoding="unicode")


def generated_targets(schema: LabelSchema) -> dict[str, Targets]:
    """The object tags each control labels in the config `label_studio_config` writes."""
    return _Layout(schema).targets


@dataclass(frozen=True)
class _Synced:
    """The Video an Audio object plays along with, for time segments of a video."""

    video: str


class _Layout:
    """Object tags for a schema: region controls get their kind of object (spans a Text, shapes
    an Image, time segments an Audio), other controls share any object showing their field (or
    get a Text of their own). Rating and number controls without a field label an empty literal
    Text, so the field stays unset when the config is read back. Object names are the field
    names, made unique against controls, attributes and each other."""

    def __init__(self, schema: LabelSchema) -> None:
        self.taken = {control.name for control in schema.controls}
        for control in schema.controls:
            if isinstance(control, ListControl):
                self.taken.update(a.name for a in control.attributes)
        self.by_key: dict[tuple[str, str | None], ObjectTarget] = {}
        self.by_field: dict[str | None, ObjectTarget] = {}
        self.synced: dict[str, _Synced] = {}
        self.targets: dict[str, Targets] = {}
        self.text_keys: dict[str | None, str] = {
            c.field: c.text_key for c in schema.controls if isinstance(c, RangesControl)
        }
        needs = {c.name: converter_for(c).objects_needed(c) for c in schema.controls}
        # Objects of a definite kind first, so that controls open to any object share them.
        for control in schema.controls:
            if all(need.tag is not None for need in needs[control.name]):
                self.targets[control.name] = tuple(self.make(need) for need in needs[control.name])
        for control in schema.controls:
            if control.name not in self.targets:
                self.targets[control.name] = tuple(
                    self.make(need) if need.tag is not None else self.any_for(need.field)
                    for need in needs[control.name]
                )
        # Keep the order the controls come in, as `label_studio_config` walks them.
        self.targets = {c.name: self.targets[c.name] for c in schema.controls}

    def name_for(self, base: str) -> str:
        name, n = base, 2
        while name in self.taken:
            name, n = f"{base}_{n}", n + 1
        self.taken.add(name)
        return name

    def make(self, need: ObjectNeed) -> ObjectTarget:
        assert need.tag is not None
        key = (f"{need.tag}+video" if need.video_sync else need.tag, need.field)
        existing = self.by_key.get(key)
        if existing is not None:
            return existing
        base = need.field if need.field is not None else "item"
        # A Chat is named as its control is (read back, the control takes the object's name).
        name = need.name if need.name is not None else self.name_for(base)
        target = ObjectTarget(need.tag, name, need.field)
        if need.video_sync:
            self.synced[target.name] = _Synced(self.name_for(f"{base}_video"))
        self.by_key[key] = target
        if not need.video_sync and need.tag != "List":
            self.by_field.setdefault(need.field, target)
        return target

    def any_for(self, field_name: str | None) -> ObjectTarget:
        if field_name is None:
            return self.make(ObjectNeed("Text", None))
        return self.by_field.get(field_name) or self.make(ObjectNeed("Text", field_name))


def _object(root: Element, target: ObjectTarget, layout: _Layout) -> None:
    value = f"${target.field}" if target.field is not None else ""
    synced = layout.synced.get(target.name)
    if target.tag == "TimeSeries":
        # Label Studio draws a time series by channels; a generated config shows the payload's
        # `{"time": [...], "value": [...]}` (a job made from a config keeps that config's own).
        series = SubElement(
            root,
            "TimeSeries",
            {"name": target.name, "value": value, "valueType": "json", "timeColumn": "time"},
        )
        SubElement(series, "Channel", {"column": "value"})
        return
    if target.tag == "Paragraphs":
        key = layout.text_keys.get(target.field, "text")
        attrs = {"name": target.name, "value": value, "textKey": key, "nameKey": "author"}
        SubElement(root, "Paragraphs", attrs)
        return
    if synced is None:
        SubElement(root, target.tag, {"name": target.name, "value": value})
        return
    # Label Studio segments a video's timeline through an Audio synced to it.
    SubElement(root, "Video", {"name": synced.video, "value": value, "sync": target.name})
    SubElement(root, target.tag, {"name": target.name, "value": value, "sync": synced.video})


def _tree(parent: Element, nodes: list[TaxonomyNode]) -> None:
    for node in nodes:
        _tree(SubElement(parent, "Choice", {"value": node.value}), node.children)


def _attributes(root: Element, schema: LabelSchema, layout: _Layout) -> None:
    """One `perRegion` tag per attribute and object: `whenTagName` names the control when the
    attribute belongs to only one of several region controls on that object."""
    by_object: dict[str, list[tuple[str, Attribute]]] = {}
    region_controls: dict[str, list[str]] = {}
    for control in schema.controls:
        if not isinstance(control, ListControl):
            continue
        target = layout.targets[control.name][0].name
        region_controls.setdefault(target, []).append(control.name)
        for attribute in control.attributes:
            by_object.setdefault(target, []).append((control.name, attribute))
    for target, entries in by_object.items():
        owners: dict[str, list[str]] = {}
        definitions: dict[str, Attribute] = {}
        for control_name, attribute in entries:
            owners.setdefault(attribute.name, []).append(control_name)
            definitions[attribute.name] = attribute
        for name, attribute in definitions.items():
            if attribute.description:
                SubElement(root, "Header", {"value": attribute.description})
            attrs = {"name": name, "toName": target, "perRegion": "true"}
            if isinstance(attribute, ChoicesAttribute) and attribute.multiple:
                attrs["choice"] = "multiple"
            if attribute.required:
                attrs["required"] = "true"
            if isinstance(attribute, RatingAttribute):
                attrs["maxRating"] = str(attribute.max)
            if len(owners[name]) == 1 and (
                len(region_controls[target]) > 1 or attribute.when_labels
            ):
                attrs["whenTagName"] = owners[name][0]
            if attribute.when_labels:
                attrs["whenLabelValue"] = ",".join(attribute.when_labels)
            element = SubElement(root, _ATTRIBUTE_TAGS[attribute.type], attrs)
            if isinstance(attribute, ChoicesAttribute):
                for label in attribute.labels:
                    SubElement(element, "Choice", {"value": label})
