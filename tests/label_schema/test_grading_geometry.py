"""Boxes, polygons and keypoints: one-to-one matching, then F1. Hand-computed scores."""

from __future__ import annotations

from typing import Any

import pytest
import shapely

from app.label_schema.grading import grade_boxes, grade_keypoints, grade_polygons


def box(x: float, y: float, width: float, height: float, label: str = "car") -> dict[str, Any]:
    return {"x": x, "y": y, "width": width, "height": height, "label": label}


def strip(left: float, right: float, label: str = "car") -> dict[str, Any]:
    """A box 10 high at y=0: its IoU with another strip is the overlap of the x intervals."""
    return box(left, 0, right - left, 10, label)


def polygon(*points: tuple[float, float], label: str = "road") -> dict[str, Any]:
    return {"points": [list(p) for p in points], "label": label}


def point(x: float, y: float, label: str = "nose") -> dict[str, Any]:
    return {"x": x, "y": y, "label": label}


# Boxes

CAR = box(10, 20, 30, 40)
PERSON = box(100, 100, 20, 50, "person")


def test_identical_boxes_score_one() -> None:
    assert grade_boxes([CAR, PERSON], [CAR, PERSON], iou_threshold=0.5) == 1.0


def test_extra_answer_box_lowers_precision() -> None:
    # 1 match, 2 answer boxes, 1 key box: F1 = 2·1/(2+1)
    assert grade_boxes([CAR, PERSON], [CAR], iou_threshold=0.5) == pytest.approx(2 / 3)


def test_missing_answer_box_lowers_recall() -> None:
    assert grade_boxes([CAR], [CAR, PERSON], iou_threshold=0.5) == pytest.approx(2 / 3)


def test_box_order_does_not_matter() -> None:
    key = [CAR, PERSON, box(300, 300, 10, 10)]
    answer = [box(301, 300, 10, 10), PERSON, box(11, 21, 30, 40)]
    forward = grade_boxes(answer, key, iou_threshold=0.5)
    assert forward == 1.0
    assert grade_boxes(list(reversed(answer)), key, iou_threshold=0.5) == forward


def test_box_with_other_label_does_not_match() -> None:
    assert grade_boxes([box(10, 20, 30, 40, "person")], [CAR], iou_threshold=0.5) == 0.0


def test_iou_exactly_at_threshold_counts() -> None:
    # intersection 100, union 200: IoU 0.5
    assert grade_boxes([box(0, 0, 10, 10)], [box(0, 0, 10, 20)], iou_threshold=0.5) == 1.0


def test_iou_just_below_threshold_does_not_count() -> None:
    # intersection 100, union 200.1: IoU ≈ 0.49975
    assert grade_boxes([box(0, 0, 10, 10)], [box(0, 0, 10, 20.1)], iou_threshold=0.5) == 0.0


def test_iou_at_threshold_counts_with_decimal_coordinates() -> None:
    # Exactly 1/2 on paper; 0.49999999999999994 in naive binary arithmetic.
    answer, key = [box(0.1, 0, 0.1, 1)], [box(0.1, 0, 0.2, 1)]
    assert grade_boxes(answer, key, iou_threshold=0.5) == 1.0


def test_touching_boxes_never_match_even_with_a_tiny_threshold() -> None:
    assert grade_boxes([box(0, 0, 10, 10)], [box(10, 0, 10, 10)], iou_threshold=1e-12) == 0.0


def test_hungarian_beats_greedy_matching() -> None:
    key = [strip(3, 13), strip(7, 17)]
    answer = [strip(4, 14), strip(0, 10)]
    # IoU: a0-k0 9/11 ≈ 0.82, a0-k1 7/13 ≈ 0.54, a1-k0 7/13 ≈ 0.54, a1-k1 3/17 ≈ 0.18.
    # Greedy takes a0-k0 first and leaves a1 unmatched (F1 0.5); the assignment pairs both.
    assert grade_boxes(answer, key, iou_threshold=0.5) == 1.0


def test_matching_prefers_more_pairs_over_more_total_iou() -> None:
    key = [strip(5, 15), strip(10, 20)]
    answer = [strip(5.5, 15.5), strip(0, 10)]
    # IoU: a0-k0 9.5/10.5 ≈ 0.90, a0-k1 5.5/14.5 ≈ 0.38, a1-k0 5/15 ≈ 0.33, a1-k1 0.
    # Maximising total IoU alone would keep a0-k0 (0.90 > 0.71) and match one pair; the score
    # counts pairs, so both are matched.
    assert grade_boxes(answer, key, iou_threshold=0.3) == 1.0


