"""Consensus: each item's consensus answer and each job's last fitted consensus model
(written by `app.consensus` alone)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId
from app.models.jobs import Json


class ItemResult(Base):
    """The consensus answer of an item and how sure we are of it."""

    __tablename__ = "item_results"

    item_id: Mapped[int] = mapped_column(BigId, ForeignKey("items.id"), primary_key=True)
    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("jobs.id"), index=True)
    answer: Mapped[dict[str, Any]] = mapped_column(Json)
    confidence: Mapped[float] = mapped_column(Float)
    answer_count: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime]


class ConsensusFit(Base):
    """The last fit of a job's consensus estimator over all its answers: what the online
    consensus after each submit holds fixed (`app.consensus.model.ConsensusModel`, as JSON)."""

    __tablename__ = "consensus_fits"

    job_id: Mapped[int] = mapped_column(BigId, ForeignKey("jobs.id"), primary_key=True)
    method: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per job
    model: Mapped[dict[str, Any]] = mapped_column(Json)
    answers: Mapped[int] = mapped_column(Integer)  # answers the fit saw
    items: Mapped[int] = mapped_column(Integer)  # items whose consensus it wrote
    fitted_at: Mapped[datetime]
