"""Shared test inputs: small synthetic crowds and the real crowd label sets."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from app.consensus.votes import IntArray, VoteEncoder, Votes

# ../shared/data/crowd next to the repository (present on development machines and in CI);
# TESSERA_CROWD_DATA points elsewhere. Tests that read it fail, never skip, when it is absent.
CROWD_DATA = Path(
    os.environ.get(
        "TESSERA_CROWD_DATA", Path(__file__).resolve().parents[2].parent / "shared/data/crowd"
    )
)


def real_crowd(name: str) -> tuple[Votes, IntArray]:
    """(votes, gold label per item) of one of the real crowd sets."""
    folder = CROWD_DATA / name
    with (folder / "labels.csv").open(newline="") as file:
        rows = [(r["item"], r["annotator"], r["label"]) for r in csv.DictReader(file)]
    with (folder / "gold.csv").open(newline="") as file:
        gold = {r["item"]: r["label"] for r in csv.DictReader(file)}
    encoder: VoteEncoder[str, str] = VoteEncoder(sorted({label for *_, label in rows}))
    votes = encoder.encode(rows)
    return votes, encoder.encode_gold(gold)