def test_duplicate_answer_boxes_match_one_key_box_once() -> None:
    assert grade_boxes([CAR, CAR, CAR], [CAR], iou_threshold=0.5) == pytest.approx(0.5)


def test_box_lists_empty() -> None:
    assert grade_boxes([], [], iou_threshold=0.5) == 1.0
    assert grade_boxes([], [CAR], iou_threshold=0.5) == 0.0
    assert grade_boxes([CAR], [], iou_threshold=0.5) == 0.0


def test_malformed_box_answer_scores_zero() -> None:
    assert grade_boxes([{**CAR, "width": 0}], [CAR], iou_threshold=0.5) == 0.0
    assert grade_boxes([{**CAR, "x": "10"}], [CAR], iou_threshold=0.5) == 0.0
    assert grade_boxes([{**CAR, "y": float("inf")}], [CAR], iou_threshold=0.5) == 0.0
    assert grade_boxes([{**CAR, "label": None}], [CAR], iou_threshold=0.5) == 0.0
    assert grade_boxes(CAR, [CAR], iou_threshold=0.5) == 0.0
    assert grade_boxes([{**CAR, "x": 10**400}], [CAR], iou_threshold=0.5) == 0.0
    assert grade_boxes([{**CAR, "x": 1e308, "width": 1e308}], [CAR], iou_threshold=0.5) == 0.0
    with pytest.raises(ValueError, match="malformed key"):
        grade_boxes([CAR], [{"x": 1}], iou_threshold=0.5)


def test_many_boxes_grade_quickly() -> None:
    key = [box(x * 12, y * 12, 10, 10) for x in range(30) for y in range(30)]
    answer = [box(b["x"] + 1, b["y"], 10, 10) for b in key]
    # 900 answer boxes against 900 key boxes; each overlaps only its own key box (IoU 9/11)
    assert grade_boxes(answer, key, iou_threshold=0.5) == 1.0


# Polygons

SQUARE = polygon((0, 0), (2, 0), (2, 2), (0, 2))


def test_squares_offset_by_half_have_iou_one_third() -> None:
    shifted = polygon((1, 0), (3, 0), (3, 2), (1, 2))
    # intersection 2, union 6
    assert grade_polygons([shifted], [SQUARE], iou_threshold=1 / 3) == 1.0
    assert grade_polygons([shifted], [SQUARE], iou_threshold=0.34) == 0.0


def test_non_convex_polygon_uses_its_true_area() -> None:
    ell = polygon((0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2))
    # the L (area 3) inside the square (area 4): IoU 0.75; its convex hull would give 0.875
    assert grade_polygons([ell], [SQUARE], iou_threshold=0.75) == 1.0
    assert grade_polygons([ell], [SQUARE], iou_threshold=0.8) == 0.0


def test_self_intersecting_bow_tie_is_repaired_not_rejected() -> None:
    bow_tie = polygon((0, 0), (2, 2), (2, 0), (0, 2))
    # two triangles of area 1 each, both inside the square: IoU 2/4
    assert grade_polygons([bow_tie], [SQUARE], iou_threshold=0.5) == 1.0
    assert grade_polygons([bow_tie], [SQUARE], iou_threshold=0.51) == 0.0
    assert grade_polygons([bow_tie], [bow_tie], iou_threshold=1.0) == 1.0


def test_zero_area_polygon_matches_only_its_exact_copy() -> None:
    line = polygon((0, 0), (1, 1), (2, 2))
    assert grade_polygons([line], [line], iou_threshold=0.5) == 1.0
    assert grade_polygons([polygon((0, 0), (1, 1), (3, 3))], [line], iou_threshold=0.5) == 0.0
    assert grade_polygons([line], [SQUARE], iou_threshold=0.5) == 0.0


def test_small_polygon_inside_a_large_one_has_iou_of_the_area_ratio() -> None:
    large = polygon((0, 0), (10, 0), (10, 10), (0, 10))
    small = polygon((4, 4), (6, 4), (6, 6), (4, 6))
    # intersection 4, union 100
    assert grade_polygons([small], [large], iou_threshold=0.04) == 1.0
    assert grade_polygons([small], [large], iou_threshold=0.05) == 0.0
    assert grade_polygons([large], [small], iou_threshold=0.04) == 1.0


def test_touching_polygons_never_match() -> None:
    neighbour = polygon((2, 0), (4, 0), (4, 2), (2, 2))
    assert grade_polygons([neighbour], [SQUARE], iou_threshold=1e-12) == 0.0


