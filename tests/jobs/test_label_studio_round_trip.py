"""Issue 16 through the API: exports Label Studio accepts, its exports imported as datasets, the
config downloaded, the image size of a job made from a Label Studio config."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.db import Database
from app.core.security import pseudonym
from app.label_schema import parse_label_schema
from tests.jobs.factories import active_job, create_job, jsonl, upload
from tests.jobs.test_export import answer_all
from tests.support import Account, assert_problem

REVIEW_CONFIG = """<View>
  <Header value="How does the reviewer feel?"/>
  <Text name="review" value="$text"/>
  <Choices name="sentiment" toName="review" required="true">
    <Choice value="positive"/><Choice value="negative"/>
  </Choices>
</View>"""

BOXES_CONFIG = """<View>
  <Image name="photo" value="$image"/>
  <RectangleLabels name="objects" toName="photo"><Label value="car"/></RectangleLabels>
  <Choices name="occluded" toName="photo" perRegion="true"><Choice value="yes"/></Choices>
</View>"""


def ls_export(client: TestClient, owner: Account, job_id: int, **params: str) -> Any:
    response = client.get(
        f"/v1/jobs/{job_id}/export",
        params={"format": "label-studio", **params},
        headers=owner.headers,
    )
    assert response.status_code == 200, response.text
    return response.json()


def import_json(client: TestClient, owner: Account, job_id: int, rows: Any, **params: str) -> Any:
    return client.post(
        f"/v1/jobs/{job_id}/items",
        params=params,
        content=json.dumps(rows).encode(),
        headers={**owner.headers, "Content-Type": "application/json"},
    )


def review_job(client: TestClient, owner: Account) -> int:
    """This file's job (kept: its Label Studio config and a gold row with its own answer key)."""
    rows = [{"external_id": f"r{n}", "text": f"review {n}"} for n in range(3)]
    rows.append({"text": "gold", "gold_answer": {"sentiment": "negative"}})
    return active_job(
        client,
        owner,
        rows,
        label_schema=REVIEW_CONFIG,
        gold_ratio=0.2,
        consensus_method="majority_vote",
    )


