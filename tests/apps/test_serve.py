"""scripts/serve.py's command line: what cannot be served is one line before the model loads."""

import socket

import pytest

from tests.conftest import require

require("fastapi", "serve")

from lit_mnist.apps import serve
from lit_mnist.apps.entry import call


@pytest.fixture
def taken_port():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        yield taken.getsockname()[1]


@pytest.mark.parametrize("options, expected", [
    (["--port", "70000"], "--port must be in 1-65535, got 70000"),
    (["--port", "{taken}"], "127.0.0.1:{taken}: cannot listen there (Address already in use"),
    (["--host", "192.0.2.1"], "192.0.2.1:8000: cannot listen there ("),  # TEST-NET-1: no machine's address
    (["--model-name", "a/b"], "--model-name 'a/b': use letters, digits"),
    (["--model-name", ""], "--model-name '': use letters, digits"),
])
def test_an_address_that_cannot_be_served_is_one_line_before_the_model_loads(tmp_path, capsys, taken_port,
                                                                               options, expected):
    options = [o.format(taken=taken_port) for o in options]
    assert call(serve.main, ["--checkpoint", str(tmp_path / "absent.ckpt"), *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {expected.format(taken=taken_port)}") and err.count("\n") == 1


def test_the_socket_is_made_as_tcp_so_that_each_connection_sends_its_answers_at_once():
    """asyncio turns Nagle's algorithm off only on sockets made with IPPROTO_TCP (socket.create_server's are not):
    else each answer on a kept-alive connection waits for the client's delayed ACK."""
    with serve.listen("127.0.0.1", 0) as sock:
        assert sock.proto == socket.IPPROTO_TCP and sock.type == socket.SOCK_STREAM
    assert socket.create_server(("127.0.0.1", 0)).proto != socket.IPPROTO_TCP  # why it is not made that way
