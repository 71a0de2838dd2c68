"""Quality: how answers become a consensus with a confidence, and what that says of annotators.

The pure half lives here and knows no database: estimators over integer-coded votes (one per
module, crowd-kit style), aggregators for geometric, span, text and number answers, agreement
metrics, and `aggregation`, the dispatcher the service and the `tessera aggregate` command call.
"""
