"""HTTP for money: clients' balance, card funding and job spend; annotators' earnings,
statement, payouts and connected account; admins' credits, payouts and ledger; and the one
Stripe webhook (authenticated by its signature, not a token)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.core.clock import utcnow
from app.core.db import Database
from app.core.errors import (
    NotFound,
    ServiceUnavailable,
    TesseraError,
    ValidationFailed,
    problem_responses,
)
from app.core.idempotency import Idempotent, IdempotentCall
from app.core.inputs import Int64, LedgerOwnerId, PathId
from app.core.money import format_micros
from app.core.pagination import Page, PageParams, page_params
from app.core.security import (
    AdminPrincipal,
    AnnotatorPrincipal,
    ClientPrincipal,
    DbSession,
    Principal,
    ReadSession,
    get_database,
)
from app.core.settings import Settings
from app.models.accounts import Role, User
from app.models.jobs import Job
from app.models.money import AccountKind, PayoutPreference, PayoutStatus
from payouts import (
    audit,
    connect,
    destinations,
    funding,
    inbox,
    ledger,
    lifecycle,
    payout_plan,
    payouts,
    reports,
    schemas,
)
from payouts.errors import (
    InsufficientFunds,
    JobNotActivated,
    PayoutAlreadyRetried,
    PayoutInProgress,
    PayoutWrongState,
    ProviderUnavailable,
    SignatureInvalid,
)
from payouts.providers import stripe as stripe_provider
from payouts.providers.stripe import StripeGateway, StripeUnavailable

router = APIRouter(tags=["money"])

Paging = Annotated[PageParams, Depends(page_params)]


def _problems(*errors: type[TesseraError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` naming the problem types an endpoint may answer with."""
    return problem_responses(*errors)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _gateway(request: Request) -> StripeGateway | None:
    return stripe_provider.gateway_for(_settings(request))


@contextmanager
def _stripe_answers() -> Iterator[None]:
    """Stripe failing (down, refusing, misconfigured) is a 503 for the caller; the request's
    changes roll back."""
    try:
        yield
    except StripeUnavailable as exc:
        raise ServiceUnavailable(str(exc)) from exc


_Out = TypeVar("_Out", bound=BaseModel)


def _committed(session: Session, call: IdempotentCall, status_code: int, out: _Out) -> _Out:
    """Remember a money request's response under its `Idempotency-Key` (if it came with one),
    then commit: the money and the remembered response are one unit of work."""
    call.remember(session, status_code, out)
    session.commit()
    return out


def _own_job(session: Session, principal: Principal, job_id: int, *, lock: bool = False) -> Job:
    job = session.get(Job, job_id, with_for_update=lock)
    if job is None or (principal.role is not Role.admin and job.client_id != principal.id):
        raise NotFound("No such job")
    return job


# --- clients ----------------------------------------------------------------------------------


@router.get("/v1/balance", response_model=schemas.ClientBalanceOut)
def client_balance(
    request: Request, client: ClientPrincipal, session: ReadSession
) -> schemas.ClientBalanceOut:
    """Your available balance and what your jobs hold in escrow."""
    return schemas.ClientBalanceOut.model_validate(
        reports.client_balance(session, client.id, _settings(request).currency)
    )


@router.post(
    "/v1/fundings/checkout",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.FundingOut,
    responses=_problems(ProviderUnavailable, ValidationFailed, ServiceUnavailable),
)
def start_checkout(
    body: schemas.CheckoutIn,
    request: Request,
    client: ClientPrincipal,
    session: DbSession,
    call: Idempotent,
) -> schemas.FundingOut | Response:
    """Add funds by card: a Stripe Checkout Session (pay at `checkout_url`). Your balance is
    credited when Stripe confirms the payment, not before. Takes an `Idempotency-Key`."""
    if (first := call.replay(session)) is not None:
        return first
    with _stripe_answers():
        row = funding.start_checkout(
            session,
            _gateway(request),
            client.id,
            body.amount_micros,
            success_url=str(body.success_url),
            cancel_url=str(body.cancel_url),
        )
    return _committed(
        session, call, status.HTTP_201_CREATED, schemas.FundingOut.model_validate(row)
    )


