"""What work pays, as pure functions of plain values: no session, no clock, no settings.

Everything is integer micro-units. Multipliers are basis points (10000 = 1x), so a multiplied
rate is one integer multiplication and one floor division; fractions of a micro-unit are
dropped (in the client's favour), never carried in a float.

- Per-task pay: the job's rate × the annotator's tier multiplier, plus the gold bonus when the
  assignment's gold score reaches the job's threshold.
- Hourly pay: the hourly rate × the tier multiplier × measured active seconds, the seconds capped
  at the job's maximum per task.
- The platform fee is `fee_bps` basis points of what a client spends on work, rounded down.
- A slot's cost is the most one assignment can cost the client (highest multiplier, the bonus,
  the hourly cap, plus the fee): escrow reserves it per task slot, so a submit always finds its
  money there.
- The fair-pay floor: an annotator's approved work on a job must pay at least the floor per hour
  of its paid active time; the difference is a top-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.models.jobs import PricingMode, Tier

ONE_X_BPS = 10_000
SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class PayTerms:
    """A job's pay terms (frozen once the job is active)."""

    mode: PricingMode
    rate_micros: int
    fee_bps: int
    tier_multipliers_bps: Mapping[Tier, int] = field(default_factory=dict)
    gold_bonus_micros: int = 0
    gold_bonus_min_score: float | None = None
    max_seconds_per_task: int | None = None

    @classmethod
    def of(cls, job: Any, fee_bps: int | None = None) -> PayTerms:
        """The terms of a job (an ORM `Job` or anything with its pricing attributes). The fee
        is the one fixed on the job at activation, else `fee_bps`."""
        fee = job.platform_fee_bps if job.platform_fee_bps is not None else fee_bps
        if fee is None:
            raise ValueError(f"job {job.id} has no platform fee fixed yet")
        return cls(
            mode=PricingMode(job.pricing_mode),
            rate_micros=job.rate_micros,
            fee_bps=fee,
            tier_multipliers_bps={
                Tier(tier): bps for tier, bps in (job.tier_multipliers_bps or {}).items()
            },
            gold_bonus_micros=job.gold_bonus_micros or 0,
            gold_bonus_min_score=job.gold_bonus_min_score,
            max_seconds_per_task=job.max_seconds_per_task,
        )

    def multiplier_bps(self, tier: Tier) -> int:
        return self.tier_multipliers_bps.get(tier, ONE_X_BPS)


@dataclass(frozen=True)
class Earning:
    """What one submitted assignment earns, and what it costs the client."""

    work_micros: int  # task pay or hourly pay, after the tier multiplier
    bonus_micros: int  # gold bonus
    fee_micros: int  # platform fee on work + bonus
    paid_seconds: int  # active seconds the pay is for (capped for hourly work)
    multiplier_bps: int

    @property
    def annotator_micros(self) -> int:
        return self.work_micros + self.bonus_micros

    @property
    def cost_micros(self) -> int:
        """What leaves the job's escrow."""
        return self.annotator_micros + self.fee_micros

    def describe(self, terms: PayTerms) -> str:
        """One line for statements: how the amount came about."""
        parts = []
        if terms.mode is PricingMode.hourly:
            parts.append(f"{self.paid_seconds}s at {terms.rate_micros}/h")
        else:
            parts.append(f"task {terms.rate_micros}")
        if self.multiplier_bps != ONE_X_BPS:
            parts.append(f"x{self.multiplier_bps / ONE_X_BPS:g} tier")
        if self.bonus_micros:
            parts.append(f"+ gold bonus {self.bonus_micros}")
        return " ".join(parts)


def fee_on(amount_micros: int, fee_bps: int) -> int:
    """The platform fee on `amount_micros` of spend, rounded down."""
    return amount_micros * fee_bps // ONE_X_BPS


def paid_seconds(terms: PayTerms, active_seconds: int) -> int:
    """The active seconds hourly work is paid for (capped at the job's maximum per task)."""
    seconds = max(0, active_seconds)
    if terms.max_seconds_per_task is not None:
        seconds = min(seconds, terms.max_seconds_per_task)
    return seconds


def earning(terms: PayTerms, tier: Tier, active_seconds: int, gold_score: float | None) -> Earning:
    """What a submitted assignment earns under `terms` for an annotator of `tier` who was
    active `active_seconds` and scored `gold_score` on its gold items (None: no gold)."""
    multiplier = terms.multiplier_bps(tier)
    seconds = paid_seconds(terms, active_seconds)
    if terms.mode is PricingMode.hourly:
        work = terms.rate_micros * multiplier * seconds // (ONE_X_BPS * SECONDS_PER_HOUR)
    else:
        work = terms.rate_micros * multiplier // ONE_X_BPS
    bonus = 0
    if (
        terms.gold_bonus_micros
        and gold_score is not None
        and gold_score
        >= (terms.gold_bonus_min_score if terms.gold_bonus_min_score is not None else 1.0)
    ):
        bonus = terms.gold_bonus_micros
    return Earning(work, bonus, fee_on(work + bonus, terms.fee_bps), seconds, multiplier)


