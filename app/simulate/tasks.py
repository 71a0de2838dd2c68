"""The simulated task types: their label schemas, items with a known truth, and how each kind of
annotator answers them. Pure functions of a seeded `random.Random`."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

Answer = dict[str, Any]

WORDS = [
    "the", "order", "arrived", "late", "but", "works", "fine", "screen", "battery", "price",
    "support", "quick", "broken", "again", "would", "buy", "team", "match", "market", "travel",
]  # fmt: skip
NAMES = {
    "PER": ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Linus", "Margaret Hamilton"],
    "ORG": ["Acme Corp", "Globex", "Initech", "Umbrella", "Hooli"],
    "LOC": ["Paris", "Nairobi", "Lima", "Osaka", "Oslo"],
}
IMAGE_W, IMAGE_H = 640, 480


@dataclass(frozen=True)
class TaskType:
    """One kind of work: its control, its schema and its answers."""

    name: str
    control: str
    schema: dict[str, Any]
    labels: tuple[str, ...]

    def item(self, rng: random.Random, ref: str) -> tuple[dict[str, Any], Answer]:
        """A payload (with `ref`, the simulation's handle on it) and its true answer."""
        payload, value = _ITEMS[self.name](rng, self.labels)
        return {"ref": ref, **payload}, {self.control: value}

    def honest(self, rng: random.Random, truth: Answer, payload: dict[str, Any]) -> Answer:
        """The true answer, or an honest mistake (caller decides which by accuracy)."""
        value = truth[self.control]
        if self.name == "boxes":
            value = [_jitter(rng, box) for box in value]
        return {self.control: value}

    def mistake(self, rng: random.Random, truth: Answer, payload: dict[str, Any]) -> Answer:
        return {self.control: _MISTAKES[self.name](rng, truth[self.control], self.labels)}

    def spam(self, rng: random.Random, payload: dict[str, Any]) -> Answer:
        """A random answer of the right shape."""
        return {self.control: _SPAM[self.name](rng, payload, self.labels)}

    def constant(self) -> Answer:
        """What a bot answers to everything."""
        return {self.control: _CONSTANT[self.name](self.labels)}

    def majority(self, answers: list[Answer]) -> Answer | None:
        """Majority vote on the same answers: the plurality label (choices), each label chosen by
        more than half (multi-label), the most frequent exact answer (regions)."""
        values = [a[self.control] for a in answers if a.get(self.control) is not None]
        if not values:
            return None
        if self.name == "multi":
            counts = Counter(label for value in values for label in value)
            chosen = sorted(label for label, n in counts.items() if 2 * n > len(values))
            return {self.control: chosen}
        keyed = Counter(_key(v) for v in values)
        best = max(keyed.values())
        for value in values:  # the first answer among the most frequent: no hidden tie-break
            if keyed[_key(value)] == best:
                return {self.control: value}
        return None

    def correct(self, answer: Answer | None, truth: Answer) -> bool:
        """Whether an answer is the truth: equal labels or label sets; regions matched one to one
        (spans exactly, boxes by IoU >= 0.5, same label)."""
        if not answer or self.control not in answer:
            return False
        got, want = answer[self.control], truth[self.control]
        if self.name == "choices":
            return bool(got == want)
        if self.name == "multi":
            return sorted(got) == sorted(want)
        if len(got) != len(want):
            return False
        if self.name == "spans":
            return sorted(_key(s) for s in got) == sorted(_key(s) for s in want)
        unmatched = list(want)
        for box in got:
            match = next(
                (w for w in unmatched if w["label"] == box["label"] and _iou(w, box) >= 0.5), None
            )
            if match is None:
                return False
            unmatched.remove(match)
        return True


def _key(value: Any) -> str:
    import json

    if isinstance(value, list):
        return json.dumps(
            sorted(value, key=lambda v: json.dumps(v, sort_keys=True)), sort_keys=True
        )
    return json.dumps(value, sort_keys=True)


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


# --- items ---------------------------------------------------------------------------------


def _choices_item(rng: random.Random, labels: tuple[str, ...]) -> tuple[dict[str, Any], Any]:
    label = rng.choices(labels, weights=[4, 3, 2, 1][: len(labels)])[0]
    return {"text": _sentence(rng, 12)}, label


def _multi_item(rng: random.Random, labels: tuple[str, ...]) -> tuple[dict[str, Any], Any]:
    chosen = sorted(rng.sample(labels, rng.choice([1, 1, 2])))
    return {"text": _sentence(rng, 14)}, chosen


def _spans_item(rng: random.Random, labels: tuple[str, ...]) -> tuple[dict[str, Any], Any]:
    parts: list[str] = []
    spans = []
    for _ in range(rng.choice([1, 2])):
        parts.append(_sentence(rng, rng.randint(2, 5)) + " ")
        label = rng.choice(labels)
        name = rng.choice(NAMES[label])
        start = sum(len(p) for p in parts)
        parts.append(name)
        spans.append({"start": start, "end": start + len(name), "label": label})
        parts.append(" ")
    parts.append(_sentence(rng, 3))
    return {"text": "".join(parts)}, spans


def _boxes_item(rng: random.Random, labels: tuple[str, ...]) -> tuple[dict[str, Any], Any]:
    boxes = []
    for n in range(rng.choice([1, 2])):
        width, height = rng.randint(60, 160), rng.randint(60, 160)
        x = rng.randint(0, IMAGE_W // 2 - width) + n * IMAGE_W // 2
        y = rng.randint(0, IMAGE_H - height)
        boxes.append(
            {"x": x, "y": y, "width": width, "height": height, "label": rng.choice(labels)}
        )
    ref = rng.randrange(10**9)
    return {"image": f"https://images.example.com/{ref}.jpg", "w": IMAGE_W, "h": IMAGE_H}, boxes


_ITEMS = {
    "choices": _choices_item,
    "multi": _multi_item,
    "spans": _spans_item,
    "boxes": _boxes_item,
}


# --- mistakes, spam and bots ---------------------------------------------------------------


def _other(rng: random.Random, labels: tuple[str, ...], label: str) -> str:
    return rng.choice([x for x in labels if x != label])


def _mistake(rng: random.Random, value: Any, labels: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return _other(rng, labels, value)
    return value


def _multi_mistake(rng: random.Random, value: list[str], labels: tuple[str, ...]) -> list[str]:
    if len(value) > 1 and rng.random() < 0.5:
        return sorted(value[:-1])
    return sorted({*value, rng.choice([x for x in labels if x not in value])})


def _region_mistake(
    rng: random.Random, value: list[dict[str, Any]], labels: tuple[str, ...]
) -> Any:
    regions = [dict(r) for r in value]
    if len(regions) > 1 and rng.random() < 0.5:
        regions.pop(rng.randrange(len(regions)))
    else:
        target = regions[rng.randrange(len(regions))]
        target["label"] = _other(rng, labels, target["label"])
    return regions


def _jitter(rng: random.Random, box: dict[str, Any]) -> dict[str, Any]:
    """The box a careful hand draws: a pixel or two off, inside the image."""
    x = min(max(0, box["x"] + rng.randint(-2, 2)), IMAGE_W - box["width"])
    y = min(max(0, box["y"] + rng.randint(-2, 2)), IMAGE_H - box["height"])
    return {**box, "x": x, "y": y}


def _spam_spans(rng: random.Random, payload: dict[str, Any], labels: tuple[str, ...]) -> Any:
    text = payload["text"]
    start = rng.randrange(len(text) - 4)
    return [{"start": start, "end": start + rng.randint(1, 4), "label": rng.choice(labels)}]


def _spam_boxes(rng: random.Random, payload: dict[str, Any], labels: tuple[str, ...]) -> Any:
    w, h = rng.randint(10, 100), rng.randint(10, 100)
    x, y = rng.randint(0, IMAGE_W - w), rng.randint(0, IMAGE_H - h)
    return [{"x": x, "y": y, "width": w, "height": h, "label": rng.choice(labels)}]


_MISTAKES = {
    "choices": _mistake,
    "multi": _multi_mistake,
    "spans": _region_mistake,
    "boxes": _region_mistake,
}


def _spam_choice(rng: random.Random, _payload: dict[str, Any], labels: tuple[str, ...]) -> Any:
    return rng.choice(labels)


def _spam_multi(rng: random.Random, _payload: dict[str, Any], labels: tuple[str, ...]) -> Any:
    return sorted(rng.sample(labels, rng.randint(1, 3)))


def _last_label(labels: tuple[str, ...]) -> Any:
    return labels[-1]


def _last_label_alone(labels: tuple[str, ...]) -> Any:
    return [labels[-1]]


def _no_regions(_labels: tuple[str, ...]) -> Any:
    return []


_SPAM = {"choices": _spam_choice, "multi": _spam_multi, "spans": _spam_spans, "boxes": _spam_boxes}
_CONSTANT = {
    "choices": _last_label,
    "multi": _last_label_alone,
    "spans": _no_regions,
    "boxes": _no_regions,
}


def _iou(a: dict[str, Any], b: dict[str, Any]) -> float:
    x1, y1 = max(a["x"], b["x"]), max(a["y"], b["y"])
    x2 = min(a["x"] + a["width"], b["x"] + b["width"])
    y2 = min(a["y"] + a["height"], b["y"] + b["height"])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    union = a["width"] * a["height"] + b["width"] * b["height"] - inter
    return inter / union if union else 0.0


TASK_TYPES: dict[str, TaskType] = {
    "choices": TaskType(
        name="choices",
        control="sentiment",
        labels=("positive", "negative", "neutral", "mixed"),
        schema={
            "controls": [
                {
                    "name": "sentiment",
                    "type": "choices",
                    "field": "text",
                    "labels": ["positive", "negative", "neutral", "mixed"],
                }
            ]
        },
    ),
    "multi": TaskType(
        name="multi",
        control="topics",
        labels=("sports", "politics", "tech", "health", "travel"),
        schema={
            "controls": [
                {
                    "name": "topics",
                    "type": "choices",
                    "field": "text",
                    "multiple": True,
                    "labels": ["sports", "politics", "tech", "health", "travel"],
                }
            ]
        },
    ),
    "spans": TaskType(
        name="spans",
        control="entities",
        labels=("PER", "ORG", "LOC"),
        schema={
            "controls": [
                {
                    "name": "entities",
                    "type": "spans",
                    "field": "text",
                    "labels": ["PER", "ORG", "LOC"],
                }
            ]
        },
    ),
    "boxes": TaskType(
        name="boxes",
        control="objects",
        labels=("car", "person"),
        schema={
            "controls": [
                {
                    "name": "objects",
                    "type": "boxes",
                    "field": "image",
                    "labels": ["car", "person"],
                    "width_field": "w",
                    "height_field": "h",
                }
            ]
        },
    ),
}
