"""Request and response bodies for money: amounts are integer micro-units (`*_micros`), each
with its decimal rendering beside it for people."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AnyHttpUrl, BaseModel, Field, StringConstraints

from app.core.inputs import RequestBody
from app.core.money import format_micros
from app.models.money import Funding, Payout, PayoutAccount
from payouts import reports
from payouts.ledger import TrialBalanceLine

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]
Micros = Annotated[int, Field(gt=0, le=10**13, description="micro-units: 1000000 = 1.00")]


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
    id: int
    client_id: int
    provider: str
    status: str
    amount_micros: int
    amount: str
    credited_micros: int | None
    currency: str
    reason: str | None
    checkout_url: str | None
    created_at: datetime
    credited_at: datetime | None

    @classmethod
    def of(cls, f: Funding) -> FundingOut:
        return cls(
            id=f.id,
            client_id=f.client_id,
            provider=f.provider.value,
            status=f.status.value,
            amount_micros=f.amount_micros,
            amount=format_micros(f.amount_micros),
            credited_micros=f.credited_micros,
            currency=f.currency,
            reason=f.reason,
            checkout_url=f.checkout_url,
            created_at=f.created_at,
            credited_at=f.credited_at,
        )


class ClientBalanceOut(BaseModel):
    currency: str
    available_micros: int
    available: str
    escrow_micros: int
    escrow: str

    @classmethod
    def of(cls, b: reports.ClientBalance) -> ClientBalanceOut:
        return cls(
            currency=b.currency,
            available_micros=b.available_micros,
            available=format_micros(b.available_micros),
            escrow_micros=b.escrow_micros,
            escrow=format_micros(b.escrow_micros),
        )


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

    @classmethod
    def of(cls, s: reports.JobSpend) -> JobSpendOut:
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
        )


class JobPayOut(BaseModel):
    job_id: int
    title: str
    approved_assignments: int
    paid_seconds: int
    earned_micros: int
    topup_micros: int = Field(description="Fair-pay floor top-ups on this job")
    effective_hourly_micros: int | None


class EarningsOut(BaseModel):
    currency: str
    pending_micros: int
    pending: str
    available_micros: int
    available: str
    in_flight_micros: int
    paid_micros: int
    paid: str
    topup_micros: int = Field(description="Fair-pay floor top-ups, all jobs")
    topups: str
    jobs: list[JobPayOut]

    @classmethod
    def of(cls, e: reports.AnnotatorEarnings) -> EarningsOut:
        return cls(
            currency=e.currency,
            pending_micros=e.pending_micros,
            pending=format_micros(e.pending_micros),
            available_micros=e.available_micros,
            available=format_micros(e.available_micros),
            in_flight_micros=e.in_flight_micros,
            paid_micros=e.paid_micros,
            paid=format_micros(e.paid_micros),
            topup_micros=e.topup_micros,
            topups=format_micros(e.topup_micros),
            jobs=[
                JobPayOut(
                    job_id=j.job_id,
                    title=j.title,
                    approved_assignments=j.approved_assignments,
                    paid_seconds=j.paid_seconds,
                    earned_micros=j.earned_micros,
                    topup_micros=j.topup_micros,
                    effective_hourly_micros=j.effective_hourly_micros,
                )
                for j in e.jobs
            ],
        )


class PayoutOut(BaseModel):
    id: int
    batch_id: int | None
    annotator_id: int
    provider: str
    status: str
    amount_micros: int
    amount: str
    currency: str
    transfer_id: str | None
    failure_reason: str | None
    attempts: int
    retry_of_id: int | None
    reference: str | None
    created_at: datetime
    settled_at: datetime | None

    @classmethod
    def of(cls, p: Payout) -> PayoutOut:
        return cls(
            id=p.id,
            batch_id=p.batch_id,
            annotator_id=p.annotator_id,
            provider=p.provider.value,
            status=p.status.value,
            amount_micros=p.amount_micros,
            amount=format_micros(p.amount_micros),
            currency=p.currency,
            transfer_id=p.transfer_id,
            failure_reason=p.failure_reason,
            attempts=p.attempts,
            retry_of_id=p.retry_of_id,
            reference=p.reference,
            created_at=p.created_at,
            settled_at=p.settled_at,
        )


class BatchOut(BaseModel):
    batch_id: int | None = Field(description="None: nobody had the minimum available")
    payouts: list[PayoutOut]
    total_micros: int
    total: str


class PayoutAccountOut(BaseModel):
    stripe_account_id: str
    details_submitted: bool
    transfers_enabled: bool
    disabled_reason: str | None
    updated_at: datetime

    @classmethod
    def of(cls, a: PayoutAccount) -> PayoutAccountOut:
        return cls(
            stripe_account_id=a.stripe_account_id,
            details_submitted=a.details_submitted,
            transfers_enabled=a.transfers_enabled,
            disabled_reason=a.disabled_reason,
            updated_at=a.updated_at,
        )


class OnboardingOut(BaseModel):
    account: PayoutAccountOut
    onboarding_url: str


class TrialBalanceLineOut(BaseModel):
    account_kind: str
    currency: str
    accounts: int
    debits_micros: int
    credits_micros: int
    balance_micros: int
    balance: str
    negative_accounts: int

    @classmethod
    def of(cls, line: TrialBalanceLine) -> TrialBalanceLineOut:
        return cls(
            account_kind=line.kind.value,
            currency=line.currency,
            accounts=line.accounts,
            debits_micros=line.debits_micros,
            credits_micros=line.credits_micros,
            balance_micros=line.balance_micros,
            balance=format_micros(line.balance_micros),
            negative_accounts=line.negative_accounts,
        )


class TrialBalanceOut(BaseModel):
    lines: list[TrialBalanceLineOut]
    totals_micros: dict[str, int] = Field(description="Sum of all balances per currency: 0")
    balanced: bool = Field(
        description="Every currency sums to zero, every entry balances and no account but "
        "`external` is negative"
    )
    unbalanced_entries: list[str]


class PostingOut(BaseModel):
    posting_id: int
    entry_id: int
    cause: str
    kind: str
    amount_micros: int
    amount: str
    job_id: int | None
    assignment_id: int | None
    actor_id: int | None
    reason: str
    created_at: datetime

    @classmethod
    def of(cls, row: Any) -> PostingOut:
        return cls(
            posting_id=row.id,
            entry_id=row.entry_id,
            cause=row.cause,
            kind=row.kind.value,
            amount_micros=row.amount_micros,
            amount=format_micros(row.amount_micros),
            job_id=row.job_id,
            assignment_id=row.assignment_id,
            actor_id=row.actor_id,
            reason=row.reason,
            created_at=row.created_at,
        )


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
