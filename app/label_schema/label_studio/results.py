"""Answers <-> the `result` lists of Label Studio annotations and predictions.

Each control's converter (`tags`) shapes its own entries. Going out, the answer is validated
first, so converters only ever see well-formed values; coming in, every entry is read by the
converter of the control its `from_name` names (per-region attributes by their region's `id`),
and the answer built is validated like any other, so a result that does not fit the schema is
refused with a pointer into the result list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.core.errors import ValidationFailed, json_pointer
from app.label_schema.answers import validate_answer
from app.label_schema.label_studio.config import generated_targets
from app.label_schema.label_studio.converter import Entries, Result, ResultError, Targets
from app.label_schema.label_studio.region_tags import RegionConverter
from app.label_schema.label_studio.tags import converter_for
from app.label_schema.model import LabelSchema, Problem
from app.label_schema.region_controls import ListControl


def label_studio_result(
    schema: LabelSchema,
    answer: Mapping[str, Any],
    payload: Mapping[str, Any] | None = None,
    targets: Mapping[str, Targets] | None = None,
) -> list[Result]:
    """One answer as the `result` list of a Label Studio annotation.

    `targets` are the object tags each control labels in the project's config (the job's own
    Label Studio config, read by `read_label_studio_config`); by default those of the config
    `label_studio_config` generates. Each entry has `id`, `from_name` (the control), `to_name`
    (its object tag), `type` and `value`: see docs/label-schema.md for each control. Shapes are
    in percent of the image size with `original_width`/`original_height`, so the image size must
    be in the payload. Controls left out of the answer, and empty choices, taxonomies or text,
    give no entry; a region's attributes give one entry each, with the region's `id`.

    Raises `ValidationFailed` when the answer does not validate against the schema, or when a
    shape's image size is unknown.
    """
    problems = validate_answer(schema, answer, payload)
    if problems:
        raise ValidationFailed("The answer does not match the label schema", errors=problems)
    if targets is None:
        targets = generated_targets(schema)
    results: list[Result] = []
    for control in schema.controls:
        if control.name in answer:
            converter = converter_for(control)
            results.extend(
                converter.results(control, answer[control.name], targets[control.name], payload)
            )
    return results


def answer_from_label_studio(
    schema: LabelSchema, result: object, payload: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The answer a Label Studio `result` list stands for (from an annotation or prediction).

    Entries are matched to controls by `from_name`; entries naming no control of the schema are
    refused, and so are malformed ones, each with a pointer into the result list (`#/2/value`).
    Shapes are converted to pixels with the entry's `original_width`/`original_height` (or the
    payload's image size). The answer built is validated against the schema with `payload`;
    its problems are refused with their pointers into the answer.

    Raises `ValidationFailed`.
    """
    if not isinstance(result, Sequence) or isinstance(result, str | bytes):
        raise ValidationFailed(
            "A Label Studio result is a list",
            errors=[{"pointer": "#", "detail": "expected a list of result entries"}],
        )
    data: Mapping[str, Any] = payload or {}
    try:
        answer = _read(schema, Entries.of(result), data)
    except ResultError as exc:
        pointer = "#" if exc.index is None else json_pointer([exc.index])
        raise ValidationFailed(
            "The Label Studio result cannot be read",
            errors=[{"pointer": pointer, "detail": exc.detail}],
        ) from None
    problems: list[Problem] = validate_answer(schema, answer, payload)
    if problems:
        raise ValidationFailed(
            "The Label Studio result does not match the label schema",
            errors=[
                {**p, "pointer": "#/answer" + p["pointer"].removeprefix("#")} for p in problems
            ],
        )
    return answer


def _read(schema: LabelSchema, entries: Entries, payload: Mapping[str, Any]) -> dict[str, Any]:
    attribute_owners: dict[str, list[ListControl]] = {}
    for control in schema.controls:
        if isinstance(control, ListControl):
            for attribute in control.attributes:
                attribute_owners.setdefault(attribute.name, []).append(control)
    for name, found in entries.by_from_name.items():
        if schema.control(name) is None and name not in attribute_owners:
            raise ResultError(found[0][0], f"from_name {name!r} names no control of the schema")
    answer: dict[str, Any] = {}
    for control in schema.controls:
        own = entries.of_control(control.name)
        converter = converter_for(control)
        if isinstance(converter, RegionConverter):
            assert isinstance(control, ListControl)
            attributes = {a.name: entries.of_control(a.name) for a in control.attributes}
            # A region control answers "nothing here" with an empty list; Label Studio writes no
            # entry at all for it.
            answer[control.name] = converter.answer_regions(control, own, attributes, payload)
            if not answer[control.name] and not control.required:
                del answer[control.name]
        elif own:
            for index, entry in own:
                if str(entry.get("type", "")).lower() != converter.kind:
                    raise ResultError(
                        index, f"type {entry.get('type')!r} is not {converter.kind!r}"
                    )
            answer[control.name] = converter.answer_value(control, own, payload)
    return answer
