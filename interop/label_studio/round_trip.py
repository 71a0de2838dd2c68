"""The Label Studio round trip, against a real Label Studio (`make interop`; not part of
`make test`).

For each scenario (choices, spans, boxes, transcription, per-region attributes, time segments,
pairwise and ranking preferences with a taxonomy; time series, paragraphs, HTML and a chat's
messages) it runs what a team moving between the two tools
does, over HTTP on 127.0.0.1:

1. Tessera: a client creates a job (some from a Label Studio config, some from a schema), imports
   items, activates it; three annotators claim and submit every task.
2. Tessera -> Label Studio: the job's config (`GET /v1/jobs/{id}/label-studio-config`) makes a
   project (Label Studio validates the config), Label Studio's own validator checks every
   exported annotation and prediction, and the export (`?format=label-studio&include_gold=true`)
   is imported: 201, and every task, annotation and prediction stored, with regions equal to what
   was sent.
3. Label Studio -> Tessera: Label Studio's JSON export (a snapshot with full predictions) is
   imported into a new job made from the same config, ground-truth annotations as gold answers:
   every task is an item, every annotation read back equals the answer that went out, the
   consensus comes back as the pre-label and the gold answer as the gold answer.

Prints a report and exits 1 if any check fails. Label Studio runs from its own virtual
environment (`--label-studio`); Tessera from this one, on a fresh SQLite file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from app.label_schema import parse_label_schema  # noqa: E402
from app.label_schema.label_studio import answer_from_label_studio  # noqa: E402

# Throwaway credentials of this run's throwaway Label Studio and Tessera.
LS_TOKEN = secrets.token_hex(16)
PASSWORD = secrets.token_urlsafe(16)

Answer = Callable[[int, dict[str, Any]], dict[str, Any]]


@dataclass
class Scenario:
    name: str
    label_schema: Any  # a schema document or a Label Studio XML config
    rows: list[dict[str, Any]]
    answer: Answer  # (annotator 0..2, item payload) -> answer
    extra: dict[str, Any] = field(default_factory=dict)  # more job settings


# --- the scenarios --------------------------------------------------------------------------------

REVIEWS = ["A lovely little place.", "Cold food, rude staff.", "It was fine, I guess."]


def choices_answer(n: int, data: dict[str, Any]) -> dict[str, Any]:
    verdict = {"A lovely": "positive", "Cold food": "negative"}
    label = next((v for k, v in verdict.items() if data["text"].startswith(k)), "neutral")
    return {"sentiment": label if n < 2 else "neutral"}


CHOICES = Scenario(
    "choices (from a Label Studio config; gold item)",
    """<View>
  <Header value="How does the reviewer feel?"/>
  <Text name="review" value="$text"/>
  <Choices name="sentiment" toName="review" required="true">
    <Choice value="positive"/><Choice value="negative"/><Choice value="neutral"/>
  </Choices>
</View>""",
    [{"external_id": f"r{i}", "text": t} for i, t in enumerate(REVIEWS)]
    + [{"external_id": "gold-1", "text": "Superb!", "gold_answer": {"sentiment": "positive"}}],
    choices_answer,
    {"gold_ratio": 0.25},
)


def spans_answer(n: int, data: dict[str, Any]) -> dict[str, Any]:
    text = data["text"]
    spans = [{"start": 0, "end": text.index(" "), "label": "PER"}]
    where = text.rfind(" in ") + 4
    if n != 2:
        spans.append({"start": where, "end": len(text) - 1, "label": "LOC"})
    return {"entities": spans}


SPANS = Scenario(
    "spans (schema document)",
    {
        "controls": [
            {"name": "entities", "type": "spans", "field": "text", "labels": ["PER", "LOC"]},
        ]
    },
    [{"text": "Ada lives in London."}, {"text": "Grace worked in Arlington."}],
    spans_answer,
)


def boxes_answer(n: int, data: dict[str, Any]) -> dict[str, Any]:
    shift = 2 * n
    return {
        "objects": [
            {"x": 40 + shift, "y": 30, "width": 120, "height": 90, "label": "car"},
            {"x": 300, "y": 60 + shift, "width": 50, "height": 140, "label": "person"},
        ]
    }


BOXES = Scenario(
    "boxes (from a Label Studio config; image size named at creation)",
    """<View>
  <Image name="photo" value="$image"/>
  <RectangleLabels name="objects" toName="photo">
    <Label value="car"/><Label value="person"/>
  </RectangleLabels>
