"""Reputation and tiers: the math (pure functions, tested as decision tables) and where the
results are kept.

Reputation is one Beta-smoothed share of good outcomes over four kinds of evidence, each
observation weighted by its kind and by its age:

    reputation = (a + Σ_k w_k · successes_k) / (a + b + Σ_k w_k · trials_k),  a = b = prior / 2

- gold (w = 1.0): each graded gold answer, its score (the ground truth we have);
- agreement (w = 0.5): each answer on an item with a consensus, the consensus model's probability
  that it is right (its confidence if the answer equals the consensus, 1 − it otherwise)
  (noisier: the consensus may be wrong);
- approval (w = 0.5): each assignment a person reviewed (a client, or an admin on appeal),
  1 if approved. Auto-approvals are not evidence of anything and do not count here (they do
  count in the approval rate shown, as on other marketplaces);
- speed (w = 0.25): each task on a job with a speed floor, 1 if not faster than the floor.

Each observation's weight also halves every `TESSERA_QUALITY_REPUTATION_HALF_LIFE_DAYS`, so
recent work counts more. With no evidence the score is a / (a + b) = 0.5, the neutral start
eligibility has always assumed; the prior's strength (`…_PRIOR_STRENGTH` observations) keeps a
handful of tasks from swinging it.

Tier (entry / mid / expert) needs both a reputation and a volume of finished tasks. An admin
may override tier and/or reputation with a reason: the override wins, is kept on record when
cleared, and is shown to the annotator. Eligibility reads `annotator_profiles` as before; the
effective values (override, else computed) are written there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.core.settings import Settings
from app.models.jobs import Tier
from app.models.qualification import NEUTRAL_REPUTATION, AnnotatorProfile
from app.models.quality import AnnotatorReputation, ReputationOverride

COMPONENT_WEIGHTS: dict[str, float] = {
    "gold": 1.0,
    "agreement": 0.5,
    "approval": 0.5,
    "speed": 0.25,
}
TIER_ORDER = (Tier.entry, Tier.mid, Tier.expert)
SECONDS_PER_DAY = 86_400.0


# --- the math ------------------------------------------------------------------------------------


def decay(age_seconds: float, half_life_days: float) -> float:
    """The weight of an observation `age_seconds` old: 1 now, 1/2 after one half-life."""
    return float(0.5 ** (max(age_seconds, 0.0) / (half_life_days * SECONDS_PER_DAY)))


@dataclass
class Evidence:
    """Decayed sums per kind of evidence: (weighted successes, weighted trials)."""

    sums: dict[str, list[float]] = field(
        default_factory=lambda: {kind: [0.0, 0.0] for kind in COMPONENT_WEIGHTS}
    )

    def add(self, kind: str, outcome: float, weight: float) -> None:
        """One observation of `kind` with an outcome in [0, 1] and its decay weight."""
        pair = self.sums[kind]
        pair[0] += weight * outcome
        pair[1] += weight

    def merge(self, other: Evidence) -> None:
        for kind, (successes, trials) in other.sums.items():
            self.sums[kind][0] += successes
            self.sums[kind][1] += trials

    def as_dict(self) -> dict[str, Any]:
        """Per kind: the weighted successes and trials and their share (None without trials)."""
        return {
            kind: {
                "successes": round(s, 4),
                "trials": round(n, 4),
                "share": round(s / n, 4) if n > 0 else None,
                "weight": COMPONENT_WEIGHTS[kind],
            }
            for kind, (s, n) in self.sums.items()
        }


def smoothed_reputation(evidence: Evidence, prior_strength: float) -> float:
    """The Beta-smoothed share of good outcomes (0.5 with no evidence)."""
    prior = prior_strength / 2
    successes = sum(COMPONENT_WEIGHTS[k] * s for k, (s, _) in evidence.sums.items())
    trials = sum(COMPONENT_WEIGHTS[k] * n for k, (_, n) in evidence.sums.items())
    return min(1.0, max(0.0, (prior + successes) / (2 * prior + trials)))


@dataclass(frozen=True)
class TierThresholds:
    mid_reputation: float
    mid_tasks: int
    expert_reputation: float
    expert_tasks: int

    @classmethod
    def of(cls, settings: Settings) -> TierThresholds:
        return cls(
            settings.quality_tier_mid_reputation,
            settings.quality_tier_mid_tasks,
            settings.quality_tier_expert_reputation,
            settings.quality_tier_expert_tasks,
        )

    def needs(self, tier: Tier) -> tuple[float, int]:
        """(reputation, finished tasks) a tier requires."""
        if tier is Tier.expert:
            return self.expert_reputation, self.expert_tasks
        if tier is Tier.mid:
            return self.mid_reputation, self.mid_tasks
        return 0.0, 0


def tier_for(reputation: float, tasks: int, thresholds: TierThresholds) -> Tier:
    """The highest tier whose reputation and volume the annotator both reach."""
    for tier in reversed(TIER_ORDER):
        needed_reputation, needed_tasks = thresholds.needs(tier)
        if reputation >= needed_reputation and tasks >= needed_tasks:
            return tier
    return Tier.entry


@dataclass(frozen=True)
class Need:
    what: str  # reputation | tasks
    required: float
    actual: float
    met: bool


@dataclass(frozen=True)
class NextTier:
    tier: Tier
    needs: tuple[Need, ...]


def next_tier(
    current: Tier, reputation: float, tasks: int, thresholds: TierThresholds
) -> NextTier | None:
    """The tier above `current` and what it takes (None at the top)."""
    position = TIER_ORDER.index(current)
    if position == len(TIER_ORDER) - 1:
        return None
    target = TIER_ORDER[position + 1]
    needed_reputation, needed_tasks = thresholds.needs(target)
    return NextTier(
        target,
        (
            Need(
                "reputation",
                needed_reputation,
                round(reputation, 4),
                reputation >= needed_reputation,
            ),
            Need("tasks", needed_tasks, tasks, tasks >= needed_tasks),
        ),
    )


# --- where the results are kept ------------------------------------------------------------------


@dataclass(frozen=True)
class Standing:
    """An annotator's reputation and tier: computed, the override in force, and the effective
    values (what eligibility reads)."""

    annotator_id: int
    computed: AnnotatorReputation | None
    override: ReputationOverride | None
    reputation: float
    tier: Tier


def standing(session: Session, annotator_id: int) -> Standing:
    computed = session.get(AnnotatorReputation, annotator_id)
    override = override_in_force(session, annotator_id)
    reputation, tier = _effective(computed, override)
    return Standing(annotator_id, computed, override, reputation, tier)


def _effective(
    computed: AnnotatorReputation | None, override: ReputationOverride | None
) -> tuple[float, Tier]:
    reputation = computed.reputation if computed is not None else NEUTRAL_REPUTATION
    tier = computed.tier if computed is not None else Tier.entry
    if override is not None:
        reputation = override.reputation if override.reputation is not None else reputation
        tier = override.tier if override.tier is not None else tier
    return reputation, tier


def record_computed(
    session: Session,
    annotator_id: int,
    *,
    reputation: float,
    tier: Tier,
    volume: int,
    evidence: dict[str, Any],
    through: datetime,
    now: datetime,
) -> None:
    """Store a freshly computed reputation and tier, and write the effective values to the
    annotator's profile (an override in force wins)."""
    row = session.get(AnnotatorReputation, annotator_id)
    if row is None:
        row = AnnotatorReputation(annotator_id=annotator_id)
        session.add(row)
    row.reputation, row.tier, row.volume, row.evidence = reputation, tier, volume, evidence
    row.computed_through, row.computed_at = through, now
    session.flush()
    apply_effective(session, annotator_id, now)


