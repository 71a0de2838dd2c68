"""Requests remembered by their `Idempotency-Key` (owned by `app.core.idempotency`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, BigId, IdMixin


class IdempotentRequest(IdMixin, Base):
    """A request that moved money, with the key its caller sent and the response it got: the
    same key from the same caller within 24 hours replays `response_body` instead of moving the
    money again. Written in the request's own transaction, so a request that failed leaves no
    row (and its retry runs anew)."""

    __tablename__ = "idempotent_requests"

    principal_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of method, path and body
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[Any | None] = mapped_column(JSON)
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("uq_idempotent_requests_principal_key", "principal_id", "key", unique=True),
        Index("ix_idempotent_requests_created_at", "created_at"),
    )
