"""The GPU's step path: each training step's forward and backward pass one CUDA graph, with the same arithmetic as
the eager step (run where a CUDA device is present; skipped elsewhere)."""

import lightning as L
import pytest
import torch

from lit_mnist.data.datamodule import MNISTDataModule
from lit_mnist.model.module import LitMNIST
from tests.conftest import residual_list


def cuda(test):
    """A test that needs a CUDA device: marked gpu, skipped without one."""
    return pytest.mark.gpu(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")(test))


BN = [{"dense": {"units": 32, "use_bias": False}}, "batch_normalization", {"activation": "relu"}]
CONV = [{"conv2d": {"filters": 8, "kernel_size": 3, "strides": 2, "padding": "same", "activation": "relu"}},
        {"average_pooling2d": {"pool_size": 2, "padding": "same"}}, "flatten", {"dense": 16}]
BRANCHES = residual_list(28, filters=4, side=2)  # a list that branches and joins, run by its plan


def _fit(datamodule, graphs: bool, layers=None, epochs=3) -> LitMNIST:
    L.seed_everything(0, verbose=False)
    module = LitMNIST(layers=layers, cuda_graphs=graphs)
    trainer = L.Trainer(max_epochs=epochs, accelerator="gpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=datamodule)
    return module


@cuda
@pytest.mark.parametrize("layers", [None, BN, CONV, BRANCHES],
                         ids=["dense", "batch normalization", "conv", "branches and joins"])
def test_a_graphed_fit_takes_the_steps_an_eager_fit_takes(write_csv, layers):
    """Over epochs, with validation between them (which lets the gradients go) and a partial last batch."""
    datamodule = MNISTDataModule(path=str(write_csv(n=520)), batch_size=32)  # 332 rows: a partial last batch
    graphed, eager = _fit(datamodule, True, layers), _fit(datamodule, False, layers)
    assert graphed._graphed is not None and graphed._graphed.graph is not None and eager._graphed is None
    for (name, a), (_, b) in zip(graphed.state_dict().items(), eager.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)


@cuda
def test_groups_of_batches_replay_the_graph_of_single_batches(write_csv):
    """--data.steps_per_execution on the graphed path: the group's steps replay one graph, the partial last
    batch runs eagerly into its gradients, and the weights are those of batches handed over one at a time."""
    csv = str(write_csv(n=520))
    single = _fit(MNISTDataModule(path=csv, batch_size=32), True)
    grouped = _fit(MNISTDataModule(path=csv, batch_size=32, steps_per_execution=4), True)
    assert grouped._graphed.graph is not None
    for (name, a), (_, b) in zip(grouped.state_dict().items(), single.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


@cuda
def test_companion_a_graph_that_replays_a_stale_batch_is_caught(write_csv, monkeypatch):
    """A replay that forgot to copy the batch in trains on the capture's batch over and over: the weights differ."""
    from lit_mnist.model import graphed

    datamodule = MNISTDataModule(path=str(write_csv(n=520)), batch_size=32)
    eager = _fit(datamodule, False)

    def stale(self, x, y):
        if self.graph is not None and x.shape == self.inputs[0].shape:
            self.graph.replay()
        elif self.graph is None and self.eager_steps >= graphed.WARMUP:
            self._capture(x, y)
        else:
            self._eager(x, y)

    monkeypatch.setattr(graphed.GraphedStep, "__call__", stale)
    broken = _fit(datamodule, True)
    assert not torch.allclose(broken.net.dense.weight, eager.net.dense.weight, rtol=1e-4, atol=1e-5)


@cuda
def test_dropout_trains_under_the_graph(write_csv):
    datamodule = MNISTDataModule(path=str(write_csv(n=600)), batch_size=32)
    module = _fit(datamodule, True, [{"dense": {"units": 64, "activation": "relu"}}, {"dropout": 0.3}], epochs=5)
    trainer = L.Trainer(accelerator="gpu", devices=1, logger=False, enable_progress_bar=False)
    trainer.test(module, datamodule=datamodule, verbose=False)
    assert float(trainer.callback_metrics["test/acc"]) > 0.5  # the synthetic classes are easy: it learned


def test_matmul_precision_sets_torch_and_cudnn_for_the_run(write_csv, tmp_path):
    previous = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    try:
        for precision, tf32 in (("high", True), ("highest", False)):
            module = LitMNIST(matmul_precision=precision)
            trainer = L.Trainer(max_steps=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                                enable_checkpointing=False, default_root_dir=tmp_path)
            trainer.fit(module, datamodule=MNISTDataModule(path=str(write_csv(n=60)), batch_size=16))
            assert torch.get_float32_matmul_precision() == precision and torch.backends.cudnn.allow_tf32 == tf32
    finally:
        torch.set_float32_matmul_precision(previous[0])
        torch.backends.cudnn.allow_tf32 = previous[1]
