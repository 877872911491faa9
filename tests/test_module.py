"""LitMNIST's reported epoch figures are Keras's: batch-size-weighted means over the epoch."""

import torch
import torch.nn.functional as F

from lit_mnist.module import LitMNIST


def test_epoch_loss_and_accuracy_weight_batches_by_size():
    torch.manual_seed(0)
    module = LitMNIST()
    x, y = torch.randint(0, 256, (34, 784)).float(), torch.randint(0, 10, (34,))
    batches = [(x[:30], y[:30]), (x[30:], y[30:])]  # a full batch and a partial last batch, as Keras keeps
    losses = [module._step(batch, "train")[0].detach() for batch in batches]
    module._fold("train")  # what the epoch end does
    expected = (losses[0] * 30 + losses[1] * 4) / 34
    torch.testing.assert_close(module.train_loss.compute(), expected)
    assert not torch.isclose(expected, (losses[0] + losses[1]) / 2)  # the unweighted mean would differ
    with torch.no_grad():
        correct = (module.net(x).argmax(1) == y).float().mean()
    torch.testing.assert_close(module.train_acc.compute(), correct)


def test_loss_is_cross_entropy_on_logits():
    torch.manual_seed(0)
    module = LitMNIST()
    x, y = torch.randint(0, 256, (8, 784)).float(), torch.randint(0, 10, (8,))
    loss = module._step((x, y), "train")[0]
    torch.testing.assert_close(loss, F.cross_entropy(module.net(x), y))
