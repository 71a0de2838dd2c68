"""Consensus: how answers become a consensus with a confidence, and what that says of annotators.

The pure half knows no database: estimators over integer-coded votes (one per module,
crowd-kit style), aggregators for geometric, span, text and number answers, agreement metrics,
and `aggregation`, the dispatcher the service and the `tessera aggregate` command call. The
service half (`service`, `refits`) owns the tables `item_results` and `consensus_fits`: the
online consensus after each submit, the batch refits, and (`hot_path`) the SQL text the
PostgreSQL submit runs on them.
"""
