"""Label Studio interop (see docs/label-schema.md, "Label Studio configs").

Import: a Label Studio XML labeling config becomes a `LabelSchema`. Export: a schema becomes an
XML config, and one answer becomes the `result` list of a Label Studio annotation, so a job's
answers can be loaded back into Label Studio.

Configs come from clients, so they are parsed with defusedxml: DTDs (and with them entity
expansion and external entities) are refused before anything is expanded or fetched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The standard library only builds and serializes our own XML here; parsing is defusedxml's.
from xml.etree.ElementTree import (
    Element,
    SubElement,
    TreeBuilder,
    indent,
    tostring,
)

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, ParseError
from pydantic import ValidationError

from app.core.errors import ValidationFailed, json_pointer
from app.jobs.label_schema import (
    BoxesControl,
    ChoicesControl,
    Control,
    KeypointsControl,
    LabelSchema,
    NumberControl,
    PolygonsControl,
    Problem,
    RatingControl,
    SpansControl,
    TextControl,
    schema_error_paths,
    validate_answer,
)

# Label Studio control tag (lower case: Label Studio reads tag and attribute names without regard
# to case) -> our control type.
_CONTROL_TYPES = {
    "choices": "choices",
    "labels": "spans",
    "rectanglelabels": "boxes",
    "polygonlabels": "polygons",
    "keypointlabels": "keypoints",
    "textarea": "text",
    "rating": "rating",
    "number": "number",
}
_SUPPORTED = (
    "Choices, Labels, RectangleLabels, PolygonLabels, KeyPointLabels, TextArea, Rating, Number"
)
# The object a region control must label: spans are character offsets into a text, shapes are
# pixels of an image. Labels over Audio (time segments) or HyperText (XPath ranges) would be
# something else entirely.
_REGION_OBJECTS = {
    "labels": "text",
    "rectanglelabels": "image",
    "polygonlabels": "image",
    "keypointlabels": "image",
}
# Tags that only arrange or decorate the interface; their children are still read.
_LAYOUT_TAGS = frozenset(("view", "header", "style", "collapse", "filter"))
# Tags that show the item; `value="$field"` names the payload field controls label.
_OBJECT_TAGS = frozenset(
    (
        "text",
        "image",
        "audio",
        "audioplus",
        "hypertext",
        "video",
        "paragraphs",
        "table",
        "timeseries",
        "pdf",
    )
)
# Children a control may have, other than layout tags.
_CHILD_TAGS = {
    "choices": "choice",
    "labels": "label",
    "rectanglelabels": "label",
    "polygonlabels": "label",
    "keypointlabels": "label",
    "textarea": "shortcut",
}
_FIELD_REF = re.compile(r"^\$(.+)$", re.DOTALL)


# --- Import -----------------------------------------------------------------------------------


class _LineTarget:
    """Builds the element tree like ElementTree does, noting the line each element starts on."""

    def __init__(self) -> None:
        self.builder = TreeBuilder()
        self.lines: dict[Element, int] = {}
        self.expat: Any = None

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        element = self.builder.start(tag, attrs)
        self.lines[element] = self.expat.CurrentLineNumber
        return element

    def end(self, tag: str) -> Element:
        return self.builder.end(tag)

    def data(self, data: str) -> None:
        self.builder.data(data)

    def close(self) -> Element:
        return self.builder.close()


def _parse_xml(xml: str) -> tuple[Element, dict[Element, int]]:
    target = _LineTarget()
    parser = DefusedXMLParser(target=target, forbid_dtd=True)
    target.expat = parser.parser
    try:
        parser.feed(xml)
        root: Element = parser.close()
    except DefusedXmlException:
        line = target.expat.CurrentLineNumber
        raise ValidationFailed(
            "The Label Studio config is refused",
            errors=[
                {
                    "line": line,
                    "detail": "DTDs, entity declarations and external references are not allowed "
                    "in a labeling config",
                }
            ],
        ) from None
    except (ParseError, ValueError) as exc:
        position = getattr(exc, "position", None)
        problem: Problem = {"detail": f"not well-formed XML: {exc}"}
        if position:
            problem["line"] = position[0]
        raise ValidationFailed(
            "The Label Studio config is not valid XML", errors=[problem]
        ) from None
    return root, target.lines


def _tag(element: Element) -> str:
    """The element's tag without any namespace, lower-cased."""
    return _shown(element).lower()


