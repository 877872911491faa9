"""The loops scripts/bench.py measures Lightning's fit against, and the host's time per step.

* ``plain_fit``: the module's training as a plain PyTorch loop (its net, batches and optimizer, one validation
  forward an epoch), no Trainer, hooks, metrics or logging.
* ``graph_floor_fit`` (CUDA): the same loop with each full batch's step one CUDA graph (forward, backward and a
  capturable Adam step): what the device needs when the host only launches graphs.
* ``host_seconds_per_step``: a one-layer net on batches of 8, so that a step's time is the host's work; also
  with the batches handed over in groups (the datamodule's ``steps_per_execution``), and with the training
  metrics kept as Lightning's documentation shows (``MetricsEachStep``), for the cost of the device-side sums
  ``LitMNIST`` keeps instead.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from lit_mnist.apps.timed_fit import timed_fit
from lit_mnist.data import mnist, reader
from lit_mnist.data.batches import TensorBatches
from lit_mnist.data.datamodule import MNISTDataModule
from lit_mnist.model import optimizers
from lit_mnist.model.module import LitMNIST

GROUP = 64  # the steps_per_execution measured: more than the original workload's 54 batches an epoch


class MetricsEachStep(LitMNIST):
    """LitMNIST with its training metrics as Lightning's documentation shows them: torchmetrics objects updated
    and logged at every step (``on_epoch=True``), instead of sums kept on the device and handed to the metrics at
    the epoch's end. (A metric's update is Python work at every step, which a CUDA graph cannot hold.)"""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs, cuda_graphs=False)
        self.step_loss = MeanMetric()
        self.step_acc = MulticlassAccuracy(self.hparams.num_classes, average="micro")

    def loss_and_sums(self, batch) -> torch.Tensor:
        loss, per_sample, logits = self.compute_loss(batch)
        self.step_loss.update(per_sample.detach())
        self.step_acc.update(logits.detach(), batch[1])
        self.log("train/loss", self.step_loss, on_step=False, on_epoch=True)
        self.log("train/acc", self.step_acc, on_step=False, on_epoch=True)
        return loss

    def on_train_epoch_end(self) -> None:
        """The epoch's figures are the per-step metrics' own (a schedule is the optimizer's, stepped by it)."""


def _on(datamodule: MNISTDataModule, split: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = datamodule.splits[split]
    return x.to(device), y.to(device)


def _validate(module: LitMNIST, val: tuple[torch.Tensor, torch.Tensor], size: int) -> None:
    """One validation forward, its correct count left on the device (Lightning's epoch end reads its metrics)."""
    with torch.no_grad():
        for start in range(0, len(val[0]), size):
            module.logits(val[0][start:start + size].float()).argmax(1).eq(val[1][start:start + size]).sum()


def plain_fit(module: LitMNIST, datamodule: MNISTDataModule, epochs: int, device: torch.device) -> float:
    """Seconds of the plain loop's training of ``module`` (a fresh one) on ``datamodule``'s split."""
    module.to(device).train()
    train, val = _on(datamodule, "train", device), _on(datamodule, "val", device)
    epoch = [0]
    batches = TensorBatches(*train, datamodule.hparams.batch_size, shuffle=True, epoch=lambda: epoch[0])
    _sync(device)
    start = time.perf_counter()
    optimizer = module.make_optimizer()
    for epoch[0] in range(epochs):
        for x, y in batches:
            loss = F.cross_entropy(module.logits(x.float()), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        _validate(module, val, datamodule.hparams.eval_batch_size)
    _sync(device)
    return time.perf_counter() - start


def graph_floor_fit(module: LitMNIST, datamodule: MNISTDataModule, epochs: int) -> float:
    """Seconds of the plain loop with each full batch's step one CUDA graph (torch's capturable Adam: Keras's
    costs the same), the partial last batch eager, one validation forward an epoch."""
    device = torch.device("cuda")
    module.to(device).train()
    train, val = _on(datamodule, "train", device), _on(datamodule, "val", device)
    size = datamodule.hparams.batch_size
    epoch = [0]
    batches = TensorBatches(*train, size, shuffle=True, epoch=lambda: epoch[0])
    torch.cuda.synchronize()
    start = time.perf_counter()
    optimizer = torch.optim.Adam(module.parameters(), lr=optimizers.learning_rate(module.hparams.optimizer),
                                 eps=1e-7, capturable=True)
    static_x, static_y = torch.zeros(size, train[0].shape[1], device=device), torch.zeros(size, dtype=torch.long,
                                                                                         device=device)

    def step(x, y):
        loss = F.cross_entropy(module.logits(x), y)
        loss.backward()
        optimizer.step()

    graph, warm = None, 0
    for epoch[0] in range(epochs):
        for x, y in batches:
            if len(x) != size or graph is None and warm < 3:  # eager: the partial batch, and the warm-up steps
                optimizer.zero_grad(set_to_none=graph is None)
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    step(x.float(), y)
                torch.cuda.current_stream().wait_stream(side)
                warm += 1
                continue
            static_x.copy_(x)
            static_y.copy_(y)
            if graph is None:
                optimizer.zero_grad(set_to_none=True)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    step(static_x, static_y)
            graph.replay()
        _validate(module, val, datamodule.hparams.eval_batch_size)
    torch.cuda.synchronize()
    return time.perf_counter() - start


def host_seconds_per_step(accelerator: str = "cpu", steps: int = 600) -> dict:
    """Seconds a step of a one-layer net (784 -> 10) on batches of 8 takes through Lightning's fit (batches handed
    over one at a time, and in groups of ``GROUP``) and through the plain loop: the device's work is next to
    nothing, so this is the host's, which a small net pays at every step."""
    rng = np.random.default_rng(0)
    rows = 8 * steps // 3
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tiny.csv"
        mnist.write_digits_csv(path, reader.Digits(rng.integers(0, 256, (rows, 784)).astype(np.uint8),
                                                   rng.integers(0, 10, rows)))
        data = {group: MNISTDataModule(path=str(path), batch_size=8, val_split=0.0, test_split=0.01,
                                       steps_per_execution=group) for group in (1, GROUP)}
        for datamodule in data.values():
            datamodule.setup("fit")
    n = 3 * -(-len(data[1].splits["train"][0]) // 8)
    out = {}
    kinds = ("lightning", f"lightning_steps_per_execution_{GROUP}", "lightning_metrics_each_step", "plain")
    for name in kinds + kinds:  # alternating, each twice; the second counts
        L.seed_everything(0, verbose=False)
        module = (MetricsEachStep if name == "lightning_metrics_each_step" else LitMNIST)(layers=[])
        if name.startswith("lightning"):
            datamodule = data[GROUP if "steps_per_execution" in name else 1]
            seconds, trainer = timed_fit(module, datamodule, 3, accelerator)
            assert trainer.global_step == n, (name, trainer.global_step, n)
        else:
            seconds = plain_fit(module, data[1], 3, torch.device("cuda" if accelerator == "gpu" else "cpu"))
        out[name] = seconds / n
    return {"host_seconds_per_step": out, "host_step_count": n}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