</View>""",
    [{"image": f"https://example.com/street-{i}.jpg", "w": 640, "h": 480} for i in range(2)],
    boxes_answer,
    {"image_size": {"width_field": "w", "height_field": "h"}},
)


TRANSCRIPTION = Scenario(
    "transcription (TextArea over Audio)",
    """<View>
  <Audio name="clip" value="$audio"/>
  <TextArea name="transcript" toName="clip" maxSubmissions="1" required="true"/>
</View>""",
    [{"audio": f"https://example.com/clip-{i}.wav"} for i in range(2)],
    lambda n, data: {"transcript": ["hello world", "hello world", "hello, world"][n]},
)


def attributes_answer(n: int, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "vehicles": [
            {
                "x": 100,
                "y": 50,
                "width": 200 + n,
                "height": 100,
                "label": "truck",
                "attributes": {"occluded": "no" if n else "yes", "plate": "AB-123"},
            }
        ],
        "damage": [
            {
                "points": [[10, 10], [90, 10], [50, 70]],
                "label": "dent",
                "attributes": {"severity": 2 + (n == 2)},
            }
        ],
    }


ATTRIBUTES = Scenario(
    "per-region attributes (image size in the payload)",
    """<View>
  <Image name="img" value="$image"/>
  <RectangleLabels name="vehicles" toName="img">
    <Label value="truck"/><Label value="van"/>
  </RectangleLabels>
  <PolygonLabels name="damage" toName="img"><Label value="dent"/></PolygonLabels>
  <Choices name="occluded" toName="img" perRegion="true" whenTagName="vehicles" required="true">
    <Choice value="yes"/><Choice value="no"/>
  </Choices>
  <TextArea name="plate" toName="img" perRegion="true" whenTagName="vehicles"/>
  <Rating name="severity" toName="img" perRegion="true" whenTagName="damage" maxRating="3"/>
</View>""",
    [
        {"image": f"https://example.com/lot-{i}.jpg", "original_width": 800, "original_height": 600}
        for i in range(2)
    ],
    attributes_answer,
)


def segments_answer(n: int, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "speaker": [
            {"start": 0.0, "end": 2.5 + 0.1 * n, "label": "host"},
            {"start": 2.75, "end": 6.0, "label": "guest"},
        ],
        "scenes": [{"start": 1.0, "end": 4.0 + n * 0.05, "label": "intro"}],
    }


SEGMENTS = Scenario(
    "time segments (Audio from a schema; Video through an Audio synced to it)",
    {
        "controls": [
            {
                "name": "speaker",
                "type": "segments",
                "field": "audio",
                "labels": ["host", "guest"],
                "duration_field": "seconds",
            },
            {
                "name": "scenes",
                "type": "segments",
                "field": "video",
                "media": "video",
                "labels": ["intro", "credits"],
            },
        ]
    },
    [
        {
            "audio": f"https://example.com/talk-{i}.mp3",
            "video": f"https://example.com/talk-{i}.mp4",
            "seconds": 30,
        }
        for i in range(2)
    ],
    segments_answer,
)


def preference_answer(n: int, data: dict[str, Any]) -> dict[str, Any]:
    ids = [c["id"] for c in data["candidates"]]
    return {
        "preference": "left" if n < 2 else "right",
        "ranking": ids if n != 1 else list(reversed(ids)),
        "similarity": 3 + (n == 0),
        "issue": [["Accuracy", "Hallucination"]] if n < 2 else [["Style"]],
    }


PAIRWISE = Scenario(
    "pairwise and ranking (LLM preference; Rating over two objects; Taxonomy)",
    """<View>
  <Text name="prompt" value="$prompt"/>
  <Text name="response_a" value="$a"/>
  <Text name="response_b" value="$b"/>
  <Header value="Which response is better?"/>
  <Pairwise name="preference" toName="response_a,response_b"/>
  <Rating name="similarity" toName="response_a,response_b" maxRating="5" required="true"/>
  <List name="responses" value="$candidates" title="Rank the responses"/>
  <Ranker name="ranking" toName="responses"/>
  <Taxonomy name="issue" toName="prompt" required="true">
    <Choice value="Accuracy"><Choice value="Hallucination"/><Choice value="Outdated"/></Choice>
    <Choice value="Style"/>
  </Taxonomy>
