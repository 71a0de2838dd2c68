"""One dataset row -> an item to import (`RowChecker.check` -> `ItemRow`), or a `RowError` saying
what is wrong and where.

A row is a JSON object: the item's payload itself, the payload under `data` beside Tessera's
reserved keys (`RESERVED`), or a Label Studio task (`label_studio.read_task`). The checker
holds what the job's label schema asks of every payload (the fields its controls need, text for
spans, positive sizes and durations, the item's own options and candidates), reads the external
id (the row's own or a declared payload field), and checks a gold answer and a pre-label against
the schema. It reads nothing from the database: `importing` runs it over every row before
anything is written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from app.core.errors import json_pointer
from app.core.storable import first_unstorable
from app.jobs import label_studio
from app.jobs.dataset_files import ImportFormat, RowError
from app.jobs.label_studio import AnnotationUse
from app.jobs.staging import Content, StagedRow
from app.label_schema import (
    ImageControl,
    LabelledControl,
    LabelSchema,
    RankingControl,
    SegmentsControl,
    SpansControl,
    candidate_ids,
    item_options,
    required_fields,
    validate_answer,
)

RESERVED = ("external_id", "gold_answer", "prelabel", "prelabel_score")
DATA_FORM_KEYS = frozenset({"data", *RESERVED})


@dataclass(frozen=True, slots=True)
class ItemRow:
    """A checked row: the item it becomes, with the line it came from."""

    line: int
    external_id: str | None
    payload: dict[str, Any]
    gold_answer: dict[str, Any] | None
    prelabel: dict[str, Any] | None
    prelabel_score: float | None
    annotations: int = 0  # of a Label Studio task
    gold_from_annotations: bool = False

    def same_content(self, item: Content | ItemRow) -> bool:
        return bool(
            item.payload == self.payload
            and item.gold_answer == self.gold_answer
            and item.prelabel == self.prelabel
            and item.prelabel_score == self.prelabel_score
        )

    def staged(self) -> StagedRow:
        """The row as staged: its JSON values serialized. Raises RowError for a value JSON
        cannot carry (a number that is not finite, an integer beyond 64 bits)."""
        try:
            payload = orjson.dumps(self.payload).decode()
            gold = _dumps(self.gold_answer)
            prelabel = _dumps(self.prelabel)
        except TypeError as exc:
            detail = (
                "integers must fit in 64 bits"
                if "Integer" in str(exc)
                else "numbers must be finite (NaN, Infinity and overflowing numbers like 1e400 "
                "cannot be stored)"
            )
            raise RowError(detail) from None
        return (
            self.line,
            self.external_id,
            payload,
            self.gold_answer is not None,
            gold,
            prelabel,
            self.prelabel_score,
            self.annotations,
            self.gold_from_annotations,
        )


def _dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


class RowChecker:
    """Turns a parsed row into an ItemRow, or raises RowError saying what is wrong.

    `external_id_field` names the payload field whose value is each row's external id (a row's
    own `external_id` key, if it has one, must then agree with it)."""

    def __init__(
        self,
        schema: LabelSchema,
        fmt: ImportFormat,
        annotations: AnnotationUse = AnnotationUse.report,
        *,
        external_id_field: str | None = None,
    ) -> None:
        self.schema = schema
        self.fmt = fmt
        self.annotations = annotations
        self.id_field = external_id_field
        self.fields = required_fields(schema)
        self.text_fields = {c.field for c in schema.controls if isinstance(c, SpansControl)}
        size_fields: set[str] = set()
        for control in schema.controls:
            if isinstance(control, ImageControl):
                # Declared size fields are required; Label Studio's own names, used when none
                # are declared, are checked where an item gives them.
                size_fields.update(control.size_keys)
            if isinstance(control, SegmentsControl) and control.duration_field:
                size_fields.add(control.duration_field)
        self.size_fields = size_fields
        self.option_fields = {
            c.labels_field
            for c in schema.controls
            if isinstance(c, LabelledControl) and c.labels_field is not None
        }
        self.candidate_fields = {c.field for c in schema.controls if isinstance(c, RankingControl)}

    def check(self, line: int, row: Any) -> ItemRow:
        if type(row) is not dict:
            raise row if isinstance(row, RowError) else RowError("a row must be a JSON object")
        if not row:
            raise RowError("the row is empty", unusable=True)
        unstorable = first_unstorable(row)
        if unstorable is not None:
            where = "#" + unstorable.pointer
            subject = "the row" if not unstorable.pointer else where
            raise RowError(f"{subject} {unstorable.reason}", where)
        data = row.get("data")
        if type(data) is dict and label_studio.is_task(row):
            return self._label_studio_task(line, row)
        if type(data) is dict:
            unknown = sorted(set(row) - DATA_FORM_KEYS)
            if unknown:
                raise RowError(
                    f"unknown top-level keys beside 'data': {', '.join(unknown)} (a Label Studio "
                    "task has an id, annotations or predictions)"
                )
            payload = dict(data)
            external, gold, prelabel, score = (row.get(k) for k in RESERVED)
        else:
            payload = row.copy()
            pop = payload.pop
            external = pop("external_id", None)
            gold = pop("gold_answer", None)
            prelabel = pop("prelabel", None)
            score = pop("prelabel_score", None)
        if self.fmt is ImportFormat.csv:
            self._numbers_from_csv(payload)
        self._check_payload(payload)
        if self.id_field is not None:
            external = self._declared_id(payload, external)
        elif type(external) is not str or not 0 < len(external) <= 255:
            external = self._external_id(external)
        return ItemRow(
            line,
            external,
            payload,
            None if gold is None else self._answer(gold, payload, "gold_answer"),
            None if prelabel is None else self._answer(prelabel, payload, "prelabel"),
            None if score is None else self._score(score),
        )

    def _label_studio_task(self, line: int, row: dict[str, Any]) -> ItemRow:
        """A Label Studio task; Tessera's own keys (`external_id`, `gold_answer`, `prelabel`,
        `prelabel_score`) still apply and win over what the task's annotations and predictions
        give."""
        try:
            task = label_studio.read_task(self.schema, row, self.annotations)
        except label_studio.TaskError as exc:
            raise RowError(exc.detail, exc.pointer) from None
        payload = task.payload
        self._check_payload(payload)
        external: str | None
        if self.id_field is not None:
            external = self._declared_id(payload, row.get("external_id"))
        else:
            external = row.get("external_id", task.external_id)
            if type(external) is not str or not 0 < len(external) <= 255:
                external = self._external_id(external)
        gold = row.get("gold_answer")
        prelabel = row.get("prelabel")
        score = row.get("prelabel_score") if prelabel is not None else task.prelabel_score
        return ItemRow(
            line,
            external,
            payload,
            task.gold_answer if gold is None else self._answer(gold, payload, "gold_answer"),
            task.prelabel if prelabel is None else self._answer(prelabel, payload, "prelabel"),
            self._score(score),
            task.annotations,
            task.gold_from_annotations and gold is None,
        )

    def _declared_id(self, payload: dict[str, Any], given: Any) -> str:
        """The external id from the declared field; a row's own `external_id` must agree."""
        assert self.id_field is not None
        pointer = json_pointer([self.id_field])
        value = payload.get(self.id_field)
        if self.id_field == "external_id" and value is None:
            # The default column declared: a row's own `external_id` key (taken out of the
            # payload as the reserved key it is) is the declared field.
            value, given = given, None
        if value is None or value == "":
            raise RowError(f"the external id field {self.id_field!r} is missing or empty", pointer)
        declared = self._external_id(value, pointer)
        assert declared is not None
        if given is not None and self._external_id(given) != declared:
            raise RowError(
                f"external_id differs from the declared external id field {self.id_field!r}",
                "#/external_id",
            )
        return declared

    def _numbers_from_csv(self, payload: dict[str, Any]) -> None:
        for name in self.size_fields:
            value = payload.get(name)
            if isinstance(value, str):
                try:
                    payload[name] = int(value) if value.strip().isdigit() else float(value)
                except ValueError:
                    raise RowError(f"{name} must be a number", f"#/{name}") from None

    def _check_payload(self, payload: dict[str, Any]) -> None:
        missing = [name for name in self.fields if payload.get(name) in (None, "")]
        if missing:
            raise RowError(
                f"missing field{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                "required by the label schema",
                f"#/{missing[0]}",
            )
        for name in self.text_fields:
            if not isinstance(payload[name], str):
                raise RowError(f"{name} must be a string (spans are offsets into it)", f"#/{name}")
        for name in self.size_fields:
            value = payload.get(name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise RowError(
                    f"{name} must be a positive number (image size or media duration)", f"#/{name}"
                )
        for name in self.option_fields:
            if item_options(payload[name]) is None:
                raise RowError(
                    f"{name} must list the item's labels: strings or objects with a string "
                    '"value" (1 to 1000 of them)',
                    f"#/{name}",
                )
        for name in self.candidate_fields:
            if candidate_ids(payload[name]) is None:
                raise RowError(
                    f"{name} must list the candidates to rank: objects with unique string ids "
                    "(1 to 1000 of them)",
                    f"#/{name}",
                )

    @staticmethod
    def _external_id(value: Any, pointer: str = "#/external_id") -> str | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise RowError("an external id must be a string or an integer", pointer)
        text = str(value)
        if not 1 <= len(text) <= 255:
            raise RowError("an external id must be 1 to 255 characters", pointer)
        return text

    def _answer(self, value: Any, payload: dict[str, Any], name: str) -> dict[str, Any] | None:
        if value is None:
            return None
        if isinstance(value, str) and self.fmt is ImportFormat.csv:
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise RowError(f"{name} must be a JSON object", f"#/{name}") from None
            unstorable = first_unstorable(value)
            if unstorable is not None:
                raise RowError(f"{name} {unstorable.reason}", f"#/{name}{unstorable.pointer}")
        if not isinstance(value, dict):
            raise RowError(f"{name} must be a JSON object keyed by control name", f"#/{name}")
        problems = validate_answer(self.schema, value, payload)
        if problems:
            first = problems[0]
            detail = "; ".join(p["detail"] for p in problems[:5])
            raise RowError(
                f"{name} does not fit the label schema: {detail}",
                f"#/{name}" + first["pointer"].removeprefix("#"),
            )
        return value

    @staticmethod
    def _score(value: Any) -> float | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise RowError("prelabel_score must be a number", "#/prelabel_score") from None
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise RowError("prelabel_score must be a number from 0 to 1", "#/prelabel_score")
        return float(value)
