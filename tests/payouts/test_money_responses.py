"""Money's response bodies read the service's rows and reports as they are (from_attributes): each
decimal rendering comes from the `*_micros` amount beside it, and enum kinds are sent as text."""

from __future__ import annotations

from app.models.money import AccountKind
from payouts import reports, schemas
from payouts.ledger import TrialBalanceLine


def test_a_balance_renders_each_amount_from_its_micros() -> None:
    body = schemas.ClientBalanceOut.model_validate(reports.ClientBalance("USD", 1_500_000, 7))
    assert body.model_dump_json() == (
        '{"currency":"USD","available_micros":1500000,"available":"1.5",'
        '"escrow_micros":7,"escrow":"0.000007"}'
    )


def test_earnings_render_each_amount_and_each_jobs_hourly_pay() -> None:
    job = reports.JobPay(4, "Sentiment", 3, 1800, earned_micros=1_000_000, topup_micros=250_000)
    earnings = reports.AnnotatorEarnings(
        currency="USD",
        pending_micros=2_000_000,
        available_micros=3_000_000,
        in_flight_micros=0,
        paid_micros=10_000_000,
        topup_micros=250_000,
        jobs=[job],
    )
    body = schemas.EarningsOut.model_validate(earnings).model_dump(mode="json")
    assert (body["pending"], body["available"], body["paid"], body["topups"]) == (
        "2",
        "3",
        "10",
        "0.25",
    )
    assert body["jobs"] == [
        {
            "job_id": 4,
            "title": "Sentiment",
            "approved_assignments": 3,
            "paid_seconds": 1800,
            "earned_micros": 1_000_000,
            "topup_micros": 250_000,
            "effective_hourly_micros": 2_500_000,
        }
    ]


def test_a_trial_balance_line_names_its_account_kind_as_text() -> None:
    line = TrialBalanceLine(AccountKind.platform_fees, "USD", 1, 0, 120_000, 120_000, 0)
    body = schemas.TrialBalanceLineOut.model_validate(line).model_dump(mode="json")
    assert body == {
        "account_kind": "platform_fees",
        "currency": "USD",
        "accounts": 1,
        "debits_micros": 0,
        "credits_micros": 120_000,
        "balance_micros": 120_000,
        "balance": "0.12",
        "negative_accounts": 0,
    }
    assert type(schemas.TrialBalanceLineOut.model_validate(line).account_kind) is str
