"""A job in Label Studio's terms: its config, its export as Label Studio tasks, and Label Studio
tasks read back as dataset rows.

A job created from a Label Studio config keeps the config (`Job.label_studio_config`); its
exports name that config's tags and objects, and the client downloads the config as sent. A job
made from a schema document gets the config Tessera generates for it. Either way the config and
the objects each control labels come from `job_view`, so a config and the answers exported for
it always agree.

What Label Studio does with imported tasks decides the export's shape (Label Studio 1.23,
`tasks/serializers.py`): `completed_by` must be one of its own users (an id or `{"email": ...}`)
or the whole import is refused, so it is left out and the pseudonyms travel in the task's `meta`,
which Label Studio keeps and returns; an annotation without `ground_truth` is stored as ground
truth, so crowd answers say `false` and only a gold item's known answer says `true`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from app.core import caches
from app.core.errors import ValidationFailed
from app.label_schema import ImageControl, LabelSchema
from app.label_schema.label_studio import (
    Targets,
    answer_from_label_studio,
    generated_targets,
    label_studio_config,
    label_studio_result,
    read_label_studio_config,
)
from app.models.jobs import Job

CONSENSUS_MODEL = "tessera-consensus"
PRELABEL_MODEL = "tessera-prelabel"
GOLD_ANNOTATOR = "gold"

# Keys that mark a dataset row as a Label Studio task (what its JSON exports carry beside `data`);
# the other keys of such a row are Label Studio's bookkeeping and are ignored.
TASK_KEYS = frozenset(
    ("id", "annotations", "predictions", "meta", "drafts", "inner_id", "project", "created_at")
)


@dataclass(frozen=True)
class LabelStudioView:
    """A job's Label Studio config, and the objects each control labels in it."""

    config: str
    targets: Mapping[str, Targets]


def job_view(job: Job, schema: LabelSchema) -> LabelStudioView:
    """The config of a job (the one it was created from, or the one generated for its schema)
    and the object each control labels there. Cached per job version, like `job_schema`
    (`caches.label_studio_views`)."""
    key = (job.id, job.updated_at or job.created_at)
    view: LabelStudioView | None = caches.label_studio_views.get(key, caches.FOREVER)
    if view is None:
        if job.label_studio_config:
            parsed = read_label_studio_config(job.label_studio_config)
            view = LabelStudioView(job.label_studio_config, parsed.targets)
        else:
            view = LabelStudioView(label_studio_config(schema), generated_targets(schema))
        caches.label_studio_views.put(key, view, time.monotonic())
    return view


# --- export --------------------------------------------------------------------------------------


def export_tasks(
    records: Iterable[dict[str, Any]], schema: LabelSchema, targets: Mapping[str, Targets]
) -> Iterator[bytes]:
    """A Label Studio task list (JSON array) from the export records: per item its payload as
    `data`, one annotation per counted answer (`ground_truth: false`), the gold answer of a gold
    item as the one ground-truth annotation, the consensus (scored by its confidence) and the
    pre-label (scored by its model score) as predictions. `meta` keeps the external id, the
    item id and the annotators' pseudonyms: `meta.annotators[i - 1]` made the annotation whose
    `id` is i (Label Studio keeps that number as the annotation's `import_id`)."""
    yield b"["
    for number, record in enumerate(records):
        task = _task(record, schema, targets)
        yield (b",\n" if number else b"\n") + orjson.dumps(task)
    yield b"\n]\n"


