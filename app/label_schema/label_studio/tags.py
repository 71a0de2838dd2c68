"""One converter per Label Studio control tag, used in both directions.

A converter says how its tag becomes a Tessera control (`read`: the attributes particular to the
tag), how a control is written back as that tag (`config_attributes`), and how an answer becomes
the tag's annotation results (`results`). What every control tag has in common (its name, the
object tag it labels through `toName`, `required`, the `<Label>`/`<Choice>` children carrying its
labels) is read by `parse` and written by `config` for all tags alike.

To support another Label Studio tag: write a `TagConverter` subclass here and add an instance to
`CONVERTERS`. `parse`, `config` and `results` find it there and need no change (a tag that needs a
new kind of control needs that control in `app.label_schema.model` and its check in `answers`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from app.core.errors import ValidationFailed, json_pointer
from app.label_schema.model import (
    ChoicesControl,
    Control,
    ImageControl,
    NumberControl,
    RatingControl,
    SpansControl,
)

Result = dict[str, Any]  # one entry of a Label Studio annotation's `result` list


@dataclass(frozen=True)
class ObjectTarget:
    """The object tag a control labels in a generated config (`<Text name="t" value="$t"/>`)."""

    tag: str  # as written: "Text" or "Image"
    name: str
    field: str | None  # None: an empty literal value (rating and number controls without a field)


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


class TagConverter:
    """One Label Studio control tag and the Tessera control type it stands for."""

    tag: ClassVar[str]  # as Label Studio writes it: "RectangleLabels"
    control_type: ClassVar[str]  # the Tessera control: "boxes"
    # The child tag a control may contain ("Label", "Choice"), and whether each one is a label.
    child_tag: ClassVar[str | None] = None
    children_are_labels: ClassVar[bool] = True
    # Region tags label parts of one kind of object only: spans a Text, shapes an Image.
    region_object: ClassVar[str | None] = None
    # Whether the control must name a payload field through the object it labels.
    needs_field: ClassVar[bool] = True
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
        return self.region_object is not None

    # --- Label Studio -> Tessera

    def read(self, tag: TagAttributes, document: dict[str, Any]) -> None:
        """Add what is particular to this tag to the control `document` being built; report
        anything Tessera cannot express. The common attributes are already in `document`."""

    # --- Tessera -> Label Studio

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
        target: ObjectTarget,
        payload: Mapping[str, Any] | None,
    ) -> list[Result]:
        """The annotation results for one (validated) answer `value` of `control`."""
        raise NotImplementedError

    def result(
        self, control: Control, target: ObjectTarget, value: Result, region: int | None = None
    ) -> Result:
        return {
            "id": control.name if region is None else f"{control.name}-{region}",
            "from_name": control.name,
            "to_name": target.name,
            "type": self.kind,
            "value": value,
        }


# --- classification tags ------------------------------------------------------------------------


class ChoicesConverter(TagConverter):
    tag = "Choices"
    control_type = "choices"
    child_tag = "Choice"

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
        target: ObjectTarget,
        payload: Mapping[str, Any] | None,
    ) -> list[Result]:
        chosen = value if isinstance(value, list) else [value]
        return [self.result(control, target, {"choices": list(chosen)})] if chosen else []


class TextAreaConverter(TagConverter):
    tag = "TextArea"
    control_type = "text"
    child_tag = "Shortcut"  # keyboard shortcuts for canned text: allowed, not labels
    children_are_labels = False

    def config_attributes(self, control: Control) -> dict[str, str]:
        return {**self.required_attribute(control), "maxSubmissions": "1"}  # one answer string

    def results(
        self,
        control: Control,
        value: Any,
        target: ObjectTarget,
        payload: Mapping[str, Any] | None,
    ) -> list[Result]:
        return [self.result(control, target, {"text": [value]})] if value else []


class RatingConverter(TagConverter):
    tag = "Rating"
    control_type = "rating"
    needs_field = False
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
        target: ObjectTarget,
        payload: Mapping[str, Any] | None,
    ) -> list[Result]:
        return [self.result(control, target, {"rating": value})]


class NumberConverter(TagConverter):
    tag = "Number"
    control_type = "number"
    needs_field = False

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
        target: ObjectTarget,
        payload: Mapping[str, Any] | None,
    ) -> list[Result]:
        return [self.result(control, target, {"number": value})]


def _format_number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


# --- region tags --------------------------------------------------------------------------------


class RegionConverter(TagConverter):
    """Tags whose answer is a list of labelled regions of one object."""

    child_tag = "Label"

    def read(self, tag: TagAttributes, document: dict[str, Any]) -> None:
        if tag.get("choice", "single").lower() != "single":
            tag.report(f"{tag.where}: one label per region is supported, not several")


class LabelsConverter(RegionConverter):
    """Spans: character offsets into a Text (Labels over Audio or HyperText would be time
    segments or XPath ranges, something else entirely)."""

    tag = "Labels"
    control_type = "spans"
    region_object = "Text"

    def results(
        self,
        control: Control,
        value: Any,
        target: ObjectTarget,
        payload: Mapping[str, Any] | None,
    ) -> list[Result]:
        assert isinstance(control, SpansControl)
        text = payload.get(control.field) if payload is not None else None
        spans = []
        for i, span in enumerate(value):
            result: Result = {"start": span["start"], "end": span["end"]}
            if isinstance(text, str):
                result["text"] = text[span["start"] : span["end"]]
            result["labels"] = [span["label"]]
            spans.append(self.result(control, target, result, i))
        return spans


class ShapeConverter(RegionConverter):
    """Shapes on an Image. Label Studio places them in percent of the image size (0-100), so the
    size must be in the item payload (`width_field`, `height_field`)."""

    region_object = "Image"

    def shape_value(self, shape: Mapping[str, Any], width: float, height: float) -> Result:
        """One shape's result value (without its label) in percent of the image."""
        raise NotImplementedError

    def results(
        self,
        control: Control,
        value: Any,
        target: ObjectTarget,
        payload: Mapping[str, Any] | None,
    ) -> list[Result]:
        if not value:
            return []
        assert isinstance(control, ImageControl)
        width, height = image_size(control, payload)
        shapes = []
        for i, shape in enumerate(value):
            result = self.shape_value(shape, width, height)
            result[self.kind] = [shape["label"]]
            item = self.result(control, target, result, i)
            item.update(original_width=width, original_height=height, image_rotation=0)
            shapes.append(item)
        return shapes


