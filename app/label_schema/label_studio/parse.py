"""Label Studio XML labeling config -> `LabelSchema`.

Configs come from clients, so they are parsed with defusedxml: DTDs (and with them entity
expansion and external entities) are refused before anything is expanded or fetched. Every
problem is collected (not just the first) with the line of the tag it is about; a problem pydantic
finds in the converted schema is moved back onto the tag and attribute it came from.

The walk here handles what all control tags share (name, `toName` and the object it labels,
`required`, label children); what is particular to a tag is its converter's (`tags`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# The standard library only builds the element tree here; parsing is defusedxml's.
from xml.etree.ElementTree import Element, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, ParseError
from pydantic import ValidationError

from app.core.errors import ValidationFailed
from app.label_schema.label_studio.tags import (
    CONVERTERS,
    SUPPORTED_TAGS,
    TagAttributes,
    TagConverter,
)
from app.label_schema.model import LabelSchema, Problem, schema_error_paths

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
_FIELD_REF = re.compile(r"^\$(.+)$", re.DOTALL)


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
    return _Reader(root, lines).run()


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

    converter: TagConverter
    tag: str  # as written
    name: str
    line: int | None
    label_lines: list[int | None] = field(default_factory=list)


class _Reader:
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
            self.problem(None, f"no control tag found; supported control tags: {SUPPORTED_TAGS}")
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
        elif tag in CONVERTERS:
            self.convert(element, CONVERTERS[tag])
        elif tag not in _OBJECT_TAGS:
            name = _shown(element)
            self.unsupported.setdefault(name, None)
            self.problem(
                element, f"<{name}> is not supported; supported control tags: {SUPPORTED_TAGS}"
            )

    def convert(self, element: Element, converter: TagConverter) -> None:
        attrs = _attrs(element)
        shown = _shown(element)
        name = attrs.get("name", "")
        where = f'<{shown} name="{name}">' if name else f"<{shown}>"
        tag = TagAttributes(attrs, where, lambda detail: self.problem(element, detail))
        if not name:
            tag.report(f"{where} has no name")
        for flag in ("perregion", "peritem"):
            if attrs.get(flag, "").lower() == "true":
                tag.report(f"{where}: {flag} is not supported; label the whole item")
        document: dict[str, Any] = {"name": name, "type": converter.control_type}
        required = tag.flag("required", default=converter.required_by_default)
        if required is not None:
            document["required"] = required
        target = self.bound_object(element, attrs, where, converter)
        if target is not None:
            if target.field is not None:
                document["field"] = target.field
            elif converter.needs_field:
                tag.report(
                    f'{where} labels <{target.shown} name="{target.name}">, whose value is not a '
                    '"$field" reference to the item payload'
                )
        converted = _Converted(converter, shown, name, self.lines.get(element))
        labels = self.children(element, converter, where, converted)
        if converter.children_are_labels and converter.child_tag is not None:
            document["labels"] = labels
            if attrs.get("value", "").startswith("$"):
                tag.report(f"{where}: labels loaded from the task data are not supported")
        converter.read(tag, document)
        self.documents.append(document)
        self.converted.append(converted)

    def bound_object(
        self, element: Element, attrs: dict[str, str], where: str, converter: TagConverter
    ) -> _Object | None:
        to_name = attrs.get("toname")
        if to_name is None:
            # Label Studio lets TextArea leave toName out; with a single object tag there is no
            # doubt what any control means, so that is accepted for every tag.
            if len(self.objects) == 1:
                return next(iter(self.objects.values()))
            if not converter.needs_field:
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
        wanted = converter.region_object
        if wanted is not None and target.tag != wanted.lower():
            self.problem(
                element,
                f'{where} can only label <{wanted}>, not <{target.shown} name="{target.name}">',
            )
            return None
        return target

    def children(
        self, element: Element, converter: TagConverter, where: str, converted: _Converted
    ) -> list[str]:
        """The control's label values (from <Label>/<Choice>), checking what else it contains."""
        allowed = converter.child_tag.lower() if converter.child_tag else None
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
            if not converter.children_are_labels:
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
            subject = f"{where} {converted.converter.attribute_names.get(str(key), key)}"
        problem: Problem = {"detail": f"{subject}: {message}"}
        if line:
            problem["line"] = line
        return problem