def _shown(element: Element) -> str:
    """The element's tag as written, without any namespace, for messages."""
    return element.tag.rsplit("}", 1)[-1]


def _attrs(element: Element) -> dict[str, str]:
    return {key.rsplit("}", 1)[-1].lower(): value for key, value in element.attrib.items()}


@dataclass
class _Object:
    tag: str  # lower case
    shown: str  # as written
    name: str
    field: str | None  # None when `value` is literal content rather than "$field"


@dataclass
class _Converted:
    """One control tag on its way to becoming a control: where it was, for error messages."""

    tag: str
    name: str
    line: int | None
    label_lines: list[int | None] = field(default_factory=list)


class _Importer:
    def __init__(self, root: Element, lines: dict[Element, int]) -> None:
        self.root = root
        self.lines = lines
        self.problems: list[Problem] = []
        self.unsupported: dict[str, None] = {}
        self.objects: dict[str, _Object] = {}
        self.documents: list[dict[str, Any]] = []
        self.converted: list[_Converted] = []

    def problem(self, element: Element | None, detail: str) -> None:
        line = self.lines.get(element) if element is not None else None
        self.problems.append({"line": line, "detail": detail} if line else {"detail": detail})

    def run(self) -> LabelSchema:
        self.collect_objects()
        self.visit(self.root)
        if not self.documents and not self.problems:
            self.problem(None, f"no control tag found; supported control tags: {_SUPPORTED}")
        if self.problems:
            detail = "The Label Studio config could not be converted"
            if self.unsupported:
                detail = "Label Studio tags not supported: " + ", ".join(self.unsupported)
            raise ValidationFailed(detail, errors=self.problems)
        try:
            return LabelSchema.model_validate({"controls": self.documents}, strict=True)
        except ValidationError as exc:
            raise ValidationFailed(
                "The Label Studio config could not be converted",
                errors=[self.located(path, message) for path, message in schema_error_paths(exc)],
            ) from None

    def collect_objects(self) -> None:
        for element in self.root.iter():
            if _tag(element) not in _OBJECT_TAGS:
                continue
            attrs = _attrs(element)
            name = attrs.get("name")
            if not name:
                continue  # an object no control can name
            if name in self.objects:
                self.problem(element, f"two object tags are named {name!r}")
                continue
            ref = _FIELD_REF.match(attrs.get("value", ""))
            self.objects[name] = _Object(
                _tag(element), _shown(element), name, ref.group(1) if ref else None
            )

    def visit(self, element: Element) -> None:
        tag = _tag(element)
        if tag in _LAYOUT_TAGS:
            for child in element:
                self.visit(child)
        elif tag in _CONTROL_TYPES:
            self.convert(element, tag)
        elif tag not in _OBJECT_TAGS:
            name = _shown(element)
            self.unsupported.setdefault(name, None)
            self.problem(
                element, f"<{name}> is not supported; supported control tags: {_SUPPORTED}"
            )

    def convert(self, element: Element, tag: str) -> None:
        attrs = _attrs(element)
        shown = _shown(element)
        name = attrs.get("name", "")
        where = f'<{shown} name="{name}">' if name else f"<{shown}>"
        if not name:
            self.problem(element, f"{where} has no name")
        for flag in ("perregion", "peritem"):
            if attrs.get(flag, "").lower() == "true":
                self.problem(element, f"{where}: {flag} is not supported; label the whole item")
        control_type = _CONTROL_TYPES[tag]
        document: dict[str, Any] = {"name": name, "type": control_type}
        # Label Studio's classification tags are optional unless they say required="true"; its
        # region tags have no such attribute and an empty list is a valid answer, so they keep
        # Tessera's default (the control must be present in the answer).
        region = tag in _REGION_OBJECTS
        required = self.flag(element, attrs, where, "required", default=region)
        if required is not None:
            document["required"] = required
        target = self.bound_object(element, attrs, where, tag)
        if target is not None:
            if target.field is not None:
                document["field"] = target.field
            elif control_type not in ("rating", "number"):
                self.problem(
                    element,
                    f'{where} labels <{target.shown} name="{target.name}">, whose value is not a '
                    '"$field" reference to the item payload',
                )
        converted = _Converted(shown, name, self.lines.get(element))
        labels = self.children(element, tag, where, converted)
        if tag in _CHILD_TAGS and tag != "textarea":
            document["labels"] = labels
            if attrs.get("value", "").startswith("$"):
                self.problem(
                    element, f"{where}: labels loaded from the task data are not supported"
                )
        if tag == "choices":
            choice = attrs.get("choice", "single").lower()
            if choice not in ("single", "single-radio", "multiple"):
                self.problem(
                    element,
                    f'{where}: choice="{choice}" is not one of single, single-radio, multiple',
                )
            document["multiple"] = choice == "multiple"
        elif region and attrs.get("choice", "single").lower() != "single":
            self.problem(element, f"{where}: one label per region is supported, not several")
        elif tag == "rating":
            max_rating = self.number(element, attrs, where, "maxrating", integer=True)
            if max_rating is not None:
                document["max"] = max_rating
        elif tag == "number":
            self.convert_number(element, attrs, where, document)
        self.documents.append(document)
        self.converted.append(converted)

    def convert_number(
        self, element: Element, attrs: dict[str, str], where: str, document: dict[str, Any]
    ) -> None:
        low = self.number(element, attrs, where, "min")
        high = self.number(element, attrs, where, "max")
        step = self.number(element, attrs, where, "step")
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

    def bound_object(
        self, element: Element, attrs: dict[str, str], where: str, tag: str
    ) -> _Object | None:
        to_name = attrs.get("toname")
        if to_name is None:
            # Label Studio lets TextArea leave toName out; with a single object tag there is no
            # doubt what any control means, so that is accepted for every tag.
            if len(self.objects) == 1:
                return next(iter(self.objects.values()))
            if tag in ("rating", "number"):
                return None
            self.problem(element, f"{where} has no toName")
            return None
        if "," in to_name:
            self.problem(element, f"{where}: toName names several objects; one is supported")
            return None
        target = self.objects.get(to_name)
        if target is None:
            self.problem(element, f'{where}: toName="{to_name}" names no object tag')
            return None
        wanted = _REGION_OBJECTS.get(tag)
        if wanted is not None and target.tag != wanted:
            self.problem(
                element,
                f"{where} can only label <{wanted.capitalize()}>, not "
                f'<{target.shown} name="{target.name}">',
            )
            return None
        return target

    def children(self, element: Element, tag: str, where: str, converted: _Converted) -> list[str]:
        """The control's label values (from <Label>/<Choice>), checking what else it contains."""
        allowed = _CHILD_TAGS.get(tag)
        labels: list[str] = []
        for child in element.iter():
            if child is element:
                continue
            child_tag = _tag(child)
            if child_tag in _LAYOUT_TAGS:
                continue
            if child_tag != allowed:
                self.problem(child, f"{where} cannot contain <{_shown(child)}>")
                continue
            if child_tag == "shortcut":
                continue
            attrs = _attrs(child)
            # Label Studio writes a label's alias, when it has one, into its results.
            value = attrs.get("alias") or attrs.get("value")
            if value is None:
                self.problem(child, f"<{_shown(child)}> in {where} has no value")
                continue
            labels.append(value)
            converted.label_lines.append(self.lines.get(child))
        return labels

    def flag(
        self, element: Element, attrs: dict[str, str], where: str, key: str, *, default: bool
    ) -> bool | None:
        raw = attrs.get(key)
        if raw is None:
            return default
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        self.problem(element, f'{where}: {key}="{raw}" is neither true nor false')
        return None

    def number(
        self,
        element: Element,
        attrs: dict[str, str],
        where: str,
        key: str,
        *,
        integer: bool = False,
    ) -> float | None:
        raw = attrs.get(key)
        if raw is None:
            return None
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            kind = "a whole number" if integer else "a number"
            self.problem(element, f'{where}: {key}="{raw}" is not {kind}')
            return None
        if value != value or value in (float("inf"), float("-inf")):
            self.problem(element, f'{where}: {key}="{raw}" is not a finite number')
            return None
        return value

    def located(self, path: list[str | int], message: str) -> Problem:
        """A schema error from pydantic, moved back onto the tag (and attribute) it came from."""
        if len(path) < 2 or path[0] != "controls" or not isinstance(path[1], int):
            return {"detail": message}
        converted = self.converted[path[1]]
        where = f'<{converted.tag} name="{converted.name}">'
        key = path[2] if len(path) > 2 else None
        line = converted.line
        if key == "labels" and len(path) > 3 and isinstance(path[3], int):
            line = converted.label_lines[path[3]]
            subject = f"label {path[3] + 1} of {where}"
        elif key is None:
            subject = where
        else:
            subject = f"{where} {_LS_ATTRIBUTES.get((converted.tag.lower(), str(key)), key)}"
        problem: Problem = {"detail": f"{subject}: {message}"}
        if line:
            problem["line"] = line
        return problem


