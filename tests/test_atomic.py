"""Atomic writes: the file appears whole or not at all, with the mode a plain open() would give it."""

import os
import stat

import pytest

from lit_mnist import atomic


@pytest.fixture
def umask():
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_an_atomic_write_follows_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    atomic.write_text(tmp_path / "metrics.json", "{}\n")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == mode == stat.S_IMODE(plain.stat().st_mode)


def test_a_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic.atomic_path(tmp_path / "out.bin") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