def _task(
    record: dict[str, Any], schema: LabelSchema, targets: Mapping[str, Targets]
) -> dict[str, Any]:
    payload = record["data"]
    annotations: list[dict[str, Any]] = []
    annotators: list[str] = []
    if record.get("gold") and record.get("gold_answer") is not None:
        annotations.append(
            {
                "id": 1,
                "result": label_studio_result(schema, record["gold_answer"], payload, targets),
                "ground_truth": True,
                "was_cancelled": False,
            }
        )
        annotators.append(GOLD_ANNOTATOR)
    for answer in record["answers"]:
        annotations.append(
            {
                "id": len(annotations) + 1,
                "result": label_studio_result(schema, answer["answer"], payload, targets),
                "ground_truth": False,
                "was_cancelled": False,
                "created_at": answer["submitted_at"],
            }
        )
        annotators.append(answer["annotator"])
    predictions = []
    if record.get("consensus"):
        predictions.append(
            {
                "model_version": CONSENSUS_MODEL,
                "score": record["confidence"],
                "result": label_studio_result(schema, record["consensus"], payload, targets),
            }
        )
    if record.get("prelabel"):
        predictions.append(
            {
                "model_version": PRELABEL_MODEL,
                "score": record.get("prelabel_score"),
                "result": label_studio_result(schema, record["prelabel"], payload, targets),
            }
        )
    return {
        "id": record["item_id"],
        "data": payload,
        "meta": {
            "external_id": record["external_id"],
            "tessera_item_id": record["item_id"],
            "annotators": annotators,
        },
        "annotations": annotations,
        "predictions": predictions,
    }


def prelabel_predictions(
    job: Job,
    schema: LabelSchema,
    prelabel: Mapping[str, Any] | None,
    score: float | None,
    payload: dict[str, Any],
) -> list[dict[str, Any]]:
    """An item's pre-label as Label Studio `predictions` in the job's config (one entry, as
    exports give it), or none: no pre-label, or one Label Studio cannot place (a shape on an
    image of unknown size)."""
    if prelabel is None:
        return []
    try:
        result = label_studio_result(schema, prelabel, payload, job_view(job, schema).targets)
    except ValidationFailed:
        return []
    return [{"model_version": PRELABEL_MODEL, "score": score, "result": result}]


def unsized_image_controls(schema: LabelSchema) -> list[ImageControl]:
    """Image controls whose size the schema does not name (it may come with each item as
    `original_width`/`original_height`)."""
    return [
        c
        for c in schema.controls
        if isinstance(c, ImageControl) and not (c.width_field and c.height_field)
    ]


# --- import ---------------------------------------------------------------------------------------


class AnnotationUse(StrEnum):
    """What importing Label Studio tasks does with their annotations."""

    report = "report"  # count them in the import report
    gold = "gold"  # the ground-truth annotation (or the only one) becomes the gold answer


class TaskError(Exception):
    """A Label Studio task that cannot be imported: what is wrong, and where in the row."""

    def __init__(self, detail: str, pointer: str | None = None) -> None:
        super().__init__(detail)
        self.detail, self.pointer = detail, pointer


@dataclass(frozen=True)
class ReadTask:
    payload: dict[str, Any]
    external_id: object
    gold_answer: dict[str, Any] | None
    prelabel: dict[str, Any] | None
    prelabel_score: float | None
    annotations: int  # not cancelled
    gold_from_annotations: bool


def is_task(row: Mapping[str, Any]) -> bool:
    """Whether a dataset row with a `data` object is a Label Studio task."""
    return any(key in TASK_KEYS for key in row)


def read_task(schema: LabelSchema, row: Mapping[str, Any], use: AnnotationUse) -> ReadTask:
    """A Label Studio task (`data`, `annotations`, `predictions`, `id`, `meta`, ...) as a dataset
    row: `data` is the payload; the external id is the row's `external_id`, else
    `meta.external_id` (Tessera's own exports), else the task `id`; the best-scored prediction
    (the first of equals) is the pre-label with its score; annotations are counted, and with
    `use=gold` the ground-truth annotation (or the only one) is the gold answer. Image sizes
    (`original_width`, `original_height`) the results carry fill the payload's size fields where
    it has none. Raises TaskError, with a pointer into the row."""
    payload = dict(row["data"])
    # Label Studio's quick export lists predictions by id only: nothing to read in those.
    predictions = [p for p in _list(row, "predictions", ids=True) if isinstance(p, Mapping)]
    annotations = [a for a in _list(row, "annotations") if not _cancelled(a)]
    _fill_image_size(schema, payload, [*predictions, *annotations])
    prelabel, score = _best_prediction(schema, predictions, payload)
    gold = None
    if use is AnnotationUse.gold and annotations:
        index, chosen = _gold_annotation(_list(row, "annotations"))
        if chosen is not None:
            gold = _answer(schema, chosen.get("result"), payload, f"#/annotations/{index}/result")
    meta = row.get("meta")
    external = row.get("external_id")
    if external is None and isinstance(meta, Mapping):
        external = meta.get("external_id")
    if external is None:
        external = row.get("id")
    return ReadTask(
        payload,
        external,
        gold,
        prelabel,
        score,
        len(annotations),
        gold is not None,
    )


