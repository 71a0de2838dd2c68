"""Opening the market over the API: skills and qualification tests (admin), clients with funds,
a webhook endpoint and jobs with gold (clients), annotators who sign up and qualify."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from app.simulate.api import Api
from app.simulate.population import Annotator
from app.simulate.tasks import TASK_TYPES, Answer, TaskType

GOLD_SHARE = 0.1
#: Items per task by task type: quick text judgments come ten to a task, drawing regions five.
ITEMS_PER_TASK = {"choices": 10, "multi": 10, "spans": 5, "boxes": 5}
OVERLAP = 3
LEASE_SECONDS = 120
RATE_MICROS_PER_ITEM = 30_000  # 12.00/h at 9 s an item
CLIENT_CREDIT_MICROS = 10_000_000_000
PASSWORD = "simulated-password-1"  # noqa: S105 (simulated accounts on a throwaway database)
QUESTIONS_PER_TEST = 8
WEBHOOK_EVENTS = [
    "task.completed",
    "job.progress",
    "job.completed",
    "job.paused",
    "import.finished",
    "export.ready",
]


@dataclass
class Client:
    index: int
    token: str = ""
    user_id: int = 0
    endpoint_id: int | None = None


@dataclass
class Job:
    index: int
    client: Client
    task: TaskType
    items: int
    gold: int
    job_id: int = 0
    total_tasks: int = 0
    activated_at: float = 0.0
    completed_at: float | None = None
    complete_tasks: int = 0
    progress_at: float = 0.0  # when complete_tasks last moved

    @property
    def items_per_task(self) -> int:
        return ITEMS_PER_TASK[self.task.name]


@dataclass
class World:
    """What the simulation knows and the service must not: the truth."""

    truth: dict[str, Answer] = field(default_factory=dict)  # item ref -> true answer
    gold_refs: set[str] = field(default_factory=set)
    task_of_ref: dict[str, TaskType] = field(default_factory=dict)
    skill_tests: dict[str, int] = field(default_factory=dict)  # task type -> test id


def create_tests(api: Api, admin: str, rng: random.Random, world: World, types: list[str]) -> None:
    """A skill and a qualification test per task type, with answer keys."""
    for name in types:
        task = TASK_TYPES[name]
        slug = f"sim-{name}"
        api.post("/v1/admin/skills", admin, {"slug": slug, "name": f"Simulated {name}"})
        questions = []
        for n in range(QUESTIONS_PER_TEST):
            payload, truth = task.item(rng, f"q-{name}-{n}")
            world.truth[payload["ref"]] = truth
            world.task_of_ref[payload["ref"]] = task
            questions.append({"payload": payload, "answer_key": truth})
        test = api.post(
            "/v1/qualification-tests",
            admin,
            {
                "title": f"Qualification: {name}",
                "label_schema": task.schema,
                "skill": slug,
                "questions_per_attempt": 4,
                "passing_score": 0.7,
                "time_limit_seconds": 3600,
                "retake_cooldown_seconds": 0,
                "questions": questions,
            },
        )
        world.skill_tests[name] = test["id"]


def sign_up(api: Api, role: str, email: str, name: str) -> tuple[str, int]:
    session = api.post(
        "/v1/auth/signup",
        None,
        {"email": email, "password": PASSWORD, "display_name": name, "role": role},
    )
    return session["token"]["secret"], session["user"]["id"]


def open_client(
    api: Api, admin: str, client: Client, seed: int, hook_url: str | None
) -> str | None:
    """Sign the client up and fund them; register their webhook endpoint (its secret returned)."""
    client.token, client.user_id = sign_up(
        api, "client", f"sim{seed}-client-{client.index}@example.com", f"Client {client.index}"
    )
    api.post(
        f"/v1/admin/clients/{client.user_id}/credits",
        admin,
        {"amount_micros": CLIENT_CREDIT_MICROS, "reason": "simulation funds"},
    )
    if hook_url is None:
        return None
    endpoint = api.post(
        "/v1/webhooks/endpoints",
        client.token,
        {"url": hook_url, "event_types": WEBHOOK_EVENTS, "description": "simulation receiver"},
    )
    client.endpoint_id = endpoint["id"]
    return str(endpoint["secret"])


def post_job(api: Api, rng: random.Random, world: World, job: Job) -> None:
    """Create the job, set its rules, import its items (10 % gold), add escrow for fair-pay
    top-ups, and activate it."""
    token = job.client.token
    created = api.post(
        "/v1/jobs",
        token,
        {
            "title": f"Simulated {job.task.name} #{job.index}",
            "instructions": "Label each item as the schema asks.",
            "label_schema": job.task.schema,
            "pricing": {"rate_micros": RATE_MICROS_PER_ITEM * job.items_per_task},
            "overlap": {"min": OVERLAP},
            "items_per_task": job.items_per_task,
            "gold_ratio": GOLD_SHARE,
            "lease_seconds": LEASE_SECONDS,
            "required_skills": [{"skill": f"sim-{job.task.name}", "level": 1}],
        },
    )
    job.job_id = created["id"]
    # A small job's client judges annotators sooner than the platform default (10 gold answers),
    # and removes below half right on the control items.
    api.call(
        "PUT",
        f"/v1/quality/jobs/{job.job_id}/rules",
        token,
        json={"removal_gold_accuracy": 0.5, "removal_min_gold_answers": 6},
    )
    rows = []
    for n in range(job.items):
        ref = f"j{job.index}-{n}"
        payload, truth = job.task.item(rng, ref)
        world.truth[ref] = truth
        world.task_of_ref[ref] = job.task
        row: dict[str, Any] = {"external_id": ref, **payload}
        if n < job.gold:
            row["gold_answer"] = truth
            world.gold_refs.add(ref)
        rows.append(row)
    rng.shuffle(rows)
    body = "\n".join(json.dumps(r) for r in rows).encode()
    api.call(
        "POST",
        f"/v1/jobs/{job.job_id}/items",
        token,
        files={"file": ("items.jsonl", body, "application/x-ndjson")},
        params={"format": "jsonl"},
    )
    activated = api.post(f"/v1/jobs/{job.job_id}/activate", token)
    del activated
    regular = job.items - job.gold
    api.post(
        f"/v1/jobs/{job.job_id}/deposits",
        token,
        {"amount_micros": max(1, regular) * OVERLAP * RATE_MICROS_PER_ITEM},
    )


def qualify(api: Api, rng: random.Random, world: World, person: Annotator) -> None:
    """Take each qualification test once (a second time after a failure)."""
    for name, test_id in world.skill_tests.items():
        for _ in range(2):
            attempt = api.post(
                f"/v1/annotator/qualification-tests/{test_id}/attempts", person.token
            )
            answers = []
            for question in attempt["questions"]:
                payload = question["payload"]
                truth = world.truth[payload["ref"]]
                task = world.task_of_ref[payload["ref"]]
                answers.append(
                    {
                        "question_id": question["question_id"],
                        "answer": person.qualification_answer(rng, task, payload, truth),
                    }
                )
            result = api.post(
                f"/v1/annotator/attempts/{attempt['id']}/submit",
                person.token,
                {"answers": answers},
            )
            if result["passed"]:
                person.qualified.add(name)
                break
