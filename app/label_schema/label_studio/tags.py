"""One converter per Label Studio control tag, used in both directions: the registry.

A converter says how its tag becomes a Tessera control (`read`, `bind`: the attributes and
objects particular to the tag), how a control is written back as that tag (`config_attributes`,
`objects_needed`), how an answer becomes the tag's annotation results (`results`) and how those
results become an answer again (`answer_value`). What every control tag has in common (its name,
the objects it labels through `toName`, `required`, the `<Label>`/`<Choice>` children carrying
its labels, a `Header` before it) is read by `parse` and written by `config` for all tags alike.

Region tags (spans, shapes, time segments, `region_tags`) share `RegionConverter`, which also
carries their per-region attributes both ways; classification tags are in
`classification_tags`; what all converters share is in `converter`.

To support another Label Studio tag: write a `TagConverter` subclass in `classification_tags` or
`region_tags` and add an instance to `_ALL` here. `parse`, `config` and `results` find it there
and need no change (a tag that needs a new kind of control needs that control in
`app.label_schema.item_controls` or `region_controls` and its check in `answers` or
`region_answers`).
"""

from __future__ import annotations

from collections.abc import Mapping

from app.label_schema.label_studio.classification_tags import (
    ChoicesConverter,
    NumberConverter,
    PairwiseConverter,
    RankerConverter,
    RatingConverter,
    TaxonomyConverter,
    TextAreaConverter,
)
from app.label_schema.label_studio.converter import TagConverter
from app.label_schema.label_studio.region_tags import (
    HyperTextLabelsConverter,
    KeyPointLabelsConverter,
    LabelsConverter,
    MessagesConverter,
    ParagraphLabelsConverter,
    PolygonLabelsConverter,
    RectangleLabelsConverter,
    SegmentsConverter,
    TimeSeriesLabelsConverter,
)
from app.label_schema.model import Control
from app.label_schema.region_controls import RangesControl, SegmentsControl

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
    TimeSeriesLabelsConverter(),
    ParagraphLabelsConverter(),
    HyperTextLabelsConverter(),
    MessagesConverter(),
)

#: Converters by Label Studio tag in lower case (Label Studio reads tag names regardless of
#: case); a tag standing for several controls (Labels: spans or segments) has one per object kind.
_BY_TAG: dict[str, tuple[TagConverter, ...]] = {}
for _converter in _ALL:
    if _converter.writes_tag:  # a Chat is read as an object (parse), not as a control tag
        _BY_TAG[_converter.tag.lower()] = (*_BY_TAG.get(_converter.tag.lower(), ()), _converter)
CONVERTERS: Mapping[str, tuple[TagConverter, ...]] = _BY_TAG

#: The converter of a Chat's messages (`parse` makes their control from its perRegion tags).
MESSAGES = next(c for c in _ALL if isinstance(c, MessagesConverter))

#: The converter that writes each control type back (the first listed for a type; a time series'
#: segments are written by TimeSeriesLabels, `converter_for`).
_BY_CONTROL_TYPE: dict[str, TagConverter] = {}
for _converter in _ALL:
    _BY_CONTROL_TYPE.setdefault(_converter.control_type, _converter)
_TIME_SERIES = next(c for c in _ALL if isinstance(c, TimeSeriesLabelsConverter))
_HYPERTEXT = next(c for c in _ALL if isinstance(c, HyperTextLabelsConverter))

#: For messages: the control tags Tessera reads (a Chat is an object whose messages take
#: perRegion tags, not a control tag).
SUPPORTED_TAGS = ", ".join(dict.fromkeys(c.tag for c in _ALL if c.writes_tag))


def converter_for(control: Control) -> TagConverter:
    """The converter that writes `control` as a Label Studio tag."""
    if isinstance(control, SegmentsControl) and control.media == "timeseries":
        return _TIME_SERIES
    if isinstance(control, RangesControl) and control.media == "hypertext":
        return _HYPERTEXT
    return _BY_CONTROL_TYPE[control.type]
