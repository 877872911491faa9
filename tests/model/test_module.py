"""LitMNIST's reported epoch figures are Keras's: batch-size-weighted means over the epoch."""

import lightning as L
import torch
import torch.nn.functional as F

from lit_mnist.data.datamodule import MNISTDataModule
from lit_mnist.model.module import LitMNIST


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


def test_each_epoch_logs_its_own_figures(write_csv, tmp_path):
    """The logged epoch figures cover that epoch alone: the metrics are computed and reset at every epoch end."""
    module = LitMNIST(lr=1e-2)
    folded = []
    fold = module._fold

    def spy(stage):
        if module._collected[stage]:
            _, predicted, target = (torch.cat(parts) for parts in zip(*module._collected[stage]))
            folded.append((stage, (predicted == target).float().mean()))
        fold(stage)

    module._fold = spy
    trainer = L.Trainer(max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, num_sanity_val_steps=0, default_root_dir=tmp_path)
    trainer.fit(module, datamodule=MNISTDataModule(path=str(write_csv(n=400)), batch_size=32))
    train = [acc for stage, acc in folded if stage == "train"]
    assert len(train) == 3 and len(set(train)) > 1  # the epochs differ, so a running total would show
    torch.testing.assert_close(trainer.callback_metrics["train/acc"], train[-1])
    for metric in (module.train_acc, module.train_loss, module.val_acc, module.val_loss):
        assert metric.update_count == 0


def test_the_module_uses_nn_modules_own_attribute_handling():
    assert "__setattr__" not in vars(LitMNIST)  # no shortcut around Lightning's or torch's bookkeeping


def test_compute_loss_leaves_nothing_collected():
    module = LitMNIST()
    x, y = torch.rand(8, 784) * 255, torch.randint(0, 10, (8,))
    loss, per_sample, logits = module.compute_loss((x, y))
    torch.testing.assert_close(loss, per_sample.mean())
    assert logits.shape == (8, 10) and not any(module._collected.values())

