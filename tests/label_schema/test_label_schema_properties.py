"""Properties that hold for any input: generated with hypothesis."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.label_schema import LabelSchema, parse_label_schema, validate_answer
from app.label_schema.label_studio import (
    label_schema_from_label_studio,
    label_studio_config,
    label_studio_result,
)

BOXES = parse_label_schema(
    {
        "controls": [
            {
                "name": "objects",
                "type": "boxes",
                "field": "image",
                "labels": ["car", "person"],
                "width_field": "w",
                "height_field": "h",
            }
        ]
    }
)

extents = st.one_of(st.integers(1, 10_000), st.floats(0.5, 10_000))
fractions = st.floats(0, 1, exclude_max=True)
sizes = st.floats(0.001, 1)


@st.composite
def image_and_boxes(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    width, height = draw(extents), draw(extents)
    boxes = []
    for _ in range(draw(st.integers(0, 5))):
        x, y = draw(fractions) * width, draw(fractions) * height
        boxes.append(
            {
                "x": x,
                "y": y,
                "width": (width - x) * draw(sizes),
                "height": (height - y) * draw(sizes),
                "label": draw(st.sampled_from(["car", "person"])),
            }
        )
    return {"image": "u", "w": width, "h": height}, boxes


@given(image_and_boxes())
def test_boxes_inside_the_image_always_validate_and_convert_to_percentages_within_0_100(
    case: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    payload, boxes = case
    assert validate_answer(BOXES, {"objects": boxes}, payload) == []
    for result in label_studio_result(BOXES, {"objects": boxes}, payload):
        value = result["value"]
        assert 0 <= value["x"] < 100
        assert 0 <= value["y"] < 100
        assert value["width"] > 0
        assert value["height"] > 0
        assert value["x"] + value["width"] <= 100 + 1e-6
        assert value["y"] + value["height"] <= 100 + 1e-6


# --- arbitrary answers ---

EVERYTHING = parse_label_schema(
    {
        "controls": [
            {"name": "c", "type": "choices", "field": "t", "labels": ["a", "b"], "multiple": True},
            {"name": "s", "type": "spans", "field": "t", "labels": ["a"], "allow_overlap": False},
            {
                "name": "b",
                "type": "boxes",
                "field": "i",
                "labels": ["a"],
                "width_field": "w",
                "height_field": "h",
            },
            {"name": "p", "type": "polygons", "field": "i", "labels": ["a"], "width_field": "w"},
            {"name": "k", "type": "keypoints", "field": "i", "labels": ["a"], "height_field": "h"},
            {"name": "x", "type": "text", "field": "t"},
            {"name": "r", "type": "rating"},
            {"name": "n", "type": "number", "integer": True, "min": 0},
            {"name": "a.b", "type": "choices", "field": "t", "labels": ["a"]},
        ]
    }
)
KEYS = ["c", "s", "b", "p", "k", "x", "r", "n", "a.b", "start", "end", "label", "points"]
KEYS += ["width", "height", "y", "~", "/", "", "a/b~c"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 50),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["a", "b", "zzz", ""]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=3), inner, max_size=6)
    ),
    max_leaves=40,
)


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def resolve_parent(document: Any, pointer: str) -> Any:
    """Follow all but the last token of `pointer`; the last must name a key or index of it."""
    assert pointer == "#" or pointer.startswith("#/")
    if pointer == "#":
        return document
    *parents, last = [unescape(t) for t in pointer[2:].split("/")]
    node = document
    for token in parents:
        node = node[int(token)] if isinstance(node, list) else node[token]
    if isinstance(node, list):
        assert 0 <= int(last) < len(node)
    else:
        assert isinstance(node, dict)
    return node


@settings(max_examples=150)
@given(
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=9) | json_values,
    st.fixed_dictionaries({"t": st.text(max_size=30), "w": json_values, "h": st.integers(-1, 60)}),
)
def test_any_json_answer_gets_problems_not_exceptions_and_every_pointer_resolves(
    answer: Any, payload: dict[str, Any]
) -> None:
    problems = validate_answer(EVERYTHING, answer, payload)
    for problem in problems:
        assert set(problem) == {"pointer", "detail"}
        assert isinstance(problem["detail"], str)
        assert problem["detail"]
        resolve_parent(answer, problem["pointer"])


# --- schemas through Label Studio and back ---

names = st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True)
fields = st.sampled_from(["text", "image", "a field", "$x", "item", "c0"])
label_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\ufffe\uffff"),
    min_size=1,
    max_size=12,
)
label_lists = st.lists(label_text, min_size=1, max_size=5, unique=True)
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@st.composite
def expressible_control(draw: st.DrawFn, name: str) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            ["choices", "spans", "boxes", "polygons", "keypoints", "text", "rating", "number"]
        )
    )
    control: dict[str, Any] = {"name": name, "type": kind, "required": draw(st.booleans())}
    if kind in ("rating", "number"):
        field = draw(st.none() | fields)
        if field is not None:
            control["field"] = field
    else:
        control["field"] = draw(fields)
    if kind in ("choices", "spans", "boxes", "polygons", "keypoints"):
        control["labels"] = draw(label_lists)
    if kind == "choices":
        control["multiple"] = draw(st.booleans())
    elif kind == "rating":
        control["max"] = draw(st.integers(2, 10))
    elif kind == "number":
        integer = draw(st.booleans())
        bounds = sorted(draw(st.lists(finite.map(round) if integer else finite, max_size=2)))
        if bounds:
            control["min"] = bounds[0]
        if len(bounds) == 2:
            control["max"] = bounds[1]
        control["integer"] = integer
    return control


@st.composite
def expressible_schemas(draw: st.DrawFn) -> LabelSchema:
    control_names = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    controls = [draw(expressible_control(name)) for name in control_names]
    return parse_label_schema({"controls": controls})


@settings(max_examples=100)
@given(expressible_schemas())
def test_schemas_label_studio_can_express_survive_the_round_trip(schema: LabelSchema) -> None:
    assert label_schema_from_label_studio(label_studio_config(schema)) == schema


# --- the fast paths agree with the full checks ---

edge_numbers = st.sampled_from(
    [-1, 0, 0.5, 1, 9.999999999, 10, 10.0000001, 11, 3, True]
) | st.floats(-1, 12)
edge_ints = st.integers(-2, 32) | st.sampled_from([1.0, True])
edge_labels = st.sampled_from(["a", "zzz", 1])


def items(keys: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({**keys, "label": edge_labels})


near_valid_answers = st.fixed_dictionaries(
    {
        "s": st.lists(items({"start": edge_ints, "end": edge_ints}), max_size=4),
        "b": st.lists(
            items(
                {
                    "x": edge_numbers,
                    "y": edge_numbers,
                    "width": edge_numbers,
                    "height": edge_numbers,
                }
            ),
            max_size=4,
        ),
        "p": st.lists(
            items({"points": st.lists(st.lists(edge_numbers, min_size=1, max_size=3), max_size=5)}),
            max_size=3,
        ),
        "k": st.lists(items({"x": edge_numbers, "y": edge_numbers}), max_size=4),
    }
)


def as_mappings(value: Any) -> Any:
    """The same JSON with every object a read-only mapping, which skips the dict-only fast paths."""
    if isinstance(value, dict):
        return MappingProxyType({k: as_mappings(v) for k, v in value.items()})
    if isinstance(value, list):
        return [as_mappings(v) for v in value]
    return value


@settings(max_examples=200)
@given(near_valid_answers, st.sampled_from([{"t": "x" * 30, "w": 10, "h": 10}, {}]))
def test_the_fast_paths_accept_only_what_the_full_checks_accept(
    answer: dict[str, Any], payload: dict[str, Any]
) -> None:
    fast = validate_answer(EVERYTHING, answer, payload)
    full = validate_answer(EVERYTHING, as_mappings(answer), payload)
    assert fast == full
