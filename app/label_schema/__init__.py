"""The label schema: what an answer must look like and when two answers are the same, shared by
jobs, routing, qualification tests and consensus.

- `model`: `LabelSchema` (pydantic) and its `Control`s, `required_fields`; the controls are
  in `item_controls` (an answer about the whole item) and `region_controls` (a list of labelled
  regions), on `control_base`.
- `documents`: a schema document (JSON object or Label Studio XML) -> `LabelSchema`, every
  problem located (`parse_label_schema`).
- `answers`: does an answer fit the schema (`validate_answer`, on the submit hot path); region
  answers are checked in `region_answers`, both with `answer_checks`.
- `label_studio`: Label Studio configs in and out, and answers as Label Studio results.
- `matching`: answers parsed into regions, and when two regions or values are the same (IoU
  pairs, one-to-one matchings, tolerances, Kendall's τ, interval IoU).
- `grading`: how close an answer is to a key (`grade_answer`, `grade_controls`, `grade_control`),
  for gold at submit, qualification tests and consensus alike.

Imports go one way: `model` <- `answers` <- `label_studio` <- `documents`, and `matching` <-
`grading` (over `model`). The names below are the package's public face; import them from here,
and grading and matching from their modules.
"""

from app.label_schema.answers import validate_answer
from app.label_schema.control_base import LabelledControl, item_options
from app.label_schema.documents import parse_label_schema, parse_label_schema_at
from app.label_schema.item_controls import (
    ChoicesControl,
    NumberControl,
    PairwiseControl,
    RankingControl,
    RatingControl,
    TaxonomyControl,
    TextControl,
    candidate_ids,
)
from app.label_schema.model import Control, LabelSchema, Problem, required_fields
from app.label_schema.region_controls import (
    Attribute,
    BoxesControl,
    ChoicesAttribute,
    ImageControl,
    KeypointsControl,
    ListControl,
    MessagesControl,
    PolygonsControl,
    RangesControl,
    RatingAttribute,
    SegmentsControl,
    SpansControl,
    TextAttribute,
)

__all__ = [
    "Attribute",
    "BoxesControl",
    "ChoicesAttribute",
    "ChoicesControl",
    "Control",
    "ImageControl",
    "KeypointsControl",
    "LabelSchema",
    "LabelledControl",
    "ListControl",
    "MessagesControl",
    "NumberControl",
    "PairwiseControl",
    "PolygonsControl",
    "Problem",
    "RangesControl",
    "RankingControl",
    "RatingAttribute",
    "RatingControl",
    "SegmentsControl",
    "SpansControl",
    "TaxonomyControl",
    "TextAttribute",
    "TextControl",
    "candidate_ids",
    "item_options",
    "parse_label_schema",
    "parse_label_schema_at",
    "required_fields",
    "validate_answer",
]
