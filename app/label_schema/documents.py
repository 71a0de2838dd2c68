"""Schema documents: what a client sends as a label schema, read into a `LabelSchema`.

A document is a JSON object (docs/label-schema.md) or a Label Studio XML labeling config (a string
starting with `<`), which `label_studio` converts. Either way every problem comes back at once,
located: a JSON pointer into the document, or a line of the XML.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ValidationError

from app.core.errors import ValidationFailed, json_pointer
from app.label_schema.label_studio.parse import label_schema_from_label_studio
from app.label_schema.model import LabelSchema, json_type, schema_error_paths


def parse_label_schema(document: object) -> LabelSchema:
    """Parse a label schema document: a JSON object (see docs/label-schema.md) or a Label Studio
    XML labeling config (a string starting with `<`), which is converted.

    Raises `ValidationFailed` listing every problem: for a JSON document each carries a `pointer`
    into it (`#/controls/0/labels`), for XML a `line` where one is known.
    """
    if isinstance(document, LabelSchema):
        return document
    if isinstance(document, str):
        if document.lstrip().startswith("<"):
            return label_schema_from_label_studio(document)
        raise ValidationFailed(
            "A label schema is a JSON object or a Label Studio XML config",
            errors=[{"pointer": "#", "detail": "a string schema must be Label Studio XML"}],
        )
    if not isinstance(document, Mapping):
        raise ValidationFailed(
            "A label schema is a JSON object or a Label Studio XML config",
            errors=[{"pointer": "#", "detail": f"expected an object, got {json_type(document)}"}],
        )
    try:
        # Strict: a schema is JSON, so "3" is not a number and 1 is not true.
        return LabelSchema.model_validate(dict(document), strict=True)
    except ValidationError as exc:
        problems = [
            {"pointer": json_pointer(path), "detail": message}
            for path, message in schema_error_paths(exc)
        ]
        raise ValidationFailed("The label schema is not valid", errors=problems) from None


def parse_label_schema_at(document: object, pointer: str = "#/label_schema") -> LabelSchema:
    """`parse_label_schema` for a schema sent inside a request body: every problem's pointer
    is prefixed with where the schema sits in that body."""
    try:
        return parse_label_schema(document)
    except ValidationFailed as exc:
        for error in exc.errors:
            if "pointer" in error:
                error["pointer"] = pointer + str(error["pointer"]).removeprefix("#")
        raise