class RectangleLabelsConverter(ShapeConverter):
    tag = "RectangleLabels"
    control_type = "boxes"

    def shape_value(self, shape: Mapping[str, Any], width: float, height: float) -> Result:
        return {
            "x": _percent(shape["x"], width),
            "y": _percent(shape["y"], height),
            "width": _percent(shape["width"], width),
            "height": _percent(shape["height"], height),
            "rotation": 0,
        }


class PolygonLabelsConverter(ShapeConverter):
    tag = "PolygonLabels"
    control_type = "polygons"

    def shape_value(self, shape: Mapping[str, Any], width: float, height: float) -> Result:
        return {"points": [[_percent(x, width), _percent(y, height)] for x, y in shape["points"]]}


class KeyPointLabelsConverter(ShapeConverter):
    tag = "KeyPointLabels"
    control_type = "keypoints"

    def shape_value(self, shape: Mapping[str, Any], width: float, height: float) -> Result:
        # Label Studio tells keypoints from other shapes by `width`: the point's drawn size,
        # here one pixel.
        return {
            "x": _percent(shape["x"], width),
            "y": _percent(shape["y"], height),
            "width": _percent(1, width),
        }


def _percent(value: float, extent: float) -> float:
    return value / extent * 100


def image_size(control: ImageControl, payload: Mapping[str, Any] | None) -> tuple[Any, Any]:
    """The image's width and height from the payload, as given there (pixels); `ValidationFailed`
    when either is missing or not a positive number."""
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


# --- the registry -------------------------------------------------------------------------------

_ALL: tuple[TagConverter, ...] = (
    ChoicesConverter(),
    LabelsConverter(),
    RectangleLabelsConverter(),
    PolygonLabelsConverter(),
    KeyPointLabelsConverter(),
    TextAreaConverter(),
    RatingConverter(),
    NumberConverter(),
)

#: Converters by Label Studio tag in lower case (Label Studio reads tag names regardless of case).
CONVERTERS: Mapping[str, TagConverter] = {c.tag.lower(): c for c in _ALL}

#: The converter that writes each control type back (the first registered for it).
_BY_CONTROL_TYPE: dict[str, TagConverter] = {}
for _converter in _ALL:
    _BY_CONTROL_TYPE.setdefault(_converter.control_type, _converter)

#: For messages: the control tags Tessera reads.
SUPPORTED_TAGS = ", ".join(c.tag for c in _ALL)


def converter_for(control: Control) -> TagConverter:
    """The converter that writes `control` as a Label Studio tag."""
    return _BY_CONTROL_TYPE[control.type]
