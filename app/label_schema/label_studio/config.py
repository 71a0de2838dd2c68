"""`LabelSchema` -> a Label Studio XML labeling config, to load a job's exported answers into.

Each control becomes its converter's tag (`tags`), bound to an object tag showing its payload
field; `object_targets` decides those object tags, and `results` uses the same decision so the
exported annotations name the objects of this config.
"""

from __future__ import annotations

# The standard library only builds and serializes our own XML here.
from xml.etree.ElementTree import Element, SubElement, indent, tostring

from app.label_schema.label_studio.tags import ObjectTarget, converter_for
from app.label_schema.model import LabelledControl, LabelSchema


def label_studio_config(schema: LabelSchema) -> str:
    """A Label Studio XML labeling config for `schema`, to load exported answers into.

    Reading it back with `label_schema_from_label_studio` gives the same schema when the schema
    uses only what Label Studio can express; Tessera-only settings (counts, overlap, image-size
    fields, IoU thresholds, tolerances, text lengths, normalization, descriptions, choices
    min/max) take their defaults.
    """
    targets = object_targets(schema)
    root = Element("View")
    shown: set[str] = set()
    for control in schema.controls:
        target = targets[control.name]
        if target.name not in shown:
            shown.add(target.name)
            value = f"${target.field}" if target.field is not None else ""
            SubElement(root, target.tag, {"name": target.name, "value": value})
        converter = converter_for(control)
        attrs = {
            "name": control.name,
            "toName": target.name,
            **converter.config_attributes(control),
        }
        element = SubElement(root, converter.tag, attrs)
        if converter.children_are_labels and converter.child_tag is not None:
            assert isinstance(control, LabelledControl)
            for label in control.labels:
                SubElement(element, converter.child_tag, {"value": label})
    indent(root)
    return tostring(root, encoding="unicode")


def object_targets(schema: LabelSchema) -> dict[str, ObjectTarget]:
    """The object tag each control labels in our generated config, by control name.

    Region controls need their kind of object (spans a Text, shapes an Image); other controls
    share any object showing their field (or get a Text of their own). Rating and number controls
    without a field label an empty literal Text, so the field stays unset when the config is read
    back. Object names are the field names, made unique against controls and each other.
    """
    taken = {control.name for control in schema.controls}
    by_key: dict[tuple[str, str | None], ObjectTarget] = {}
    by_field: dict[str | None, ObjectTarget] = {}
    out: dict[str, ObjectTarget] = {}

    def make(tag: str, field_name: str | None) -> ObjectTarget:
        existing = by_key.get((tag, field_name))
        if existing is not None:
            return existing
        base = field_name if field_name is not None else "item"
        name, n = base, 2
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name)
        target = ObjectTarget(tag, name, field_name)
        by_key[(tag, field_name)] = target
        by_field.setdefault(field_name, target)
        return target

    for control in schema.controls:
        region = converter_for(control).region_object
        if region is not None:
            out[control.name] = make(region, control.field)
    for control in schema.controls:
        if control.name in out:
            continue
        field_name = control.field
        if field_name is None:
            out[control.name] = make("Text", None)
        else:
            out[control.name] = by_field.get(field_name) or make("Text", field_name)
    return out