def apply_effective(session: Session, annotator_id: int, now: datetime) -> None:
    """Write the effective reputation and tier to `annotator_profiles` (the row eligibility
    reads) when they differ from what is there. Through the ORM, so routing's eligibility cache
    forgets the annotator's verdicts at once."""
    computed = session.get(AnnotatorReputation, annotator_id)
    override = override_in_force(session, annotator_id)
    reputation, tier = _effective(computed, override)
    profile = session.get(AnnotatorProfile, annotator_id, with_for_update=True)
    if profile is None:
        profile = AnnotatorProfile(user_id=annotator_id, reputation=reputation, tier=tier)
        session.add(profile)
    elif profile.reputation == reputation and profile.tier is tier:
        return
    profile.reputation, profile.tier = reputation, tier
    profile.updated_at = now
    profile.updated_by_id = override.created_by_id if override is not None else None
    session.flush()


def override_in_force(session: Session, annotator_id: int) -> ReputationOverride | None:
    return session.scalar(
        select(ReputationOverride)
        .where(
            ReputationOverride.annotator_id == annotator_id,
            ReputationOverride.cleared_at.is_(None),
        )
        .order_by(ReputationOverride.id.desc())
        .limit(1)
    )


def set_override(
    session: Session,
    annotator_id: int,
    *,
    tier: Tier | None,
    reputation: float | None,
    reason: str,
    admin_id: int,
    now: datetime,
) -> ReputationOverride:
    """Override the annotator's tier and/or reputation (at least one) with a reason. The
    override in force before is cleared (kept on record); the profile changes at once and
    stays so until the override is cleared, whatever the batch computes meanwhile."""
    previous = override_in_force(session, annotator_id)
    if previous is not None:
        previous.cleared_at, previous.cleared_by_id = now, admin_id
    override = ReputationOverride(
        annotator_id=annotator_id,
        tier=tier,
        reputation=reputation,
        reason=reason,
        created_by_id=admin_id,
        created_at=now,
    )
    session.add(override)
    session.flush()
    apply_effective(session, annotator_id, now)
    return override


def clear_override(
    session: Session, annotator_id: int, *, admin_id: int, now: datetime
) -> ReputationOverride:
    """End the override in force (404 if none): the computed values apply again."""
    override = override_in_force(session, annotator_id)
    if override is None:
        raise NotFound("This annotator has no override in force")
    override.cleared_at, override.cleared_by_id = now, admin_id
    session.flush()
    apply_effective(session, annotator_id, now)
    return override


def overrides_of(session: Session, annotator_id: int) -> list[ReputationOverride]:
    """Every override of the annotator, newest first (cleared ones too)."""
    return list(
        session.scalars(
            select(ReputationOverride)
            .where(ReputationOverride.annotator_id == annotator_id)
            .order_by(ReputationOverride.id.desc())
        )
    )
