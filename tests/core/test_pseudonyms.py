"""One pseudonym per annotator and client, the same wherever the client meets the annotator
(exports computed in SQL, review views, webhook events)."""

from __future__ import annotations

import hashlib

from app.core.security import client_pseudonym, client_pseudonym_prefix

SECRET = "k" * 40


def test_a_client_pseudonym_is_16_hex_digits_of_sha256_of_secret_client_and_annotator() -> None:
    expected = hashlib.sha256(f"{SECRET}:client:1:2".encode()).hexdigest()[:16]
    assert client_pseudonym(SECRET, 1, 2) == expected


def test_each_client_knows_an_annotator_under_another_pseudonym() -> None:
    assert client_pseudonym(SECRET, 1, 2) != client_pseudonym(SECRET, 3, 2)
    assert client_pseudonym(SECRET, 1, 2) != client_pseudonym("j" * 40, 1, 2)


def test_the_sql_side_prefix_hashed_with_the_annotator_id_gives_the_same_pseudonym() -> None:
    in_sql = hashlib.sha256(f"{client_pseudonym_prefix(SECRET, 7)}42".encode()).hexdigest()[:16]
    assert in_sql == client_pseudonym(SECRET, 7, 42)
