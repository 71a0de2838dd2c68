"""A job's fitted consensus state, as plain JSON-able data the service can store beside the job
and hand back to `aggregation.aggregate_item` after each submit.

Annotators are keyed by `str(annotator_id)` (JSON object keys are strings). A question is one
categorical decision: a single-choice or rating control, or one label (yes/no) of a
multiple-choice control.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from app.consensus.methods import Method

# Format of `ConsensusModel.to_json`; bump it when the format changes.
MODEL_VERSION = 1


@dataclass(frozen=True)
class QuestionModel:
    """One question's fitted parameters: the method actually used (after the fallback rule),
    the label prior, the calibration (a temperature, and the weight of the vote shares mixed into
    the posterior), and per annotator a skill and (Dawid-Skene methods) a confusion matrix, rows
    the true label, columns the answer. Models stored before `share_weight` existed read as 0."""

    method: Method
    n_labels: int
    priors: list[float]
    temperature: float = 1.0
    share_weight: float = 0.0
    skills: dict[str, float] = field(default_factory=dict)
    confusions: dict[str, list[list[float]]] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> QuestionModel:
        return cls(
            method=Method(data["method"]),
            n_labels=int(data["n_labels"]),
            priors=[float(p) for p in data["priors"]],
            temperature=float(data.get("temperature", 1.0)),
            share_weight=float(data.get("share_weight", 0.0)),
            skills={str(k): float(v) for k, v in data.get("skills", {}).items()},
            confusions={str(k): v for k, v in data.get("confusions", {}).items()},
        )


@dataclass(frozen=True)
class ConsensusModel:
    """`questions` per single-choice or rating control, `multiple` per multiple-choice control
    and label, `weights` (per annotator skill) per other control; `method` as requested."""

    method: Method
    questions: dict[str, QuestionModel] = field(default_factory=dict)
    multiple: dict[str, dict[str, QuestionModel]] = field(default_factory=dict)
    weights: dict[str, dict[str, float]] = field(default_factory=dict)
    version: int = MODEL_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConsensusModel:
        """The model `to_json` wrote; ValueError for another format version or method."""
        if data.get("version") != MODEL_VERSION:
            raise ValueError(f"consensus model version {data.get('version')!r} is not supported")
        return cls(
            method=Method(data["method"]),
            questions={k: QuestionModel.from_json(q) for k, q in data["questions"].items()},
            multiple={
                control: {label: QuestionModel.from_json(q) for label, q in per_label.items()}
                for control, per_label in data["multiple"].items()
            },
            weights={
                control: {str(k): float(v) for k, v in weights.items()}
                for control, weights in data["weights"].items()
            },
        )
