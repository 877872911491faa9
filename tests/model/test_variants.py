"""The variants beyond the original: each trains and predicts; normalisation and augmentation touch
only what they should."""

import json

import lightning as L
import pytest
import torch

from lit_mnist.apps.checkpoints import load_model
from lit_mnist.apps.entry import call
from lit_mnist.data.augment import random_affine
from lit_mnist.data.datamodule import MNISTDataModule, pixel_stats
from lit_mnist.model.module import LitMNIST


def _data(write_csv, **kwargs):
    dm = MNISTDataModule(path=str(write_csv(n=200)), batch_size=32, **kwargs)
    dm.setup("fit")
    return dm


CNN = [{"conv2d": {"filters": 4, "kernel_size": 5}}, {"max_pooling2d": 2}, {"activation": "relu"}, "flatten",
       {"dense": {"units": 16, "activation": "relu"}}]
BN_CNN = [{"conv2d": {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"}}, "batch_normalization",
          {"average_pooling2d": {"pool_size": 2, "padding": "same"}}, {"dropout": 0.25}, "flatten",
          {"dense": {"units": 16, "activation": "tanh"}}]


@pytest.mark.parametrize("layers, normalize, augment", [
    (None, False, False), (None, True, False), (None, True, True), (CNN, True, False), (CNN, True, True),
    (BN_CNN, False, False),
])
def test_each_variant_trains_a_few_steps_and_predicts(write_csv, tmp_path, layers, normalize, augment):
    dm = _data(write_csv, normalize=normalize, augment=augment)
    model = LitMNIST(layers=layers, normalize=normalize)
    trainer = L.Trainer(max_steps=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path, num_sanity_val_steps=0)
    before = [p.detach().clone() for p in model.net.parameters()]
    trainer.fit(model, datamodule=dm)
    assert trainer.global_step == 3
    assert any(not torch.equal(a, b) for a, b in zip(before, model.net.parameters()))
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    loaded = load_model(path)
    assert loaded.hparams.layers == model.hparams.layers and loaded.hparams.normalize == normalize
    torch.testing.assert_close(loaded.state_dict(), model.cpu().state_dict())  # BatchNormalization's statistics too
    probs = loaded(dm.splits["test"][0][:5])
    torch.testing.assert_close(probs.sum(1), torch.ones(5))
    if normalize:  # the statistics travelled in the checkpoint
        assert float(loaded.pixel_mean) == pytest.approx(dm.pixel_stats[0])


def test_normalisation_statistics_come_from_the_training_split_only(write_csv):
    dm = _data(write_csv, normalize=True)
    train_x = dm.splits["train"][0]
    assert dm.pixel_stats == pytest.approx((float(train_x.double().mean()), float(train_x.double().std())))
    everything = torch.cat([dm.train_part[0], dm.splits["test"][0]]).double()
    assert dm.pixel_stats[0] != pytest.approx(float(everything.mean()), abs=1e-9)


def test_pixel_stats_are_exact():
    x = torch.randint(0, 256, (50, 784), dtype=torch.uint8)
    mean, std = pixel_stats(x)
    assert mean == pytest.approx(float(x.double().mean()), rel=1e-12)
    assert std == pytest.approx(float(x.double().std()), rel=1e-12)


def test_raw_model_is_unchanged_by_the_normalisation_code(write_csv):
    torch.manual_seed(0)
    model = LitMNIST()
    x = _data(write_csv).splits["test"][0][:4].float()
    torch.testing.assert_close(model.logits(x), model.net(x), rtol=0, atol=0)


def test_augmentation_touches_training_batches_only(write_csv, tmp_path):
    dm = _data(write_csv, augment=True)
    seen = {}

    class Spy(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.setdefault("train", []).append(batch)

        def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            seen.setdefault("val", []).append(batch)

        def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
            seen.setdefault("test", []).append(batch)

    trainer = L.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path, callbacks=[Spy()], enable_checkpointing=False)
    trainer.fit(LitMNIST(), datamodule=dm)
    trainer.test(LitMNIST(), datamodule=dm, verbose=False)
    train_x, train_y = dm.splits["train"]
    x, _y = seen["train"][0]
    rows = torch.cat([b[1] for b in seen["train"]])
    assert sorted(rows.tolist()) == sorted(train_y.tolist())  # labels untouched
    assert not any(torch.equal(x[0], row) for row in train_x)  # the images were distorted
    assert torch.equal(seen["val"][0][0], dm.splits["val"][0]) and torch.equal(seen["test"][0][0], dm.splits["test"][0])


def test_random_affine_keeps_shape_range_and_mass_roughly():
    torch.manual_seed(0)
    x = torch.zeros(8, 784)
    x.view(8, 28, 28)[:, 8:20, 12:16] = 255
    y = random_affine(x, (28, 28))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 255
    assert not torch.equal(x, y)
    ratio = y.sum(1) / x.sum(1)
    assert ((ratio > 0.7) & (ratio < 1.3)).all()  # rotated/shifted/scaled by a little, not destroyed


def test_random_affine_moves_a_colour_pixel_s_channels_together():
    """Each channel of a colour image is moved by the same warp: the grey image whose channels all hold it, warped,
    is the warped grey image in every channel (a warp per channel, or channels read as pixels, would break that)."""
    grey = torch.zeros(4, 144)
    grey.view(4, 12, 12)[:, 3:9, 5:7] = 255
    colour = grey.view(4, 144, 1).expand(4, 144, 3).reshape(4, 432) * torch.tensor([1.0, 0.5, 0.25]).repeat(144)
    moved_grey = random_affine(grey, (12, 12), generator=torch.Generator().manual_seed(1))
    moved = random_affine(colour, (12, 12, 3), generator=torch.Generator().manual_seed(1)).view(4, 144, 3)
    torch.testing.assert_close(moved, moved_grey.view(4, 144, 1) * torch.tensor([1.0, 0.5, 0.25]))
    assert not torch.equal(moved_grey, grey)


def test_companion_a_colour_row_warped_as_planes_is_not_the_image_warped():
    """The same rows taken as three planes one after the other (torch's layout) and warped so: other values."""
    grey = torch.zeros(4, 144)
    grey.view(4, 12, 12)[:, 3:9, 5:7] = 255
    colour = grey.view(4, 144, 1).expand(4, 144, 3).reshape(4, 432)
    as_planes = random_affine(colour.view(4, 3, 144).reshape(4, 3 * 144).view(4, 36, 12), (36, 12),
                              generator=torch.Generator().manual_seed(1)).view(4, 432)
    right = random_affine(colour, (12, 12, 3), generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(as_planes, right)


def test_cli_links_normalize_into_the_model(write_csv, tmp_path, monkeypatch):
    import sys

    from lit_mnist.apps.fit import main

    monkeypatch.setattr(sys, "argv", ["fit.py"])
    args = ["--data.path", str(write_csv(n=200, classes=12, pixels=100)), "--data.normalize", "true", "--model.layers",
            "[{conv2d: {filters: 4, kernel_size: 3}}, flatten]", "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path),
            "--trainer.enable_progress_bar", "false"]
    assert main(args) == 0
    metrics = json.loads(next(tmp_path.glob("lightning_logs/version_0/metrics.json")).read_text())
    assert metrics["hparams"]["normalize"] is True and metrics["hparams"]["layers"][0]["conv2d"]["filters"] == 4
    assert metrics["num_classes"] == 12 and metrics["image_shape"] == [10, 10]  # the data's sizes, linked in


def test_the_rate_is_constant_by_default_and_a_schedule_is_the_optimizer_s_own():
    default = LitMNIST()
    assert isinstance(default.configure_optimizers(), torch.optim.Optimizer) and default.lr_schedule is None
    scheduled = LitMNIST(optimizer={"adam": {"learning_rate": {"exponential_decay": {
        "initial_learning_rate": 1e-3, "decay_steps": 10, "decay_rate": 0.5}}}})
    optimizer = scheduled.configure_optimizers()
    assert optimizer.keras_flow.schedule is scheduled.lr_schedule and scheduled.lr_schedule(10) == pytest.approx(5e-4)


def test_compare_script_writes_its_table_json_and_figure(write_csv, tmp_path):
    from lit_mnist.apps.compare import main

    out = tmp_path / "compare"
    args = ["--out", str(out), "--only", "dense raw", "dense normalised", "--data.path", str(write_csv(n=200)),
            "--trainer.accelerator", "cpu", "--trainer.max_epochs", "1"]
    assert main(args) == 0
    result = json.loads((out / "compare.json").read_text())
    assert [v["name"] for v in result["variants"]] == ["dense raw (the original)", "dense normalised",
                                                      "dense normalised + augmented"]
    assert all(0 <= v["test_accuracy"] <= 1 and v["parameters"] == 118_346 for v in result["variants"])
    assert "| dense raw (the original) | 1 | 500 |" in (out / "compare.md").read_text()
    assert (out / "compare.png").stat().st_size > 5000


@pytest.mark.parametrize("options, expected", [
    (["--trainer.accelerator", "bogus"], "invalid option: You selected an invalid accelerator name"),
    (["--trainer.accelerator", "tpu"], "invalid option: Requirement 'torch_xla"),  # an ImportError
    (["--only", "zzz"], "--only zzz: no such variant; they are: dense raw (the original); "),
    (["--model.layers", "[{dense: 0}]"], "model.layers item 1 (dense): units must be a positive integer, got 0"),
    (["--model.bogus", "1"], "unrecognized arguments: --model.bogus 1 (compare.py --help lists the options)"),
])
def test_compare_refuses_a_bad_option_in_one_line_before_training(write_csv, tmp_path, capsys, options, expected):
    from lit_mnist.apps.compare import main

    out = tmp_path / "compare"
    args = ["--out", str(out), "--only", "dense raw", "--data.path", str(write_csv(n=200)), *options]
    assert call(main, args) == 2
    err = capsys.readouterr().err
    assert err.lower().startswith(f"error: {expected}".lower()) and err.count("\n") == 1 and not out.exists()


def test_one_cycle_warms_up_to_lr_then_anneals_per_step_with_fixed_betas(write_csv):
    model = LitMNIST(optimizer={"adam": {"learning_rate": {"one_cycle": {"max_lr": 0.01}}, "beta_1": 0.8, "beta_2": 0.99}})
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0)
    seen = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            group = trainer.optimizers[0].param_groups[0]
            seen.append((group["lr"], tuple(group["betas"])))

    trainer.callbacks.append(Record())
    trainer.fit(model, datamodule=MNISTDataModule(path=str(write_csv(n=200)), batch_size=16))
    lrs = [lr for lr, _ in seen]
    assert len(lrs) == 2 * 8  # 128 training rows in batches of 16, two epochs
    assert abs(lrs[0] - 0.01 / 25) < 1e-9 and max(lrs) <= 0.01 and lrs[-1] < lrs[0] / 5
    peak = lrs.index(max(lrs))
    assert 0 < peak < len(lrs) - 1 and all(b == (0.8, 0.99) for _, b in seen)


def test_label_smoothing_moves_the_loss_as_torch_defines_it():
    torch.manual_seed(0)
    x, y = torch.randint(0, 256, (6, 784)).float(), torch.randint(0, 10, (6,))
    plain, smooth = LitMNIST(), LitMNIST(label_smoothing=0.1)
    smooth.load_state_dict(plain.state_dict())
    logits = plain.logits(x)
    expected = torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.1)
    torch.testing.assert_close(smooth.compute_loss((x, y))[0], expected)
    assert not torch.allclose(plain.compute_loss((x, y))[0], expected)


@pytest.mark.parametrize("options", [{"optimizer": {"adam": {"learning_rate": {"one_cycle": {"max_lr": 0.01}}}}, "lr": 0.1},
                                     {"label_smoothing": 1.0}, {"optimizer": {"adam": {"beta_2": 1.0}}}, {"layers": [{"conv2d": {"filters": 0, "kernel_size": 3}}]},
                                     {"class_names": ["a", "b"]}])
def test_bad_recipe_options_are_refused(options):
    with pytest.raises(ValueError):
        LitMNIST(**options)
