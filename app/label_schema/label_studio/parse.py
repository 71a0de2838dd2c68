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
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

# The standard library only builds the element tree here; parsing is defusedxml's.
from xml.etree.ElementTree import Element, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser, ParseError
from pydantic import ValidationError

from app.core.errors import ValidationFailed
from app.label_schema.label_studio.converter import (
    BoundObject,
    ObjectTarget,
    TagAttributes,
    TagConverter,
    Targets,
)
from app.label_schema.label_studio.tags import CONVERTERS, MESSAGES, SUPPORTED_TAGS
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
        "list",
        "chat",
    )
)
_FIELD_REF = re.compile(r"^\$(.+)$", re.DOTALL)


@dataclass(frozen=True)
class ParsedConfig:
    """A Label Studio config read: the label schema, and the objects each control labels (by
    control name), so that answers exported for this config name its object tags."""

    schema: LabelSchema
    targets: Mapping[str, Targets]


def label_schema_from_label_studio(xml: str) -> LabelSchema:
    """Convert a Label Studio XML labeling config into a label schema.

    Supported control tags: Choices, Labels (spans over a Text, time segments over an Audio or
    Video), RectangleLabels, PolygonLabels, KeyPointLabels (over an Image), TextArea, Rating,
    Number, Taxonomy, Pairwise and Ranker (over a List), each bound by `toName` to object tags
    whose `value="$field"` names payload fields; Choices, TextArea and Rating with
    `perRegion="true"` become attributes of the region controls labelling their object. Layout
    tags (View, Header, Style, ...) and object tags are read but produce no control; a Header's
    text describes the control after it. Raises `ValidationFailed` listing every problem (with
    the `line` it is on where known): malformed or hostile XML (DTDs, entities, external
    references), and any other tag, named in the error.
    """
    return read_label_studio_config(xml).schema


def read_label_studio_config(xml: str) -> ParsedConfig:
    """`label_schema_from_label_studio`, with the objects each control labels."""
    root, lines = _parse_xml(xml)
    return _Reader(root, lines).run()


#: How deep elements may nest in a config. Label Studio's own templates nest under 10 deep;
#: the reader walks the tree recursively, so a deeper document (990 nested `<View>`s once
#: exhausted Python's stack: a 500) is refused while it is parsed, with a 422 and its line.
MAX_DEPTH = 64


class _TooDeep(Exception):
    """Raised from the parser's callback at the first element nested past `MAX_DEPTH`."""