def max_annotator_pay(terms: PayTerms) -> int:
    """The most one assignment can pay an annotator under `terms`."""
    multiplier = max([ONE_X_BPS, *terms.tier_multipliers_bps.values()])
    if terms.mode is PricingMode.hourly:
        if terms.max_seconds_per_task is None:
            raise ValueError("hourly pay needs a maximum of seconds per task")
        work = (
            terms.rate_micros
            * multiplier
            * terms.max_seconds_per_task
            // (ONE_X_BPS * SECONDS_PER_HOUR)
        )
    else:
        work = terms.rate_micros * multiplier // ONE_X_BPS
    return work + terms.gold_bonus_micros


def slot_cost(terms: PayTerms) -> int:
    """What escrow reserves per task slot: the most one assignment can cost, fee included.
    Every `earning(...).cost_micros` under the same terms is at most this."""
    most = max_annotator_pay(terms)
    return most + fee_on(most, terms.fee_bps)


def floor_owed(
    floor_micros_per_hour: int, paid_seconds_total: int, earned_micros: int, topped_up_micros: int
) -> int:
    """The fair-pay top-up still owed on a job: the floor for the paid active time, less what
    approved work earned and earlier top-ups paid (never negative)."""
    due = floor_micros_per_hour * paid_seconds_total // SECONDS_PER_HOUR
    return max(0, due - earned_micros - topped_up_micros)


def affordable(free_micros: int, fee_bps: int) -> int:
    """The largest amount whose cost with the fee fits in `free_micros`."""
    if free_micros <= 0:
        return 0
    amount = free_micros * ONE_X_BPS // (ONE_X_BPS + fee_bps)
    while amount + fee_on(amount + 1, fee_bps) + 1 <= free_micros:
        amount += 1
    return amount


def budget(terms: PayTerms, slots: int) -> int:
    """What `slots` task slots reserve in escrow."""
    return slots * slot_cost(terms)


@dataclass(frozen=True)
class PayPreview:
    """What a job pays one annotator, shown before they work: the per-task pay (base × their
    tier's multiplier) or the hourly rate, the gold bonus, the job's median active seconds so
    far and the hourly rate that implies, and the platform's fair-pay floor."""

    mode: PricingMode
    tier: Tier
    multiplier_bps: int
    task_micros: int | None  # per-task jobs: what one task pays, before any bonus
    hourly_rate_micros: int | None  # hourly jobs: what an hour of active time pays
    max_seconds_per_task: int | None  # hourly jobs: the active time one task pays at most
    bonus_micros: int  # the gold bonus (named so in what annotators see: no word "gold")
    bonus_min_score: float | None
    median_active_seconds: float | None  # None: nobody has submitted work on it yet
    implied_hourly_micros: int | None  # per-task pay over the median time; hourly: the rate
    floor_micros_per_hour: int


def pay_preview(
    terms: PayTerms, tier: Tier, median_active_seconds: float | None, floor_micros_per_hour: int
) -> PayPreview:
    """What `terms` pay an annotator of `tier`, given the job's median active seconds per task
    so far (None: unknown). The implied hourly rate of per-task work leaves the bonus out: it
    is not certain, so the figure never promises more than the base pay."""
    multiplier = terms.multiplier_bps(tier)
    task = hourly = implied = None
    if terms.mode is PricingMode.hourly:
        hourly = implied = terms.rate_micros * multiplier // ONE_X_BPS
    else:
        task = terms.rate_micros * multiplier // ONE_X_BPS
        if median_active_seconds:
            implied = int(task * SECONDS_PER_HOUR / median_active_seconds)
    return PayPreview(
        mode=terms.mode,
        tier=tier,
        multiplier_bps=multiplier,
        task_micros=task,
        hourly_rate_micros=hourly,
        max_seconds_per_task=terms.max_seconds_per_task
        if terms.mode is PricingMode.hourly
        else None,
        bonus_micros=terms.gold_bonus_micros,
        bonus_min_score=terms.gold_bonus_min_score if terms.gold_bonus_micros else None,
        median_active_seconds=median_active_seconds,
        implied_hourly_micros=implied,
        floor_micros_per_hour=floor_micros_per_hour,
    )
