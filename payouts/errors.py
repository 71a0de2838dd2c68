"""Money's problem types: funds, escrow, providers, payouts and earnings. (`job-not-activated`
is here: escrow answers it when money is added to a job that has none yet.)"""

from __future__ import annotations

from app.core.errors import Conflict, TesseraError


class InsufficientFunds(TesseraError):
    """402: a client's available balance does not cover what the action commits to escrow. The
    problem states the shortfall (`shortfall_micros`, and `required_micros`, `available_micros`),
    so the client knows how much to add."""

    status, slug, title = 402, "insufficient-funds", "Insufficient funds"


class SignatureInvalid(TesseraError):
    """400: a webhook whose signature does not verify (forged, altered or stale)."""

    status, slug, title = 400, "signature-invalid", "Signature invalid"


class ProviderUnavailable(Conflict):
    """409: the action needs a payments provider this installation does not use (card funding
    and connected accounts need TESSERA_PAYOUTS_PROVIDER=stripe; CSV settlement needs manual)."""

    slug, title = "provider-unavailable", "Payments provider unavailable"


class JobNotActivated(Conflict):
    """409: the job has no escrow yet; activating it commits its budget (and fixes its pay
    terms), after which money can be added to it."""

    slug, title = "job-not-activated", "Job not activated"


class PayoutWrongState(Conflict):
    """409: the payout is not in a state the action applies to (`status` says which it is)."""

    slug, title = "payout-wrong-state", "Payout in the wrong state"


class PayoutInProgress(Conflict):
    """409: the payout is being sent or reconciled right now; try again in a moment."""

    slug, title = "payout-in-progress", "Payout in progress"


class PayoutAlreadyRetried(Conflict):
    """409: this failed payout was paid again already (`retry_id` names the new payout); a
    failed payout is retried once, ever."""

    slug, title = "payout-already-retried", "Payout already retried"


class EarningsFinal(Conflict):
    """409: the assignment's earnings are already final (approved or paid out) and cannot be
    reversed."""

    slug, title = "earnings-final", "Earnings already final"
