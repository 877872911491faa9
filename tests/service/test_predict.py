"""POST /predict: photo-like digits, MNIST rows and batches of them answered; every bad request a 4xx with one line,
and the next one served."""

import io
import json
import zlib

import numpy as np
import pytest
from PIL import Image

from tests.conftest import require, residual_list, shared_file

require("fastapi", "serve")
from fastapi.testclient import TestClient

from lit_mnist.apps.checkpoints import load_model
from lit_mnist.data.reader import parse_digits
from lit_mnist.model.module import LitMNIST
from lit_mnist.service import Classifier, create_app
from lit_mnist.service.body import MAX_BODY_BYTES


def photo_like(row: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    """An MNIST digit as a user's picture: 40-200 px, anywhere on a larger canvas, half of them dark on light,
    a third in colour, a fifth as JPEG."""
    size = int(rng.integers(40, 201))
    digit = Image.fromarray(row.reshape(28, 28)).resize((size, size), Image.Resampling.BILINEAR)
    canvas = Image.new("L", (size + int(rng.integers(10, 120)), size + int(rng.integers(10, 120))), 0)
    canvas.paste(digit, (int(rng.integers(0, canvas.width - size + 1)), int(rng.integers(0, canvas.height - size + 1))))
    if rng.random() < 0.5:
        canvas = Image.eval(canvas, lambda v: 255 - v)
    if rng.random() < 1 / 3:
        canvas = canvas.convert("RGB")
    out, kind = io.BytesIO(), "jpeg" if rng.random() < 0.2 else "png"
    canvas.save(out, format=kind.upper(), quality=90) if kind == "jpeg" else canvas.save(out, format="PNG")
    return out.getvalue(), f"image/{kind}"


@pytest.fixture(scope="module")
def client(trained_checkpoint):
    return TestClient(create_app(Classifier(load_model(trained_checkpoint))))


@pytest.fixture(scope="module")
def mnist_test():
    return parse_digits(shared_file("mnist_test.csv.gz"))


@pytest.mark.slow
def test_photo_like_digits_sent_as_bodies_are_classified(client, mnist_test):
    rng = np.random.default_rng(0)
    right = 0
    for row, label in zip(mnist_test.pixels[:300], mnist_test.labels[:300]):
        body, kind = photo_like(row, rng)
        reply = client.post("/predict", content=body, headers={"Content-Type": kind})
        assert reply.status_code == 200, reply.text
        answer = reply.json()
        assert len(answer["probabilities"]) == 10 and abs(sum(answer["probabilities"]) - 1) < 1e-4
        assert answer["name"] == str(answer["label"])
        assert len(answer["pixels"]) == 784 and answer["label"] == int(np.argmax(answer["probabilities"]))
        right += answer["label"] == label
    # docs/performance.md's figure for this 15-epoch model: 92%
    assert right / 300 >= 0.85


@pytest.mark.slow
def test_an_mnist_row_as_json_gives_what_the_model_gives(client, mnist_test, trained_checkpoint):
    import torch

    row = mnist_test.pixels[0]
    answer = client.post("/predict", json={"pixels": row.tolist()}).json()
    expected = load_model(trained_checkpoint)(torch.from_numpy(row[None].astype(np.float32)))[0]
    np.testing.assert_allclose(answer["probabilities"], expected.detach().numpy(), atol=1e-6)
    assert answer["pixels"] == row.tolist()


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), 255).save(out, format="PNG")
    return out.getvalue()


def _bomb() -> bytes:
    """A small PNG that claims 10,000 x 10,000 pixels (decoded, 100 MB of grey levels): under PIL's own limit,
    over the service's."""
    width = height = 10_000
    raw = zlib.compress(b"".join(b"\0" + bytes(width) for _ in range(200)))  # the rows it carries are few

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def _form(*parts: tuple[str, str | None, bytes]) -> tuple[bytes, str]:
    """A multipart form body of (field name, file name or None for a plain field, content) and its Content-Type."""
    body = b"".join(b"--b0undary\r\nContent-Disposition: form-data; name=\"%s\"%s\r\n\r\n%s\r\n"
                    % (name.encode(), b'; filename="%s"' % file.encode() if file else b"", content)
                    for name, file, content in parts)
    return body + b"--b0undary--\r\n", "multipart/form-data; boundary=b0undary"


