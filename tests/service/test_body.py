"""Request bodies: within the limit, compressed or not (gzip and deflate decoded, within the same limit)."""

import gzip
import json
import zlib

import pytest

from tests.conftest import require

require("fastapi", "serve")
from fastapi.testclient import TestClient

from lit_mnist.model.module import LitMNIST
from lit_mnist.service import Classifier, create_app
from lit_mnist.service.body import MAX_BODY_BYTES

ROW = json.dumps({"pixels": [0] * 784}).encode()


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(Classifier(LitMNIST())))


@pytest.mark.parametrize("encoding, body", [("gzip", gzip.compress(ROW, mtime=0)), ("deflate", zlib.compress(ROW)),
                                            ("identity", ROW)])
def test_a_compressed_body_is_read_as_the_body_it_holds(client, encoding, body):
    plain = client.post("/predict", content=ROW, headers={"Content-Type": "application/json"})
    reply = client.post("/predict", content=body, headers={"Content-Type": "application/json",
                                                           "Content-Encoding": encoding})
    assert reply.status_code == 200 and reply.json() == plain.json()


@pytest.mark.parametrize("encoding, body, status", [
    ("gzip", gzip.compress(ROW, mtime=0)[:-9], 400),  # cut short
    ("gzip", b"not gzip at all", 400),
    ("br", ROW, 415),
    ("gzip", gzip.compress(b" " * (MAX_BODY_BYTES + 1), mtime=0), 413),  # 2 KB that inflate past the limit
])
def test_a_body_that_does_not_decode_within_the_limit_is_one_line(client, encoding, body, status):
    reply = client.post("/predict", content=body, headers={"Content-Type": "application/json",
                                                           "Content-Encoding": encoding})
    assert reply.status_code == status and set(reply.json()) == {"error"} and "\n" not in reply.json()["error"]
