"""The Open Inference Protocol v2: the real client (tritonclient.http), with its defaults (binary tensors) and in
JSON mode, against the running service; every request the protocol cannot answer a 4xx with its one-line error."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, csv_text, require, run_env, served, served_app, shared_file

require("fastapi", "serve")
http = require("tritonclient.http", "dev")
import torch
from fastapi.testclient import TestClient

from lit_mnist.data.reader import parse_digits
from lit_mnist.model.module import LitMNIST
from lit_mnist.service import Classifier, create_app, oip

HEADER = "Inference-Header-Content-Length"


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return LitMNIST()


@pytest.fixture(scope="module")
def rows():
    return np.random.default_rng(0).integers(0, 256, (64, 784)).astype(np.float32)


@pytest.fixture(scope="module")
def client(model):
    return TestClient(create_app(Classifier(model)))


def expected(model, rows):
    with torch.inference_mode():
        return model(torch.from_numpy(rows)).numpy()


def triton_infer(client, rows, binary_in=True, binary_out=None, datatype="FP32", name="lit-mnist", **options):
    tensor = http.InferInput("pixels", list(rows.shape), datatype)
    tensor.set_data_from_numpy(rows, binary_data=binary_in)
    outputs = None if binary_out is None else [http.InferRequestedOutput("probabilities", binary_data=binary_out)]
    return client.infer(name, [tensor], outputs=outputs, **options)


@pytest.fixture(scope="module")
def triton(model):
    with served_app(create_app(Classifier(model))) as url:
        yield http.InferenceServerClient(url.removeprefix("http://").rstrip("/"))


def test_the_client_finds_the_server_live_ready_and_the_model_described(triton):
    assert triton.is_server_live() and triton.is_server_ready() and triton.is_model_ready("lit-mnist")
    assert not triton.is_model_ready("another")
    assert "binary_tensor_data" in triton.get_server_metadata()["extensions"]
    metadata = triton.get_model_metadata("lit-mnist")
    assert metadata["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 784]}]
    assert metadata["outputs"] == [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]}]


@pytest.mark.parametrize("binary_in, binary_out", [(True, None), (False, False), (True, False), (False, True)],
                         ids=["defaults", "json", "binary-in", "binary-out"])
def test_a_batch_gets_the_models_probabilities_whatever_the_encoding(triton, model, rows, binary_in, binary_out):
    result = triton_infer(triton, rows, binary_in, binary_out, request_id="batch-1")
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected(model, rows), rtol=1e-6, atol=1e-7)
    assert result.get_response()["id"] == "batch-1" and result.get_response()["model_name"] == "lit-mnist"


@pytest.mark.parametrize("options", [{"datatype": "UINT8"}, {"request_compression_algorithm": "gzip"},
                                     {"request_compression_algorithm": "deflate"}], ids=["uint8", "gzip", "deflate"])
def test_uint8_pixels_and_compressed_requests_answer_the_same(triton, model, rows, options):
    data = rows.astype(np.uint8) if options.get("datatype") == "UINT8" else rows
    result = triton_infer(triton, data, **options)
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected(model, rows), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape, datatype, data, name, status", [
    ([64, 783], "FP32", lambda rows: rows[:, :783], "lit-mnist", "400"),
    ([64, 28, 28, 2], "FP32", lambda rows: np.repeat(rows, 2, axis=1).reshape(64, 28, 28, 2), "lit-mnist", "400"),
    ([64, 784], "INT64", lambda rows: rows.astype(np.int64), "lit-mnist", "400"),
    ([64, 784], "FP64", lambda rows: rows.astype(np.float64), "lit-mnist", "400"),
    ([64, 784], "FP32", lambda rows: rows, "another-model", "404"),
    ([64, 784], "FP32", lambda rows: rows * 2, "lit-mnist", "400"),  # grey levels over 255
], ids=["shape", "channels", "int64", "fp64", "model-name", "range"])
def test_a_wrong_shape_datatype_or_model_name_is_a_4xx(triton, rows, shape, datatype, data, name, status):
    tensor = http.InferInput("pixels", shape, datatype)
    tensor.set_data_from_numpy(np.ascontiguousarray(data(rows)))
    with pytest.raises(http.InferenceServerException) as refused:
        triton.infer(name, [tensor])
    assert refused.value.status() == status and "\n" not in refused.value.message()


def test_the_model_name_is_the_one_the_server_was_given(model):
    client = TestClient(create_app(Classifier(model), "digits"))
    assert client.get("/v2/models/digits").json()["name"] == "digits"
    assert client.get("/v2/models/digits/ready").status_code == 200
    assert client.get("/v2/models/lit-mnist").status_code == 404


def _infer(client, request: dict, tail: bytes = b"", header: int | None = None, name: str = "lit-mnist"):
    body = json.dumps(request).encode()
    headers = {} if header is None else {HEADER: str(header)}
    return client.post(f"/v2/models/{name}/infer", content=body + tail, headers=headers)


def _input(shape, data=None, datatype="FP32", **parameters):
    tensor = {"name": "pixels", "shape": shape, "datatype": datatype}
    if data is not None:
        tensor["data"] = data
    if parameters:
        tensor["parameters"] = parameters
    return tensor


def test_data_flat_or_nested_as_its_shape_reads_the_same(client, model, rows):
    flat = _infer(client, {"inputs": [_input([2, 784], rows[:2].ravel().tolist())]})
    nested = _infer(client, {"inputs": [_input([2, 28, 28], rows[:2].reshape(2, 28, 28).tolist())]})
    as_rows = _infer(client, {"inputs": [_input([2, 784], rows[:2].tolist())]})
    keras = _infer(client, {"inputs": [_input([2, 28, 28, 1], rows[:2].reshape(2, 28, 28, 1).tolist())]})
    torch_ = _infer(client, {"inputs": [_input([2, 1, 28, 28], rows[:2].ravel().tolist())]})
    answers = (flat, nested, as_rows, keras, torch_)
    assert [answer.status_code for answer in answers] == [200] * 5
    assert all(answer.json()["outputs"] == flat.json()["outputs"] for answer in answers)
    output = flat.json()["outputs"][0]
    assert output["shape"] == [2, 10] and output["datatype"] == "FP32"
    np.testing.assert_allclose(np.reshape(output["data"], (2, 10)), expected(model, rows[:2]), rtol=1e-6)
    empty = _infer(client, {"inputs": [_input([0, 784], [])]})
    assert empty.status_code == 200 and empty.json()["outputs"][0]["shape"] == [0, 10]


def test_a_colour_model_takes_its_images_channels_last_or_first_in_keras_s_order():
    torch.manual_seed(0)
    model = LitMNIST(layers=[{"conv2d": [2, 3]}, "flatten"], image_shape=(5, 4, 3))
    client = TestClient(create_app(Classifier(model)))
    images = np.random.default_rng(0).integers(0, 256, (2, 5, 4, 3)).astype(np.float32)  # Keras's layout
    answers = [_infer(client, {"inputs": [_input(list(shape), data.ravel().tolist())]}) for shape, data in (
        ((2, 60), images), ((2, 5, 4, 3), images), ((2, 3, 5, 4), images.transpose(0, 3, 1, 2)))]
    assert [answer.status_code for answer in answers] == [200] * 3, [answer.text for answer in answers]
    output = np.reshape(answers[0].json()["outputs"][0]["data"], (2, 10))
    np.testing.assert_allclose(output, expected(model, images.reshape(2, 60)), rtol=1e-6)
    assert all(answer.json()["outputs"] == answers[0].json()["outputs"] for answer in answers)
    grey = _infer(client, {"inputs": [_input([2, 5, 4], images[..., 0].ravel().tolist())]})
    assert grey.status_code == 400 and "[-1, 5, 4, 3]" in grey.json()["error"]


def test_companion_channels_first_read_as_channels_last_give_another_answer():
    """The same numbers, planes read as pixels: the reordering above is what makes the answers agree."""
    torch.manual_seed(0)
    model = LitMNIST(layers=[{"conv2d": [2, 3]}, "flatten"], image_shape=(5, 4, 3))
    images = np.random.default_rng(0).integers(0, 256, (2, 5, 4, 3)).astype(np.float32)
    planes = images.transpose(0, 3, 1, 2).reshape(2, 60)
    assert not np.allclose(expected(model, planes), expected(model, images.reshape(2, 60)), rtol=1e-3)


def test_an_output_asks_for_bytes_or_json_over_the_requests_default(client, rows):
    raw = rows[:3].tobytes()
    request = {"inputs": [_input([3, 784], binary_data_size=len(raw))], "parameters": {"binary_data_output": True},
               "outputs": [{"name": "probabilities", "parameters": {"binary_data": False}}]}
    as_json = _infer(client, request, raw, len(json.dumps(request)))
    assert as_json.status_code == 200 and HEADER not in as_json.headers and len(as_json.json()["outputs"][0]["data"]) == 30
    del request["outputs"]
    as_bytes = _infer(client, request, raw, len(json.dumps(request)))
    length = int(as_bytes.headers[HEADER])
    head = json.loads(as_bytes.content[:length])
    assert as_bytes.headers["content-type"] == "application/octet-stream"
    assert head["outputs"][0]["parameters"] == {"binary_data_size": 120} and len(as_bytes.content) == length + 120
    np.testing.assert_array_equal(np.frombuffer(as_bytes.content[length:], "<f4").reshape(3, 10),
                                  np.reshape(as_json.json()["outputs"][0]["data"], (3, 10)).astype(np.float32))


RAW = np.zeros((2, 784), np.float32).tobytes()
REFUSED = [
    ("shape and data disagree", {"inputs": [_input([2, 784], [0] * 784)]}, b"", None, 400),
    ("nested data off its shape", {"inputs": [_input([2, 784], [[0] * 392] * 4)]}, b"", None, 400),
    ("ragged data", {"inputs": [_input([2, 784], [[0] * 784, [0] * 783])]}, b"", None, 400),
    ("no data", {"inputs": [_input([2, 784])]}, b"", None, 400),
    ("a shape without the batch", {"inputs": [_input([784], [0] * 784)]}, b"", None, 400),
    ("UINT8 that is not whole", {"inputs": [_input([1, 784], [0.5] * 784, "UINT8")]}, b"", None, 400),
    ("two inputs", {"inputs": [_input([1, 784], [0] * 784)] * 2}, b"", None, 400),
    ("an output it does not have", {"inputs": [_input([1, 784], [0] * 784)], "outputs": [{"name": "logits"}]},
     b"", None, 400),
    ("bytes without binary_data_size", {"inputs": [_input([1, 784], [0] * 784)]}, b"\0" * 8, "json", 400),
    ("binary_data_size off the bytes sent", {"inputs": [_input([2, 784], binary_data_size=len(RAW))]}, RAW[:-4],
     "json", 400),
    ("binary_data_size off the shape", {"inputs": [_input([3, 784], binary_data_size=len(RAW))]}, RAW, "json", 400),
    ("both data and bytes", {"inputs": [_input([2, 784], [0] * 1568, binary_data_size=len(RAW))]}, RAW, "json", 400),
    ("a header length past the body", {"inputs": [_input([1, 784], [0] * 784)]}, b"", 10**6, 400),
    ("a negative header length", {"inputs": [_input([1, 784], [0] * 784)]}, b"", -1, 422),
    ("NaN in the bytes", {"inputs": [_input([2, 784], binary_data_size=len(RAW))]},
     np.full((2, 784), np.nan, np.float32).tobytes(), "json", 400),
]


@pytest.mark.parametrize("request_, tail, header, status", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_a_request_the_protocol_cannot_answer_is_one_line_and_the_next_is_served(client, request_, tail, header,
                                                                                  status):
    reply = _infer(client, request_, tail, len(json.dumps(request_)) if header == "json" else header)
    assert reply.status_code == status, reply.text
    assert set(reply.json()) == {"error"} and "\n" not in reply.json()["error"]
    assert _infer(client, {"inputs": [_input([1, 784], [0] * 784)]}).status_code == 200


def test_an_unknown_model_is_a_404_on_every_model_route(client):
    for reply in (client.get("/v2/models/nope"), client.get("/v2/models/nope/ready"),
                  _infer(client, {"inputs": [_input([1, 784], [0] * 784)]}, name="nope")):
        assert reply.status_code == 404 and reply.json() == {"error": "unknown model 'nope': this server has 'lit-mnist'"}


def test_binary_tensors_read_with_the_wrong_byte_order_are_caught(model, rows, monkeypatch):
    """The companion of the client tests above: a server that reads FP32 bytes big-endian is refused or answers
    other probabilities, and the comparison with the model fails."""
    monkeypatch.setitem(oip.DTYPES, "FP32", np.dtype(">f4"))
    with served_app(create_app(Classifier(model))) as url:
        client = http.InferenceServerClient(url.removeprefix("http://").rstrip("/"))
        try:
            answer = triton_infer(client, rows).as_numpy("probabilities")
        except http.InferenceServerException as refused:
            assert refused.status() == "400"
        else:
            assert not np.allclose(answer, expected(model, rows), rtol=1e-6, atol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("binary", [True, False], ids=["defaults", "json"])
def test_64_unseen_digits_are_classified_as_predict_py_classifies_them(trained_checkpoint, tmp_path, binary):
    digits = parse_digits(shared_file("mnist_test.csv.gz"))
    unseen = digits.pixels[-64:]  # MNIST's test set: no run trains on it
    (tmp_path / "unseen.csv").write_text(csv_text(unseen, None))
    done = subprocess.run([sys.executable, "scripts/predict.py", "--checkpoint", str(trained_checkpoint), "--input",
                           str(tmp_path / "unseen.csv"), "--output", str(tmp_path / "predicted.csv")], cwd=REPO,
                          env=run_env(), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    by_predict_py = np.loadtxt(tmp_path / "predicted.csv", delimiter=",", skiprows=1, dtype=int)[:, 1]
    with served(trained_checkpoint) as url:
        client = http.InferenceServerClient(url.removeprefix("http://").rstrip("/"))
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("lit-mnist")
        assert client.get_model_metadata("lit-mnist")["inputs"][0]["shape"] == [-1, 784]
        outputs = None if binary else [http.InferRequestedOutput("probabilities", binary_data=False)]
        tensor = http.InferInput("pixels", [64, 784], "FP32")
        tensor.set_data_from_numpy(unseen.astype(np.float32), binary_data=binary)
        labels = client.infer("lit-mnist", [tensor], outputs=outputs).as_numpy("probabilities").argmax(1)
    np.testing.assert_array_equal(labels, by_predict_py)
    assert np.mean(labels == digits.labels[-64:]) > 0.85
