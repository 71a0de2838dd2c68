"""Votes as integer-coded numpy arrays, the encoder that makes them, and the seeded tie-break.

Every categorical estimator takes the same input: three parallel arrays (item index, annotator
index, label index), because that is what numpy can work with at the scale of a big job: a
million votes are 24 MB of int64, against ~280 MB as pandas string columns (PERFORMANCE.md).
`VoteEncoder` maps arbitrary hashable ids and label values to those indices and back.

Repeated answers: when an annotator answered the same item more than once (a labels file
collected elsewhere; the service takes one answer per annotator and item), their answers share
one vote: r answers weigh 1/r each, so an annotator who changed their mind counts half for
either label and one who repeated themselves counts once (`Votes.weights`). Votes are meant to
be independent given the truth, and the same person asked twice is not a second, independent
opinion: counted as r votes (crowd-kit's rule) a repeater outweighs everyone else on the item;
keeping only their latest answer throws away what the first one said. Measured on real crowds
with 30% of the votes repeated by the same annotator, half of the repeats redrawn at random
(bench/aggregation.py, "repeats"): see the README.

Ties (two labels with the same score) are broken by a hash of (seed, item key, label index),
not by a random generator drawn in item order: the same item gets the same winner whether it
is aggregated alone (online, after a submit) or with the whole job (batch refit), and whatever
order the votes came in. Item keys are the items' integer ids where they are integers, else a
stable hash of their text.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
KeyArray = npt.NDArray[np.uint64]
BoolArray = npt.NDArray[np.bool_]

NO_LABEL = -1  # in a label array: no label (an item without votes, or without a gold answer)

# Scores within this relative distance of the best count as tied: posteriors computed in a
# different order can differ in the last bits, and that must not decide a label.
_TIE_RTOL = 1e-9

K = TypeVar("K", bound=Hashable)
V = TypeVar("V", bound=Hashable)


@dataclass(frozen=True)
class Votes:
    """One categorical question's votes: vote v says annotator `annotators[v]` gave item
    `items[v]` the label `labels[v]`. Indices run over `range(n_items)` etc.; `item_keys[i]` is
    item i's stable key for tie-breaks (its index unless given)."""

    items: IntArray
    annotators: IntArray
    labels: IntArray
    n_items: int
    n_annotators: int
    n_labels: int
    item_keys: KeyArray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))

    def __post_init__(self) -> None:
        arrays = {"items": self.items, "annotators": self.annotators, "labels": self.labels}
        for name, array in arrays.items():
            if array.ndim != 1:
                raise ValueError(f"{name} must be one-dimensional")
            if array.shape != self.items.shape:
                raise ValueError("items, annotators and labels must have the same length")
            object.__setattr__(self, name, np.asarray(array, dtype=np.int64))
        if self.n_labels < 1:
            raise ValueError("a question needs at least one label")
        bounds = {"items": self.n_items, "annotators": self.n_annotators, "labels": self.n_labels}
        for name, bound in bounds.items():
            array = arrays[name]
            if array.size and (int(array.min()) < 0 or int(array.max()) >= bound):
                raise ValueError(f"{name} must be indices in range({bound})")
        if self.item_keys.size == 0:
            object.__setattr__(self, "item_keys", np.arange(self.n_items, dtype=np.uint64))
        elif self.item_keys.shape != (self.n_items,):
            raise ValueError("item_keys needs one key per item")

    @property
    def size(self) -> int:
        return int(self.items.size)

    def vote_counts(self) -> FloatArray:
        """(n_items, n_labels): how many votes each item got for each label (`weights`)."""
        flat = np.bincount(
            self.items * self.n_labels + self.labels,
            weights=self.weights,
            minlength=self.n_items * self.n_labels,
        )
        return flat.reshape(self.n_items, self.n_labels).astype(np.float64)

    @cached_property
    def weights(self) -> FloatArray | None:
        """What each vote weighs: 1, except that an annotator's repeated answers to one item
        share one vote (each 1/r of r answers; see the module docstring). None when no
        annotator answered an item twice, i.e. every vote weighs 1."""
        pairs = self.items * self.n_annotators + self.annotators
        _, inverse, counts = np.unique(pairs, return_inverse=True, return_counts=True)
        if counts.size == self.size:
            return None
        result: FloatArray = 1.0 / counts[inverse]
        return result

    def answers_per_annotator(self) -> IntArray:
        return np.bincount(self.annotators, minlength=self.n_annotators).astype(np.int64)


class Codebook(Generic[K]):
    """Values in order of first appearance (or as given) and their indices."""

    def __init__(self, values: Iterable[K] = ()) -> None:
        self.values: list[K] = []
        self._index: dict[K, int] = {}
        for value in values:
            self.add(value)

    def add(self, value: K) -> int:
        index = self._index.get(value)
        if index is None:
            index = self._index[value] = len(self.values)
            self.values.append(value)
        return index

    def get(self, value: K) -> int | None:
        return self._index.get(value)

    def __len__(self) -> int:
        return len(self.values)