def test_the_export_is_one_label_studio_accepts(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    annotators = [make_account("annotator") for _ in range(3)]
    job_id = review_job(client, client_account)
    labels = ["positive", "positive", "negative"]
    answer_all(db, job_id, annotators, lambda n, _: {"sentiment": labels[n]})
    tasks = ls_export(client, client_account, job_id, include_gold="true")
    regular = [t for t in tasks if t["meta"]["external_id"] != None]  # noqa: E711
    assert len(tasks) == 4
    task = regular[0]
    secret = db.settings.resolved_secret_key()
    assert task["meta"] == {
        "external_id": "r0",
        "tessera_item_id": task["id"],
        "annotators": [pseudonym(secret, f"client:{client_account.id}", a.id) for a in annotators],
    }
    for number, annotation in enumerate(task["annotations"], start=1):
        assert "completed_by" not in annotation  # Label Studio refuses ids it does not know
        assert annotation["ground_truth"] is False
        assert annotation["id"] == number
        [result] = annotation["result"]
        assert (result["from_name"], result["to_name"]) == ("sentiment", "review")
    [prediction] = task["predictions"]
    assert prediction["model_version"] == "tessera-consensus"
    assert prediction["score"] == pytest.approx(2 / 3)
    gold = next(t for t in tasks if t["data"] == {"text": "gold"})
    truth = [a for a in gold["annotations"] if a["ground_truth"]]
    assert len(truth) == 1
    assert truth[0]["result"][0]["value"] == {"choices": ["negative"]}
    assert gold["meta"]["annotators"][0] == "gold"


def test_the_config_downloads_as_sent_or_as_generated(
    client: TestClient, client_account: Account, make_account: Callable[..., Account]
) -> None:
    from_config = create_job(client, client_account, REVIEW_CONFIG)
    response = client.get(
        f"/v1/jobs/{from_config}/label-studio-config", headers=client_account.headers
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert response.text == REVIEW_CONFIG
    native = create_job(client, client_account)
    generated = client.get(
        f"/v1/jobs/{native}/label-studio-config", headers=client_account.headers
    ).text
    job = client.get(f"/v1/jobs/{native}", headers=client_account.headers).json()
    assert parse_label_schema(generated).model_dump() == job["label_schema"]
    other = make_account("client")
    assert_problem(
        client.get(f"/v1/jobs/{from_config}/label-studio-config", headers=other.headers), 404
    )
    annotator = make_account("annotator")
    assert_problem(
        client.get(f"/v1/jobs/{from_config}/label-studio-config", headers=annotator.headers), 403
    )


def test_a_schema_change_to_a_document_drops_the_kept_config(
    client: TestClient, client_account: Account
) -> None:
    job_id = create_job(client, client_account, REVIEW_CONFIG)
    schema = {"controls": [{"name": "c", "type": "choices", "field": "text", "labels": ["a", "b"]}]}
    client.patch(
        f"/v1/jobs/{job_id}", json={"label_schema": schema}, headers=client_account.headers
    )
    config = client.get(
        f"/v1/jobs/{job_id}/label-studio-config", headers=client_account.headers
    ).text
    assert '<Choices name="c" toName="text"' in config


TASK: dict[str, Any] = {
    "id": 41,
    "data": {"text": "a fine review"},
    "meta": {},
    "annotations": [
        {
            "id": 1,
            "completed_by": 7,
            "ground_truth": False,
            "was_cancelled": False,
            "result": [
                {
                    "id": "x",
                    "from_name": "sentiment",
                    "to_name": "review",
                    "type": "choices",
                    "value": {"choices": ["positive"]},
                }
            ],
        },
        {"id": 2, "was_cancelled": True, "result": []},
    ],
    "predictions": [
        {
            "model_version": "m1",
            "score": 0.4,
            "result": [
                {
                    "from_name": "sentiment",
                    "to_name": "review",
                    "type": "choices",
                    "value": {"choices": ["negative"]},
                }
            ],
        },
        {
            "model_version": "m2",
            "score": 0.9,
            "result": [
                {
                    "from_name": "sentiment",
                    "to_name": "review",
                    "type": "choices",
                    "value": {"choices": ["positive"]},
                }
            ],
        },
    ],
    "total_annotations": 1,
    "inner_id": 1,
    "comment_authors": [],
}


def test_a_label_studio_export_is_a_dataset(
    client: TestClient, client_account: Account, db: Database
) -> None:
    job_id = create_job(client, client_account, REVIEW_CONFIG)
    quick = {**TASK, "id": 42, "data": {"text": "another"}, "predictions": [5, 6]}
    response = import_json(client, client_account, job_id, [TASK, quick])
    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["created"], report["annotations"], report["gold"]) == (2, 2, 0)
    tasks = ls_export(client, client_account, job_id)
    first = next(t for t in tasks if t["meta"]["external_id"] == "41")
    assert first["data"] == {"text": "a fine review"}
    [prelabel] = first["predictions"]
    assert prelabel["model_version"] == "tessera-prelabel"
    assert prelabel["score"] == 0.9
    assert prelabel["result"][0]["value"] == {"choices": ["positive"]}
    assert next(t for t in tasks if t["meta"]["external_id"] == "42")["predictions"] == []
    # The same file again changes nothing: the task ids are the external ids.
    again = import_json(client, client_account, job_id, [TASK, quick]).json()
    assert (again["created"], again["unchanged"]) == (0, 2)


def test_on_request_the_ground_truth_or_only_annotation_is_the_gold_answer(
    client: TestClient, client_account: Account
) -> None:
    job_id = create_job(client, client_account, REVIEW_CONFIG)
    several = {
        **TASK,
        "id": 2,
        "annotations": [TASK["annotations"][0], {**TASK["annotations"][0], "id": 3}],
    }
    truth = {
        **several,
        "id": 3,
        "annotations": [
            several["annotations"][0],
            {
                **several["annotations"][0],
                "ground_truth": True,
                "result": TASK["predictions"][0]["result"],
            },
        ],
    }
    response = import_json(
        client, client_account, job_id, [TASK, several, truth], annotations="gold"
    )
    assert response.status_code == 201, response.text
    report = response.json()
    assert (report["gold"], report["gold_from_annotations"], report["annotations"]) == (2, 2, 5)
    gold = {
        t["meta"]["external_id"]: t
        for t in ls_export(client, client_account, job_id, include_gold="true")
    }
    assert set(gold) == {"41", "2", "3"}
    assert gold["41"]["annotations"][0]["result"][0]["value"] == {"choices": ["positive"]}
    assert gold["3"]["annotations"][0]["result"][0]["value"] == {"choices": ["negative"]}
    assert gold["2"]["annotations"] == []  # two annotations, none marked: not gold


def test_a_result_that_does_not_fit_rejects_its_row_with_a_pointer(
    client: TestClient, client_account: Account
) -> None:
    job_id = create_job(client, client_account, REVIEW_CONFIG)
    bad = json.loads(json.dumps(TASK))
    bad["predictions"][1]["result"][0]["value"]["choices"] = ["sideways"]
    bad["predictions"][0]["score"] = 2
    body = assert_problem(import_json(client, client_account, job_id, [bad]), 422)
    [error] = body["errors"]
    assert error["pointer"] == "#/predictions/0/score"
    bad["predictions"][0]["score"] = 0.1
    body = assert_problem(import_json(client, client_account, job_id, [bad]), 422)
    [error] = body["errors"]
    assert error["pointer"] == "#/predictions/1/result"
    assert "unknown label 'sideways'" in error["detail"]
    unknown = {**TASK, "predictions": [{"result": [{"from_name": "x", "value": {}}]}]}
    body = assert_problem(import_json(client, client_account, job_id, [unknown]), 422)
    assert body["errors"][0]["pointer"] == "#/predictions/0/result/0"
    plain = {"data": {"text": "x"}, "colour": "red"}
    body = assert_problem(import_json(client, client_account, job_id, [plain]), 422)
    assert "unknown top-level keys beside 'data': colour" in body["errors"][0]["detail"]


BOX_RESULT = {
    "id": "b1",
    "from_name": "objects",
    "to_name": "photo",
    "type": "rectanglelabels",
    "original_width": 400,
    "original_height": 200,
    "image_rotation": 0,
    "value": {
        "x": 25,
        "y": 50,
        "width": 10,
        "height": 20,
        "rotation": 0,
        "rectanglelabels": ["car"],
    },
}


def test_a_job_from_a_label_studio_config_takes_the_image_size_from_its_results(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    job_id = create_job(client, client_account, BOXES_CONFIG)
    attribute = {**BOX_RESULT, "from_name": "occluded", "type": "choices"}
    attribute["value"] = {**BOX_RESULT["value"], "choices": ["yes"]}
    del attribute["value"]["rectanglelabels"]
    task = {
        "id": 1,
        "data": {"image": "https://example.com/1.jpg"},
        "predictions": [{"score": 0.5, "result": [BOX_RESULT, attribute]}],
    }
    response = import_json(client, client_account, job_id, [task])
    assert response.status_code == 201, response.text
    client.post(f"/v1/jobs/{job_id}/activate", headers=client_account.headers)
    box = {
        "x": 100,
        "y": 100,
        "width": 40,
        "height": 40,
        "label": "car",
        "attributes": {"occluded": "yes"},
    }
    answer_all(db, job_id, [make_account("annotator")], lambda n, _: {"objects": [box]})
    [exported] = ls_export(client, client_account, job_id)
    assert exported["data"] == {
        "image": "https://example.com/1.jpg",
        "original_width": 400,
        "original_height": 200,
    }
    prelabel = exported["predictions"][-1]
    assert prelabel["result"][0]["value"] == BOX_RESULT["value"]
    region, occluded = exported["annotations"][0]["result"]
    assert region["value"]["x"] == 25.0  # 100 px of 400
    assert (occluded["id"], occluded["value"]["choices"]) == (region["id"], ["yes"])


def test_shapes_without_a_known_image_size_refuse_the_label_studio_export(
    client: TestClient, client_account: Account
) -> None:
    job_id = create_job(client, client_account, BOXES_CONFIG)
    upload(client, client_account, job_id, jsonl([{"image": "a.jpg"}, {"image": "b.jpg"}]))
    body = assert_problem(
        client.get(f"/v1/jobs/{job_id}/export?format=label-studio", headers=client_account.headers),
        409,
        "export-format-unavailable",
    )
    assert "2 item(s)" in body["detail"]


def test_the_image_size_fields_may_be_named_at_creation(
    client: TestClient, client_account: Account
) -> None:
    job_id = create_job(
        client,
        client_account,
        BOXES_CONFIG,
        image_size={"width_field": "w", "height_field": "h"},
    )
    job = client.get(f"/v1/jobs/{job_id}", headers=client_account.headers).json()
    [control] = job["label_schema"]["controls"]
    assert (control["width_field"], control["height_field"]) == ("w", "h")
    missing = upload(client, client_account, job_id, jsonl([{"image": "a.jpg"}]))
    assert_problem(missing, 422)
    response = client.post(
        "/v1/jobs",
        json={
            "title": "t",
            "label_schema": REVIEW_CONFIG,
            "pricing": {"mode": "per_task", "rate_micros": 1},
            "image_size": {"width_field": "w", "height_field": "h"},
        },
        headers=client_account.headers,
    )
    body = assert_problem(response, 422, "validation-failed")
    assert body["errors"][0]["pointer"] == "#/image_size"


def test_tessera_reads_back_its_own_label_studio_export(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    annotators = [make_account("annotator") for _ in range(3)]
    source = review_job(client, client_account)
    answer_all(db, source, annotators, lambda n, _: {"sentiment": "positive"})
    tasks = ls_export(client, client_account, source, include_gold="true")
    target = create_job(client, client_account, REVIEW_CONFIG)
    report = import_json(client, client_account, target, tasks, annotations="gold").json()
    assert (report["created"], report["gold"]) == (4, 1)
    assert report["annotations"] == sum(len(t["annotations"]) for t in tasks)
    back = {
        t["data"]["text"]: t for t in ls_export(client, client_account, target, include_gold="true")
    }
    original = {t["data"]["text"]: t for t in tasks}
    assert back["review 0"]["meta"]["external_id"] == "r0"
    assert (
        back["review 0"]["predictions"][0]["result"]
        == original["review 0"]["predictions"][0]["result"]
    )
    assert back["gold"]["annotations"][0]["result"] == original["gold"]["annotations"][0]["result"]


def test_coco_keeps_box_attributes_and_labels_from_the_items(
    client: TestClient,
    client_account: Account,
    make_account: Callable[..., Account],
    db: Database,
) -> None:
    schema = {
        "controls": [
            {
                "name": "objects",
                "type": "boxes",
                "field": "image",
                "labels": ["car"],
                "labels_field": "kinds",
                "attributes": [{"name": "occluded", "type": "choices", "labels": ["yes", "no"]}],
            }
        ]
    }
    row = {
        "image": "a.jpg",
        "kinds": [{"value": "bus"}],
        "original_width": 50,
        "original_height": 40,
    }
    job_id = active_job(client, client_account, [row], label_schema=schema)
    box = {
        "x": 1,
        "y": 2,
        "width": 3,
        "height": 4,
        "label": "bus",
        "attributes": {"occluded": "no"},
    }
    answer_all(db, job_id, [make_account("annotator")], lambda n, _: {"objects": [box]})
    coco = client.get(
        f"/v1/jobs/{job_id}/export?format=coco", headers=client_account.headers
    ).json()
    assert coco["categories"] == [{"id": 1, "name": "car"}, {"id": 2, "name": "bus"}]
    assert coco["images"][0]["width"] == 50
    [annotation] = coco["annotations"]
    assert (annotation["category_id"], annotation["attributes"]) == (2, {"occluded": "no"})


def test_items_must_carry_the_options_and_candidates_their_controls_read(
    client: TestClient, client_account: Account
) -> None:
    schema = {
        "controls": [
            {"name": "pick", "type": "choices", "field": "t", "labels_field": "options"},
            {"name": "rank", "type": "ranking", "field": "candidates"},
        ]
    }
    job_id = create_job(client, client_account, schema)
    good = {"t": "x", "options": ["a"], "candidates": [{"id": "1"}, {"id": "2"}]}
    rows = [
        good,
        {**good, "options": "a"},
        {**good, "candidates": [{"id": "1"}, {"id": "1"}]},
    ]
    body = assert_problem(upload(client, client_account, job_id, jsonl(rows)), 422)
    assert [e["pointer"] for e in body["errors"]] == ["#/options", "#/candidates"]
