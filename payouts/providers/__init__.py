"""Payments providers: `stripe` (Connect transfers, Checkout, webhooks; the only module that
imports the Stripe SDK) and `manual` (payouts settled by an administrator from a CSV)."""