_LS_ATTRIBUTES = {
    ("rating", "max"): "maxRating",
}


def label_schema_from_label_studio(xml: str) -> LabelSchema:
    """Convert a Label Studio XML labeling config into a label schema.

    Supported control tags: Choices, Labels (spans over a Text), RectangleLabels, PolygonLabels,
    KeyPointLabels (over an Image), TextArea, Rating, Number, each bound by `toName` to an object
    tag whose `value="$field"` names the payload field. Layout tags (View, Header, Style, ...) and
    object tags are read but produce no control. Raises `ValidationFailed` listing every problem
    (with the `line` it is on where known): malformed or hostile XML (DTDs, entities, external
    references), and any other tag, named in the error.
    """
    root, lines = _parse_xml(xml)
    return _Importer(root, lines).run()


# --- Export -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    tag: str  # "Text" or "Image"
    name: str
    field: str | None


def _targets(schema: LabelSchema) -> dict[str, _Target]:
    """The object tag each control labels in our generated config, by control name.

    Spans need a Text and shapes an Image; other controls share any object showing their field
    (or get a Text of their own). Rating and number controls without a field label an empty
    literal Text, so the field stays unset when the config is read back. Object names are the
    field names, made unique against controls and each other.
    """
    taken = {control.name for control in schema.controls}
    by_key: dict[tuple[str, str | None], _Target] = {}
    by_field: dict[str | None, _Target] = {}
    out: dict[str, _Target] = {}

    def make(tag: str, field_name: str | None) -> _Target:
        existing = by_key.get((tag, field_name))
        if existing is not None:
            return existing
        base = field_name if field_name is not None else "item"
        name, n = base, 2
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name)
        target = _Target(tag, name, field_name)
        by_key[(tag, field_name)] = target
        by_field.setdefault(field_name, target)
        return target

    for control in schema.controls:
        if isinstance(control, SpansControl):
            out[control.name] = make("Text", control.field)
        elif isinstance(control, BoxesControl | PolygonsControl | KeypointsControl):
            out[control.name] = make("Image", control.field)
    for control in schema.controls:
        if control.name in out:
            continue
        field_name = control.field
        if field_name is None:
            out[control.name] = make("Text", None)
        else:
            out[control.name] = by_field.get(field_name) or make("Text", field_name)
    return out


