"""A bounded load test of scripts/serve.py on loopback: python scripts/loadtest.py --checkpoint CKPT

Starts the service on a free 127.0.0.1 port (or uses the one at ``--url``, on loopback), sends ``--requests``
requests of MNIST test digits from ``--concurrency`` clients, checks every answer, stops the service, and prints
throughput (requests and rows per second) and latency percentiles as JSON. ``--body`` says what is sent:
``png`` a photo-like PNG of one digit to /predict, ``json`` ``--batch`` rows as JSON to /predict, ``v2`` an
Open Inference Protocol request of ``--batch`` FP32 rows as binary tensor data (tritonclient's default).
Exits 1 if any request failed or went unanswered.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)  # scripts/ must not shadow the packages

import numpy as np
from PIL import Image

from lit_mnist.apps.entry import ArgumentParser, run
from lit_mnist.errors import DataError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


Work = tuple[str, bytes, dict, list[int]]  # path, body, headers, the labels of its rows


def requests(n: int, batch: int, body: str, model_name: str) -> list[Work]:
    """``n`` different requests (the test digits taken in turn), each of ``batch`` rows."""
    from lit_mnist.data import mnist

    digits = mnist.test_digits("the load test sends")
    out = []
    for k in range(n):
        index = [(k * batch + i) % len(digits.labels) for i in range(batch)]
        rows, labels = digits.pixels[index], [int(v) for v in digits.labels[index]]
        if body == "png":
            picture = Image.fromarray(255 - rows[0].reshape(28, 28)).resize((112, 112), Image.Resampling.BILINEAR)
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG")
            out.append(("/predict", buffer.getvalue(), {"Content-Type": "image/png"}, labels))
        elif body == "json":
            pixels = rows.tolist() if batch > 1 else rows[0].tolist()
            out.append(("/predict", json.dumps({"pixels": pixels}).encode(), {"Content-Type": "application/json"},
                        labels))
        else:
            raw = rows.astype("<f4").tobytes()
            head = json.dumps({"inputs": [{"name": "pixels", "shape": list(rows.shape), "datatype": "FP32",
                                           "parameters": {"binary_data_size": len(raw)}}],
                               "parameters": {"binary_data_output": True}}).encode()
            out.append((f"/v2/models/{model_name}/infer", head + raw, {"Inference-Header-Content-Length": str(len(head)),
                                                                    "Content-Type": "application/octet-stream"},
                        labels))
    return out


def labels_of(reply: http.client.HTTPResponse, content: bytes) -> list[int]:
    """The labels a 200 answer gives, whatever its form (one, a batch, the protocol's binary tensor)."""
    length = reply.getheader("Inference-Header-Content-Length")
    if length is not None:
        output = json.loads(content[: int(length)])["outputs"][0]
        return np.frombuffer(content[int(length) :], "<f4").reshape(output["shape"]).argmax(1).tolist()
    answer = json.loads(content)
    return answer["labels"] if "labels" in answer else [answer["label"]]


def wait_until_up(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise DataError(f"the service exited with code {process.returncode} (its error is above)")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise DataError(f"the service did not answer /health within {timeout:.0f} s")


def client(port: int, work: list[Work], results: list, lock: threading.Lock) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # kept alive between requests
    for path, body, headers, labels in work:
        start = time.perf_counter()
        try:
            connection.request("POST", path, body=body, headers=headers)
            reply = connection.getresponse()
            content = reply.read()
            answered = labels_of(reply, content) if reply.status == 200 else []
            ok = len(answered) == len(labels)
            right = sum(a == b for a, b in zip(answered, labels)) if ok else 0
        except (OSError, ValueError, KeyError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            ok, right = False, 0
        with lock:
            results.append((time.perf_counter() - start, ok, right, len(labels)))
    connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="loadtest.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--checkpoint", help="a checkpoint written by scripts/fit.py: the service is started for it")
    where.add_argument("--url", help="a service already running on this machine, e.g. http://127.0.0.1:8000/")
    parser.add_argument("--requests", type=int, default=2000, help="requests in all (default %(default)s)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default %(default)s)")
    parser.add_argument("--body", choices=("png", "json", "v2"), default="png",
                        help="a PNG to /predict, JSON rows to /predict, or the protocol's binary rows to /v2 "
                             "(default %(default)s)")
    parser.add_argument("--batch", type=int, default=1, help="rows per request, for json and v2 (default 1)")
    parser.add_argument("--model-name", default="lit-mnist", help="the served model's name, for v2 (default %(default)s)")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1 or args.batch < 1:
        parser.error("--requests, --concurrency and --batch must be at least 1")
    if args.body == "png" and args.batch > 1:
        parser.error("--batch is for --body json or v2: a PNG is one image")
    samples = requests(min(args.requests, 1000), args.batch, args.body, args.model_name)
    work = [samples[i % len(samples)] for i in range(args.requests)]
    service = None
    if args.url:
        port = urllib.parse.urlsplit(args.url).port or 80
        if urllib.parse.urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
            parser.error("--url must be a loopback address: this test sends traffic to this machine only")
    else:
        port = free_port()
        service = subprocess.Popen([sys.executable, str(REPO / "scripts" / "serve.py"), "--checkpoint",
                                    args.checkpoint, "--port", str(port), "--model-name", args.model_name],
                                   env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        if service is not None:
            wait_until_up(port, service)
        results, lock = [], threading.Lock()
        threads = [threading.Thread(target=client, args=(port, work[k :: args.concurrency], results, lock))
                   for k in range(args.concurrency)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        seconds = time.perf_counter() - start
    finally:
        if service is not None:
            service.terminate()
            service.wait(timeout=30)
    latencies = sorted(r[0] for r in results)
    rows = sum(r[3] for r in results if r[1])
    summary = {
        "requests": args.requests, "concurrency": args.concurrency, "body": args.body, "batch": args.batch,
        "answered": len(results), "failed": sum(not r[1] for r in results),
        "lost": args.requests - len(results), "accuracy": sum(r[2] for r in results) / max(1, rows),
        "seconds": round(seconds, 3), "requests_per_second": round(len(results) / seconds, 1),
        "rows_per_second": round(rows / seconds, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 2),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 2),
    }
    print(json.dumps(summary))
    return 0 if summary["failed"] == 0 and summary["lost"] == 0 else 1


if __name__ == "__main__":
    run(main)
