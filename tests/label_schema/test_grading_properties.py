"""Properties every grader keeps, checked with hypothesis on generated answers and keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.label_schema.grading import (
    grade_boxes,
    grade_choices,
    grade_keypoints,
    grade_number,
    grade_polygons,
    grade_spans,
    grade_text,
)

# The first call pays for importing shapely's and scipy's native code; no example database, so
# runs leave nothing behind in the work tree.
PROPERTY = settings(deadline=None, database=None, max_examples=60)

LABELS = st.sampled_from(["a", "b"])
COORD = st.integers(0, 60) | st.floats(0, 60, allow_nan=False)

BOX = st.builds(
    lambda x, y, w, h, label: {"x": x, "y": y, "width": w, "height": h, "label": label},
    COORD,
    COORD,
    st.integers(1, 30) | st.floats(0.5, 30),
    st.integers(1, 30) | st.floats(0.5, 30),
    LABELS,
)
# Integer corners keep every IoU an exact ratio, so reference and grader agree at the threshold.
INT_BOX = st.builds(
    lambda x, y, w, h, label: {"x": x, "y": y, "width": w, "height": h, "label": label},
    st.integers(0, 20),
    st.integers(0, 20),
    st.integers(1, 12),
    st.integers(1, 12),
    LABELS,
)
# Arbitrary point lists: convex, non-convex, self-intersecting and degenerate polygons alike.
POLYGON = st.builds(
    lambda points, label: {"points": points, "label": label},
    st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)).map(list), min_size=3, max_size=7),
    LABELS,
)
KEYPOINT = st.builds(lambda x, y, label: {"x": x, "y": y, "label": label}, COORD, COORD, LABELS)
SPAN = st.builds(
    lambda start, length, label: {"start": start, "end": start + length, "label": label},
    st.integers(0, 8),
    st.integers(1, 4),
    LABELS,
)
THRESHOLD = st.floats(0.05, 1.0)
TOLERANCE = st.floats(0, 20)

Grader = Callable[[Any, Any], float]


def _boxes(threshold: float) -> Grader:
    return lambda answer, key: grade_boxes(answer, key, iou_threshold=threshold)


def _polygons(threshold: float) -> Grader:
    return lambda answer, key: grade_polygons(answer, key, iou_threshold=threshold)


def _keypoints(tolerance: float) -> Grader:
    return lambda answer, key: grade_keypoints(answer, key, tolerance=tolerance)


def _choices(answer: Any, key: Any) -> float:
    return grade_choices(answer, key, multiple=True)


def _text(normalize: bool) -> Grader:
    return lambda answer, key: grade_text(answer, key, normalize=normalize)


def _number(tolerance: float) -> Grader:
    return lambda answer, key: grade_number(answer, key, tolerance=tolerance)


# (strategy for a grader, strategy for one answer or key value it grades)
Spec = tuple[st.SearchStrategy[Grader], st.SearchStrategy[Any]]
SYMMETRIC: list[Spec] = [
    (THRESHOLD.map(_boxes), st.lists(BOX, max_size=6)),
    (THRESHOLD.map(_polygons), st.lists(POLYGON, max_size=4)),
    (TOLERANCE.map(_keypoints), st.lists(KEYPOINT, max_size=6)),
    (st.just(grade_spans), st.lists(SPAN, max_size=6)),
    (st.just(_choices), st.lists(st.sampled_from(["a", "b", "c"]), max_size=3, unique=True)),
    (TOLERANCE.map(_number), st.integers(-50, 50) | st.floats(-50, 50)),
]
ALL: list[Spec] = [
    *SYMMETRIC,
    (st.booleans().map(_text), st.text(alphabet="aAbB \t", max_size=20)),
]


def graded(specs: list[Spec], *values: str) -> st.SearchStrategy[tuple[Any, ...]]:
    """(grader, value, ...): "v" draws a value the grader accepts, "json" any JSON value."""

    def draw(spec: Spec) -> st.SearchStrategy[tuple[Any, ...]]:
        grader, value = spec
        return st.tuples(grader, *(value if kind == "v" else JSON for kind in values))

    return st.sampled_from(specs).flatmap(draw)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["x", "y", "width", "height", "label", "points"]), children
        )
    ),
    max_leaves=12,
)


@PROPERTY
@given(graded(ALL, "v", "v"))
def test_scores_are_between_zero_and_one(case: tuple[Grader, Any, Any]) -> None:
    grader, answer, key = case
    assert 0.0 <= grader(answer, key) <= 1.0


@PROPERTY
@given(graded(ALL, "v"))
def test_a_key_graded_against_itself_scores_one(case: tuple[Grader, Any]) -> None:
    grader, key = case
    assert grader(key, key) == 1.0


@PROPERTY
@given(graded(SYMMETRIC, "v", "v"))
def test_matching_graders_are_symmetric(case: tuple[Grader, Any, Any]) -> None:
    grader, first, second = case
    assert grader(first, second) == grader(second, first)


@PROPERTY
@given(st.data(), st.lists(BOX, max_size=8), st.lists(BOX, max_size=8), THRESHOLD)
def test_box_order_does_not_change_the_score(
    data: st.DataObject, answer: list[Any], key: list[Any], threshold: float
) -> None:
    shuffled_answer = data.draw(st.permutations(answer))
    shuffled_key = data.draw(st.permutations(key))
    assert grade_boxes(shuffled_answer, shuffled_key, iou_threshold=threshold) == grade_boxes(
        answer, key, iou_threshold=threshold
    )


def _iou(a: dict[str, Any], b: dict[str, Any]) -> float:
    width = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
    height = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
    inter = max(0, width) * max(0, height)
    return inter / (a["width"] * a["height"] + b["width"] * b["height"] - inter)


def _most_matches(answer: list[Any], key: list[Any], threshold: float) -> int:
    """Brute force: the largest one-to-one matching of qualifying pairs."""
    if not answer:
        return 0
    first, rest = answer[0], answer[1:]
    best = _most_matches(rest, key, threshold)  # leave `first` unmatched
    for j, candidate in enumerate(key):
        if candidate["label"] == first["label"] and 0 < _iou(first, candidate) >= threshold:
            best = max(best, 1 + _most_matches(rest, key[:j] + key[j + 1 :], threshold))
    return best


@PROPERTY
@given(
    st.lists(INT_BOX, max_size=5),
    st.lists(INT_BOX, max_size=5),
    st.sampled_from([0.1, 0.25, 0.5, 0.75]),
)
def test_box_matching_finds_the_largest_matching(
    answer: list[Any], key: list[Any], threshold: float
) -> None:
    matched = _most_matches(answer, key, threshold)
    expected = 1.0 if not answer and not key else 2 * matched / (len(answer) + len(key))
    assert grade_boxes(answer, key, iou_threshold=threshold) == expected


@PROPERTY
@given(
    st.lists(INT_BOX, max_size=5),
    st.lists(INT_BOX, max_size=5),
    st.sampled_from([0.1, 0.25, 0.5, 0.75]),
)
def test_rectangles_grade_the_same_as_polygons_and_as_boxes(
    answer: list[Any], key: list[Any], threshold: float
) -> None:
    def as_polygon(box: dict[str, Any]) -> dict[str, Any]:
        x, y, right, bottom = box["x"], box["y"], box["x"] + box["width"], box["y"] + box["height"]
        return {"points": [[x, y], [right, y], [right, bottom], [x, bottom]], "label": box["label"]}

    polygons = grade_polygons(
        [as_polygon(b) for b in answer], [as_polygon(b) for b in key], iou_threshold=threshold
    )
    assert polygons == grade_boxes(answer, key, iou_threshold=threshold)


@PROPERTY
@given(graded(ALL, "json", "v"))
def test_arbitrary_answers_never_raise(case: tuple[Grader, Any, Any]) -> None:
    grader, answer, key = case
    assert 0.0 <= grader(answer, key) <= 1.0