def _format_number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


_EXPORT_TAGS = {
    "choices": "Choices",
    "spans": "Labels",
    "boxes": "RectangleLabels",
    "polygons": "PolygonLabels",
    "keypoints": "KeyPointLabels",
    "text": "TextArea",
    "rating": "Rating",
    "number": "Number",
}


def label_studio_config(schema: LabelSchema) -> str:
    """A Label Studio XML labeling config for `schema`, to load exported answers into.

    Reading it back with `label_schema_from_label_studio` gives the same schema when the schema
    uses only what Label Studio can express; Tessera-only settings (counts, overlap, image-size
    fields, IoU thresholds, tolerances, text lengths, normalization, descriptions, choices
    min/max) take their defaults.
    """
    targets = _targets(schema)
    root = Element("View")
    shown: set[str] = set()
    for control in schema.controls:
        target = targets[control.name]
        if target.name not in shown:
            shown.add(target.name)
            value = f"${target.field}" if target.field is not None else ""
            SubElement(root, target.tag, {"name": target.name, "value": value})
        attrs = {"name": control.name, "toName": target.name}
        child = "Label"
        if isinstance(control, ChoicesControl):
            child = "Choice"
            if control.multiple:
                attrs["choice"] = "multiple"
        if isinstance(control, ChoicesControl | TextControl | RatingControl | NumberControl):
            if control.required:
                attrs["required"] = "true"
        elif not control.required:
            attrs["required"] = "false"
        if isinstance(control, TextControl):
            attrs["maxSubmissions"] = "1"  # one answer string
        elif isinstance(control, RatingControl):
            attrs["maxRating"] = str(control.max)
        elif isinstance(control, NumberControl):
            if control.min is not None:
                attrs["min"] = _format_number(control.min)
            if control.max is not None:
                attrs["max"] = _format_number(control.max)
            if control.integer:
                attrs["step"] = "1"
        element = SubElement(root, _EXPORT_TAGS[control.type], attrs)
        for label in getattr(control, "labels", ()):
            SubElement(element, child, {"value": label})
    indent(root)
    return tostring(root, encoding="unicode")


