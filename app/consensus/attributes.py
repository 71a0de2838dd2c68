"""Per-region attributes: the consensus of the attributes of regions judged to be one object (a
cluster of boxes, polygons, keypoints, spans or segments): a majority per attribute among the
cluster's regions; free text by the medoid (the answer closest, in normalized edit distance, to
all the others).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rapidfuzz.distance import Levenshtein

from app.label_schema import Attribute, TextAttribute


def aggregate_attributes(
    attributes: Sequence[Attribute], regions: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The consensus attributes of regions judged to be one object (a cluster): for each
    attribute that at least half of the regions answer, the most common answer (multiple
    choices compared as sets; ties to the first seen), or for text the medoid."""
    agreed: dict[str, Any] = {}
    for attribute in attributes:
        given = [
            r["attributes"][attribute.name]
            for r in regions
            if isinstance(r.get("attributes"), Mapping) and attribute.name in r["attributes"]
        ]
        if not given or len(given) * 2 < len(regions):
            continue
        if isinstance(attribute, TextAttribute):
            agreed[attribute.name] = medoid_text(given)
        else:
            agreed[attribute.name] = majority(given)
    return agreed


def majority(values: Sequence[Any]) -> Any:
    """The most common value (compared as canonical JSON, label lists as sets); ties go to the
    value seen first."""
    counts = Counter(_canonical(v) for v in values)
    winner, _ = max(counts.items(), key=lambda kv: kv[1])
    return json.loads(winner)


def _canonical(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = sorted(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def medoid_text(texts: Sequence[str]) -> str:
    """The text with the smallest total normalized edit distance to the others."""
    totals = [
        math.fsum(Levenshtein.normalized_distance(text, other) for other in texts) for text in texts
    ]
    return texts[totals.index(min(totals))]