class VoteEncoder(Generic[K, V]):
    """Encodes (item id, annotator id, label value) rows as `Votes`.

    `labels` fixes the label order (a schema's); otherwise labels are numbered as first seen,
    and `encode` with `closed_labels=True` rejects a value outside the given ones. Items and
    annotators are numbered as first seen; `item_ids`, `annotator_ids` and `label_values` map
    indices back. `add_item` registers an item without votes (a gold item nobody answered).
    """

    def __init__(self, labels: Sequence[V] | None = None) -> None:
        self.items: Codebook[K] = Codebook()
        self.annotators: Codebook[Hashable] = Codebook()
        self.labels: Codebook[V] = Codebook(labels or ())
        self._closed = labels is not None

    @property
    def item_ids(self) -> list[K]:
        return self.items.values

    @property
    def annotator_ids(self) -> list[Hashable]:
        return self.annotators.values

    @property
    def label_values(self) -> list[V]:
        return self.labels.values

    def add_item(self, item: K) -> int:
        return self.items.add(item)

    def label_index(self, label: V) -> int:
        index = self.labels.get(label) if self._closed else self.labels.add(label)
        if index is None:
            raise ValueError(f"unknown label {label!r}")
        return index

    def encode(self, rows: Iterable[tuple[K, Hashable, V]]) -> Votes:
        items: list[int] = []
        annotators: list[int] = []
        labels: list[int] = []
        for item, annotator, label in rows:
            labels.append(self.label_index(label))
            items.append(self.items.add(item))
            annotators.append(self.annotators.add(annotator))
        return self.votes(items, annotators, labels)

    def votes(
        self, items: Sequence[int], annotators: Sequence[int], labels: Sequence[int]
    ) -> Votes:
        """`Votes` over this encoder's codebooks from already-encoded indices."""
        return Votes(
            items=np.asarray(items, dtype=np.int64),
            annotators=np.asarray(annotators, dtype=np.int64),
            labels=np.asarray(labels, dtype=np.int64),
            n_items=len(self.items),
            n_annotators=len(self.annotators),
            n_labels=max(1, len(self.labels)),
            item_keys=item_keys(self.items.values),
        )

    def encode_gold(self, gold: Mapping[K, V]) -> IntArray:
        """(n_items,) label index of each item's gold answer, NO_LABEL where there is none.
        Gold for items that have no votes is ignored unless they were added with `add_item`;
        a gold value outside the labels raises ValueError."""
        out = np.full(len(self.items), NO_LABEL, dtype=np.int64)
        for item, label in gold.items():
            index = self.items.get(item)
            if index is not None:
                out[index] = self.label_index(label)
        return out


def item_keys(ids: Sequence[Hashable]) -> KeyArray:
    """Stable 64-bit keys for item ids: the id itself for integers and for text of decimal digits
    (a service item id read back from an export: offline ties then fall as in the service), a
    BLAKE2b hash of its text otherwise (Python's own hash of a string changes from process to
    process)."""
    keys = np.empty(len(ids), dtype=np.uint64)
    for n, item in enumerate(ids):
        if isinstance(item, str) and item.isascii() and item.isdigit() and len(item) < 20:
            keys[n] = int(item)
        elif isinstance(item, int | np.integer) and not isinstance(item, bool):
            keys[n] = int(item) & 0xFFFF_FFFF_FFFF_FFFF
        else:
            digest = hashlib.blake2b(str(item).encode(), digest_size=8).digest()
            keys[n] = int.from_bytes(digest, "little")
    return keys


def _mix(x: KeyArray) -> KeyArray:
    """SplitMix64's finalizer: a fast, well-spread 64-bit hash (Steele, Lea & Flood, OOPSLA
    2014), vectorised; uint64 arithmetic wraps, which is what the hash wants."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def most_likely(scores: FloatArray, keys: KeyArray, seed: int) -> IntArray:
    """Per row, the column with the highest score; among tied columns, the one whose hash of
    (seed, key, column) is largest. A row of zeros (no evidence) gives NO_LABEL."""
    labels: IntArray = np.argmax(scores, axis=1).astype(np.int64)
    if scores.size == 0:
        return labels
    best = scores[np.arange(scores.shape[0]), labels]
    tied = scores >= (best - _TIE_RTOL * np.abs(best))[:, None]
    rows = np.flatnonzero(tied.sum(axis=1) > 1)
    if rows.size:
        columns = np.arange(scores.shape[1], dtype=np.uint64)
        salted = _mix(keys[rows] ^ _mix(np.full(rows.size, seed & (2**64 - 1), np.uint64)))
        hashes = _mix(salted[:, None] ^ columns[None, :]).astype(np.float64)
        labels[rows] = np.argmax(np.where(tied[rows], hashes, -1.0), axis=1)
    labels[~np.any(scores > 0, axis=1)] = NO_LABEL
    return labels
