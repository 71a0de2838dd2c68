"""One answer -> the `result` list of a Label Studio annotation, for `label_studio_config`.

Each control's converter (`tags`) shapes its own entries; this module validates the answer first,
so converters only ever see well-formed values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.core.errors import ValidationFailed
from app.label_schema.answers import validate_answer
from app.label_schema.label_studio.config import object_targets
from app.label_schema.label_studio.tags import Result, converter_for
from app.label_schema.model import LabelSchema


def label_studio_result(
    schema: LabelSchema, answer: Mapping[str, Any], payload: Mapping[str, Any] | None = None
) -> list[Result]:
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
    targets = object_targets(schema)
    results: list[Result] = []
    for control in schema.controls:
        if control.name in answer:
            converter = converter_for(control)
            results.extend(
                converter.results(control, answer[control.name], targets[control.name], payload)
            )
    return results
