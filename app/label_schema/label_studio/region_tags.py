"""Converters of Label Studio's region tags, whose answer is a list of labelled regions: Labels
(spans of a text, or time segments of audio and video), RectangleLabels, PolygonLabels and
KeyPointLabels (`app.label_schema.region_controls`).

They share `RegionConverter`, which also carries the per-region attributes both ways: Label
Studio stores an attribute as a result of its own (`from_name` the `perRegion` tag) with the
region's `id` and the region's position repeated in its `value`. Shapes are placed in percent of
the image's size there, in pixels in Tessera.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypeGuard

from app.core.errors import ValidationFailed, json_pointer
from app.label_schema.label_studio.classification_tags import text_value
from app.label_schema.label_studio.converter import (
    BoundObject,
    ObjectNeed,
    Result,
    ResultError,
    TagAttributes,
    TagConverter,
    Targets,
    to_name,
    value_key,
)
from app.label_schema.model import Control
from app.label_schema.region_controls import (
    Attribute,
    ChoicesAttribute,
    ImageControl,
    ListControl,
    MessagesControl,
    RangesControl,
    RatingAttribute,
    SegmentsControl,
    SpansControl,
    TextAttribute,
)


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
        chosen = value_key(entry, "choices", list)
        if attribute.multiple:
            return chosen
        if len(chosen) != 1:
            raise ResultError(entry[0], f"attribute {attribute.name!r} is a single choice")
        return chosen[0]
    if isinstance(attribute, TextAttribute):
        return text_value(entry)
    assert isinstance(attribute, RatingAttribute)
    return value_key(entry, "rating", int)


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


def _whole(value: object) -> TypeGuard[int | float]:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


class SegmentsConverter(RegionConverter):
    """Time segments: Labels over an Audio (or a Video, or an Audio synced to a Video), start
    and end in seconds."""

    tag = "Labels"
    control_type = "segments"
    object_kinds: ClassVar[tuple[str, ...]] = ("audio", "audioplus", "video")

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


class TimeSeriesLabelsConverter(SegmentsConverter):
    """Regions of a time series: TimeSeriesLabels over a TimeSeries, start and end in the units
    of its time column, `instant` when they are equal (a time series' point events)."""

    tag = "TimeSeriesLabels"
    object_kinds = ("timeseries",)

    def bind(
        self, tag: TagAttributes, document: dict[str, Any], objects: Sequence[BoundObject]
    ) -> None:
        TagConverter.bind(self, tag, document, objects)
        document["media"] = "timeseries"

    def objects_needed(self, control: Control) -> list[ObjectNeed]:
        return [ObjectNeed("TimeSeries", getattr(control, "field", None))]

    def place(self, control: ListControl, region: Mapping[str, Any], payload: Any) -> Result:
        start, end = region["start"], region["end"]
        return {"start": start, "end": end, "instant": start == end}


class RangesConverter(RegionConverter):
    """Selections in structured text (`RangesControl`): Label Studio writes a region's ends as
    `start`/`end` (paragraph indexes as strings, or XPaths) with `startOffset`/`endOffset`."""

    control_type = "ranges"
    media: ClassVar[str]

    def bind(
        self, tag: TagAttributes, document: dict[str, Any], objects: Sequence[BoundObject]
    ) -> None:
        super().bind(tag, document, objects)
        document["media"] = self.media
        if objects[0].text_key != "text":
            document["text_key"] = objects[0].text_key

    def place(self, control: ListControl, region: Mapping[str, Any], payload: Any) -> Result:
        return {
            "start": self.position_out(region["start"]),
            "end": self.position_out(region["end"]),
            "startOffset": region["start_offset"],
            "endOffset": region["end_offset"],
        }

    def position_out(self, position: Any) -> Any:
        return position

    def locate(
        self, control: ListControl, index: int, entry: Result, payload: Mapping[str, Any]
    ) -> Result:
        value = entry["value"]
        offsets = value.get("startOffset"), value.get("endOffset")
        if not all(_whole(o) for o in offsets):
            raise ResultError(index, "a selection's startOffset and endOffset are characters")
        return {
            "start": self.position_in(index, value.get("start")),
            "start_offset": int(offsets[0]),
            "end": self.position_in(index, value.get("end")),
            "end_offset": int(offsets[1]),
        }

    def position_in(self, index: int, position: object) -> Any:
        raise NotImplementedError


class ParagraphLabelsConverter(RangesConverter):
    """Selections of a Paragraphs object (a dialogue, a transcript): its ends are paragraph
    indexes, which Label Studio writes as strings ("0"), with character offsets inside them."""

    tag = "ParagraphLabels"
    object_kinds = ("paragraphs",)
    media = "paragraphs"

    def objects_needed(self, control: Control) -> list[ObjectNeed]:
        return [ObjectNeed("Paragraphs", getattr(control, "field", None))]

    def place(self, control: ListControl, region: Mapping[str, Any], payload: Any) -> Result:
        placed = super().place(control, region, payload)
        assert isinstance(control, RangesControl)
        text = _selected_text(control, region, payload)
        if text is not None:
            placed["text"] = text
        return placed

    def position_out(self, position: Any) -> Any:
        return str(position)

    def position_in(self, index: int, position: object) -> Any:
        if isinstance(position, str) and position.isdecimal():
            return int(position)
        if _whole(position):
            return int(position)
        raise ResultError(index, "a paragraph selection's start and end are paragraph indexes")


def _selected_text(
    control: RangesControl, region: Mapping[str, Any], payload: Mapping[str, Any] | None
) -> str | None:
    """The text a paragraph selection covers (paragraphs joined by newlines), as Label Studio
    stores it; None when the payload does not hold the paragraphs."""
    paragraphs = payload.get(control.field) if payload is not None else None
    if not isinstance(paragraphs, list):
        return None
    texts: list[str] = []
    for paragraph in paragraphs[region["start"] : region["end"] + 1]:
        text = paragraph.get(control.text_key) if isinstance(paragraph, Mapping) else None
        if not isinstance(text, str):
            return None
        texts.append(text)
    if len(texts) == 1:
        return texts[0][region["start_offset"] : region["end_offset"]]
    texts[0] = texts[0][region["start_offset"] :]
    texts[-1] = texts[-1][: region["end_offset"]]
    return "\n".join(texts)


class HyperTextLabelsConverter(RangesConverter):
    """Selections of an HTML document: its ends are XPaths of text nodes with character offsets
    inside them (Label Studio's `globalOffsets`, derived from those, are not kept)."""

    tag = "HyperTextLabels"
    object_kinds = ("hypertext",)
    media = "hypertext"

    def objects_needed(self, control: Control) -> list[ObjectNeed]:
        return [ObjectNeed("HyperText", getattr(control, "field", None))]

    def position_in(self, index: int, position: object) -> Any:
        if not isinstance(position, str) or not position:
            raise ResultError(index, "an HTML selection's start and end are XPaths")
        return position


class MessagesConverter(RegionConverter):
    """Questions about single messages of a Chat object (`MessagesControl`). Label Studio has no
    control tag for them: the Chat is its own, and a message's answers are the `perRegion`
    tags' results, each with the message's `id` and, in its value, the message itself
    (`chatmessage`: role and content, as Label Studio's chat regions carry it). Reading back, the
    message is found in the item's conversation by its role and content."""

    tag = "Chat"
    control_type = "messages"
    object_kinds = ("chat",)
    writes_tag = False

    def objects_needed(self, control: Control) -> list[ObjectNeed]:
        return [ObjectNeed("Chat", getattr(control, "field", None), name=control.name)]

    def results(
        self,
        control: Control,
        value: Any,
        targets: Targets,
        payload: Mapping[str, Any] | None,
    ) -> list[Result]:
        assert isinstance(control, MessagesControl)
        messages = payload.get(control.field) if payload is not None else None
        out: list[Result] = []
        for region in value:
            index = region["message"]
            message = messages[index] if isinstance(messages, list) else None
            if not isinstance(message, Mapping):
                raise ValidationFailed(
                    "Label Studio needs the conversation",
                    errors=[
                        {
                            "pointer": json_pointer([control.name]),
                            "detail": f"message {index} is not in the item's {control.field!r}",
                        }
                    ],
                )
            placed = {
                "chatmessage": {"role": message.get("role"), "content": message.get("content")}
            }
            for name, answer in (region.get("attributes") or {}).items():
                attribute = control.attribute(name)
                assert attribute is not None  # the answer was validated
                out.append(
                    {
                        "id": f"{control.name}-{index}",
                        "from_name": name,
                        "to_name": to_name(control, targets),
                        "type": ATTRIBUTE_KINDS[attribute.type],
                        "value": {**placed, **attribute_value(attribute, answer)},
                    }
                )
        return out

    def answer_regions(
        self,
        control: ListControl,
        entries: list[tuple[int, Result]],
        attributes: Mapping[str, list[tuple[int, Result]]],
        payload: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        if entries:
            raise ResultError(entries[0][0], f"{control.name!r} is a Chat: it has no results")
        messages = payload.get(control.field)
        known = [
            (m.get("role"), m.get("content")) if isinstance(m, Mapping) else None
            for m in (messages if isinstance(messages, list) else [])
        ]
        by_id: dict[Any, dict[str, Any]] = {}
        for name, attribute_entries in attributes.items():
            attribute = control.attribute(name)
            assert attribute is not None
            for index, entry in attribute_entries:
                region = by_id.get(entry.get("id"))
                if region is None:
                    region = {"message": self.message_index(index, entry, known, by_id)}
                    by_id[entry.get("id")] = region
                read = read_attribute(attribute, (index, entry))
                region.setdefault("attributes", {})[name] = read
        return sorted(by_id.values(), key=lambda r: int(r["message"]))

    def message_index(
        self,
        index: int,
        entry: Result,
        known: list[tuple[Any, Any] | None],
        regions: Mapping[Any, dict[str, Any]],
    ) -> int:
        message = entry["value"].get("chatmessage")
        if not isinstance(message, Mapping):
            raise ResultError(index, "a message's result names its chatmessage (role, content)")
        wanted = (message.get("role"), message.get("content"))
        taken = {r["message"] for r in regions.values()}
        for position, found in enumerate(known):
            if found == wanted and position not in taken:
                return position
        raise ResultError(index, "the chatmessage is not a message of the item's conversation")


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