</View>""",
    [
        {
            "prompt": f"Question {i}?",
            "a": f"Answer A{i}",
            "b": f"Answer B{i}",
            "candidates": [
                {"id": "a", "title": "A", "body": f"Answer A{i}"},
                {"id": "b", "title": "B", "body": f"Answer B{i}"},
                {"id": "c", "title": "C", "body": f"Answer C{i}"},
            ],
        }
        for i in range(2)
    ],
    preference_answer,
)


def structured_answer(n: int, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "events": [
            {"start": 1, "end": 3 + (n == 2), "label": "Run", "attributes": {"cause": "sensor"}},
            {"start": 5, "end": 5, "label": "Spike"},
        ],
        "slots": [{"start": 0, "start_offset": 3, "end": 1, "end_offset": 5, "label": "Person"}]
        + (
            []
            if n == 2
            else [{"start": 1, "start_offset": 6, "end": 1, "end_offset": 9, "label": "Person"}]
        ),
        "entities": [
            {
                "start": "/p[1]/text()[1]",
                "start_offset": 0,
                "end": "/p[1]/text()[1]",
                "end_offset": 4,
                "label": "ORG",
            }
        ],
        "chat": [{"message": 1, "attributes": {"accuracy": 4 + (n == 1), "tone": ["Too formal"]}}],
        "overall": 3,
    }


STRUCTURED = Scenario(
    "time series, paragraphs, HTML and chat messages (issue 25's tags)",
    """<View>
  <TimeSeries name="ts" value="$series" valueType="json" timeColumn="time">
    <Channel column="value"/>
  </TimeSeries>
  <TimeSeriesLabels name="events" toName="ts">
    <Label value="Run"/><Label value="Spike"/>
  </TimeSeriesLabels>
  <Choices name="cause" toName="ts" perRegion="true" whenTagName="events" whenLabelValue="Run">
    <Choice value="sensor"/><Choice value="human"/>
  </Choices>
  <Paragraphs name="dialogue" value="$dialogue" layout="dialogue" textKey="text"
              nameKey="author"/>
  <ParagraphLabels name="slots" toName="dialogue"><Label value="Person"/></ParagraphLabels>
  <HyperText name="page" value="$html"/>
  <HyperTextLabels name="entities" toName="page"><Label value="ORG"/></HyperTextLabels>
  <Chat name="chat" value="$chat"/>
  <Rating name="overall" toName="chat" required="true"/>
  <Rating name="accuracy" toName="chat" perRegion="true" maxRating="5"/>
  <Choices name="tone" toName="chat" perRegion="true" choice="multiple">
    <Choice value="Too formal"/><Choice value="Too casual"/>
  </Choices>
</View>""",
    [
        {
            "series": {"time": [0, 1, 2, 3, 4, 5, 6], "value": [1, 3, 2, 8, 4, 9, 1]},
            "dialogue": [
                {"author": "Mia", "text": f"Hi Ann {i}"},
                {"author": "Vince", "text": "Hello Bob, how are you?"},
            ],
            "html": f"<p>ACME {i} Corp</p>",
            "chat": [
                {"role": "user", "content": f"Question {i}?"},
                {"role": "assistant", "content": f"Answer {i}."},
            ],
        }
        for i in range(2)
    ],
    structured_answer,
)

SCENARIOS = [CHOICES, SPANS, BOXES, TRANSCRIPTION, ATTRIBUTES, SEGMENTS, PAIRWISE, STRUCTURED]


# --- processes ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def process(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `command` in its own process group; stop that group (and only it) afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603
            command,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url} exited early; see {log}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"{url} did not come up within {seconds:.0f} s; see {log}")


# --- checks ---------------------------------------------------------------------------------------


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def close(a: Any, b: Any) -> bool:
    """JSON equality, numbers within 1e-9 relative (percent <-> pixel conversions)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@dataclass
