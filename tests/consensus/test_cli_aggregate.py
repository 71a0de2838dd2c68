"""`tessera aggregate` end to end on small generated label files."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.consensus.simulation import SyntheticCrowd, synthetic_crowd

runner = CliRunner()
LABELS = ["red", "green", "blue"]


@pytest.fixture(scope="module")
def crowd() -> SyntheticCrowd:
    return synthetic_crowd(600, 30, 3, 5, seed=11)


def write(path: Path, header: list[str], rows: list[list[object]], delimiter: str = ",") -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def answer_rows(crowd: SyntheticCrowd) -> list[list[object]]:
    v = crowd.votes
    return [
        [f"item-{i}", f"w{a}", LABELS[label]]
        for i, a, label in zip(v.items, v.annotators, v.labels, strict=True)
    ]


def consensus(stdout: str) -> dict[str, tuple[str, float]]:
    rows = list(csv.DictReader(io.StringIO(stdout)))
    return {r["item"]: (r["label"], float(r["confidence"])) for r in rows}


def test_aggregates_a_tessera_file_with_gold_and_reports_accuracy_on_gold(
    crowd: SyntheticCrowd, tmp_path: Path
) -> None:
    labels = write(tmp_path / "labels.csv", ["item", "annotator", "label"], answer_rows(crowd))
    gold_rows = [[f"item-{i}", LABELS[crowd.truth[i]]] for i in range(0, 600, 4)]
    gold = write(tmp_path / "gold.csv", ["item", "label"], gold_rows)
    skills = tmp_path / "skills.csv"
    result = runner.invoke(
        cli, ["aggregate", str(labels), "--gold", str(gold), "--skills-file", str(skills)]
    )
    assert result.exit_code == 0, result.stderr
    out = consensus(result.stdout)
    assert len(out) == 600
    truth = {f"item-{i}": LABELS[t] for i, t in enumerate(crowd.truth)}
    accuracy = sum(out[item][0] == truth[item] for item in out) / 600
    assert accuracy > 0.9
    assert all(out[item] == (label, 1.0) for item, label in gold_rows)  # clamped
    assert "method calibrated_dawid_skene" in result.stderr
    reported = float(result.stderr.split("accuracy on gold ")[1].split("%")[0])
    assert 85.0 < reported < 100.0  # cross-fitted: not the clamped 100%
    table = list(csv.DictReader(skills.open()))
    assert len(table) == 30
    assert {"annotator", "answers", "skill", "gold_answers", "gold_accuracy"} <= set(table[0])
    assert float(table[0]["skill"]) >= float(table[-1]["skill"])


def test_reads_mturk_batch_results_and_skips_rejected_assignments(tmp_path: Path) -> None:
    header = ["HITId", "WorkerId", "AssignmentStatus", "Input.image", "Answer.colour"]
    rows = [
        ["h1", "A", "Approved", "x.jpg", "red"],
        ["h1", "B", "Approved", "x.jpg", "red"],
        ["h1", "C", "Rejected", "x.jpg", "blue"],
        ["h1", "D", "Submitted", "x.jpg", "blue"],
        ["h2", "A", "Approved", "y.jpg", "green"],
    ]
    path = write(tmp_path / "Batch_1_batch_results.csv", header, rows)
    result = runner.invoke(cli, ["aggregate", str(path), "--method", "majority_vote", "--skills"])
    assert result.exit_code == 0, result.stderr
    # h2 has one answer: under a plain vote, the default skill (honest confidence), not 1.
    assert consensus(result.stdout) == {"h1": ("red", pytest.approx(2 / 3)), "h2": ("green", 0.7)}
    assert "skipped 1 rejected answers" in result.stderr
    assert "annotator,answers,skill" in result.stderr


def test_reads_toloka_tsv_results(tmp_path: Path) -> None:
    header = ["INPUT:image", "OUTPUT:result", "GOLDEN:result", "ASSIGNMENT:worker_id",
              "ASSIGNMENT:status"]  # fmt: skip
    rows = [
        ["a.jpg", "cat", "", "w1", "APPROVED"],
        ["a.jpg", "cat", "", "w2", "SUBMITTED"],
        ["a.jpg", "dog", "", "w3", "REJECTED"],
        ["b.jpg", "dog", "", "w1", "APPROVED"],
    ]
    path = write(tmp_path / "assignments.tsv", header, rows, delimiter="\t")
    result = runner.invoke(cli, ["aggregate", str(path), "--method", "weighted_vote"])
    assert result.exit_code == 0, result.stderr
    assert {item: label for item, (label, _) in consensus(result.stdout).items()} == {
        "a.jpg": "cat",
        "b.jpg": "dog",
    }


def test_a_file_without_a_label_column_or_an_unknown_method_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path / "odd.csv", ["item", "annotator", "colour"], [["i", "a", "red"]])
    result = runner.invoke(cli, ["aggregate", str(path)])
    assert result.exit_code == 2
    assert "no label column" in result.stderr
    ok = write(tmp_path / "ok.csv", ["item", "annotator", "label"], [["i", "a", "red"]])
    result = runner.invoke(cli, ["aggregate", str(ok), "--method", "best_guess"])
    assert result.exit_code == 2
    assert "Unknown method 'best_guess'" in result.stderr


def test_a_small_file_falls_back_to_the_weighted_vote(tmp_path: Path) -> None:
    rows = [["i1", "a", "x"], ["i1", "b", "x"], ["i1", "c", "y"], ["i2", "a", "y"]]
    path = write(tmp_path / "small.csv", ["task", "worker", "label"], rows)
    result = runner.invoke(cli, ["aggregate", str(path)])
    assert result.exit_code == 0, result.stderr
    assert "method weighted_vote (fallback from calibrated_dawid_skene)" in result.stderr
    assert consensus(result.stdout)["i1"][0] == "x"
