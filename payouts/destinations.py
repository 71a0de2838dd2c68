"""Payout destinations for the manual provider: an annotator registers how to be paid (a method
and its details: an IBAN, a PayPal address, ...). The details are stored encrypted (Fernet, with
a key derived from the service's secret key, `TESSERA_SECRET_KEY`), shown masked everywhere and
in full only in the admin's payout export, which is what an admin pays from. Changing the secret
key makes stored details unreadable: the export then says so and the annotator registers again.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from enum import StrEnum

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.settings import Settings
from app.models.money import PayoutPreference

UNREADABLE = "(unreadable: the secret key changed; ask the annotator to register again)"


class DestinationMethod(StrEnum):
    bank_transfer = "bank_transfer"
    paypal = "paypal"
    wise = "wise"
    other = "other"


def _fernet(settings: Settings) -> Fernet:
    digest = hashlib.sha256(
        b"tessera payout destinations\0" + settings.resolved_secret_key().encode()
    ).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def mask(details: str) -> str:
    """What may be shown of the details: their last four letters or digits."""
    tail = "".join(c for c in details if c.isalnum())[-4:]
    return f"•••• {tail}" if tail else "••••"


def set_destination(
    session: Session,
    settings: Settings,
    annotator_id: int,
    method: DestinationMethod,
    details: str,
    now: datetime,
) -> PayoutPreference:
    """Register (replace) where the manual provider pays the annotator. Flushes, never
    commits."""
    row = session.get(PayoutPreference, annotator_id, with_for_update=True)
    if row is None:
        row = PayoutPreference(annotator_id=annotator_id)
        session.add(row)
    row.destination_method = method.value
    row.destination_ciphertext = _fernet(settings).encrypt(details.encode()).decode()
    row.destination_masked = mask(details)
    row.updated_at = now
    session.flush()
    return row


def destination_of(session: Session, annotator_id: int) -> PayoutPreference | None:
    """The annotator's row if they registered a destination."""
    row = session.get(PayoutPreference, annotator_id)
    return row if row is not None and row.destination_method is not None else None


def full_destinations(
    session: Session, settings: Settings, annotator_ids: list[int]
) -> dict[int, tuple[str, str]]:
    """(method, details in full) per annotator who registered one: for the admin's export
    only."""
    fernet = _fernet(settings)
    out: dict[int, tuple[str, str]] = {}
    for annotator_id, method, ciphertext in session.execute(
        select(
            PayoutPreference.annotator_id,
            PayoutPreference.destination_method,
            PayoutPreference.destination_ciphertext,
        ).where(
            PayoutPreference.annotator_id.in_(annotator_ids),
            PayoutPreference.destination_method.is_not(None),
        )
    ):
        try:
            details = fernet.decrypt((ciphertext or "").encode()).decode()
        except InvalidToken:
            details = UNREADABLE
        out[annotator_id] = (method or "", details)
    return out
