"""The API describes itself: openapi.json documents every route's bodies and statuses, and Schemathesis (all its
checks, from the repository root, where schemathesis.toml lists the refusals a schema-valid request may get)
finds the running service true to it."""

import subprocess
import sys

import pytest

from tests.conftest import REPO, require, run_env, served, served_app

require("fastapi", "serve")
require("schemathesis", "dev")
from fastapi.testclient import TestClient

from lit_mnist.model.module import LitMNIST
from lit_mnist.service import Classifier, create_app

EXAMPLES = "25"  # per operation and phase: the run takes ~1 min on 2 cores


def schemathesis(url: str, *options: str) -> subprocess.CompletedProcess:
    # no example database: a run's cases come from its own options alone, not from what earlier runs stored
    return subprocess.run([sys.executable, "-m", "schemathesis.cli", "--no-color", "run", f"{url}openapi.json",
                           "--checks", "all", "--generation-database", "none", *options], cwd=REPO, env=run_env(),
                          capture_output=True, text=True, check=False, timeout=900)


@pytest.fixture(scope="module")
def document():
    return TestClient(create_app(Classifier(LitMNIST(image_shape=(8, 8), num_classes=3)))).get("/openapi.json").json()


def test_predict_documents_its_bodies_sized_to_the_model_and_every_refusal(document):
    operation = document["paths"]["/predict"]["post"]
    assert set(operation["requestBody"]["content"]) == {"application/json", "image/png", "image/jpeg",
                                                        "application/octet-stream", "multipart/form-data"}
    forms = document["components"]["schemas"]["PredictRequest"]["properties"]["pixels"]["oneOf"]
    assert [form.get("minItems") for form in forms] == [64, 8, 1, 1]
    assert set(operation["responses"]) == {"200", "400", "413", "415", "422"}
    answers = operation["responses"]["200"]["content"]["application/json"]["schema"]["anyOf"]
    assert [a["$ref"].rsplit("/", 1)[1] for a in answers] == ["Prediction", "Predictions"]


def test_the_protocols_routes_document_their_models_and_refusals(document):
    infer = document["paths"]["/v2/models/{name}/infer"]["post"]
    assert infer["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/InferenceRequest"}
    assert set(infer["responses"]["200"]["content"]) == {"application/json", "application/octet-stream"}
    assert set(infer["responses"]) == {"200", "400", "404", "413", "415", "422"}
    name = next(p for p in infer["parameters"] if p["name"] == "name")
    assert name["schema"]["enum"] == ["lit-mnist"]
    for path in ("/v2/models/{name}", "/v2/models/{name}/ready"):
        assert set(document["paths"][path]["get"]["responses"]) == {"200", "404", "422"}
    for schema in ("InferenceRequest", "RequestInput", "InferenceResponse", "ModelMetadata", "ErrorBody"):
        assert schema in document["components"]["schemas"]
    assert "HTTPValidationError" not in document["components"]["schemas"]  # every error is {"error": ...}


@pytest.mark.slow
def test_schemathesis_finds_the_running_service_true_to_its_document(trained_checkpoint):
    with served(trained_checkpoint) as url:
        done = schemathesis(url, "--max-examples", EXAMPLES)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "Tested: 9" in done.stdout  # every operation


def test_schemathesis_fails_a_service_that_sends_a_status_its_document_does_not_name():
    """The companion: the same service with the 415 of /predict left out of its document."""
    app = create_app(Classifier(LitMNIST()))
    operation = app.openapi()["paths"]["/predict"]["post"]
    del operation["responses"]["415"]
    # bytes of no telling type alone: Schemathesis fills them at random, which the 415 answers as no image (of all
    # five media types, 10 random cases did not always include such bytes, whatever the seed; image/png cases are
    # real PNGs, answered 422 as blank)
    content = operation["requestBody"]["content"]
    operation["requestBody"]["content"] = {"application/octet-stream": content["application/octet-stream"]}
    with served_app(app) as url:
        done = schemathesis(url, "--max-examples", "10", "--include-path", "/predict")
    assert done.returncode == 1 and "Undocumented status code" in done.stdout, done.stdout[-4000:]
