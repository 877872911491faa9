"""Slow clients: a connection that sends half a request head is closed after the header timeout, while real
requests keep being answered (lit_mnist/service/slow_clients.py, over uvicorn's h11 protocol)."""

import socket
import threading
import time
import urllib.request

import pytest

from tests.conftest import require

require("uvicorn", "serve")
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from lit_mnist.apps.serve import listen
from lit_mnist.service.slow_clients import with_header_timeout

HALF_A_HEAD = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow"


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain"),
                                                                        (b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture
def server():
    """serve(http) -> (host, port) of uvicorn on a thread, with the given protocol class."""
    running = []

    def serve(http):
        sock = listen("127.0.0.1", 0)
        instance = uvicorn.Server(uvicorn.Config(app, log_level="warning", http=http, timeout_keep_alive=60))
        thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not instance.started:
            time.sleep(0.02)
        running.append((instance, thread, sock))
        return sock.getsockname()[:2]

    yield serve
    for instance, thread, sock in running:
        instance.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _slow_clients(address, n: int) -> list[socket.socket]:
    clients = []
    for _ in range(n):
        client = socket.create_connection(address, timeout=5)
        client.sendall(HALF_A_HEAD)
        clients.append(client)
    return clients


def _closed_by_the_server(client: socket.socket, within: float) -> bool:
    client.settimeout(within)
    try:
        return client.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_half_sent_heads_are_closed_while_real_requests_are_answered(server):
    address = server(with_header_timeout(0.5))
    clients = _slow_clients(address, 50)
    with urllib.request.urlopen(f"http://{address[0]}:{address[1]}/health", timeout=5) as answer:
        assert answer.read() == b"ok"  # answered while the slow ones hold their connections
    try:
        assert all(_closed_by_the_server(client, 5) for client in clients)
    finally:
        for client in clients:
            client.close()


def test_a_kept_alive_connection_gets_the_same_time_for_its_next_head(server):
    address = server(with_header_timeout(0.5))
    with socket.create_connection(address, timeout=5) as client:
        client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while not answer.endswith(b"ok") and (part := client.recv(1024)):  # the head and the body: two reads, maybe
            answer += part
        assert b"200 OK" in answer and answer.endswith(b"ok")
        client.sendall(HALF_A_HEAD)
        assert _closed_by_the_server(client, 5)


def test_a_whole_head_is_answered_however_long_it_took_within_the_timeout(server):
    address = server(with_header_timeout(2.0))
    with socket.create_connection(address, timeout=5) as client:
        client.sendall(HALF_A_HEAD)
        time.sleep(0.3)
        client.sendall(b"\r\n\r\n")
        assert b"200 OK" in client.recv(1024)


def test_the_companion_uvicorn_alone_keeps_a_half_sent_head_open(server):
    address = server(H11Protocol)
    (client,) = _slow_clients(address, 1)
    with client:
        assert not _closed_by_the_server(client, 1.5)


def test_a_header_timeout_must_be_positive():
    with pytest.raises(ValueError, match="must be positive"):
        with_header_timeout(0)


@pytest.mark.slow
def test_200_slow_clients_are_closed_within_a_minute_at_the_default_timeout(server):
    """The default (10 s, serve.py's): 200 half-sent heads closed within a minute; a real request meanwhile
    answers at once."""
    address = server(with_header_timeout(10.0))
    clients = _slow_clients(address, 200)
    try:
        start = time.monotonic()
        with urllib.request.urlopen(f"http://{address[0]}:{address[1]}/health", timeout=5) as answer:
            assert answer.read() == b"ok" and time.monotonic() - start < 1.0
        assert all(_closed_by_the_server(client, 60 - (time.monotonic() - start)) for client in clients)
        assert time.monotonic() - start < 60
    finally:
        for client in clients:
            client.close()
