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


def _nodelay_of_a_connection(sock: socket.socket) -> int:
    """TCP_NODELAY of a connection that an asyncio server (uvicorn's loop) accepts on the listening ``sock``."""
    import asyncio

    async def accept_one() -> int:
        accepted = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport):
                accepted.set_result(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        with socket.create_connection(sock.getsockname()[:2]):
            value = await asyncio.wait_for(accepted, 10)
        server.close()
        return value

    return asyncio.run(accept_one())


def test_each_connection_sends_its_answers_at_once():
    """Nagle's algorithm is off on every connection the service accepts, so an answer on a kept-alive connection
    does not wait for the client's delayed ACK; asyncio turns it off only on a listening socket made as TCP by
    name, which socket.create_server's is not (the companion)."""
    with serve.listen("127.0.0.1", 0) as sock:
        assert _nodelay_of_a_connection(sock)
    with socket.create_server(("127.0.0.1", 0)) as plain:
        assert not _nodelay_of_a_connection(plain)
