"""Reputation smoothing, decay and tiers as decision tables."""

from __future__ import annotations

import pytest

from app.models.jobs import Tier
from app.quality import reputation
from app.quality.reputation import Evidence, TierThresholds

DAY = 86_400.0
TIERS = TierThresholds(mid_reputation=0.7, mid_tasks=50, expert_reputation=0.85, expert_tasks=250)


def evidence(**kinds: tuple[float, float]) -> Evidence:
    """Evidence from (successes, trials) per kind, all observations fresh (weight 1)."""
    out = Evidence()
    for kind, (successes, trials) in kinds.items():
        out.sums[kind] = [successes, trials]
    return out


@pytest.mark.parametrize(
    ("kinds", "prior", "expected"),
    [
        ({}, 10.0, 0.5),  # new annotators start neutral
        ({"gold": (1.0, 1.0)}, 10.0, 6 / 11),  # one right answer moves it a little
        ({"gold": (0.0, 1.0)}, 10.0, 5 / 11),
        ({"gold": (10.0, 10.0)}, 10.0, 15 / 20),
        ({"gold": (10.0, 10.0)}, 2.0, 11 / 12),  # a weaker prior lets evidence speak sooner
        ({"gold": (100.0, 100.0)}, 10.0, 105 / 110),
        # Agreement and approval count half as much as gold, speed a quarter.
        ({"agreement": (10.0, 10.0)}, 10.0, (5 + 5) / (10 + 5)),
        ({"approval": (0.0, 10.0)}, 10.0, 5 / (10 + 5)),
        ({"speed": (0.0, 8.0)}, 10.0, 5 / (10 + 2)),
        ({"gold": (8.0, 10.0), "agreement": (6.0, 10.0)}, 10.0, (5 + 8 + 3) / (10 + 10 + 5)),
    ],
)
def test_beta_smoothing(
    kinds: dict[str, tuple[float, float]], prior: float, expected: float
) -> None:
    assert reputation.smoothed_reputation(evidence(**kinds), prior) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("age_days", "half_life_days", "weight"),
    [(0, 30, 1.0), (30, 30, 0.5), (60, 30, 0.25), (7, 7, 0.5), (-1, 30, 1.0)],
)
def test_decay_halves_every_half_life(
    age_days: float, half_life_days: float, weight: float
) -> None:
    assert reputation.decay(age_days * DAY, half_life_days) == pytest.approx(weight)


def test_recent_work_weighs_more_than_old_work() -> None:
    """Ten wrong gold answers 60 days ago, ten right ones today, and the same the other way
    round: the recent half decides which side of neutral the annotator is on."""
    improving, declining = Evidence(), Evidence()
    old, new = reputation.decay(60 * DAY, 30), reputation.decay(0, 30)
    for _ in range(10):
        improving.add("gold", 0.0, old)
        improving.add("gold", 1.0, new)
        declining.add("gold", 1.0, old)
        declining.add("gold", 0.0, new)
    assert reputation.smoothed_reputation(improving, 10) == pytest.approx((5 + 10) / (10 + 12.5))
    assert reputation.smoothed_reputation(declining, 10) == pytest.approx((5 + 2.5) / (10 + 12.5))


@pytest.mark.parametrize(
    ("score", "tasks", "tier"),
    [
        (0.5, 0, Tier.entry),  # a new annotator
        (0.99, 49, Tier.entry),  # great but too few tasks
        (0.69, 5000, Tier.entry),  # many tasks, reputation short of mid
        (0.7, 50, Tier.mid),  # both thresholds met exactly
        (0.84, 10_000, Tier.mid),
        (0.85, 249, Tier.mid),  # expert reputation, mid volume
        (0.85, 250, Tier.expert),
        (1.0, 1_000_000, Tier.expert),
    ],
)
def test_tier_needs_both_reputation_and_volume(score: float, tasks: int, tier: Tier) -> None:
    assert reputation.tier_for(score, tasks, TIERS) is tier


@pytest.mark.parametrize(
    ("current", "score", "tasks", "target", "met"),
    [
        (Tier.entry, 0.62, 12, Tier.mid, {"reputation": False, "tasks": False}),
        (Tier.entry, 0.75, 12, Tier.mid, {"reputation": True, "tasks": False}),
        (Tier.mid, 0.8, 300, Tier.expert, {"reputation": False, "tasks": True}),
        (Tier.expert, 0.9, 300, None, None),  # the top: nothing next
    ],
)
def test_what_the_next_tier_needs(
    current: Tier, score: float, tasks: int, target: Tier | None, met: dict[str, bool] | None
) -> None:
    following = reputation.next_tier(current, score, tasks, TIERS)
    if target is None:
        assert following is None
        return
    assert following is not None
    assert following.tier is target
    assert {n.what: n.met for n in following.needs} == met
    needed = dict(zip(("reputation", "tasks"), TIERS.needs(target), strict=True))
    assert {n.what: n.required for n in following.needs} == needed
    assert {n.what: n.actual for n in following.needs} == {"reputation": score, "tasks": tasks}
