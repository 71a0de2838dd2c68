"""Pricing, ledger, funding and payouts (the only place that talks to Stripe)."""
