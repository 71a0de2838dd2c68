"""The consensus tables from code that writes its own SQL on an async psycopg connection: the
annotators' hot path on PostgreSQL. `item_results` and `consensus_fits` belong to this package;
the SQLite store goes through `service.write_results` and `service.read_fit`, and the PostgreSQL
store runs the text below, so both write the same rows and read the same fit.

How a submit uses it:

1. `cursor.execute(READ_FIT, (job_id,))` with psycopg's `dict_row`, then `fit_of_row(row)`
   (None when there is no row: the job has not been fitted yet).
2. After `service.decide`, `conn.execute(UPSERT_RESULTS, results_params(...))`: one statement
   for all the items of the task, however many.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from psycopg.types.json import Jsonb

from app.consensus.model import ConsensusModel
from app.consensus.service import Consensus, Fit

#: Insert or replace the consensus of each item (the parameters: `results_params`).
UPSERT_RESULTS: Final = """
INSERT INTO item_results (item_id, job_id, answer, confidence, answer_count, method, updated_at)
SELECT x.item_id, %(job_id)s, x.answer, x.confidence, x.n, %(method)s, %(now)s
FROM unnest(%(item_ids)s::bigint[], %(answers)s::jsonb[], %(confidences)s::float8[],
            %(counts)s::int[]) AS x(item_id, answer, confidence, n)
ON CONFLICT (item_id) DO UPDATE SET answer = excluded.answer, confidence = excluded.confidence,
    answer_count = excluded.answer_count, method = excluded.method,
    updated_at = excluded.updated_at
"""

#: The job's last fit, one positional parameter (the job id); read it with `fit_of_row`.
READ_FIT: Final = "SELECT method, version, model FROM consensus_fits WHERE job_id = %s"


def results_params(
    job_id: int, method: str, results: Sequence[Consensus], now: datetime
) -> dict[str, Any]:
    """The parameters of `UPSERT_RESULTS` for `results`."""
    return {
        "job_id": job_id,
        "method": method,
        "now": now,
        "item_ids": [r.item_id for r in results],
        "answers": [Jsonb(r.answer) for r in results],
        "confidences": [r.confidence for r in results],
        "counts": [r.answer_count for r in results],
    }


def fit_of_row(row: Mapping[str, Any]) -> Fit:
    """The `Fit` of a `READ_FIT` row (as a mapping of column names)."""
    return Fit(row["method"], row["version"], ConsensusModel.from_json(row["model"]))
