"""What each audience is shown: the client's per-job quality report (agreement, method,
confidence histogram, annotators under the exports' pseudonyms); annotators only their own
figures, never gold answers; admins the whole evidence page."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from app.core.db import Database
from app.core.security import pseudonym
from app.core.settings import Settings
from tests.jobs.factories import GOLD_LABEL, active_job
from tests.quality.factories import actions_of, do_tasks, refresh
from tests.support import Account


def test_the_clients_report_on_a_job(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
    settings: Settings,
) -> None:
    job_id = active_job(
        client, client_account, items=2, overlap={"min": 3}, consensus_method="majority_vote"
    )
    crowd = [make_account("annotator") for _ in range(3)]
    for who, label in zip(crowd, ["positive", "positive", "negative"], strict=True):
        do_tasks(client, who, job_id, 2, label=label)
    refresh(db, settings, *crowd)

    report = client.get(f"/v1/quality/jobs/{job_id}/report", headers=client_account.headers)
    assert report.status_code == 200, report.text
    body = report.json()
    # Each item: answers p, p, n → 2 agreeing ordered pairs of 6. Fleiss: shares 4/6 and 2/6,
    # chance 20/36, kappa (1/3 − 5/9) / (4/9) = −0.5. Krippendorff: o_pn = o_np = 2, n = 6,
    # n_p = 4, n_n = 2: α = 1 − 5·4 / (2·4·2) = −0.25.
    assert body["agreement"] == {
        "metric": "percent_agreement",
        "value": round(1 / 3, 6),
        "per_control": {"sentiment": round(1 / 3, 6)},
        "items": 2,
        "controls": {
            "sentiment": {
                "percent_agreement": round(1 / 3, 6),
                "fleiss_kappa": -0.5,
                "krippendorff_alpha": -0.25,
                "alpha_level": "nominal",
                "items": 2,
            }
        },
    }
    assert body["methods"] == {"majority_vote": 2}
    histogram = {(b["low"], b["high"]): b["items"] for b in body["confidence_histogram"]}
    assert len(histogram) == 10
    assert histogram[(0.6, 0.7)] == 2  # majority vote's confidence: 2/3 on each item
    assert sum(histogram.values()) == 2
    assert body["assignments"] == {"submitted": 6, "approved": 0, "rejected": 0}

    secret = settings.resolved_secret_key()
    expected = {pseudonym(secret, f"client:{client_account.id}", who.id): who for who in crowd}
    rows = {row["annotator"]: row for row in body["annotators"]}
    assert set(rows) == set(expected)
    dissenter = pseudonym(secret, f"client:{client_account.id}", crowd[2].id)
    assert rows[dissenter]["agreement"] == 0.0
    # The same pseudonyms as the job's export.
    exported = client.get(f"/v1/jobs/{job_id}/export?format=jsonl", headers=client_account.headers)
    in_export = {
        answer["annotator"]
        for line in exported.text.splitlines()
        for answer in json.loads(line)["answers"]
    }
    assert in_export == set(expected)
    for who in crowd:  # no annotator id or email anywhere in the report
        assert who.user.email not in report.text
        assert '"annotator_id"' not in report.text


def test_annotators_see_only_their_own_figures_and_never_a_gold_answer(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    admin: Account,
    db: Database,
    settings: Settings,
) -> None:
    job_id = active_job(client, client_account, items=6, gold=6, overlap={"min": 2})
    client.put(
        f"/v1/quality/jobs/{job_id}/rules",
        json={"removal_min_gold_answers": 2, "identical_run_length": 3, "speed_floor_seconds": 10},
        headers=client_account.headers,
    )
    busy, idle = make_account("annotator"), make_account("annotator")
    # Wrong on gold (a control item in each claim), fast, all alike: the second gold answer
    # removes them from the job.
    done = do_tasks(client, busy, job_id, 2, seconds=5)
    do_tasks(client, idle, job_id, 1, gold_label=GOLD_LABEL)
    refresh(db, settings, busy, idle)
    actions = actions_of(db, busy, idle)  # at submit (gold tasks) and by the refresh
    assert {a.rule.value for a in actions} == {"gold_accuracy", "fast_submit", "identical_answers"}
    client.post(
        f"/v1/quality/jobs/{job_id}/reject",
        json={"assignment_ids": [done[0]["id"]], "reason": "all answers the same"},
        headers=client_account.headers,
    )
    client.post(
        "/v1/annotator/appeals",
        json={"assignment_id": done[0]["id"], "kind": "rejection", "message": "they were alike"},
        headers=busy.headers,
    )

    seen = ""
    for path in (
        "/v1/annotator/quality",
        "/v1/annotator/quality/actions",
        "/v1/annotator/quality/decisions",
        "/v1/annotator/appeals",
    ):
        response = client.get(path, headers=busy.headers)
        assert response.status_code == 200, response.text
        seen += response.text
    assert GOLD_LABEL not in seen  # the answer key of the control items
    assert "evidence" not in seen
    assert "answer_id" not in seen
    assert "actor_id" not in seen  # nor who reviewed

    mine = client.get("/v1/annotator/quality", headers=busy.headers).json()
    theirs = client.get("/v1/annotator/quality", headers=idle.headers).json()
    assert (mine["annotator_id"], theirs["annotator_id"]) == (busy.id, idle.id)
    overall = {q["annotator_id"]: q["stats"][0] for q in (mine, theirs)}
    assert (overall[busy.id]["tasks"], overall[idle.id]["tasks"]) == (2, 1)
    nothing = client.get("/v1/annotator/quality/actions", headers=idle.headers).json()
    assert nothing == {"items": [], "next_cursor": None}

    # The admin's evidence page has it all.
    page = client.get(f"/v1/admin/annotators/{busy.id}/quality", headers=admin.headers)
    assert page.status_code == 200, page.text
    evidence = page.json()
    assert evidence["email"] == busy.user.email
    assert {a["rule"] for a in evidence["actions"]} == {
        "gold_accuracy",
        "fast_submit",
        "identical_answers",
    }
    assert all(a["evidence"] for a in evidence["actions"])
    assert [a["status"] for a in evidence["appeals"]] == ["open"]
    assert evidence["recent_decisions"][0]["actor_id"] == client_account.id
    assert set(evidence["reputation_evidence"]) == {"gold", "agreement", "approval", "speed"}
    not_an_annotator = f"/v1/admin/annotators/{client_account.id}/quality"
    assert client.get(not_an_annotator, headers=admin.headers).status_code == 404


def test_the_reports_agreement_per_control_matches_hand_computed_kappa_and_alpha(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
) -> None:
    """Three annotators, two items: "review number 0" answered a, a, a and "review number 1"
    a, a, b. Percent agreement: (1 + 1/3) / 2 = 2/3. Fleiss: label shares 5/6 and 1/6, so chance
    agreement 26/36 and kappa (2/3 − 26/36) / (1 − 26/36) = −0.2. Krippendorff (nominal): the
    coincidences o_ab = o_ba = 1 over n = 6 values with n_a = 5, n_b = 1 give
    α = 1 − (n − 1)·2 / (2·n_a·n_b) = 0."""
    job_id = active_job(client, client_account, items=2, overlap={"min": 3})
    for person in ("first", "second", "third"):
        who = make_account("annotator")
        label = (
            (lambda t: "negative" if t == "review number 1" else "positive")
            if person == "third"
            else "positive"
        )
        do_tasks(client, who, job_id, 2, label=label)
    body = client.get(f"/v1/quality/jobs/{job_id}/report", headers=client_account.headers).json()
    sentiment = body["agreement"]["controls"]["sentiment"]
    assert sentiment["items"] == 2
    assert sentiment["percent_agreement"] == pytest.approx(2 / 3, abs=1e-6)
    assert sentiment["fleiss_kappa"] == pytest.approx(-0.2, abs=1e-6)
    assert sentiment["krippendorff_alpha"] == pytest.approx(0.0, abs=1e-6)
    assert sentiment["alpha_level"] == "nominal"
    assert body["agreement"]["per_control"]["sentiment"] == sentiment["percent_agreement"]
