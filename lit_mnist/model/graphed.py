"""A training step's forward and backward pass as one CUDA graph: on a GPU, a small net's step is mostly the
host launching kernels (tens of them, a few microseconds of work each); a graph replays them all with one launch.

The graph holds the forward pass, the loss, the backward pass (the gradients land in the same memory at every
replay) and the epoch's sums; the batch is copied into the graph's input tensors first. The optimizer's step
stays outside, as Lightning calls it, so its step count and schedule stay Lightning's (and Keras's Adam keeps
its per-step epsilon). The first ``WARMUP`` steps run eagerly on a side stream (CUDA's lazy set-up must not
happen during a capture, as PyTorch's CUDA graphs notes do it), and a batch of another size (the partial last
one) runs eagerly too, its gradients written into the graph's gradient tensors.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

WARMUP = 2  # eager steps before the capture


class GraphedStep:
    """``step(x, y)`` computes the gradients of ``loss_and_sums(x, y)``'s loss for the module's parameters."""

    def __init__(self, parameters: list[torch.Tensor], loss_and_sums: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        self.parameters = parameters
        self.loss_and_sums = loss_and_sums  # (x, y) -> loss, having added the batch to the epoch's sums
        self.graph: torch.cuda.CUDAGraph | None = None
        self.inputs: tuple[torch.Tensor, torch.Tensor] | None = None
        self.grads: list[torch.Tensor] = []  # the graph's gradient tensors, where its backward writes
        self.eager_steps = 0
        self.failed = False  # a capture failed: every step is eager

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        for p, grad in zip(self.parameters, self.grads):
            # given back to the parameters where a hook let them go (Lightning's before validation: zero_grad with
            # set_to_none), else the optimizer would find none and take no step
            if p.grad is not grad:
                p.grad = grad
        if self.graph is not None and x.shape == self.inputs[0].shape:
            self.inputs[0].copy_(x)
            self.inputs[1].copy_(y)
            self.graph.replay()
        elif self.graph is None and not self.failed and self.eager_steps >= WARMUP:
            self._capture(x, y)
        else:
            self._eager(x, y)

    def _eager(self, x: torch.Tensor, y: torch.Tensor) -> None:
        for p in self.parameters:  # in place: after a capture, the gradients must stay the graph's tensors
            if p.grad is not None:
                p.grad.zero_()
        if self.graph is not None or self.failed:
            self.loss_and_sums(x, y).backward()
            return
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.loss_and_sums(x, y).backward()
        torch.cuda.current_stream().wait_stream(side)
        self.eager_steps += 1

    def _capture(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Record the step on ``x``'s shape, then replay it: the recording itself computes nothing."""
        self.inputs = (x.clone(), y.clone())
        for p in self.parameters:  # the backward in the graph then makes the gradients, in the graph's memory
            p.grad = None
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize()  # once: the eager steps before are done with the memory the capture takes over
        try:
            with torch.cuda.graph(graph):
                self.loss_and_sums(*self.inputs).backward()
        except RuntimeError as e:  # an operation that cannot be captured: the same step, eagerly
            warnings.warn(f"the training step could not be captured as a CUDA graph ({str(e).splitlines()[0]}); "
                          "it runs eagerly", stacklevel=2)
            self.failed = True
            self._eager(x, y)
            return
        self.graph = graph
        self.grads = [p.grad for p in self.parameters]
        graph.replay()


def applies(module, batch) -> bool:
    """Whether the step can be a graph: one CUDA device, 32-bit floats, a batch without a rank's share of a
    larger one (several devices synchronise their gradients in the backward pass: DDP's own business)."""
    trainer = module.trainer
    return (module.hparams.get("cuda_graphs", True) and module.device.type == "cuda" and trainer.world_size == 1
            and len(batch) == 2 and str(trainer.precision) in ("32-true", "32"))
