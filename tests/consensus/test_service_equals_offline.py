"""The service's consensus equals the offline fit (issue 24): a slice of a development crowd
replayed through the API, the job completed (its final refit), and its exported consensus
compared with `tessera aggregate` on the answers of the same export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import cli
from app.core.db import Database
from tests.consensus.crowds import CROWD_DATA, require_crowd_data
from tests.jobs.factories import active_job
from tests.outbox import run_due_jobs
from tests.routing.test_claim_and_submit import claim
from tests.support import Account

# The first items of the dog set (4 classes, 10 answers each): 40 answers per annotator, past the
# 32 (2·K²) from which Dawid-Skene is fitted rather than the weighted vote.
ITEMS = 40
OVERLAP = 10


def crowd_slice() -> tuple[list[str], dict[str, list[str]]]:
    """(labels, each item's answers in file order) of the first ITEMS items of the dog set."""
    require_crowd_data()
    answers: dict[str, list[str]] = {}
    with (CROWD_DATA / "dog" / "labels.csv").open(newline="") as file:
        for row in csv.DictReader(file):
            if row["item"] in answers or len(answers) < ITEMS:
                answers.setdefault(row["item"], []).append(row["label"])
    labels = sorted({label for given in answers.values() for label in given})
    return labels, answers


def test_a_jobs_exported_consensus_after_its_final_refit_equals_tessera_aggregate(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
    tmp_path: Path,
) -> None:
    labels, answers = crowd_slice()
    schema = {"controls": [{"name": "breed", "type": "choices", "field": "text", "labels": labels}]}
    rows = [{"external_id": item, "text": item} for item in answers]
    job_id = active_job(client, client_account, rows, label_schema=schema, overlap={"min": OVERLAP})
    # Replay: whoever claims an item gives its next answer from the crowd.
    annotators = [make_account("annotator") for _ in range(OVERLAP)]
    left = {item: list(given) for item, given in answers.items()}
    while any(left.values()):
        for person in annotators:
            for assignment in claim(client, person, job_id=job_id):
                item = assignment["items"][0]["data"]["text"]
                body = {"answers": [{"breed": left[item].pop(0)}]}
                submitted = client.post(
                    f"/v1/assignments/{assignment['id']}/submit", json=body, headers=person.headers
                )
                assert submitted.status_code == 200, submitted.text
    completed = client.post(f"/v1/jobs/{job_id}/complete", headers=client_account.headers)
    assert completed.is_success, completed.text
    run_due_jobs(db, db.settings, prefix="jobs.")  # the final refit (jobs.finalize_results)
    fit = client.get(f"/v1/jobs/{job_id}/consensus", headers=client_account.headers).json()["fit"]
    assert fit["answers"] == ITEMS * OVERLAP
    export = client.get(
        f"/v1/jobs/{job_id}/export", params={"format": "jsonl"}, headers=client_account.headers
    )
    assert export.status_code == 200, export.text
    records = [json.loads(line) for line in export.text.splitlines() if line]
    # The answers of the export, as a labels file for `tessera aggregate`.
    path = tmp_path / "answers.csv"
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["item", "annotator", "label"])
        for record in records:
            for answer in record["answers"]:
                writer.writerow([record["item_id"], answer["annotator"], answer["answer"]["breed"]])
    result = CliRunner().invoke(
        cli,
        ["aggregate", str(path), "--seed", str(job_id), "--labels", ",".join(labels)],
    )
    assert result.exit_code == 0, result.stderr
    assert "method calibrated_dawid_skene" in result.stderr  # no fallback, on either side
    offline = {
        int(row["item"]): (row["label"], float(row["confidence"]))
        for row in csv.DictReader(io.StringIO(result.stdout))
    }
    service = {r["item_id"]: (r["consensus"]["breed"], r["confidence"]) for r in records}
    assert service.keys() == offline.keys()
    for item, (label, confidence) in service.items():
        assert offline[item][0] == label
        assert offline[item][1] == pytest.approx(confidence, abs=1e-6)