class Outcome:
    name: str
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, what: str, ok: bool, detail: str = "") -> bool:
        self.checks.append((what, ok, detail))
        return ok

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.checks)


# What the client is credited with: activation moves each job's budget into escrow and answers 402
# when the client's balance is short, so the client is funded first, as a real one would be.
CLIENT_FUNDS_MICROS = 1_000_000_000


class Tessera:
    def __init__(self, base: str, admin_token: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=60)
        self.client, client_id = self.signup("client")
        self.annotators = [self.signup("annotator", n)[0] for n in range(3)]
        credited = self.http.post(
            f"/v1/admin/clients/{client_id}/credits",
            json={"amount_micros": CLIENT_FUNDS_MICROS, "reason": "interop round trip"},
            headers={"Authorization": f"Bearer {admin_token}"},
        )
        if credited.status_code != 201:
            raise SystemExit(f"funding the client failed: {credited.status_code} {credited.text}")

    def signup(self, role: str, n: int = 0) -> tuple[dict[str, str], int]:
        body = {
            "email": f"{role}{n}@example.com",
            "password": PASSWORD,
            "display_name": f"{role} {n}",
            "role": role,
        }
        response = self.http.post("/v1/auth/signup", json=body)
        response.raise_for_status()
        signed_up = response.json()
        headers = {"Authorization": f"Bearer {signed_up['token']['secret']}"}
        return headers, int(signed_up["user"]["id"])

    def create_job(self, scenario: Scenario, title: str) -> int:
        body = {
            "title": title,
            "label_schema": scenario.label_schema,
            "pricing": {"mode": "per_task", "rate_micros": 20_000},
            "overlap": {"min": 3},
            **scenario.extra,
        }
        response = self.http.post("/v1/jobs", json=body, headers=self.client)
        if response.status_code != 201:
            raise SystemExit(f"creating the job failed: {response.status_code} {response.text}")
        return int(response.json()["id"])

    def import_items(self, job_id: int, body: bytes, fmt: str, **params: str) -> httpx.Response:
        return self.http.post(
            f"/v1/jobs/{job_id}/items",
            content=body,
            params={"format": fmt, **params},
            headers={**self.client, "Content-Type": "application/octet-stream"},
        )

    def work(self, job_id: int, answer: Answer) -> int:
        self.http.post(f"/v1/jobs/{job_id}/activate", headers=self.client).raise_for_status()
        submitted = 0
        for n, headers in enumerate(self.annotators):
            while True:
                response = self.next(job_id, headers)
                assignments = response.json()["assignments"]
                if not assignments:
                    break
                for assignment in assignments:
                    answers = [answer(n, item["data"]) for item in assignment["items"]]
                    done = self.http.post(
                        f"/v1/assignments/{assignment['id']}/submit",
                        json={"answers": answers},
                        headers=headers,
                    )
                    if done.status_code != 200:
                        raise SystemExit(f"submit refused: {done.status_code} {done.text}")
                    submitted += 1
        return submitted

    def next(self, job_id: int, headers: dict[str, str]) -> httpx.Response:
        """Claim up to 10 tasks of the job. `next` reuses its list of active jobs for
        TESSERA_ROUTING_CACHE_SECONDS, so a job activated a moment ago may answer 404 for that
        long: ask again, as a client would."""
        deadline = time.monotonic() + 10
        while True:
            response = self.http.post(
                "/v1/assignments/next", json={"job_id": job_id, "count": 10}, headers=headers
            )
            if response.status_code != 404 or time.monotonic() > deadline:
                response.raise_for_status()
                return response
            time.sleep(0.5)

    def get(self, path: str, **params: Any) -> httpx.Response:
        response = self.http.get(path, params=params, headers=self.client)
        response.raise_for_status()
        return response