@router.get("/v1/fundings", response_model=Page[schemas.FundingOut])
def list_fundings(
    client: ClientPrincipal,
    session: ReadSession,
    paging: Paging,
    client_id: Annotated[Int64 | None, Query(description="Admins: one client's")] = None,
) -> Page[schemas.FundingOut]:
    """Your fundings (admins: everyone's, or one client's)."""
    owner = client_id if client.role is Role.admin else client.id
    rows, cursor = funding.list_fundings(session, owner, paging)
    return Page(items=[schemas.FundingOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/v1/jobs/{job_id}/spend", response_model=schemas.JobSpendOut)
def job_spend(job_id: PathId, client: ClientPrincipal, session: ReadSession) -> schemas.JobSpendOut:
    """What the job reserved, spent (work, fair-pay top-ups, fees), released and has left in
    escrow, and why it is paused if it is paused for money."""
    spend = reports.job_spend(session, _own_job(session, client, job_id))
    if spend is None:
        raise NotFound("This job has not reserved any money yet (it is activated first)")
    return schemas.JobSpendOut.of(spend)


@router.post(
    "/v1/jobs/{job_id}/deposits",
    response_model=schemas.JobSpendOut,
    responses=_problems(InsufficientFunds, ValidationFailed, JobNotActivated),
)
def deposit(
    job_id: PathId,
    body: schemas.DepositIn,
    client: ClientPrincipal,
    session: DbSession,
    call: Idempotent,
) -> schemas.JobSpendOut | Response:
    """Move money from your available balance into the job's escrow beyond its task slots:
    it pays fair-pay top-ups (those owed are paid at once, and a job paused for them resumes
    when nothing is owed any more) and overturned rejections beyond the job's slots. Takes an
    `Idempotency-Key`."""
    if (first := call.replay(session)) is not None:
        return first
    job = _own_job(session, client, job_id, lock=True)
    lifecycle.funds_deposited(session, job, body.amount_micros, actor_id=client.id)
    spend = reports.job_spend(session, job)
    assert spend is not None
    return _committed(session, call, status.HTTP_200_OK, schemas.JobSpendOut.of(spend))


# --- annotators -----------------------------------------------------------------------------------


@router.get("/v1/earnings", response_model=schemas.EarningsWithPayoutOut)
def my_earnings(
    request: Request, annotator: AnnotatorPrincipal, session: ReadSession
) -> schemas.EarningsWithPayoutOut:
    """Your earnings: pending approval, available, in flight, paid out, and fair-pay top-ups,
    with your pay per job; and your next payout: when the next batch runs, what it would pay
    you, and what waits and why (under your minimum, in the review window)."""
    settings = _settings(request)
    mine = reports.annotator_earnings(session, annotator.id, settings.currency)
    plan = payout_plan.plan_for(
        session, settings, annotator.id, mine.available_micros, mine.pending_micros
    )
    own = payout_plan.own_minimums(session, [annotator.id]).get(annotator.id)
    payout = schemas.MyPayoutOut(
        **schemas.PayoutPlanOut.model_validate(plan).model_dump(),
        next_payout_at=payout_plan.next_batch_at(utcnow()),
        own_minimum_micros=own,
    )
    return schemas.EarningsWithPayoutOut(
        **schemas.EarningsOut.model_validate(mine).model_dump(by_alias=False), payout=payout
    )


@router.put(
    "/v1/earnings/payout-threshold",
    response_model=schemas.PayoutThresholdOut,
    responses=_problems(ValidationFailed),
)
def set_payout_threshold(
    body: schemas.PayoutThresholdIn,
    request: Request,
    annotator: AnnotatorPrincipal,
    session: DbSession,
) -> schemas.PayoutThresholdOut:
    """Choose a payout threshold: batches pay you only once this much is available (at least
    the platform's minimum; null goes back to it)."""
    settings = _settings(request)
    payout_plan.set_own_minimum(session, settings, annotator.id, body.minimum_micros, utcnow())
    session.commit()
    return schemas.PayoutThresholdOut(
        own_minimum_micros=body.minimum_micros,
        platform_minimum_micros=settings.payout_minimum_micros,
        minimum_micros=payout_plan.minimum_for(settings, body.minimum_micros),
    )


@router.get("/v1/payout-destination", response_model=schemas.PayoutDestinationOut)
def my_payout_destination(
    annotator: AnnotatorPrincipal, session: ReadSession
) -> schemas.PayoutDestinationOut:
    """Where the manual provider pays you (masked; null fields until you register one)."""
    return _destination_out(destinations.destination_of(session, annotator.id))


@router.put(
    "/v1/payout-destination",
    response_model=schemas.PayoutDestinationOut,
    responses=_problems(ValidationFailed),
)
def set_payout_destination(
    body: schemas.PayoutDestinationIn,
    request: Request,
    annotator: AnnotatorPrincipal,
    session: DbSession,
) -> schemas.PayoutDestinationOut:
    """Register (or replace) where the manual provider pays you: a method and its details,
    stored encrypted and shown masked; only the admins' payout export shows them in full."""
    row = destinations.set_destination(
        session, _settings(request), annotator.id, body.method, body.details.strip(), utcnow()
    )
    session.commit()
    return _destination_out(row)


def _destination_out(row: PayoutPreference | None) -> schemas.PayoutDestinationOut:
    if row is None or row.destination_method is None:
        return schemas.PayoutDestinationOut(method=None, details_masked=None, updated_at=None)
    return schemas.PayoutDestinationOut(
        method=destinations.DestinationMethod(row.destination_method),
        details_masked=row.destination_masked,
        updated_at=row.updated_at,
    )


@router.get(
    "/v1/earnings/statement",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def my_statement(
    request: Request,
    annotator: AnnotatorPrincipal,
    db: Annotated[Database, Depends(get_database)],
) -> StreamingResponse:
    """Your statement as CSV: every movement of your pending, available and in-flight money."""
    currency = _settings(request).currency

    def body() -> Any:
        with db.read_session() as session:
            yield from reports.statement_csv(session, annotator.id, currency)

    return StreamingResponse(
        body(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="statement.csv"'},
    )


@router.get("/v1/payouts", response_model=Page[schemas.PayoutOut])
def my_payouts(
    annotator: AnnotatorPrincipal, session: ReadSession, paging: Paging
) -> Page[schemas.PayoutOut]:
    """Your payouts."""
    rows, cursor = payouts.list_payouts(session, paging, annotator_id=annotator.id)
    return Page(items=[schemas.PayoutOut.model_validate(p) for p in rows], next_cursor=cursor)


@router.get(
    "/v1/payout-account",
    response_model=schemas.PayoutAccountOut,
    responses=_problems(NotFound),
)
def my_payout_account(
    annotator: AnnotatorPrincipal, session: ReadSession
) -> schemas.PayoutAccountOut:
    """Your connected Stripe account and whether it can receive payouts."""
    row = connect.account_of(session, annotator.id)
    if row is None:
        raise NotFound("You have not connected a payout account")
    return schemas.PayoutAccountOut.model_validate(row)


@router.post(
    "/v1/payout-account/onboarding",
    response_model=schemas.OnboardingOut,
    responses=_problems(ProviderUnavailable, ServiceUnavailable),
)
def start_onboarding(
    body: schemas.OnboardingIn, request: Request, annotator: AnnotatorPrincipal, session: DbSession
) -> schemas.OnboardingOut:
    """Connect a Stripe Express account (created on first use) and get a link to Stripe's
    onboarding; call again for a fresh link when one expires."""
    user = session.get_one(User, annotator.id)
    with _stripe_answers():
        row, url = connect.start_onboarding(
            session,
            _gateway(request),
            user,
            return_url=str(body.return_url),
            refresh_url=str(body.refresh_url),
        )
    session.commit()
    return schemas.OnboardingOut(
        account=schemas.PayoutAccountOut.model_validate(row), onboarding_url=url
    )


@router.post(
    "/v1/payout-account/refresh",
    response_model=schemas.PayoutAccountOut,
    responses=_problems(NotFound, ProviderUnavailable, ServiceUnavailable),
)
def refresh_payout_account(
    request: Request, annotator: AnnotatorPrincipal, session: DbSession
) -> schemas.PayoutAccountOut:
    """Read your account's state afresh from Stripe (after onboarding)."""
    with _stripe_answers():
        row = connect.refresh(session, _gateway(request), annotator.id)
    if row is None:
        raise NotFound("You have not connected a payout account")
    session.commit()
    return schemas.PayoutAccountOut.model_validate(row)


# --- admins -------------------------------------------------------------------------------------


@router.post(
    "/v1/admin/clients/{client_id}/credits",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.FundingOut,
    responses=_problems(NotFound),
)
def credit_client(
    client_id: PathId,
    body: schemas.CreditIn,
    admin: AdminPrincipal,
    session: DbSession,
    call: Idempotent,
) -> schemas.FundingOut | Response:
    """Credit a client's available balance by hand, with a reason (recorded with you as actor).
    Takes an `Idempotency-Key`: the same key again within 24 hours credits once."""
    if (first := call.replay(session)) is not None:
        return first
    row = funding.credit_manually(
        session, client_id, body.amount_micros, actor_id=admin.id, reason=body.reason
    )
    return _committed(
        session, call, status.HTTP_201_CREATED, schemas.FundingOut.model_validate(row)
    )


@router.get("/v1/admin/payouts", response_model=Page[schemas.PayoutOut])
def admin_payouts(
    admin: AdminPrincipal,
    session: ReadSession,
    paging: Paging,
    status_: Annotated[PayoutStatus | None, Query(alias="status")] = None,
    annotator_id: Int64 | None = None,
) -> Page[schemas.PayoutOut]:
    """Payouts, filtered by status (pending, held, unknown, failed, paid) or annotator."""
    rows, cursor = payouts.list_payouts(session, paging, annotator_id=annotator_id, status=status_)
    return Page(items=[schemas.PayoutOut.model_validate(p) for p in rows], next_cursor=cursor)


@router.post(
    "/v1/admin/payouts/batches",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.BatchOut,
)
def run_batch(
    admin: AdminPrincipal, session: DbSession, call: Idempotent
) -> schemas.BatchOut | Response:
    """Run a payout batch now: every annotator with at least the minimum available is paid
    that balance rounded down to cents (Stripe: those whose account can receive transfers).
    Takes an `Idempotency-Key`."""
    if (first := call.replay(session)) is not None:
        return first
    result = payouts.run_batch(session, actor_id=admin.id)
    total = sum(p.amount_micros for p in result.payouts)
    out = schemas.BatchOut(
        batch_id=result.batch.id if result.batch else None,
        payouts=[schemas.PayoutOut.model_validate(p) for p in result.payouts],
        total_micros=total,
        total=format_micros(total),
    )
    return _committed(session, call, status.HTTP_201_CREATED, out)


@router.get("/v1/admin/payouts/batches/preview", response_model=schemas.BatchPreviewOut)
def preview_batch(
    request: Request, admin: AdminPrincipal, session: ReadSession
) -> schemas.BatchPreviewOut:
    """What a batch run now would do, without doing it: who is paid how much, and who waits
    and why (under their minimum, no payout account; pending money in the review window)."""
    plans = payout_plan.plan_batch(session, _settings(request))
    paid = [schemas.PayoutPlanOut.model_validate(p) for p in plans if p.amount_micros > 0]
    return schemas.BatchPreviewOut(
        next_batch_at=payout_plan.next_batch_at(utcnow()),
        paid=paid,
        waiting=[schemas.PayoutPlanOut.model_validate(p) for p in plans if p.waiting],
        total_micros=sum(p.amount_micros for p in paid),
    )


@router.get(
    "/v1/admin/payouts/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}, **_problems(ProviderUnavailable)},
)
def export_payouts(admin: AdminPrincipal, session: ReadSession) -> StreamingResponse:
    """Pending and held payouts as CSV, to pay by hand (provider `manual`); then mark each
    settled or failed."""
    lines = list(payouts.export_manual_csv(session))
    return StreamingResponse(
        iter(lines),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="payouts.csv"'},
    )


_ACTION_PROBLEMS = _problems(NotFound, PayoutWrongState, PayoutInProgress)


@router.post(
    "/v1/admin/payouts/{payout_id}/hold",
    response_model=schemas.PayoutOut,
    responses=_ACTION_PROBLEMS,
)
def hold_payout(
    payout_id: PathId, body: schemas.HoldIn, admin: AdminPrincipal, session: DbSession
) -> schemas.PayoutOut:
    """Stop a pending payout from being sent (its money stays in flight)."""
    row = payouts.hold(session, payout_id, actor_id=admin.id, reason=body.reason)
    session.commit()
    return schemas.PayoutOut.model_validate(row)


@router.post(
    "/v1/admin/payouts/{payout_id}/release",
    response_model=schemas.PayoutOut,
    responses=_ACTION_PROBLEMS,
)
def release_payout(
    payout_id: PathId, admin: AdminPrincipal, session: DbSession
) -> schemas.PayoutOut:
    """Let a held payout go."""
    row = payouts.release_hold(session, payout_id, actor_id=admin.id)
    session.commit()
    return schemas.PayoutOut.model_validate(row)


@router.post(
    "/v1/admin/payouts/{payout_id}/retry",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.PayoutOut,
    responses=_problems(
        NotFound,
        PayoutWrongState,
        PayoutInProgress,
        PayoutAlreadyRetried,
        InsufficientFunds,
        ProviderUnavailable,
    ),
)
def retry_payout(
    payout_id: PathId, admin: AdminPrincipal, session: DbSession, call: Idempotent
) -> schemas.PayoutOut | Response:
    """Pay a failed payout again, as a new payout for the same amount (once per failed payout).
    Takes an `Idempotency-Key`."""
    if (first := call.replay(session)) is not None:
        return first
    row = payouts.retry(session, payout_id, actor_id=admin.id)
    return _committed(session, call, status.HTTP_201_CREATED, schemas.PayoutOut.model_validate(row))


@router.post(
    "/v1/admin/payouts/{payout_id}/settle",
    response_model=schemas.PayoutOut,
    responses={**_ACTION_PROBLEMS, **_problems(ProviderUnavailable)},
)
def settle_payout(
    payout_id: PathId, body: schemas.SettleIn, admin: AdminPrincipal, session: DbSession
) -> schemas.PayoutOut:
    """Mark a manual payout paid, with your reference for the payment."""
    row = payouts.settle_manually(session, payout_id, actor_id=admin.id, reference=body.reference)
    session.commit()
    return schemas.PayoutOut.model_validate(row)


@router.post(
    "/v1/admin/payouts/{payout_id}/fail",
    response_model=schemas.PayoutOut,
    responses={**_ACTION_PROBLEMS, **_problems(ProviderUnavailable)},
)
def fail_payout(
    payout_id: PathId, body: schemas.FailIn, admin: AdminPrincipal, session: DbSession
) -> schemas.PayoutOut:
    """Mark a manual payout failed: its money goes back to the annotator's available balance."""
    row = payouts.fail_manually(session, payout_id, actor_id=admin.id, reason=body.reason)
    session.commit()
    return schemas.PayoutOut.model_validate(row)


@router.get("/v1/admin/ledger/trial-balance", response_model=schemas.TrialBalanceOut)
def trial_balance(admin: AdminPrincipal, session: ReadSession) -> schemas.TrialBalanceOut:
    """Every account kind's debits, credits and balance per currency; they sum to zero."""
    lines = ledger.trial_balance(session)
    totals: dict[str, int] = {}
    for line in lines:
        totals[line.currency] = totals.get(line.currency, 0) + line.balance_micros
    unbalanced = ledger.unbalanced_entries(session)
    negative = any(
        line.negative_accounts for line in lines if line.kind is not AccountKind.external
    )
    return schemas.TrialBalanceOut(
        lines=[schemas.TrialBalanceLineOut.model_validate(line) for line in lines],
        totals_micros=totals,
        balanced=not unbalanced and not negative and all(v == 0 for v in totals.values()),
        unbalanced_entries=unbalanced,
    )


@router.get("/v1/admin/ledger/audit", response_model=schemas.AuditOut)
def ledger_audit(admin: AdminPrincipal, session: ReadSession) -> schemas.AuditOut:
    """Check the books' business invariants, not only their balance: each assignment earns its
    price once or nothing, each job's escrow and each client's money add up, each payout is
    settled once with its entries, each fair-pay top-up matches the measured time. Each broken
    invariant comes with the rows behind it (the scheduler runs this daily and logs breaches)."""
    return schemas.AuditOut.model_validate(audit.run_audit(session))


@router.get(
    "/v1/admin/ledger/accounts/{account_kind}/{owner_id}", response_model=schemas.AccountOut
)
def account_entries(
    account_kind: AccountKind,
    owner_id: LedgerOwnerId,
    request: Request,
    admin: AdminPrincipal,
    session: ReadSession,
    paging: Paging,
) -> schemas.AccountOut:
    """One account's balance and postings, oldest first (owner 0 for platform fees and
    external)."""
    key = ledger.AccountKey(account_kind, owner_id, _settings(request).currency)
    rows = ledger.account_postings(session, key, after=paging.after, limit=paging.limit + 1)
    more = len(rows) > paging.limit
    rows = rows[: paging.limit]
    balance = ledger.balance(session, key)
    return schemas.AccountOut(
        account_kind=account_kind.value,
        owner_id=owner_id,
        currency=key.currency,
        balance_micros=balance,
        balance=format_micros(balance),
        postings=[schemas.PostingOut.model_validate(r) for r in rows],
        next_cursor=rows[-1].id if more and rows else None,
    )


# --- Stripe -------------------------------------------------------------------------------------


@router.post(
    "/v1/stripe/webhook",
    response_model=schemas.WebhookAck,
    responses=_problems(SignatureInvalid, NotFound),
    tags=["stripe"],
)
async def stripe_webhook(request: Request) -> schemas.WebhookAck:
    """Stripe's events (authenticated by the `Stripe-Signature` header, not a token). Each is
    stored once and processed in the background; a bad signature is a 400 and changes nothing."""
    gateway = _gateway(request)
    if gateway is None:
        raise NotFound("Stripe webhooks are not enabled (TESSERA_PAYOUTS_PROVIDER is not stripe)")
    payload = await request.body()
    event = gateway.verify_event(payload, request.headers.get("stripe-signature"))
    db: Database = request.app.state.db
    return await run_in_threadpool(_store_event, db, event)


def _store_event(db: Database, event: stripe_provider.VerifiedEvent) -> schemas.WebhookAck:
    with db.transaction() as session:
        _, new = inbox.receive(session, event)
    return schemas.WebhookAck(received=True, duplicate=not new)
