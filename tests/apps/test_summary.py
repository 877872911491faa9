"""The model summary at a fit's start: each layer's sizes and parameters, and where the net branches each
layer's inputs (Keras's "Connected to")."""

import logging

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from lit_mnist.apps.summary import LayerSummary
from lit_mnist.model.module import LitMNIST

GRAPH = [{"input": [4, 4, 1]}, {"conv2d": {"filters": 2, "kernel_size": 3, "padding": "same", "name": "stem"}},
         {"conv2d": {"filters": 2, "kernel_size": 1, "name": "side", "inputs": "input"}},
         {"add": {"inputs": ["stem", "side"]}}, "flatten"]


def _summary(layers, caplog) -> str:
    logger = logging.getLogger("lightning.pytorch.callbacks.model_summary")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger=logger.name)
    try:
        model = LitMNIST(layers=layers, num_classes=3, image_shape=(4, 4))
        data = DataLoader(TensorDataset(torch.rand(8, 16) * 255, torch.randint(0, 3, (8,))), batch_size=4,
                          collate_fn=lambda rows: tuple(torch.stack(column) for column in zip(*rows)))  # (x, y)
        L.Trainer(max_steps=1, callbacks=[LayerSummary()], logger=False, enable_checkpointing=False,
                  enable_progress_bar=False, num_sanity_val_steps=0).fit(model, data)
    finally:
        logger.removeHandler(caplog.handler)
    return caplog.text


def test_a_graph_s_summary_names_each_layer_s_inputs(caplog):
    lines = _summary(GRAPH, caplog).splitlines()
    header = next(line for line in lines if "Inputs" in line)
    assert header.index("Type") < header.index("Inputs") < header.index("Params")
    add = next(line for line in lines if "net.add " in line)
    assert "stem, side" in add


def test_a_chain_s_summary_is_lightning_s(caplog):
    text = _summary([{"dense": 8}], caplog)
    assert "net.dense " in text and "Inputs" not in text

