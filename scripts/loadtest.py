"""A bounded load test of scripts/serve.py on loopback: python scripts/loadtest.py --checkpoint CKPT

Starts the service on a free 127.0.0.1 port (or uses the one at ``--url``, on loopback), sends ``--requests`` POST /predict requests (photo-like PNGs
of MNIST test digits, or JSON rows with ``--json``) from ``--concurrency`` clients, checks every answer,
stops the service, and prints throughput and latency percentiles as JSON. Exits 1 if any request failed
or went unanswered.
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

from PIL import Image

from lit_mnist.apps.entry import ArgumentParser, run
from lit_mnist.errors import DataError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bodies(n: int, as_json: bool) -> list[tuple[bytes, str, int]]:
    from lit_mnist.data import mnist

    digits = mnist.test_digits("the load test sends")
    out = []
    for row, label in zip(digits.pixels[:n], digits.labels[:n]):
        if as_json:
            out.append((json.dumps({"pixels": row.tolist()}).encode(), "application/json", int(label)))
            continue
        picture = Image.fromarray(255 - row.reshape(28, 28)).resize((112, 112), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        out.append((buffer.getvalue(), "image/png", int(label)))
    return out


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


def client(port: int, work: list[tuple[bytes, str, int]], results: list, lock: threading.Lock) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # kept alive between requests
    for body, kind, label in work:
        start = time.perf_counter()
        try:
            connection.request("POST", "/predict", body=body, headers={"Content-Type": kind})
            reply = connection.getresponse()
            answer = json.loads(reply.read())
            ok = reply.status == 200 and isinstance(answer.get("label"), int)
            right = ok and answer["label"] == label
        except (OSError, ValueError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            ok = right = False
        with lock:
            results.append((time.perf_counter() - start, ok, right))
    connection.close()


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="loadtest.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--checkpoint", help="a checkpoint written by scripts/fit.py: the service is started for it")
    where.add_argument("--url", help="a service already running on this machine, e.g. http://127.0.0.1:8000/")
    parser.add_argument("--requests", type=int, default=2000, help="requests in all (default %(default)s)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="send MNIST rows as JSON instead of PNG images")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be at least 1")
    samples = bodies(min(args.requests, 1000), args.json)
    work = [samples[i % len(samples)] for i in range(args.requests)]
    service = None
    if args.url:
        port = urllib.parse.urlsplit(args.url).port or 80
        if urllib.parse.urlsplit(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
            parser.error("--url must be a loopback address: this test sends traffic to this machine only")
    else:
        port = free_port()
        service = subprocess.Popen([sys.executable, str(REPO / "scripts" / "serve.py"), "--checkpoint",
                                    args.checkpoint, "--port", str(port)], env=dict(os.environ, PYTHONUNBUFFERED="1"))
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
    summary = {
        "requests": args.requests, "concurrency": args.concurrency, "body": "json" if args.json else "png",
        "answered": len(results), "failed": sum(not ok for _, ok, _ in results),
        "lost": args.requests - len(results), "accuracy": sum(r for *_, r in results) / max(1, len(results)),
        "seconds": round(seconds, 3), "requests_per_second": round(len(results) / seconds, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 2),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 2),
    }
    print(json.dumps(summary))
    return 0 if summary["failed"] == 0 and summary["lost"] == 0 else 1


if __name__ == "__main__":
    run(main)
