"""Checkpoints are written atomically: a save that fails leaves the previous file intact; one is read as untrusted
input, and a net starts from one (``start_from``)."""

import pytest
import torch

from lit_mnist.apps.checkpoints import AtomicCheckpointIO, CheckpointError, load_model, start_from
from lit_mnist.model.module import LitMNIST
from tests.conftest import save_model


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
    path = save_model(model, tmp_path / "model.ckpt")
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k not in drop}
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize("drop", [("pixel_mean",), ("pixel_std",), ("net.dense_3.bias",)])
def test_a_checkpoint_missing_part_of_its_model_is_refused_naming_it(tmp_path, drop):
    with pytest.raises(CheckpointError, match=f"a checkpoint of another model .*{drop[0]}"):
        load_model(_checkpoint(tmp_path, normalize=True, drop=drop))


def test_a_whole_checkpoint_loads_with_its_statistics(tmp_path):
    assert float(load_model(_checkpoint(tmp_path, normalize=True, drop=())).pixel_std) == 1.0


def test_a_checkpoint_of_an_earlier_lit_mnist_says_how_to_train_again(tmp_path):
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": {"net.layers.0.weight": torch.zeros(128, 784)}, "pytorch-lightning_version": "2.6.6",
                "hyper_parameters": {"arch": "cnn", "normalize": True}}, path)
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    assert str(error.value) == (f"{path}: a checkpoint of an earlier lit-mnist (--model.arch cnn), whose nets were not "
                                "layer lists: train it again with scripts/fit.py (the original's net is the default; "
                                "the CNNs are lit_mnist/configs/cnn.yaml and cnn_fast.yaml)")


def test_a_folder_given_as_the_checkpoint_points_to_its_last_checkpoint(tmp_path):
    run = tmp_path / "version_0"
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(CheckpointError, match=r"version_0: is a folder; give the checkpoint file \(a run's checkpoints/"):
        load_model(run)
    save_model(LitMNIST(), run / "checkpoints" / "last.ckpt")
    with pytest.raises(CheckpointError) as error:
        load_model(run)
    assert str(error.value) == f"{run}: is a folder; did you mean {run / 'checkpoints' / 'last.ckpt'}?"


def test_a_checkpoint_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch):
    from lit_mnist.apps import checkpoints

    path = tmp_path / "big.ckpt"
    path.write_bytes(b"PK\x03\x04" + bytes(2000))
    monkeypatch.setattr(checkpoints, "MAX_CHECKPOINT_BYTES", 1000)
    with pytest.raises(checkpoints.CheckpointError, match=r"big.ckpt: 2004 bytes, over the limit of 1000"):
        checkpoints.read_checkpoint(path)


def test_a_module_built_in_python_starts_from_a_checkpoint_with_start_from(tmp_path):
    """The constructor only records ``init_from``: a module never started from it refuses to train; started, its
    own checkpoint records the start, names no path to read again, and loads."""
    torch.manual_seed(7)
    start = LitMNIST()
    path = save_model(start, tmp_path / "start.ckpt")
    model = LitMNIST(init_from=str(path))
    assert not torch.equal(model.net.dense.weight, start.net.dense.weight)  # built, not started
    with pytest.raises(ValueError, match=f"init_from {path}: the net was never started from it; "):
        model.setup("fit")
    start_from(model, path)
    for key, value in start.net.state_dict().items():
        assert torch.equal(model.net.state_dict()[key], value), key
    assert model.hparams.init_from is None and model.hparams.source["init_from"]["checkpoint"] == str(path)
    again = load_model(save_model(model, tmp_path / "again.ckpt"))
    assert again.hparams.init_from is None and again.hparams.source == model.hparams.source
    assert torch.equal(again.net.dense.weight, start.net.dense.weight)