def test_polygon_with_other_label_does_not_match() -> None:
    assert grade_polygons([{**SQUARE, "label": "car"}], [SQUARE], iou_threshold=0.5) == 0.0


def test_polygon_f1_with_extra_and_missing() -> None:
    far = polygon((10, 10), (12, 10), (12, 12))
    farther = polygon((20, 20), (22, 20), (22, 22))
    # answer {square, farther} vs key {square, far}: 1 match, F1 = 2/4
    assert grade_polygons([SQUARE, farther], [SQUARE, far], iou_threshold=0.5) == 0.5


def test_polygon_lists_empty() -> None:
    assert grade_polygons([], [], iou_threshold=0.5) == 1.0
    assert grade_polygons([SQUARE], [], iou_threshold=0.5) == 0.0


def test_malformed_polygon_answer_scores_zero() -> None:
    assert grade_polygons([polygon((0, 0), (1, 1))], [SQUARE], iou_threshold=0.5) == 0.0
    assert grade_polygons([{"points": [[0, 0, 0]] * 3}], [SQUARE], iou_threshold=0.5) == 0.0
    assert grade_polygons([{"points": "0,0 1,1 2,0"}], [SQUARE], iou_threshold=0.5) == 0.0


def test_geometry_engine_failure_on_a_batch_falls_back_to_pairs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = shapely.intersection

    def fails_on_arrays(a: Any, b: Any) -> Any:
        if not isinstance(a, shapely.Geometry):
            raise shapely.errors.GEOSException("TopologyException")
        return real(a, b)

    monkeypatch.setattr(shapely, "intersection", fails_on_arrays)
    shifted = polygon((1, 0), (3, 0), (3, 2), (1, 2))
    assert grade_polygons([shifted], [SQUARE], iou_threshold=1 / 3) == 1.0


def test_geometry_engine_failure_building_rings_falls_back_to_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = shapely.linearrings

    def fails_on_batches(coords: Any, indices: Any = None, **kwargs: Any) -> Any:
        if indices is not None:
            raise shapely.errors.GEOSException("IllegalArgumentException")
        return real(coords, **kwargs)

    monkeypatch.setattr(shapely, "linearrings", fails_on_batches)
    bow_tie = polygon((0, 0), (2, 2), (2, 0), (0, 2))
    assert grade_polygons([bow_tie, SQUARE], [SQUARE], iou_threshold=0.5) == pytest.approx(2 / 3)


# Keypoints


def test_keypoint_at_tolerance_boundary_counts() -> None:
    # 3-4-5 triangle: distance exactly 5
    assert grade_keypoints([point(3, 4)], [point(0, 0)], tolerance=5) == 1.0
    assert grade_keypoints([point(0.4, 0.6)], [point(0.1, 0.2)], tolerance=0.5) == 1.0


def test_keypoint_just_beyond_tolerance_does_not_count() -> None:
    assert grade_keypoints([point(3, 4.01)], [point(0, 0)], tolerance=5) == 0.0


def test_keypoint_with_zero_tolerance_must_be_exact() -> None:
    assert grade_keypoints([point(7, 7)], [point(7, 7)], tolerance=0) == 1.0
    assert grade_keypoints([point(7, 7.001)], [point(7, 7)], tolerance=0) == 0.0


def test_keypoint_with_other_label_does_not_match() -> None:
    assert grade_keypoints([point(0, 0, "eye")], [point(0, 0)], tolerance=10) == 0.0


def test_keypoints_are_assigned_one_to_one() -> None:
    key = [point(0, 0), point(8, 0)]
    answer = [point(4, 0), point(-4, 0)]
    # a0 is 4 from both key points, a1 only near k0: the assignment pairs a0-k1 and a1-k0
    assert grade_keypoints(answer, key, tolerance=5) == 1.0
    # two answers near one key point: only one can match (F1 = 2·1/(2+1))
    assert grade_keypoints([point(1, 0), point(-1, 0)], [point(0, 0)], tolerance=5) == (
        pytest.approx(2 / 3)
    )


def test_keypoint_lists_empty_and_malformed() -> None:
    assert grade_keypoints([], [], tolerance=10) == 1.0
    assert grade_keypoints([], [point(0, 0)], tolerance=10) == 0.0
    assert grade_keypoints([{"x": 0, "label": "nose"}], [point(0, 0)], tolerance=10) == 0.0
    assert grade_keypoints([point(False, 0)], [point(0, 0)], tolerance=10) == 0.0
