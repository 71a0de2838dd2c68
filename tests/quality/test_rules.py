"""The quality rules as decision tables: removal, fast submits, identical runs, suspension
proposals, the derived speed floor, and the check at submit over a sequence of submits."""

from __future__ import annotations

import pytest

from app.core.settings import Settings
from app.models.quality import ActionKind, QualityRule
from app.quality import rules
from app.quality.rules import Run, RunningCounts, SubmitNumbers, Thresholds

T = Thresholds(
    removal_gold_accuracy=0.6,
    removal_min_gold_answers=10,
    identical_run_length=5,
    speed_floor_seconds=10.0,
    suspension_after_removals=3,
)


@pytest.mark.parametrize(
    ("gold_answers", "score_sum", "removed"),
    [
        (0, 0.0, False),  # nothing known
        (9, 0.0, False),  # all wrong, but fewer than N gold answers
        (10, 5.9, True),  # 0.59 < 0.6 after N
        (10, 6.0, False),  # exactly the threshold stays
        (40, 23.0, True),  # 0.575
        (40, 30.0, False),
    ],
)
def test_gold_removal_after_n_gold_answers_below_the_accuracy(
    gold_answers: int, score_sum: float, removed: bool
) -> None:
    decision = rules.gold_removal(gold_answers, score_sum, T)
    assert (decision is not None) is removed
    if decision is not None:
        assert (decision.rule, decision.kind) == (QualityRule.gold_accuracy, ActionKind.removal)
        assert decision.thresholds == {"min_accuracy": 0.6, "after_gold_answers": 10}
        assert decision.numbers == {
            "gold_accuracy": round(score_sum / gold_answers, 4),
            "gold_answers": gold_answers,
        }
        assert "60%" in decision.reason
        assert f"{gold_answers} answers" in decision.reason


@pytest.mark.parametrize(
    ("seconds", "floor", "flagged"),
    [
        (3.0, 10.0, True),
        (9.99, 10.0, True),
        (10.0, 10.0, False),
        (500.0, 10.0, False),
        (0.0, None, False),  # no floor known: nothing is fast
        (0.0, 0.0, False),  # floor 0 switches the rule off
    ],
)
def test_fast_submit_below_the_floor(seconds: float, floor: float | None, flagged: bool) -> None:
    decision = rules.fast_submit(seconds, floor)
    assert (decision is not None) is flagged
    if decision is not None:
        assert decision.numbers == {"seconds": round(seconds, 2)}
        assert decision.thresholds == {"floor_seconds": floor}


@pytest.mark.parametrize(
    ("removals", "dismissed_at", "proposed"),
    [
        (2, None, False),
        (3, None, True),
        (3, 3, False),  # an admin dismissed a proposal at 3 removals: not again at 3
        (4, 3, True),  # one more removal since
    ],
)
def test_suspension_is_proposed_after_repeated_removals(
    removals: int, dismissed_at: int | None, proposed: bool
) -> None:
    decision = rules.suspension_proposal(removals, dismissed_at, T)
    assert (decision is not None) is proposed
    if decision is not None:
        assert decision.kind is ActionKind.suspension_proposal
        assert decision.numbers == {"removals": removals}


@pytest.mark.parametrize(
    ("seconds", "floor"),
    [
        ([], None),
        ([10.0] * 19, None),  # fewer submits than needed
        ([10.0] * 20, 2.5),
        ([4.0, 8.0, 12.0, 100.0] * 5, 2.5),  # the median (10), not the mean
    ],
)
def test_derived_floor_is_a_share_of_the_median(seconds: list[float], floor: float | None) -> None:
    assert rules.derived_floor(seconds, share=0.25, min_submits=20) == floor


def test_job_overrides_replace_the_defaults_and_the_clients_floor_wins() -> None:
    platform = Thresholds.platform(Settings(_env_file=None))  # type: ignore[call-arg]
    assert platform.speed_floor_seconds is None
    job = platform.for_job(
        removal_gold_accuracy=0.9, derived_floor_seconds=4.0, identical_run_length=None
    )
    assert (job.removal_gold_accuracy, job.speed_floor_seconds) == (0.9, 4.0)
    assert job.identical_run_length == platform.identical_run_length
    assert (
        platform.for_job(speed_floor_seconds=7.0, derived_floor_seconds=4.0).speed_floor_seconds
        == 7.0
    )
    assert (
        platform.for_job(speed_floor_seconds=0.0, derived_floor_seconds=4.0).speed_floor_seconds
        == 0.0
    )