def _percent(value: float, extent: float) -> float:
    return value / extent * 100


def label_studio_result(
    schema: LabelSchema, answer: Mapping[str, Any], payload: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One answer as the `result` list of a Label Studio annotation for `label_studio_config`.

    Each entry has `id`, `from_name` (the control), `to_name` (its object tag), `type` and
    `value`: choices `{"choices": [...]}`, spans `{"start", "end", "text", "labels"}` (character
    offsets; `text` when the payload has it), text `{"text": [...]}`, rating `{"rating": n}`,
    number `{"number": n}`. Boxes, polygons and keypoints are in percent of the image size (0-100)
    with `original_width`/`original_height`, so the image size must be in the payload. Controls
    left out of the answer, and empty choices or text, give no entry.

    Raises `ValidationFailed` when the answer does not validate against the schema, or when a
    shape's image size is unknown.
    """
    problems = validate_answer(schema, answer, payload)
    if problems:
        raise ValidationFailed("The answer does not match the label schema", errors=problems)
    targets = _targets(schema)
    results: list[dict[str, Any]] = []
    for control in schema.controls:
        if control.name in answer:
            results.extend(_results(control, answer[control.name], targets[control.name], payload))
    return results


def _results(
    control: Control, value: Any, target: _Target, payload: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    def entry(kind: str, result: dict[str, Any], region: int | None = None) -> dict[str, Any]:
        return {
            "id": control.name if region is None else f"{control.name}-{region}",
            "from_name": control.name,
            "to_name": target.name,
            "type": kind,
            "value": result,
        }

    if isinstance(control, ChoicesControl):
        chosen = value if isinstance(value, list) else [value]
        return [entry("choices", {"choices": list(chosen)})] if chosen else []
    if isinstance(control, TextControl):
        return [entry("textarea", {"text": [value]})] if value else []
    if isinstance(control, RatingControl):
        return [entry("rating", {"rating": value})]
    if isinstance(control, NumberControl):
        return [entry("number", {"number": value})]
    if isinstance(control, SpansControl):
        text = payload.get(control.field) if payload is not None else None
        spans = []
        for i, span in enumerate(value):
            result: dict[str, Any] = {"start": span["start"], "end": span["end"]}
            if isinstance(text, str):
                result["text"] = text[span["start"] : span["end"]]
            result["labels"] = [span["label"]]
            spans.append(entry("labels", result, i))
        return spans
    if not value:
        return []
    width, height = _image_size(control, payload)
    shapes = []
    for i, shape in enumerate(value):
        if isinstance(control, BoxesControl):
            kind = "rectanglelabels"
            result = {
                "x": _percent(shape["x"], width),
                "y": _percent(shape["y"], height),
                "width": _percent(shape["width"], width),
                "height": _percent(shape["height"], height),
                "rotation": 0,
            }
        elif isinstance(control, PolygonsControl):
            kind = "polygonlabels"
            points = [[_percent(x, width), _percent(y, height)] for x, y in shape["points"]]
            result = {"points": points}
        else:
            kind = "keypointlabels"
            # Label Studio tells keypoints from other shapes by `width`: the point's drawn size,
            # here one pixel.
            result = {
                "x": _percent(shape["x"], width),
                "y": _percent(shape["y"], height),
                "width": _percent(1, width),
            }
        result[kind] = [shape["label"]]
        item = entry(kind, result, i)
        item.update(original_width=width, original_height=height, image_rotation=0)
        shapes.append(item)
    return shapes


def _image_size(
    control: BoxesControl | PolygonsControl | KeypointsControl, payload: Mapping[str, Any] | None
) -> tuple[Any, Any]:
    """The image's width and height from the payload, as given there (pixels)."""
    size = []
    for key in (control.width_field, control.height_field):
        value = payload.get(key) if payload is not None and key is not None else None
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ValidationFailed(
                "Label Studio needs the image size",
                errors=[
                    {
                        "pointer": json_pointer([control.name]),
                        "detail": "the image size is unknown: Label Studio places shapes in "
                        "percent of it; set width_field and height_field and give them in the "
                        "item payload",
                    }
                ],
            )
        size.append(value)
    return size[0], size[1]
