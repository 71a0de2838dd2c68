"""Request and response bodies for money: amounts are integer micro-units (`*_micros`), each
with its decimal rendering beside it for people."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AliasPath,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from app.core.inputs import RequestBody
from app.core.money import format_micros
from app.models.jobs import PricingMode, Tier
from payouts import reports
from payouts.destinations import DestinationMethod

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]
Micros = Annotated[int, Field(gt=0, le=10**13, description="micro-units: 1000000 = 1.00")]
# The decimal rendering of an amount, for people: read (from_attributes) from the `*_micros`
# attribute its field names as `validation_alias`, an AliasPath (pydantic's mypy plugin takes a
# plain string alias for an __init__ parameter, which the `*_micros` field already is).
Rendered = Annotated[str, BeforeValidator(format_micros)]


class _In(RequestBody):
    """A request body of the money routes."""


class CreditIn(_In):
    amount_micros: Micros
    reason: Reason


class CheckoutIn(_In):
    amount_micros: Micros
    success_url: AnyHttpUrl
    cancel_url: AnyHttpUrl


class DepositIn(_In):
    amount_micros: Micros


class OnboardingIn(_In):
    return_url: AnyHttpUrl
    refresh_url: AnyHttpUrl


class HoldIn(_In):
    reason: Reason


class SettleIn(_In):
    reference: Reason


class FailIn(_In):
    reason: Reason


def _amount(micros: int | None) -> str | None:
    return None if micros is None else format_micros(micros)


class FundingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    client_id: int
    provider: str
    status: str
    amount_micros: int
    amount: Rendered = Field(validation_alias=AliasPath("amount_micros"))
    credited_micros: int | None
    currency: str
    reason: str | None
    checkout_url: str | None
    created_at: datetime
    credited_at: datetime | None


class ClientBalanceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    currency: str
    available_micros: int
    available: Rendered = Field(validation_alias=AliasPath("available_micros"))
    escrow_micros: int
    escrow: Rendered = Field(validation_alias=AliasPath("escrow_micros"))


class JobSpendOut(BaseModel):
    job_id: int
    currency: str
    status: str
    slot_cost_micros: int
    reserved_slots: int
    remaining_escrow_micros: int
    remaining_escrow: str
    free_escrow_micros: int
    reserved_micros: int
    deposited_micros: int
    released_micros: int
    work_micros: int
    work: str
    topup_micros: int
    fee_micros: int
    spent_micros: int
    spent: str
    closed: bool
    pause_reason: str | None = Field(description="Why the job is paused for money, if it is")
    owed_topup_micros: int = Field(
        description="Fair-pay top-ups owed to the job's annotators and not paid yet (its free "
        "escrow fell short); a deposit of this plus the platform fee pays them and resumes the job"
    )
    owed_topup: str

    @classmethod
    def of(cls, s: reports.JobSpend) -> JobSpendOut:
        # A mapper, not from_attributes: `spent` adds three parts up, and escrow fields rename.
        spent = s.work_micros + s.topup_micros + s.fee_micros
        return cls(
            job_id=s.job_id,
            currency=s.currency,
            status=s.status,
            slot_cost_micros=s.slot_cost_micros,
            reserved_slots=s.reserved_slots,
            remaining_escrow_micros=s.escrow_micros,
            remaining_escrow=format_micros(s.escrow_micros),
            free_escrow_micros=s.free_micros,
            reserved_micros=s.reserved_micros,
            deposited_micros=s.deposited_micros,
            released_micros=s.released_micros,
            work_micros=s.work_micros,
            work=format_micros(s.work_micros),
            topup_micros=s.topup_micros,
            fee_micros=s.fee_micros,
            spent_micros=spent,
            spent=format_micros(spent),
            closed=s.closed,
            pause_reason=s.pause_reason,
            owed_topup_micros=s.owed_topup_micros,
            owed_topup=format_micros(s.owed_topup_micros),
        )


class JobPayOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    job_id: int
    title: str
    approved_assignments: int
    paid_seconds: int
    earned_micros: int
    topup_micros: int = Field(description="Fair-pay floor top-ups on this job")
    effective_hourly_micros: int | None


class EarningsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    currency: str
    pending_micros: int
    pending: Rendered = Field(validation_alias=AliasPath("pending_micros"))
    available_micros: int
    available: Rendered = Field(validation_alias=AliasPath("available_micros"))
    in_flight_micros: int
    paid_micros: int
    paid: Rendered = Field(validation_alias=AliasPath("paid_micros"))
    topup_micros: int = Field(description="Fair-pay floor top-ups, all jobs")
    topups: Rendered = Field(validation_alias=AliasPath("topup_micros"))
    jobs: list[JobPayOut]


class PayoutOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    batch_id: int | None
    annotator_id: int
    provider: str
    status: str
    amount_micros: int
    amount: Rendered = Field(validation_alias=AliasPath("amount_micros"))
    currency: str
    transfer_id: str | None
    failure_reason: str | None
    attempts: int
    retry_of_id: int | None
    reference: str | None
    created_at: datetime
    settled_at: datetime | None


class BatchOut(BaseModel):
    batch_id: int | None = Field(description="None: nobody had the minimum available")
    payouts: list[PayoutOut]
    total_micros: int
    total: str


class PayoutAccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    stripe_account_id: str
    details_submitted: bool
    transfers_enabled: bool
    disabled_reason: str | None
    updated_at: datetime


class OnboardingOut(BaseModel):
    account: PayoutAccountOut
    onboarding_url: str


class TrialBalanceLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    account_kind: str = Field(validation_alias="kind")
    currency: str
    accounts: int
    debits_micros: int
    credits_micros: int
    balance_micros: int
    balance: Rendered = Field(validation_alias=AliasPath("balance_micros"))
    negative_accounts: int


class TrialBalanceOut(BaseModel):
    lines: list[TrialBalanceLineOut]
    totals_micros: dict[str, int] = Field(description="Sum of all balances per currency: 0")
    balanced: bool = Field(
        description="Every currency sums to zero, every entry balances and no account but "
        "`external` is negative"
    )
    unbalanced_entries: list[str]


class BreachOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    invariant: str = Field(
        description="`assignment_earning`, `job_escrow`, `client_money`, `payout` or "
        "`fair_pay_topup`"
    )
    detail: str
    count: int = Field(description="Rows breaking it (the first 100 are in `rows`)")
    rows: list[dict[str, Any]]


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    ok: bool = Field(description="No invariant is broken")
    checked_at: datetime
    checked: dict[str, int] = Field(description="Rows looked at per invariant")
    breaches: list[BreachOut]


class PostingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    posting_id: int = Field(validation_alias="id")
    entry_id: int
    cause: str
    kind: str
    amount_micros: int
    amount: Rendered = Field(validation_alias=AliasPath("amount_micros"))
    job_id: int | None
    assignment_id: int | None
    actor_id: int | None
    reason: str
    created_at: datetime


class AccountOut(BaseModel):
    account_kind: str
    owner_id: int
    currency: str
    balance_micros: int
    balance: str
    postings: list[PostingOut]
    next_cursor: int | None


class WebhookAck(BaseModel):
    received: bool
    duplicate: bool


class PayOut(BaseModel):
    """What this job pays you, before you work on it (integer micro-units)."""

    model_config = ConfigDict(from_attributes=True)

    mode: PricingMode = Field(description="`per_task` or `hourly`")
    tier: Tier = Field(description="Your tier, whose multiplier applies")
    multiplier_bps: int = Field(description="Your tier's multiplier (10000 = 1x)")
    task_micros: int | None = Field(
        description="Per-task jobs: what one task pays you (base × your tier multiplier), "
        "before any bonus"
    )
    hourly_rate_micros: int | None = Field(
        description="Hourly jobs: what an hour of active time pays you (× your multiplier)"
    )
    max_seconds_per_task: int | None = Field(
        description="Hourly jobs: the most active seconds one task pays"
    )
    bonus_micros: int = Field(
        description="The job's quality bonus, paid on top of a task whose control score "
        "reaches `bonus_min_score`"
    )
    bonus_min_score: float | None = Field(
        description="The control score the bonus needs (null: a perfect score, or no bonus)"
    )
    median_active_seconds: float | None = Field(
        description="The job's median active seconds per task so far (null: no work yet)"
    )
    implied_hourly_micros: int | None = Field(
        description="Per-task pay over the median time, per hour (without the bonus); hourly "
        "jobs: the rate"
    )
    floor_micros_per_hour: int = Field(
        description="The platform's fair-pay floor: approved work is topped up to it (0: none)"
    )


class WaitingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    reason: str = Field(
        description="`under-minimum` (available, below the payout minimum), `review-window` "
        "(pending: work not yet approved), `no-payout-account` (Stripe: no account that can "
        "receive transfers)"
    )
    amount_micros: int
    until: datetime | None = Field(
        description="Review window: when the oldest work still pending is approved "
        "automatically (a client may approve it sooner)"
    )


class PayoutPlanOut(BaseModel):
    """One annotator as the next payout batch would treat them."""

    model_config = ConfigDict(from_attributes=True)

    annotator_id: int
    available_micros: int
    pending_micros: int
    minimum_micros: int = Field(description="The platform's minimum, or your own if higher")
    amount_micros: int = Field(description="What the batch pays (0: nothing this time)")
    waiting: list[WaitingOut]


class MyPayoutOut(PayoutPlanOut):
    next_payout_at: datetime = Field(description="When the next scheduled batch runs (UTC)")
    own_minimum_micros: int | None = Field(description="The threshold you chose, if any")


class EarningsWithPayoutOut(EarningsOut):
    payout: MyPayoutOut


class PayoutThresholdIn(RequestBody):
    minimum_micros: Annotated[int, Field(strict=True, ge=0, le=10**12)] | None = Field(
        description="Pay me only once this much is available (at least the platform's "
        "minimum); null: the platform's minimum",
    )


class PayoutThresholdOut(BaseModel):
    own_minimum_micros: int | None
    platform_minimum_micros: int
    minimum_micros: int = Field(description="The one in force")


class BatchPreviewOut(BaseModel):
    next_batch_at: datetime
    paid: list[PayoutPlanOut] = Field(description="Who a batch run now pays, and how much")
    waiting: list[PayoutPlanOut] = Field(description="Who it leaves out, and why")
    total_micros: int


class PayoutDestinationIn(RequestBody):
    method: DestinationMethod = Field(description="How the manual provider pays you")
    details: str = Field(
        min_length=3,
        max_length=500,
        description="Where: an IBAN, a PayPal address, ... (stored encrypted, shown masked)",
    )


class PayoutDestinationOut(BaseModel):
    method: DestinationMethod | None = Field(description="null: none registered")
    details_masked: str | None = Field(description="Only the last four letters or digits")
    updated_at: datetime | None
