"""Signatures in the Standard Webhooks layout, and signing secrets sealed at rest."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from app.webhooks import signing
from app.webhooks.signing import SecretBox


def test_a_secret_is_whsec_and_32_random_bytes() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(signing.secret_key_bytes(secret)) == 32
    assert signing.new_secret() != secret


def test_the_signature_is_hmac_sha256_over_id_timestamp_and_body() -> None:
    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    body = b'{"type":"job.completed"}'
    expected = base64.b64encode(
        hmac.new(key, b"evt_1.1700000000." + body, hashlib.sha256).digest()
    ).decode()
    assert signing.sign(secret, "evt_1", 1700000000, body) == "v1," + expected


def test_headers_carry_one_signature_per_secret_in_force_and_any_one_verifies() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    headers = signing.signature_headers([new, old], "evt_9", 1700000000, b"{}")
    assert headers["webhook-id"] == "evt_9"
    assert headers["webhook-timestamp"] == "1700000000"
    assert len(headers["webhook-signature"].split()) == 2
    assert signing.verify(old, headers, b"{}")
    assert signing.verify(new, headers, b"{}")
    assert not signing.verify(signing.new_secret(), headers, b"{}")
    assert not signing.verify(new, headers, b"{ }")  # the body is signed byte for byte
    assert not signing.verify(new, {**headers, "webhook-id": "evt_10"}, b"{}")
    assert not signing.verify(new, {**headers, "webhook-timestamp": "1700000001"}, b"{}")


def test_sealed_secrets_open_with_the_same_key_only() -> None:
    box = SecretBox("k" * 40)
    secret = signing.new_secret()
    sealed = box.seal(secret)
    assert secret not in sealed
    assert box.seal(secret) != sealed  # a fresh nonce each time
    assert box.open(sealed) == secret
    assert SecretBox("k" * 40).open(sealed) == secret
    with pytest.raises(ValueError, match="another TESSERA_SECRET_KEY"):
        SecretBox("j" * 40).open(sealed)
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(ValueError):
        box.open(tampered)
