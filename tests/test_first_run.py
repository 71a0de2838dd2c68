"""`make run` on a bare machine: `tessera serve` on a new SQLite file migrates it, creates an
administrator and the demo content, prints working tokens, and serves the API and its docs."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support import REPO_ROOT

pytestmark = pytest.mark.commits  # the service runs in a process of its own


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_first_run_prints_working_tokens_and_a_demo_job(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if httpx.get(base + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        text = log.read_text()
        admin = re.search(r"Admin token:\s+(tsr_\S+)", text)
        client = re.search(r"Demo client:\s+(tsr_\S+)", text)
        annotator = re.search(r"Demo annotator:\s+(tsr_\S+)", text)
        assert admin, text
        assert client, text
        assert annotator, text
        assert f"{base}/docs" in text

        assert httpx.get(base + "/healthz").json() == {"status": "ok"}
        assert "swagger" in httpx.get(base + "/docs").text.lower()
        me = httpx.get(base + "/v1/me", headers={"Authorization": f"Bearer {admin[1]}"})
        assert me.json()["role"] == "admin"

        as_client = {"Authorization": f"Bearer {client[1]}"}
        job = httpx.get(base + "/v1/jobs", headers=as_client).json()["items"][0]
        progress = httpx.get(f"{base}/v1/jobs/{job['id']}/progress", headers=as_client).json()
        assert progress["status"] == "active"
        assert progress["items"]["gold"] > 0
        assert progress["tasks"]["open"] > 0

        as_annotator = {"Authorization": f"Bearer {annotator[1]}"}
        claimed = httpx.post(base + "/v1/assignments/next", json={}, headers=as_annotator)
        [assignment] = claimed.json()["assignments"]
        submitted = httpx.post(
            f"{base}/v1/assignments/{assignment['id']}/submit",
            # One answer per item shown (a gold item may be among them: chosen at claim).
            json={"answers": [{"sentiment": "positive"} for _ in assignment["items"]]},
            headers=as_annotator,
        )
        assert submitted.status_code == 200, submitted.text
        assert (tmp_path / "tessera.db").exists()
    finally:
        server.terminate()
        server.wait(60)  # a loaded machine takes a while to stop the workers