class LabelStudio:
    def __init__(self, base: str) -> None:
        self.http = httpx.Client(
            base_url=base, timeout=120, headers={"Authorization": f"Token {LS_TOKEN}"}
        )

    def create_project(self, title: str, config: str) -> httpx.Response:
        return self.http.post("/api/projects", json={"title": title, "label_config": config})

    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> httpx.Response:
        return self.http.post(f"/api/projects/{project}/import", json=tasks)

    def export_tasks(self, project: int) -> list[dict[str, Any]]:
        """A JSON export snapshot with full predictions (the quick export lists their ids)."""
        created = self.http.post(
            f"/api/projects/{project}/exports/",
            json={
                "title": "tessera interop",
                "serialization_options": {"predictions": {"only_id": False}},
                "annotation_filter_options": {"usual": True, "ground_truth": True},
            },
        )
        created.raise_for_status()
        export_id = created.json()["id"]
        for _ in range(120):
            status = self.http.get(f"/api/projects/{project}/exports/{export_id}").json()
            if status.get("status") == "completed":
                break
            if status.get("status") == "failed":
                raise SystemExit(f"Label Studio export failed: {status}")
            time.sleep(0.5)
        download = self.http.get(
            f"/api/projects/{project}/exports/{export_id}/download", params={"exportType": "JSON"}
        )
        download.raise_for_status()
        tasks: list[dict[str, Any]] = download.json()
        return tasks