class _LineTarget:
    """Builds the element tree like ElementTree does, noting the line each element starts on
    and refusing elements nested deeper than `MAX_DEPTH`."""

    def __init__(self) -> None:
        self.builder = TreeBuilder()
        self.lines: dict[Element, int] = {}
        self.expat: Any = None
        self.depth = 0

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _TooDeep
        element = self.builder.start(tag, attrs)
        self.lines[element] = self.expat.CurrentLineNumber
        return element

    def end(self, tag: str) -> Element:
        self.depth -= 1
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
    except _TooDeep:
        raise ValidationFailed(
            "The Label Studio config is nested too deeply",
            errors=[
                {
                    "line": target.expat.CurrentLineNumber,
                    "detail": f"elements may nest at most {MAX_DEPTH} deep",
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


# How messages spell object tags.
_OBJECT_NAMES = {
    "text": "Text",
    "image": "Image",
    "audio": "Audio",
    "audioplus": "AudioPlus",
    "video": "Video",
    "list": "List",
    "paragraphs": "Paragraphs",
    "hypertext": "HyperText",
    "timeseries": "TimeSeries",
    "chat": "Chat",
}


@dataclass
class _Converted:
    """One control tag on its way to becoming a control: where it was, for error messages."""

    converter: TagConverter
    tag: str  # as written
    name: str
    line: int | None
    label_lines: list[int | None] = field(default_factory=list)


@dataclass
class _Attribute:
    """A `perRegion` tag, attached to the region controls of its object once all are read."""

    document: dict[str, Any]
    target: BoundObject
    when_tag: str | None
    element: Element
    converted: _Converted


class _Reader:
    def __init__(self, root: Element, lines: dict[Element, int]) -> None:
        self.root = root
        self.lines = lines
        self.problems: list[Problem] = []
        self.unsupported: dict[str, None] = {}
        self.objects: dict[str, BoundObject] = {}
        self.documents: list[dict[str, Any]] = []
        self.converted: list[_Converted] = []
        self.targets: dict[str, Targets] = {}
        self.attributes: list[_Attribute] = []
        self.attribute_sources: dict[tuple[int, int], _Converted] = {}
        self.header: str | None = None  # the last Header's text, for the next control

    def problem(self, element: Element | None, detail: str) -> None:
        line = self.lines.get(element) if element is not None else None
        self.problems.append({"line": line, "detail": detail} if line else {"detail": detail})

    def run(self) -> ParsedConfig:
        self.collect_objects()
        self.visit(self.root)
        self.chat_messages()
        self.attach_attributes()
        if not self.documents and not self.problems:
            self.problem(None, f"no control tag found; supported control tags: {SUPPORTED_TAGS}")
        if self.problems:
            detail = "The Label Studio config could not be converted"
            if self.unsupported:
                detail = "Label Studio tags not supported: " + ", ".join(self.unsupported)
            raise ValidationFailed(detail, errors=self.problems)
        try:
            schema = LabelSchema.model_validate({"controls": self.documents}, strict=True)
        except ValidationError as exc:
            raise ValidationFailed(
                "The Label Studio config could not be converted",
                errors=[self.located(path, message) for path, message in schema_error_paths(exc)],
            ) from None
        return ParsedConfig(schema, self.targets)

    def collect_objects(self) -> None:
        syncs: dict[str, str] = {}
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
            self.objects[name] = BoundObject(
                _tag(element),
                _shown(element),
                name,
                ref.group(1) if ref else None,
                text_key=attrs.get("textkey") or "text",
                value_list=attrs.get("valuelist"),
            )
            if "sync" in attrs:
                syncs[name] = attrs["sync"]
            if _tag(element) == "chat":
                self.check_chat(element, attrs)
        for name, other in syncs.items():
            obj, partner = self.objects[name], self.objects.get(other)
            if obj.tag in ("audio", "audioplus") and partner is not None and partner.tag == "video":
                self.objects[name] = replace(obj, video_sync=True)

    def check_chat(self, element: Element, attrs: dict[str, str]) -> None:
        """A Chat is read as a conversation to judge; one the annotator writes (editable, or
        answered by an LLM) makes a conversation Tessera cannot host: refused, named."""
        editable = attrs.get("editable", "false").lower() not in ("false", "")
        if editable or attrs.get("llm") or attrs.get("toname"):
            self.unsupported.setdefault("Chat (editable)", None)
            self.problem(
                element,
                f'<{_shown(element)} name="{attrs.get("name")}">: a conversation the annotator '
                "writes (editable, llm or toName) is not supported; a Chat showing the item's "
                "messages, with questions about the chat or each message, is",
            )

    def chat_messages(self) -> None:
        """Per-region tags over a Chat ask about its messages: the Chat becomes a `messages`
        control named as the object, which `attach_attributes` gives them to."""
        for attribute in self.attributes:
            target = attribute.target
            if target.tag != "chat" or target.name in self.targets:
                continue
            document: dict[str, Any] = {"name": target.name, "type": "messages", "required": False}
            if target.field is None:
                self.problem(
                    attribute.element,
                    f'<Chat name="{target.name}">: its value is not a "$field" reference to the '
                    "item payload",
                )
            else:
                document["field"] = target.field
            self.documents.append(document)
            self.converted.append(
                _Converted(MESSAGES, "Chat", target.name, self.lines.get(attribute.element))
            )
            self.targets[target.name] = (ObjectTarget(target.shown, target.name, target.field),)

    def visit(self, element: Element) -> None:
        tag = _tag(element)
        if tag == "header":
            attrs = _attrs(element)
            text = attrs.get("value") or "".join(element.itertext())
            self.header = " ".join(text.split()) or None
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

    def convert(self, element: Element, candidates: tuple[TagConverter, ...]) -> None:
        attrs = _attrs(element)
        shown = _shown(element)
        name = attrs.get("name", "")
        where = f'<{shown} name="{name}">' if name else f"<{shown}>"
        tag = TagAttributes(attrs, where, lambda detail: self.problem(element, detail))
        description, self.header = self.header, None
        if not name:
            tag.report(f"{where} has no name")
        if attrs.get("peritem", "").lower() == "true":
            tag.report(f"{where}: perItem is not supported; label the whole item")
        per_region = attrs.get("perregion", "").lower() == "true"
        bound = self.bound_objects(element, attrs, where, candidates, per_region=per_region)
        converter, objects = bound if bound is not None else (candidates[0], None)
        converted = _Converted(converter, shown, name, self.lines.get(element))
        if per_region:
            self.convert_attribute(element, tag, converter, objects, converted, description)
            return
        document: dict[str, Any] = {"name": name, "type": converter.control_type}
        required = tag.flag("required", default=converter.required_by_default)
        if required is not None:
            document["required"] = required
        if description:
            document["description"] = description
        if objects:
            converter.bind(tag, document, objects)
        self.read_labels(element, tag, converter, converted, document)
        converter.read(tag, document)
        self.documents.append(document)
        self.converted.append(converted)
        if name and name not in self.targets:
            self.targets[name] = tuple(
                ObjectTarget(o.shown, o.name, o.field) for o in objects or ()
            )

    def read_labels(
        self,
        element: Element,
        tag: TagAttributes,
        converter: TagConverter,
        converted: _Converted,
        document: dict[str, Any],
    ) -> None:
        if converter.nested_children:
            document["taxonomy"] = self.tree(element, converter, tag.where)
        else:
            labels = self.children(element, converter, tag.where, converted, document)
            if converter.children_are_labels and converter.child_tag is not None:
                document["labels"] = labels
        ref = _FIELD_REF.match(tag.get("value"))
        if ref is not None:
            if converter.dynamic_labels:
                document["labels_field"] = ref.group(1)
            else:
                tag.report(f"{tag.where}: labels loaded from the task data are not supported")

    def convert_attribute(
        self,
        element: Element,
        tag: TagAttributes,
        converter: TagConverter,
        objects: list[BoundObject] | None,
        converted: _Converted,
        description: str | None,
    ) -> None:
        if converter.attribute_type is None:
            tag.report(f"{tag.where}: perRegion is supported on Choices, TextArea and Rating only")
            return
        if "whenchoicevalue" in tag.attrs:
            tag.report(
                f"{tag.where}: whenChoiceValue is not supported; a per-region attribute applies "
                "to every region of its control (whenTagName picks the control, whenLabelValue "
                "the labels)"
            )
        if objects is None:
            return
        if len(objects) != 1:
            tag.report(f"{tag.where}: a per-region tag labels the regions of one object")
            return
        document: dict[str, Any] = {"name": converted.name, "type": converter.attribute_type}
        required = tag.flag("required", default=False)
        if required is not None:
            document["required"] = required
        if description:
            document["description"] = description
        labels = self.children(element, converter, tag.where, converted, document)
        if converter.attribute_type == "choices":
            document["labels"] = labels
            document["multiple"] = tag.get("choice", "single").lower() == "multiple"
        elif converter.attribute_type == "rating":
            converter.read(tag, document)
        if tag.get("value").startswith("$"):
            tag.report(f"{tag.where}: a per-region attribute has fixed labels")
        when_labels = [v.strip() for v in tag.get("whenlabelvalue").split(",") if v.strip()]
        if when_labels:
            document["when_labels"] = list(dict.fromkeys(when_labels))
        self.attributes.append(
            _Attribute(document, objects[0], tag.get("whentagname") or None, element, converted)
        )

    def attach_attributes(self) -> None:
        """Each per-region tag becomes an attribute of every region control labelling its object
        (only of the control `whenTagName` names, when it names one)."""
        for attribute in self.attributes:
            attached = 0
            for index, document in enumerate(self.documents):
                converted = self.converted[index]
                targets = self.targets.get(converted.name, ())
                if not converted.converter.is_region or not targets:
                    continue
                if targets[0].name != attribute.target.name:
                    continue
                if attribute.when_tag is not None and converted.name != attribute.when_tag:
                    continue
                own = document.setdefault("attributes", [])
                self.attribute_sources[(index, len(own))] = attribute.converted
                own.append(dict(attribute.document))
                attached += 1
            if not attached:
                target = f'<{attribute.target.shown} name="{attribute.target.name}">'
                when = f' named "{attribute.when_tag}"' if attribute.when_tag else ""
                self.problem(
                    attribute.element,
                    f'<{attribute.converted.tag} name="{attribute.converted.name}"> asks about '
                    f"regions of {target}, but no region control{when} labels it",
                )

    def bound_objects(
        self,
        element: Element,
        attrs: dict[str, str],
        where: str,
        candidates: tuple[TagConverter, ...],
        *,
        per_region: bool,
    ) -> tuple[TagConverter, list[BoundObject]] | None:
        """The converter for this tag and the objects its `toName` names (None, reported,
        when they do not fit)."""
        to_name = attrs.get("toname")
        if to_name is None:
            # Label Studio lets TextArea leave toName out; with a single object tag there is no
            # doubt what any control means, so that is accepted for every tag.
            if len(self.objects) == 1:
                objects = list(self.objects.values())
            elif not candidates[0].needs_field and not per_region:
                return candidates[0], []
            else:
                self.problem(element, f"{where} has no toName")
                return None
        else:
            names = [n.strip() for n in to_name.split(",")]
            most = max(c.max_objects for c in candidates)
            if len(names) > most:
                self.problem(
                    element,
                    f"{where}: toName names several objects; "
                    + ("one is supported" if most == 1 else f"at most {most} are supported"),
                )
                return None
            missing = [n for n in names if n not in self.objects]
            for n in missing:
                self.problem(element, f'{where}: toName="{n}" names no object tag')
            if missing:
                return None
            objects = [self.objects[n] for n in names]
        first = objects[0]
        fitting = [c for c in candidates if not c.object_kinds or first.tag in c.object_kinds]
        if not fitting:
            kinds = [_OBJECT_NAMES[k] for c in candidates for k in c.object_kinds]
            allowed = ", ".join(f"<{k}>" for k in kinds[:-1])
            allowed = f"{allowed} or <{kinds[-1]}>" if allowed else f"<{kinds[-1]}>"
            self.problem(
                element,
                f'{where} can only label {allowed}, not <{first.shown} name="{first.name}">',
            )
            return None
        converter = fitting[0]
        if len(objects) < converter.min_objects:
            self.problem(
                element,
                f"{where} compares {converter.min_objects} objects: name them all in toName "
                '("left,right")',
            )
            return None
        return converter, objects

    def children(
        self,
        element: Element,
        converter: TagConverter,
        where: str,
        converted: _Converted,
        document: dict[str, Any],
    ) -> list[str]:
        """The control's label values (from <Label>/<Choice>), checking what else it contains;
        a `<Label maxUsages>` goes into the document's `label_limits`."""
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
            value = self.label_value(child, where)
            if value is None:
                continue
            if value in labels and not _attrs(child).get("maxusages"):
                # Label Studio shows a repeated <Choice value="Two"/> twice, and either writes
                # the same "Two" into its results: one label (its gallery has such a config).
                continue
            labels.append(value)
            converted.label_lines.append(self.lines.get(child))
            limit = _attrs(child).get("maxusages")
            if limit is not None and converter.is_region:
                try:
                    document.setdefault("label_limits", {})[value] = int(limit)
                except ValueError:
                    self.problem(
                        child,
                        f'<{_shown(child)}> in {where}: maxUsages="{limit}" is not a whole number',
                    )
        return labels

    def label_value(self, child: Element, where: str) -> str | None:
        attrs = _attrs(child)
        # Label Studio writes a label's alias, when it has one, into its results.
        value = attrs.get("alias") or attrs.get("value")
        if value is None:
            self.problem(child, f"<{_shown(child)}> in {where} has no value")
        return value

    def tree(self, element: Element, converter: TagConverter, where: str) -> list[dict[str, Any]]:
        """Nested `<Choice>` tags (Taxonomy) as nodes `{"value", "children"}`."""
        allowed = (converter.child_tag or "").lower()
        nodes: list[dict[str, Any]] = []
        for child in element:
            child_tag = _tag(child)
            if child_tag in _LAYOUT_TAGS:
                nodes.extend(self.tree(child, converter, where))
            elif child_tag != allowed:
                self.problem(child, f"{where} cannot contain <{_shown(child)}>")
            else:
                value = self.label_value(child, where)
                if value is not None:
                    nodes.append({"value": value, "children": self.tree(child, converter, where)})
        return nodes

    def located(self, path: list[str | int], message: str) -> Problem:
        """A schema error from pydantic, moved back onto the tag (and attribute) it came from."""
        if len(path) < 2 or path[0] != "controls" or not isinstance(path[1], int):
            return {"detail": message}
        converted = self.converted[path[1]]
        rest = path[2:]
        if len(rest) >= 2 and rest[0] == "attributes" and isinstance(rest[1], int):
            converted = self.attribute_sources.get((path[1], rest[1]), converted)
            rest = rest[2:]
        where = f'<{converted.tag} name="{converted.name}">'
        key = rest[0] if rest else None
        line = converted.line
        if key == "labels" and len(rest) > 1 and isinstance(rest[1], int):
            if rest[1] < len(converted.label_lines):
                line = converted.label_lines[rest[1]]
            subject = f"label {rest[1] + 1} of {where}"
        elif key is None:
            subject = where
        else:
            subject = f"{where} {converted.converter.attribute_names.get(str(key), key)}"
        problem: Problem = {"detail": f"{subject}: {message}"}
        if line:
            problem["line"] = line
        return problem
