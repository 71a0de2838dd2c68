"""Choices, spans, text, rating and number graders: hand-computed scores."""

from __future__ import annotations

import pytest

from app.label_schema.grading import (
    grade_choices,
    grade_number,
    grade_rating,
    grade_spans,
    grade_text,
)


def span(start: float, end: float, label: str = "PER") -> dict[str, object]:
    return {"start": start, "end": end, "label": label}


# Choices


def test_single_choice_is_exact_match() -> None:
    assert grade_choices("positive", "positive", multiple=False) == 1.0
    assert grade_choices("negative", "positive", multiple=False) == 0.0
    assert grade_choices("Positive", "positive", multiple=False) == 0.0


def test_multiple_choice_is_jaccard_of_label_sets() -> None:
    # {a, b} vs {b, c}: intersection {b}, union {a, b, c}
    assert grade_choices(["a", "b"], ["b", "c"], multiple=True) == pytest.approx(1 / 3)
    assert grade_choices(["b", "a"], ["a", "b"], multiple=True) == 1.0
    assert grade_choices(["a"], ["a", "b", "c", "d"], multiple=True) == pytest.approx(1 / 4)
    assert grade_choices(["x"], ["a"], multiple=True) == 0.0


def test_multiple_choice_both_empty_scores_one_and_one_empty_scores_zero() -> None:
    assert grade_choices([], [], multiple=True) == 1.0
    assert grade_choices([], ["a"], multiple=True) == 0.0
    assert grade_choices(["a"], [], multiple=True) == 0.0


def test_malformed_choice_answer_scores_zero() -> None:
    assert grade_choices(["positive"], "positive", multiple=False) == 0.0
    assert grade_choices(None, "positive", multiple=False) == 0.0
    assert grade_choices("a", ["a"], multiple=True) == 0.0
    assert grade_choices(["a", 1], ["a"], multiple=True) == 0.0


def test_malformed_choice_key_raises() -> None:
    with pytest.raises(ValueError, match="malformed key"):
        grade_choices("a", ["a"], multiple=False)
    with pytest.raises(ValueError, match="malformed key"):
        grade_choices(["a"], "a", multiple=True)


# Spans


def test_spans_identical_score_one() -> None:
    key = [span(0, 5), span(10, 15, "ORG")]
    assert grade_spans(list(reversed(key)), key) == 1.0


def test_partially_overlapping_span_does_not_count() -> None:
    assert grade_spans([span(0, 6)], [span(0, 5)]) == 0.0
    assert grade_spans([span(1, 5)], [span(0, 5)]) == 0.0


def test_span_with_other_label_does_not_count() -> None:
    assert grade_spans([span(0, 5, "ORG")], [span(0, 5, "PER")]) == 0.0


def test_spans_f1_counts_exact_matches() -> None:
    key = [span(0, 5), span(10, 15, "ORG")]
    answer = [span(0, 5), span(10, 14, "ORG"), span(20, 25, "LOC")]
    # 1 match; precision 1/3, recall 1/2 → F1 = 2·1/(3+2)
    assert grade_spans(answer, key) == pytest.approx(0.4)


def test_duplicated_answer_span_matches_once() -> None:
    # 1 match out of 2 answer spans and 1 key span: F1 = 2/3
    assert grade_spans([span(0, 5), span(0, 5)], [span(0, 5)]) == pytest.approx(2 / 3)


def test_spans_empty_lists() -> None:
    assert grade_spans([], []) == 1.0
    assert grade_spans([], [span(0, 5)]) == 0.0
    assert grade_spans([span(0, 5)], []) == 0.0


def test_malformed_span_answer_scores_zero() -> None:
    key = [span(0, 5)]
    assert grade_spans([{"start": 0, "label": "PER"}], key) == 0.0
    assert grade_spans([span(5, 5)], key) == 0.0
    assert grade_spans([{"start": True, "end": 5, "label": "PER"}], key) == 0.0
    assert grade_spans({"start": 0, "end": 5, "label": "PER"}, key) == 0.0
    assert grade_spans([span(0.0, 5.0)], key) == 1.0  # JSON 5.0 is 5


