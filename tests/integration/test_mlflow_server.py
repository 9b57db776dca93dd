"""The registry against a real MLflow tracking server (what `mlflow ui` / `mlflow server` run),
started by the test on 127.0.0.1: runs and models go through its REST API, the model files
through its proxied artifact store (``mlflow-artifacts:/``), and the champion loads back."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from mktpipe.models.registry import Registry

pytestmark = pytest.mark.integration


@pytest.fixture
def mlflow_server(tmp_path):
    pytest.importorskip("mlflow", reason="mlflow is not installed: run `make setup`")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (tmp_path / "mlflow-server.log").open("wb")
    mlflow_cli = os.path.join(os.path.dirname(sys.executable), "mlflow")
    server = subprocess.Popen(
        [mlflow_cli, "server", "--backend-store-uri", f"sqlite:///{tmp_path}/server.db",
         "--artifacts-destination", str(tmp_path / "server-artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not start: "
                                   + (tmp_path / "mlflow-server.log").read_text()[-2000:])
            time.sleep(0.5)
        yield url, tmp_path
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_registry_on_a_tracking_server(mlflow_server, spark, monkeypatch):
    from tests.unit.test_registry import predict_y, tiny_model

    url, tmp = mlflow_server
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    registry = Registry(str(tmp / "models"), mlflow_tracking_uri=url)
    first = registry.register("churn", tiny_model(2, 0.80), lineage={"snapshot_date": "2026-10-01"})
    second = registry.register("churn", tiny_model(3, 0.70), tolerance=0.01)
    assert first.promoted and not second.promoted
    assert first.path.startswith("mlflow-artifacts:/")  # the server's proxied store
    assert not (tmp / "models").exists() or not any((tmp / "models").iterdir())
    assert any((tmp / "server-artifacts").rglob("metadata.json"))  # files went to the server

    # what the UI's REST API answers
    query = f"{url}/api/2.0/mlflow/registered-models/alias?name=churn&alias=champion"
    with urllib.request.urlopen(query, timeout=10) as answer:
        assert json.load(answer)["model_version"]["version"] == "1"
    assert registry.metrics("churn", 2)["ensemble"]["average_precision"] == 0.70
    assert registry.lineage("churn", 1)["snapshot_date"] == "2026-10-01"
    assert predict_y(spark, registry.load_latest("churn")) == [2.0, 5.0]