def _list(row: Mapping[str, Any], key: str, *, ids: bool = False) -> list[Any]:
    """`row[key]` as a list of objects (`ids`: or of integer ids)."""
    value = row.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(v, Mapping) or (ids and isinstance(v, int) and not isinstance(v, bool))
        for v in value
    ):
        raise TaskError(f"{key} must be a list of objects", f"#/{key}")
    return value


def _cancelled(annotation: Mapping[str, Any]) -> bool:
    return bool(annotation.get("was_cancelled"))


def _answer(schema: LabelSchema, result: object, payload: dict[str, Any], where: str) -> Any:
    try:
        return answer_from_label_studio(schema, result, payload)
    except ValidationFailed as exc:
        first = exc.errors[0] if exc.errors else {"pointer": "#", "detail": exc.detail}
        pointer = str(first.get("pointer", "#"))
        detail = "; ".join(_named(e) for e in exc.errors[:5]) or str(exc.detail)
        # A problem of the answer built from the results points at the result list as a whole.
        at = where if pointer.startswith("#/answer") else where + pointer.removeprefix("#")
        raise TaskError(f"{where.removeprefix('#/')}: {detail}", at) from None


def _named(problem: Mapping[str, Any]) -> str:
    """A problem of the answer built from a result list, naming the control (and region) it is
    about: "sentiment: required control is missing"."""
    pointer = str(problem.get("pointer", ""))
    where = pointer.removeprefix("#/answer/") if pointer.startswith("#/answer/") else ""
    return f"{where}: {problem.get('detail')}" if where else str(problem.get("detail"))


def _best_prediction(
    schema: LabelSchema, predictions: list[Mapping[str, Any]], payload: dict[str, Any]
) -> tuple[dict[str, Any] | None, float | None]:
    best, best_index, best_score = None, -1, None
    for index, prediction in enumerate(predictions):
        score = prediction.get("score")
        if score is not None and (
            isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1
        ):
            raise TaskError(
                "a prediction's score is a number from 0 to 1", f"#/predictions/{index}/score"
            )
        if best is None or (score is not None and (best_score is None or score > best_score)):
            best, best_index, best_score = prediction, index, score
    if best is None:
        return None, None
    where = f"#/predictions/{best_index}/result"
    answer = _answer(schema, best.get("result"), payload, where)
    return answer, None if best_score is None else float(best_score)


def _gold_annotation(annotations: list[Mapping[str, Any]]) -> tuple[int, Mapping[str, Any] | None]:
    """The annotation marked ground truth (the first such), or the only one not cancelled."""
    for index, annotation in enumerate(annotations):
        if annotation.get("ground_truth") is True and not _cancelled(annotation):
            return index, annotation
    kept = [(i, a) for i, a in enumerate(annotations) if not _cancelled(a)]
    if len(kept) == 1:
        return kept[0]
    return -1, None


def _fill_image_size(
    schema: LabelSchema, payload: dict[str, Any], sources: list[Mapping[str, Any]]
) -> None:
    """Put the image size Label Studio's shape results carry into the payload's size fields,
    where the payload has none: the percentages of those results need it, and so does the
    export back to Label Studio."""
    names: dict[str, ImageControl] = {}
    for control in schema.controls:
        if isinstance(control, ImageControl):
            names[control.name] = control
            for attribute in control.attributes:
                names.setdefault(attribute.name, control)
    if not names:
        return
    for source in sources:
        result = source.get("result")
        for entry in result if isinstance(result, list) else ():
            if not isinstance(entry, Mapping):
                continue
            shapes = names.get(str(entry.get("from_name")))
            if shapes is None:
                continue
            width, height = entry.get("original_width"), entry.get("original_height")
            if not (_positive(width) and _positive(height)):
                continue
            width_key, height_key = shapes.size_keys
            if width_key not in payload and height_key not in payload:
                payload[width_key], payload[height_key] = width, height


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1e12