def test_answers_equal_in_any_label_order_have_one_key() -> None:
    assert rules.answer_key({"tags": ["a", "b"]}) == rules.answer_key({"tags": ["b", "a"]})
    assert rules.answer_key({"s": "a"}) != rules.answer_key({"s": "b"})
    assert rules.same_answer({"s": "a", "t": ["x", "y"]}, {"t": ["y", "x"], "s": "a"})
    assert not rules.same_answer({"s": "a"}, {"s": "a", "t": "z"})  # a control missing
    assert not rules.same_answer({"s": "a"}, {})


@pytest.mark.parametrize(
    ("sequence", "spans", "run"),
    [
        ("aabbb", [], Run("b", 3)),
        ("abbbbb", [(2, 6)], Run("b", 0)),  # five b's: flagged, the run starts afresh
        ("bbbbbbbc", [(1, 5)], Run("c", 1)),  # the flag covers five; two more, then c
        ("bbbbbbbbbbb", [(1, 5), (6, 10)], Run("b", 1)),  # eleven: two flags
        ("aaaabaaaab", [], Run("b", 1)),  # runs of four never reach five
    ],
)
def test_long_runs_in_a_history(sequence: str, spans: list[tuple[int, int]], run: Run) -> None:
    keys = [(i + 1, key) for i, key in enumerate(sequence)]
    found, current = rules.long_runs(keys, 5)
    assert [(r.first_answer_id, r.last_answer_id, r.length) for r in found] == [
        (*span, 5) for span in spans
    ]
    assert current == run


def test_the_history_counts_runs_as_submits_do() -> None:
    """`long_runs` over a history flags where `decide_at_submit` flags, submit by submit."""
    sequence = "aaaaaaabbbbbbbbbbbbaaccccc"
    counts = RunningCounts()
    at_submit = []
    for position, key in enumerate(sequence, start=1):
        verdict = rules.decide_at_submit(SubmitNumbers(30.0, (), (key,)), counts, T)
        counts = verdict.counts
        at_submit += [position for d in verdict.decisions]
    found, run = rules.long_runs([(i + 1, k) for i, k in enumerate(sequence)], 5)
    assert at_submit == [r.last_answer_id for r in found] == [5, 12, 17, 26]
    assert run == counts.run


def test_decide_at_submit_over_a_sequence_of_submits() -> None:
    counts = RunningCounts()
    seen: list[list[QualityRule]] = []
    # Twelve one-item tasks: the same answer each time, a control item every other task
    # (scored 0.5), the third one fast.
    for n in range(12):
        numbers = SubmitNumbers(
            seconds=3.0 if n == 2 else 30.0,
            gold_scores=(0.5,) if n % 2 else (),
            answer_keys=("k",),
        )
        verdict = rules.decide_at_submit(numbers, counts, T)
        counts = verdict.counts
        seen.append([d.rule for d in verdict.decisions])
    assert seen[2] == [QualityRule.fast_submit]
    assert seen[4] == [QualityRule.identical_answers]  # the fifth identical answer
    assert seen[9] == [QualityRule.identical_answers]  # five more
    # The tenth gold answer (the twentieth task) would remove; six so far, no removal yet.
    assert QualityRule.gold_accuracy not in [r for rs in seen for r in rs]
    assert (counts.gold_answers, counts.gold_score_sum) == (6, 3.0)
    assert counts.run == Run("k", 2)


def test_decide_at_submit_removes_once_n_gold_answers_are_below_x() -> None:
    counts = RunningCounts(gold_answers=9, gold_score_sum=5.0, run=Run())
    verdict = rules.decide_at_submit(SubmitNumbers(30.0, (0.0,), ("x",)), counts, T)
    [decision] = verdict.decisions
    assert decision.rule is QualityRule.gold_accuracy
    assert decision.numbers == {"gold_accuracy": 0.5, "gold_answers": 10}
    # A submit without gold answers never removes, whatever the counts.
    bad = RunningCounts(gold_answers=50, gold_score_sum=0.0)
    assert rules.decide_at_submit(SubmitNumbers(30.0, (), ("x",)), bad, T).decisions == ()


def test_identical_flags_name_the_answer_that_completed_the_run() -> None:
    counts = RunningCounts(run=Run("k", 3))
    verdict = rules.decide_at_submit(SubmitNumbers(30.0, (), ("k", "k", "k")), counts, T)
    [flag] = verdict.decisions
    assert flag.slot == 1  # 3 + 2 = five in a row at the second answer
    assert verdict.counts.run == Run("k", 1)
