"""Signing secrets and signatures, in the Standard Webhooks layout, and the secrets' encryption at
rest.

A secret is `whsec_` + base64 of 32 random bytes (the HMAC key). A delivery carries
`webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`: `v1,` + base64 of
HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}"), space-separated when several
secrets are valid (during a rotation). Signing the id and timestamp with the body means neither
can be swapped, and a receiver that checks the timestamp is safe from replays.

We must sign with the secret itself, so a hash (as for API tokens) will not do: secrets are
stored encrypted with AES-256-GCM under a key derived (HKDF-SHA256) from TESSERA_SECRET_KEY. A
database dump alone reveals none of them. Changing TESSERA_SECRET_KEY makes the stored secrets
unreadable: deliveries then fail with a clear error until each endpoint's secret is rotated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (a prefix, not a secret)
SIGNATURE_VERSION: Final = "v1"
SEALED_PREFIX: Final = "v1."
_HKDF_INFO: Final = b"tessera webhook signing secrets v1"
_AAD: Final = b"tessera-webhook-secret"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key_bytes(secret: str) -> bytes:
    """The HMAC key a `whsec_` secret stands for."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of a delivery."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key_bytes(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signature_headers(
    secrets_in_force: Iterable[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers, signed with every secret in force."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            sign(secret, message_id, timestamp, body) for secret in secrets_in_force
        ),
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether any `v1` signature in the headers matches (constant-time); no timestamp check."""
    expected = sign(secret, headers["webhook-id"], int(headers["webhook-timestamp"]), body)
    return any(
        hmac.compare_digest(expected, candidate)
        for candidate in headers["webhook-signature"].split()
    )


class SecretBox:
    """Encrypts signing secrets for storage (AES-256-GCM, random 96-bit nonce per secret)."""

    def __init__(self, secret_key: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
            secret_key.encode()
        )
        self._aead = AESGCM(key)

    def seal(self, secret: str) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, secret.encode(), _AAD)
        return SEALED_PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str) -> str:
        """The secret; `ValueError` if it was sealed under another TESSERA_SECRET_KEY."""
        if not sealed.startswith(SEALED_PREFIX):
            raise ValueError("not a sealed webhook secret")
        raw = base64.b64decode(sealed.removeprefix(SEALED_PREFIX))
        try:
            return self._aead.decrypt(raw[:12], raw[12:], _AAD).decode()
        except InvalidTag:
            raise ValueError(
                "the webhook secret was sealed under another TESSERA_SECRET_KEY; rotate it"
            ) from None