def label_studio_validation(python: Path, config: str, tasks: list[dict[str, Any]]) -> list[str]:
    """Problems Label Studio's own validator finds (run in Label Studio's environment)."""
    script = Path(__file__).with_name("validate.py")
    done = subprocess.run(  # noqa: S603
        [str(python), str(script)],
        input=json.dumps({"config": config, "tasks": tasks}).encode(),
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        return [f"validator failed: {done.stderr.decode()[-2000:]}"]
    problems: list[str] = json.loads(done.stdout)
    return problems


def controls(
    outcome: Outcome,
    studio: LabelStudio,
    project_id: int,
    config: str,
    sent: list[dict[str, Any]],
    ls_python: Path,
) -> None:
    """The checks can fail: what issue 16 found is still refused or flagged here."""
    task = json.loads(json.dumps(sent[0]))
    task["annotations"] = [{**task["annotations"][0], "completed_by": "315b45e7e6c3263c"}]
    refused = studio.import_tasks(project_id, [task])
    outcome.check(
        "control: Label Studio refuses a pseudonym in completed_by",
        refused.status_code == 400 and "completed_by" in refused.text,
        f"{refused.status_code}",
    )
    wrong = json.loads(json.dumps(sent[0]))
    for entry in wrong["annotations"][0]["result"]:
        entry["to_name"] = "text"  # the payload field, not the object tag
    flagged = label_studio_validation(ls_python, config, [wrong])
    outcome.check(
        "control: Label Studio's validator flags a to_name naming the field",
        bool(flagged) and "'to_name' 'text' not found" in flagged[0],
        flagged[0] if flagged else "not flagged",
    )


def run_scenario(
    number: int, scenario: Scenario, tessera: Tessera, studio: LabelStudio, ls_python: Path
) -> Outcome:
    outcome = Outcome(scenario.name)
    # 1. Tessera: job, items, work.
    job_id = tessera.create_job(scenario, f"interop {number}")
    rows = "".join(json.dumps(row) + "\n" for row in scenario.rows).encode()
    imported = tessera.import_items(job_id, rows, "jsonl")
    if not outcome.check(
        "Tessera imports the items",
        imported.status_code == 201,
        f"{imported.json().get('created')} created"
        if imported.status_code == 201
        else imported.text,
    ):
        return outcome
    submitted = tessera.work(job_id, scenario.answer)
    outcome.check("annotators submitted", submitted > 0, f"{submitted} assignments")
    records = [
        json.loads(line)
        for line in tessera.get(f"/v1/jobs/{job_id}/export", include_gold="true").text.splitlines()
    ]
    config = tessera.get(f"/v1/jobs/{job_id}/label-studio-config").text
    sent: list[dict[str, Any]] = tessera.get(
        f"/v1/jobs/{job_id}/export", format="label-studio", include_gold="true"
    ).json()
    annotations = sum(len(t["annotations"]) for t in sent)
    predictions = sum(len(t["predictions"]) for t in sent)

    # 2. Tessera -> Label Studio.
    project = studio.create_project(f"interop {number}", config)
    if not outcome.check(
        "Label Studio accepts the job's config (a project is made from it)",
        project.status_code == 201,
        f"project {project.json().get('id')}" if project.status_code == 201 else project.text[:500],
    ):
        return outcome
    project_id = project.json()["id"]
    if number == 1:
        controls(outcome, studio, project_id, config, sent, ls_python)
    problems = label_studio_validation(ls_python, config, sent)
    outcome.check(
        "Label Studio's validator: every annotation and prediction clean",
        not problems,
        "; ".join(problems[:5]) or f"{annotations} annotations, {predictions} predictions",
    )
    response = studio.import_tasks(project_id, sent)
    body = (
        response.json()
        if response.headers.get("content-type", "").startswith("application/json")
        else {}
    )
    outcome.check(
        "Label Studio import: 201",
        response.status_code == 201,
        "" if response.status_code == 201 else response.text[:500],
    )
    counts = (body.get("task_count"), body.get("annotation_count"), body.get("prediction_count"))
    outcome.check(
        "Label Studio stored every task, annotation and prediction",
        counts == (len(sent), annotations, predictions),
        f"stored {counts}, sent {(len(sent), annotations, predictions)}",
    )
    exported = studio.export_tasks(project_id)
    by_item = {t["meta"]["tessera_item_id"]: t for t in exported}
    same = True
    for task in sent:
        back = by_item.get(task["id"])
        if back is None:
            same = False
            continue
        stored = sorted(back["annotations"], key=lambda a: a["import_id"] or 0)
        same &= [canonical(a["result"]) for a in task["annotations"]] == [
            canonical(a["result"]) for a in stored
        ]
        same &= [a["ground_truth"] for a in task["annotations"]] == [
            a["ground_truth"] for a in stored
        ]
        same &= sorted(canonical([p["result"], p["score"]]) for p in task["predictions"]) == sorted(
            canonical([p["result"], p["score"]]) for p in back["predictions"]
        )
        same &= back["meta"] == task["meta"]
    outcome.check(
        "Label Studio export: regions, ground truth, predictions and meta as sent",
        same and len(exported) == len(sent),
        f"{len(exported)} tasks back",
    )

    # 3. Label Studio -> Tessera.
    schema = parse_label_schema(config)
    answers_back = True
    originals = {r["item_id"]: r for r in records}
    for task in exported:
        record = originals[task["meta"]["tessera_item_id"]]
        stored = sorted(task["annotations"], key=lambda a: a["import_id"] or 0)
        expected = ([record["gold_answer"]] if record.get("gold") else []) + [
            a["answer"] for a in record["answers"]
        ]
        read = [answer_from_label_studio(schema, a["result"], task["data"]) for a in stored]
        answers_back &= len(read) == len(expected) and all(
            close(a, b) for a, b in zip(read, expected, strict=True)
        )
    outcome.check("every Label Studio annotation reads back as the answer sent", answers_back)
    again = tessera.create_job(
        Scenario(scenario.name, config, [], scenario.answer, scenario.extra), f"back {number}"
    )
    report = tessera.import_items(again, json.dumps(exported).encode(), "json", annotations="gold")
    data = report.json()
    gold_items = sum(1 for r in records if r.get("gold"))
    outcome.check(
        "Tessera imports Label Studio's export (annotations=gold)",
        report.status_code == 201
        and data["created"] == len(exported)
        and data["annotations"] == annotations
        and data["gold"] == gold_items,
        f"{report.status_code}: created {data.get('created')}, annotations "
        f"{data.get('annotations')}, gold {data.get('gold')}"
        + (f", errors {data.get('errors')}" if report.status_code != 201 else ""),
    )
    round_trip = tessera.get(
        f"/v1/jobs/{again}/export", format="label-studio", include_gold="true"
    ).json()
    prelabels_ok = True
    for task in round_trip:
        original = next(t for t in sent if t["data"] == task["data"])
        consensus = [
            p for p in original["predictions"] if p["model_version"] == "tessera-consensus"
        ]
        prelabel = [p for p in task["predictions"] if p["model_version"] == "tessera-prelabel"]
        prelabels_ok &= len(prelabel) == len(consensus) and all(
            close(a["result"], b["result"]) and a["score"] == b["score"]
            for a, b in zip(prelabel, consensus, strict=True)
        )
        gold_sent = [a["result"] for a in original["annotations"] if a["ground_truth"]]
        gold_back = [a["result"] for a in task["annotations"] if a["ground_truth"]]
        prelabels_ok &= close(gold_sent, gold_back)
    outcome.check(
        "back in Tessera: consensus -> pre-label and gold answer kept",
        prelabels_ok and len(round_trip) == len(sent),
    )
    return outcome


def tessera_admin(tessera_bin: str, env: dict[str, str]) -> str:
    """Migrate the run's fresh database and create an administrator (who funds the client);
    returns the administrator's token, which `tessera admin create` prints last."""
    full_env = {**os.environ, **env}
    for command in (
        [tessera_bin, "migrate"],
        [tessera_bin, "admin", "create", "--email", "interop-admin@example.com"],
    ):
        done = subprocess.run(  # noqa: S603
            command, env=full_env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command[1:])} failed: {done.stdout}{done.stderr}")
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label-studio", required=True, type=Path, help="the label-studio script")
    parser.add_argument("--workdir", required=True, type=Path)
    args = parser.parse_args()
    workdir: Path = args.workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    ls_python = args.label_studio.resolve().with_name("python")
    version = subprocess.run(  # noqa: S603
        [str(ls_python), "-c", "import label_studio; print(label_studio.__version__)"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout.strip()
    ls_port, tessera_port = free_port(), free_port()
    ls_env = {
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        # Label Studio then validates imported predictions against the config, as it will.
        "fflag_feat_utc_210_prediction_validation_15082025": "true",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
        # Offline: no error reporting, no version check, no analytics (sentry-sdk 3 also refuses
        # the options Label Studio 1.23.2 passes it; the constraints file keeps it on 2.x).
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
        "LATEST_VERSION_CHECK": "false",
        "COLLECT_ANALYTICS": "false",
    }
    ls_command = [
        str(args.label_studio.resolve()),
        "start",
        "--no-browser",
        "--host",
        "127.0.0.1",
        "--port",
        str(ls_port),
        "--data-dir",
        str(workdir / "label-studio"),
        "--username",
        "interop@example.com",
        "--password",
        PASSWORD,
        "--user-token",
        LS_TOKEN,
        "--enable-legacy-api-token",
    ]
    tessera_env = {
        "TESSERA_DATABASE_URL": f"sqlite:///{workdir / 'tessera.db'}",
        "TESSERA_DEMO": "false",
        "TESSERA_SECRET_KEY": "interop-secret-key-interop-secret-key",
        "TESSERA_LOG_LEVEL": "WARNING",
        "TESSERA_UPLOAD_DIR": str(workdir / "uploads"),
    }
    tessera_bin = str(Path(sys.executable).with_name("tessera"))
    admin_token = tessera_admin(tessera_bin, tessera_env)
    tessera_command = [
        tessera_bin,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(tessera_port),
    ]
    print(f"Label Studio {version} on 127.0.0.1:{ls_port}; Tessera on 127.0.0.1:{tessera_port}")
    started = time.monotonic()
    with (
        process(ls_command, ls_env, workdir / "label-studio.log") as ls_proc,
        process(tessera_command, tessera_env, workdir / "tessera.log") as tessera_proc,
    ):
        wait_until_up(
            f"http://127.0.0.1:{tessera_port}/healthz", tessera_proc, workdir / "tessera.log", 60
        )
        wait_until_up(
            f"http://127.0.0.1:{ls_port}/health", ls_proc, workdir / "label-studio.log", 600
        )
        print(f"both up after {time.monotonic() - started:.0f} s\n")
        tessera = Tessera(f"http://127.0.0.1:{tessera_port}", admin_token)
        studio = LabelStudio(f"http://127.0.0.1:{ls_port}")
        outcomes = []
        for number, scenario in enumerate(SCENARIOS, start=1):
            outcome = run_scenario(number, scenario, tessera, studio, ls_python)
            outcomes.append(outcome)
            print(f"{'PASS' if outcome.ok else 'FAIL'}  {outcome.name}")
            for what, ok, detail in outcome.checks:
                print(f"   {'ok ' if ok else 'BAD'} {what}" + (f"  [{detail}]" if detail else ""))
    passed = sum(o.ok for o in outcomes)
    print(f"\n{passed}/{len(outcomes)} scenarios passed against Label Studio {version}")
    raise SystemExit(0 if passed == len(outcomes) else 1)


if __name__ == "__main__":
    main()
