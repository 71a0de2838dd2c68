"""Money: a double-entry ledger in integer micro-units, client funding, job escrow, annotators'
pay (per task or hourly, tier multipliers, gold bonus, the fair-pay floor) and payouts through
Stripe Connect exactly once (or settled by hand).

`ledger` (entries and balances) · `pricing` (pure pay rules) · `escrow` (job budgets) ·
`earnings` (submit, approval, rejection, overturn, top-ups) · `lifecycle` (what job activation,
import, overlap change and finish call) · `funding` (Checkout, admin credits) · `payouts`
(batches, sending, reconciliation, admin actions) · `connect` (Express accounts) · `inbox`
(Stripe webhook events) · `reports` (views) · `providers/stripe` (the only module importing
the Stripe SDK).
"""
