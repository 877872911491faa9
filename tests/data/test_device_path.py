"""The step path that runs on a GPU must never wait for the device: no .item(), no tensor read back to the
host. Checked on the CPU by making every such read raise while our code takes training steps."""

import contextlib

import pytest
import torch

from lit_mnist.data.batches import TensorBatches
from lit_mnist.model.module import LitMNIST

HOST_READS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__")


@contextlib.contextmanager
def no_host_reads():
    originals = {name: getattr(torch.Tensor, name) for name in HOST_READS}

    def refuse(self, *args, **kwargs):
        raise AssertionError("a tensor was read back to the host inside a training step")

    try:
        for name in HOST_READS:
            setattr(torch.Tensor, name, refuse)
        yield
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def _data(n=64):
    torch.manual_seed(0)
    return torch.randint(0, 256, (n, 784)).float(), torch.randint(0, 10, (n,))


def test_training_steps_read_nothing_back_from_the_device():
    module = LitMNIST()
    optimizer = module.configure_optimizers()
    batches = TensorBatches(*_data(), 16, shuffle=True, seed=1)
    module.on_train_epoch_start()
    with no_host_reads():
        for batch in batches:  # training_step's work, without a Trainer
            loss = module.loss_and_sums(batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert optimizer.state[next(module.parameters())]["step"] == 4
    assert module._train_totals[2] == 64  # every row counted, on the device


def test_the_guard_itself_catches_a_sync():
    with no_host_reads(), pytest.raises(AssertionError, match="read back"):
        torch.ones(2).sum().item()


def test_epoch_metrics_accumulate_on_the_module_device():
    module = LitMNIST()
    x, y = _data(32)
    with no_host_reads():  # a step adds to the epoch's sums; the epoch's end alone hands them to the metrics
        module.loss_and_sums((x, y))
    loss, _, rows = module._train_totals
    module.train_loss.update(loss / rows, rows)
    assert module._train_totals.device == x.device
    assert all(state.device == x.device for state in module.train_loss.metric_state.values())


def test_device_resident_splits_are_placed_once_and_stay_uint8(write_csv):
    from lit_mnist.data.datamodule import MNISTDataModule

    dm = MNISTDataModule(path=str(write_csv(n=100)), batch_size=10)
    dm.setup("fit")
    first = dm.train_dataloader().x
    assert first.dtype == torch.uint8 and dm.train_dataloader().x.data_ptr() == first.data_ptr()
