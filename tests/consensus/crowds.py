"""Shared test inputs: small synthetic crowds and the real crowd label sets."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from app.consensus.votes import IntArray, VoteEncoder, Votes

# ../shared/data/crowd next to the repository (present on development machines and in CI);
# TESSERA_CROWD_DATA points elsewhere. Where it is absent (a clone on its own), the tests that
# read it skip saying so, like the PostgreSQL pass without a server; under CI=true they fail.
CROWD_DATA = Path(
    os.environ.get(
        "TESSERA_CROWD_DATA", Path(__file__).resolve().parents[2].parent / "shared/data/crowd"
    )
)


def require_crowd_data() -> None:
    """Skip the calling test when the real crowd sets are absent (fail under CI=true)."""
    if CROWD_DATA.is_dir():
        return
    message = (
        f"the real crowd label sets are not at {CROWD_DATA}: "
        "set TESSERA_CROWD_DATA to the folder that holds them"
    )
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: failing instead of skipping)")
    pytest.skip(message)


def real_crowd(name: str) -> tuple[Votes, IntArray]:
    """(votes, gold label per item) of one of the real crowd sets."""
    require_crowd_data()
    folder = CROWD_DATA / name
    with (folder / "labels.csv").open(newline="") as file:
        rows = [(r["item"], r["annotator"], r["label"]) for r in csv.DictReader(file)]
    with (folder / "gold.csv").open(newline="") as file:
        gold = {r["item"]: r["label"] for r in csv.DictReader(file)}
    encoder: VoteEncoder[str, str] = VoteEncoder(sorted({label for *_, label in rows}))
    votes = encoder.encode(rows)
    return votes, encoder.encode_gold(gold)