BAD = [
    ("not an image", b"hello, not a picture", "image/png", 415),
    ("an empty body", b"", "image/png", 400),
    ("a body over the limit", b"\0" * (MAX_BODY_BYTES + 1), "image/png", 413),
    ("a decompression bomb", _bomb(), "image/png", 413),
    ("a blank image", _png(50, 50), "image/png", 422),
    ("JSON of the wrong shape", json.dumps({"pixels": [0] * 10}).encode(), "application/json", 422),
    ("JSON that is not an object", b"[1, 2, 3]", "application/json", 422),
    ("values outside 0-255", json.dumps({"pixels": [300] * 784}).encode(), "application/json", 422),
    ("negative values", json.dumps({"pixels": [-1] + [0] * 783}).encode(), "application/json", 422),
    ("broken JSON", b'{"pixels": [1, 2', "application/json", 400),
    ("another content type", b"pixels", "text/plain", 415),
    ("curl's default type, not an image", b"hello", "application/x-www-form-urlencoded", 415),
    ("JSON nested too deep to parse", b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
    ("an integer of 5,000 digits", b'{"pixels": [' + b"9" * 5000 + b"]}", "application/json", 400),
    ("numbers too large for a float", json.dumps({"pixels": [10**400] * 784}).encode(), "application/json", 422),
    ("grey levels as strings", json.dumps({"pixels": ["1"] * 784}).encode(), "application/json", 422),
    ("grey levels as booleans", json.dumps({"pixels": [True] * 784}).encode(), "application/json", 422),
    ("a batch with a short row", json.dumps({"pixels": [[0] * 784, [0] * 783]}).encode(), "application/json", 422),
    ("an empty batch", json.dumps({"pixels": []}).encode(), "application/json", 422),
    ("no pixels", b"{}", "application/json", 422),
    ("NaN", json.dumps({"pixels": [float("nan")] * 784}).encode(), "application/json", 422),
    ("28 rows of 27", json.dumps({"pixels": [[0] * 27] * 28}).encode(), "application/json", 422),
    ("a form with no file", *_form(("name", None, b"digit")), 422),
    ("a form with two files", *_form(("a", "a.png", _png(9, 9)), ("b", "b.png", _png(9, 9))), 400),
    ("a form that does not parse", b"garbage", "multipart/form-data; boundary=b0undary", 400),
]


@pytest.mark.slow
@pytest.mark.parametrize(("what", "body", "kind", "status"), BAD, ids=[b[0] for b in BAD])
def test_a_bad_request_gets_a_4xx_with_one_line_and_the_next_is_served(client, mnist_test, what, body, kind, status):
    reply = client.post("/predict", content=body, headers={"Content-Type": kind})
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert isinstance(error, str) and error and "\n" not in error and set(reply.json()) == {"error"}
    follow = client.post("/predict", json={"pixels": mnist_test.pixels[1].tolist()})
    assert follow.status_code == 200 and follow.json()["label"] == mnist_test.labels[1]


@pytest.mark.slow
def test_a_digit_gets_the_same_answer_in_every_form_the_service_takes(client, mnist_test):
    row = mnist_test.pixels[2]
    png = io.BytesIO()
    Image.fromarray(row.reshape(28, 28)).resize((84, 84)).save(png, format="PNG")
    png = png.getvalue()
    as_json = [client.post("/predict", json={"pixels": row.tolist()}),
               client.post("/predict", json={"pixels": row.reshape(28, 28).tolist()}),  # 28 rows of 28
               client.post("/predict", content=json.dumps({"pixels": row.tolist()}),  # curl -d's default type
                           headers={"Content-Type": "application/x-www-form-urlencoded"})]
    body, kind = _form(("note", None, b"a digit"), ("image", "digit.png", png))
    as_image = [client.post("/predict", content=png, headers={"Content-Type": "image/png"}),
                client.post("/predict", content=body, headers={"Content-Type": kind}),  # curl -F image=@digit.png
                client.post("/predict", content=png, headers={"Content-Type": "application/octet-stream"})]
    for replies in (as_json, as_image):
        assert [r.status_code for r in replies] == [200] * 3, [r.text for r in replies]
        assert all(r.json() == replies[0].json() for r in replies)
    assert as_json[0].json()["pixels"] == row.tolist() and as_image[0].json()["label"] == mnist_test.labels[2]


@pytest.mark.slow
def test_a_batch_is_answered_as_its_rows_one_by_one(client, mnist_test):
    rows, labels = mnist_test.pixels[:64], mnist_test.labels[:64]
    one_by_one = [client.post("/predict", json={"pixels": row.tolist()}).json() for row in rows]
    as_rows = client.post("/predict", json={"pixels": rows.tolist()})
    as_images = client.post("/predict", json={"pixels": rows.reshape(-1, 28, 28).tolist()})
    assert as_rows.status_code == as_images.status_code == 200 and as_rows.json() == as_images.json()
    batch = as_rows.json()
    assert batch["labels"] == [answer["label"] for answer in one_by_one]
    assert batch["names"] == [answer["name"] for answer in one_by_one]
    np.testing.assert_allclose(batch["probabilities"], [answer["probabilities"] for answer in one_by_one], atol=2e-6)
    assert np.mean(np.asarray(batch["labels"]) == labels) > 0.85


def test_a_model_that_branches_and_joins_is_served_as_it_computes():
    import torch

    torch.manual_seed(0)
    model = LitMNIST(layers=residual_list(28, filters=4, side=2))
    rows = np.random.default_rng(0).integers(0, 256, (3, 784))
    reply = TestClient(create_app(Classifier(model))).post("/predict", json={"pixels": rows.tolist()})
    assert reply.status_code == 200, reply.text
    with torch.inference_mode():
        expected = model.eval()(torch.from_numpy(rows.astype(np.float32))).numpy()
    np.testing.assert_allclose(reply.json()["probabilities"], expected, atol=1e-6)


def test_a_colour_model_answers_a_row_an_image_of_rgb_pixels_a_batch_and_a_picture():
    import torch

    torch.manual_seed(0)
    model = LitMNIST(layers=[{"conv2d": [2, 3]}, "flatten"], image_shape=(6, 5, 3))
    client = TestClient(create_app(Classifier(model)))
    images = np.random.default_rng(0).integers(0, 256, (3, 6, 5, 3))
    with torch.inference_mode():
        expected = model(torch.from_numpy(images.reshape(3, -1).astype(np.float32))).numpy()
    row = client.post("/predict", json={"pixels": images[0].ravel().tolist()})
    image = client.post("/predict", json={"pixels": images[0].tolist()})  # 6 rows of 5 pixels of 3 values
    batch = client.post("/predict", json={"pixels": images.tolist()})
    assert [r.status_code for r in (row, image, batch)] == [200] * 3, [r.text for r in (row, image, batch)]
    assert row.json() == image.json() and row.json()["pixels"] == images[0].ravel().tolist()
    np.testing.assert_allclose(batch.json()["probabilities"], expected, atol=1e-6)
    picture = io.BytesIO()
    Image.fromarray(images[1].astype(np.uint8)).resize((50, 60), Image.Resampling.NEAREST).save(picture, format="PNG")
    answer = client.post("/predict", content=picture.getvalue(), headers={"Content-Type": "image/png"})
    assert answer.status_code == 200 and len(answer.json()["pixels"]) == 90  # resized to 6x5, in colour
    wrong = client.post("/predict", json={"pixels": images[0, ..., 0].tolist()})  # a grey image
    assert wrong.status_code == 422 and "6 rows of 5 pixels of 3 values" in wrong.json()["error"]
    grey = io.BytesIO()
    Image.new("L", (10, 12), 77).save(grey, format="PNG")  # a grey picture: its level in each channel
    answer = client.post("/predict", content=grey.getvalue(), headers={"Content-Type": "image/png"})
    assert answer.status_code == 200 and answer.json()["pixels"] == [77] * 90


def test_the_largest_batch_the_openapi_document_promises_fits_the_body_limit():
    client = TestClient(create_app(Classifier(LitMNIST())))
    described = client.get("/openapi.json").json()["paths"]["/predict"]["post"]["description"]
    promised = int(described.split(f"{MAX_BODY_BYTES} bytes: ")[1].split(" rows")[0].replace(",", ""))
    body = json.dumps({"pixels": [[255] * 784] * promised}, separators=(",", ":")).encode()
    reply = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert reply.status_code == 200 and len(reply.json()["labels"]) == promised
    one_more = json.dumps({"pixels": [[255] * 784] * (promised + 1)}, separators=(",", ":")).encode()
    assert len(one_more) > MAX_BODY_BYTES  # the promise is the most that fits, not a guess below it
    assert client.post("/predict", content=one_more, headers={"Content-Type": "application/json"}).status_code == 413


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/predict", 405), ("DELETE", "/", 405),
                                                        ("GET", "/nothing", 404)])
def test_a_route_or_method_the_service_lacks_gets_the_same_one_line_json(client, method, path, status):
    reply = client.request(method, path)
    assert reply.status_code == status and reply.json() == {"error": f"{method} {path}: {reply.reason_phrase}"}


def test_a_fault_of_the_service_is_a_500_with_one_line_of_json():

    class Broken(LitMNIST):  # stands in for any fault inside a handler
        def forward(self, batch):
            raise RuntimeError("a fault")

    reply = TestClient(create_app(Classifier(Broken())), raise_server_exceptions=False).post(
        "/predict", json={"pixels": [0] * 784})
    assert reply.status_code == 500 and reply.json() == {"error": "internal error (RuntimeError)"}


@pytest.mark.slow
def test_health_and_the_page_are_served_with_no_outside_assets(client):
    assert client.get("/health").json()["status"] == "ok"
    assert client.head("/health").status_code == client.head("/").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing fetched from elsewhere