# Text


def test_cer_with_hand_computed_levenshtein() -> None:
    # kitten → sitten (k→s) → sittin (e→i) → sitting (+g): distance 3, key length 7
    assert grade_text("kitten", "sitting", normalize=False) == pytest.approx(1 - 3 / 7)


def test_cer_divides_by_the_key_length() -> None:
    assert grade_text("abcd", "abc", normalize=False) == pytest.approx(1 - 1 / 3)
    assert grade_text("abc", "abcd", normalize=False) == pytest.approx(1 - 1 / 4)


def test_cer_is_capped_at_one() -> None:
    assert grade_text("xxxxxxxxxx", "ab", normalize=False) == 0.0
    assert grade_text("", "abc", normalize=False) == 0.0


def test_normalize_ignores_case_and_whitespace() -> None:
    assert grade_text("  Hello \t\n  WORLD ", "hello world", normalize=True) == 1.0
    assert grade_text("STRASSE", "straße", normalize=True) == 1.0  # casefold, not lower


def test_without_normalize_case_and_whitespace_count() -> None:
    # H→h and W→w: distance 2 over 11 characters
    assert grade_text("Hello World", "hello world", normalize=False) == pytest.approx(1 - 2 / 11)
    # one extra space: distance 1
    assert grade_text("hello  world", "hello world", normalize=False) == pytest.approx(1 - 1 / 11)


def test_empty_key_scores_one_only_against_empty_answer() -> None:
    assert grade_text("", "", normalize=False) == 1.0
    assert grade_text("a", "", normalize=False) == 0.0
    assert grade_text("   ", " \n", normalize=True) == 1.0  # both empty once normalized
    assert grade_text("   ", "", normalize=False) == 0.0


def test_long_transcriptions_grade_quickly() -> None:
    key = "lorem ipsum dolor sit amet " * 370  # ~10k characters
    answer = key.replace("o", "0")
    assert 0.0 < grade_text(answer, key, normalize=True) < 1.0


def test_malformed_text() -> None:
    assert grade_text(["hello"], "hello", normalize=True) == 0.0
    with pytest.raises(ValueError, match="malformed key"):
        grade_text("hello", 5, normalize=True)


# Rating and number


def test_rating_within_tolerance() -> None:
    assert grade_rating(4, 4, tolerance=0) == 1.0
    assert grade_rating(4, 5, tolerance=0) == 0.0
    assert grade_rating(4, 5, tolerance=1) == 1.0
    assert grade_rating(3, 5, tolerance=1) == 0.0


def test_number_tolerance_boundary_is_inclusive_despite_binary_rounding() -> None:
    # 1.1 - 1.0 is 0.10000000000000009 in binary floating point
    assert grade_number(1.1, 1.0, tolerance=0.1) == 1.0
    assert grade_number(0.9, 1.0, tolerance=0.1) == 1.0
    assert grade_number(1.2, 1.0, tolerance=0.1) == 0.0
    assert grade_number(1.1001, 1.0, tolerance=0.1) == 0.0


def test_number_exact_match_with_zero_tolerance() -> None:
    assert grade_number(3, 3.0, tolerance=0) == 1.0
    assert grade_number(1e-15, 0, tolerance=0) == 0.0
    assert grade_number(10**17 + 1, 10**17, tolerance=0) == 0.0  # ints compare exactly


def test_booleans_and_non_numbers_are_not_numbers() -> None:
    assert grade_number(True, 1, tolerance=0) == 0.0
    assert grade_number("1", 1, tolerance=0) == 0.0
    assert grade_number(float("nan"), 1, tolerance=0) == 0.0
    assert grade_rating(None, 3, tolerance=0) == 0.0
    with pytest.raises(ValueError, match="malformed key"):
        grade_number(1, True, tolerance=0)


def test_out_of_range_values_score_zero_without_raising() -> None:
    assert grade_spans([span(0, 5.5)], [span(0, 5)]) == 0.0
    assert grade_number(10**400, 1.0, tolerance=0.5) == 0.0
    assert grade_number(10**400, 10**400, tolerance=0) == 1.0
