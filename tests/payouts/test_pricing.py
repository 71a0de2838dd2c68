"""Pay as pure functions: per-task and hourly pay, tier multipliers, gold bonus, fees, slot cost,
the fair-pay floor, and what fits in free escrow."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.models.jobs import PricingMode, Tier
from payouts import pricing
from payouts.pricing import PayTerms

PER_TASK = PayTerms(
    PricingMode.per_task,
    rate_micros=50_000,
    fee_bps=2000,
    tier_multipliers_bps={Tier.mid: 12_000, Tier.expert: 15_000},
    gold_bonus_micros=10_000,
    gold_bonus_min_score=0.8,
)
HOURLY = PayTerms(
    PricingMode.hourly, rate_micros=12_000_000, fee_bps=2000, max_seconds_per_task=600
)


@pytest.mark.parametrize(
    ("tier", "gold", "work", "bonus", "fee"),
    [
        (Tier.entry, None, 50_000, 0, 10_000),  # no gold in the task: no bonus
        (Tier.entry, 0.79, 50_000, 0, 10_000),  # below the bonus threshold
        (Tier.entry, 0.8, 50_000, 10_000, 12_000),  # at the threshold
        (Tier.mid, 1.0, 60_000, 10_000, 14_000),  # 1.2x
        (Tier.expert, 0.5, 75_000, 0, 15_000),  # 1.5x
    ],
)
def test_per_task_pay_is_rate_times_tier_plus_bonus_with_the_fee_on_top(
    tier: Tier, gold: float | None, work: int, bonus: int, fee: int
) -> None:
    earned = pricing.earning(PER_TASK, tier, active_seconds=999, gold_score=gold)
    assert (earned.work_micros, earned.bonus_micros, earned.fee_micros) == (work, bonus, fee)
    assert earned.cost_micros == work + bonus + fee


@pytest.mark.parametrize(
    ("seconds", "work", "paid_seconds"),
    [
        (0, 0, 0),
        (1, 3_333, 1),  # 12.00/h for one second: 3333.33 micros, the fraction dropped
        (300, 1_000_000, 300),
        (600, 2_000_000, 600),
        (4000, 2_000_000, 600),  # capped at the job's maximum seconds per task
    ],
)
def test_hourly_pay_is_rate_times_active_seconds_capped_per_task(
    seconds: int, work: int, paid_seconds: int
) -> None:
    earned = pricing.earning(HOURLY, Tier.entry, seconds, None)
    assert (earned.work_micros, earned.paid_seconds) == (work, paid_seconds)


def test_a_gold_bonus_without_a_threshold_needs_a_perfect_score() -> None:
    terms = PayTerms(PricingMode.per_task, 10_000, 0, gold_bonus_micros=5_000)
    assert pricing.earning(terms, Tier.entry, 0, 0.99).bonus_micros == 0
    assert pricing.earning(terms, Tier.entry, 0, 1.0).bonus_micros == 5_000


def test_fee_rounds_down_in_the_clients_favour() -> None:
    assert pricing.fee_on(4, 2500) == 1
    assert pricing.fee_on(3, 2500) == 0
    assert pricing.fee_on(1_000_000, 0) == 0


def test_slot_cost_is_the_dearest_assignment_with_its_fee() -> None:
    # expert 1.5x of 0.05 plus the bonus, plus 20%
    assert pricing.slot_cost(PER_TASK) == (75_000 + 10_000) * 12 // 10
    assert pricing.slot_cost(HOURLY) == 2_000_000 + 400_000


terms_strategy = st.builds(
    PayTerms,
    mode=st.sampled_from(list(PricingMode)),
    rate_micros=st.integers(0, 10**9),
    fee_bps=st.integers(0, 10_000),
    tier_multipliers_bps=st.dictionaries(st.sampled_from(list(Tier)), st.integers(0, 100_000)),
    gold_bonus_micros=st.integers(0, 10**7),
    gold_bonus_min_score=st.none() | st.floats(0, 1),
    max_seconds_per_task=st.integers(1, 7 * 86_400),
)


@given(
    terms_strategy,
    st.sampled_from(list(Tier)),
    st.integers(-10, 10**7),
    st.none() | st.floats(0, 1),
)
def test_no_assignment_ever_costs_more_than_its_slot(
    terms: PayTerms, tier: Tier, seconds: int, gold: float | None
) -> None:
    earned = pricing.earning(terms, tier, seconds, gold)
    assert 0 <= earned.cost_micros <= pricing.slot_cost(terms)
    assert earned.fee_micros == pricing.fee_on(earned.annotator_micros, terms.fee_bps)


@pytest.mark.parametrize(
    ("floor", "seconds", "earned", "topped", "owed"),
    [
        (12_000_000, 3600, 12_000_000, 0, 0),  # exactly at the floor
        (12_000_000, 3600, 10_000_000, 0, 2_000_000),
        (12_000_000, 3600, 10_000_000, 1_500_000, 500_000),  # earlier top-ups count
        (12_000_000, 3600, 20_000_000, 0, 0),  # above the floor: nothing, never negative
        (12_000_000, 7, 0, 0, 23_333),  # 7 s at 12.00/h, rounded down
        (0, 3600, 0, 0, 0),  # floor off
    ],
)
def test_floor_owed_is_the_floor_for_paid_time_less_earnings_and_top_ups(
    floor: int, seconds: int, earned: int, topped: int, owed: int
) -> None:
    assert pricing.floor_owed(floor, seconds, earned, topped) == owed


@given(st.integers(-5, 10**12), st.integers(0, 10_000))
def test_affordable_is_the_most_that_fits_with_its_fee(free: int, fee_bps: int) -> None:
    amount = pricing.affordable(free, fee_bps)
    assert amount >= 0
    assert amount + pricing.fee_on(amount, fee_bps) <= max(free, 0)
    assert amount + 1 + pricing.fee_on(amount + 1, fee_bps) > max(free, 0)
