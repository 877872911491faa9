"""Checkpoints are written atomically: a save that fails leaves the previous file intact."""

import pytest
import torch

from lit_mnist.apps.checkpoints import AtomicCheckpointIO, CheckpointError, load_model
from lit_mnist.model.module import LitMNIST


def test_a_failed_save_leaves_the_previous_checkpoint_and_no_debris(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)
    before = path.read_bytes()

    def interrupted(obj, f, *args, **kwargs):
        with open(f, "wb") as out:
            out.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def _checkpoint(tmp_path, normalize: bool, drop: tuple[str, ...]):
    model = LitMNIST(normalize=normalize)
    state = {k: v for k, v in model.state_dict().items() if k not in drop}
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": dict(model.hparams)}, path)
    return path


@pytest.mark.parametrize("drop", [("pixel_mean",), ("pixel_std",), ("pixel_mean", "pixel_std")])
def test_a_normalising_checkpoint_without_its_statistics_is_refused(tmp_path, drop):
    with pytest.raises(CheckpointError, match="normalize=True but no pixel_"):
        load_model(_checkpoint(tmp_path, normalize=True, drop=drop))


def test_statistics_are_needed_only_by_a_normalising_model(tmp_path):
    assert load_model(_checkpoint(tmp_path, normalize=False, drop=("pixel_mean", "pixel_std"))).hparams.normalize is False
    assert float(load_model(_checkpoint(tmp_path, normalize=True, drop=())).pixel_std) == 1.0
