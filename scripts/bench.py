"""Speed, measured side by side: python scripts/bench.py --out bench.json

The original workload (the first 42,000 MNIST training rows as a Kaggle-style CSV, 80/20 split,
15 epochs, batch 500, last 20% of the training part validating) is fitted by Lightning and by Keras
(the notebook's own ``fit`` call) in one process, alternating, after a warm-up of each; medians are reported.
Also: CSV parse times (cold and cached), prediction throughput from a checkpoint, the main
command end to end (its first run on a machine, which downloads MNIST, and the median of the runs
after it; beyond its fit and the import of torch and Lightning), the host's time per training step, and on
CUDA the GPU fit against a plain loop and a loop of CUDA graphs (the floor); the report's heatmap at 100 and
1,000 classes; ``make test``'s fast test run; and the first read of CSVs of 1 and 10 times Kaggle's rows (100 with
--scale-100) against pyarrow's own typed read of the same file, then the cached read (memory-mapped), and a fit of
one epoch by fit.py's own code, first with an empty cache and then from it: time and peak memory, each in a process
of its own.
Needs built-in MNIST (set LIT_MNIST_MIRROR).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)  # scripts/ must not shadow the packages

import lightning as L
import torch

from lit_mnist import atomic
from lit_mnist.apps.compare import FAST_RECIPE, variant
from lit_mnist.apps.entry import quiet_process
from lit_mnist.apps.timed_fit import timed_fit
from lit_mnist.data import cache, mnist, reader, sources
from lit_mnist.data.batches import TensorBatches
from lit_mnist.data.datamodule import MNISTDataModule
from lit_mnist.model.module import LitMNIST
from scripts.bench_steps import GROUP, graph_floor_fit, host_seconds_per_step, plain_fit

TARGETS = {"fit_ratio": 0.5, "csv_cold_seconds": 1.0, "csv_cached_seconds": 0.1, "fit_py_seconds": 15.0,
           "cnn_fast": {"mean_accuracy": 0.990, "min_accuracy": 0.989, "fit_seconds": 5.0, "fit_ratio": 1.0,
                        "lightning_over_plain": 1.15},
           "report_heatmap_seconds": {"100": 3.0, "1000": 30.0},
           # make test on a 2-core machine: the whole run, and any one test in it
           "test_fast": {"seconds": 90.0, "slowest_test_seconds": 5.0},
           # the first read of 10 times Kaggle's rows: its time over pyarrow's typed read of the file, its peak RSS
           "scale_10x": {"time_ratio": 1.3, "peak_bytes": "1.5 * pixel bytes + 0.6e9"},
           # on an H100/H200-class GPU
           "gpu": {"fit_seconds": 0.5, "cnn_fast_fit_seconds": 0.75, "cnn_fast_mean_accuracy": 0.990,
                   "fit_py_overhead_seconds": 3.0}}


def median_time(fn, reps: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def lightning_fit(datamodule: MNISTDataModule, seed: int, accelerator: str = "cpu") -> tuple[float, float, LitMNIST]:
    L.seed_everything(seed, verbose=False)
    module = LitMNIST()
    seconds, trainer = timed_fit(module, datamodule, 15, accelerator)
    return seconds, float(trainer.callback_metrics["test/acc"]), module


def keras_fit(train_part, test, seed: int) -> tuple[float, float]:
    from parity import keras_reference
    from parity.twins import ORIGINAL

    model = ORIGINAL.keras(seed)
    _, seconds = keras_reference.fit_as_notebook(model, *train_part)
    accuracy = float((keras_reference.predict(model, test[0]).argmax(1) == test[1]).mean())
    return seconds, accuracy


def mnist_csv(folder: Path, rows: int | None = None) -> Path:
    """MNIST's training digits (the first ``rows`` of them) as a Kaggle-style CSV, ``label,pixel0..pixel783``."""
    mnist.ensure_mnist(cache.data_dir())
    train = mnist.load_mnist(cache.data_dir())["train"]
    path = folder / f"train{rows or ''}.csv"
    if not path.is_file():
        mnist.write_digits_csv(path, reader.Digits(train.pixels[:rows], train.labels[:rows]))
    return path


def kaggle_style_csv(folder: Path) -> Path:
    return mnist_csv(folder, 42_000)


def bench_fit(args, folder: Path) -> dict:
    datamodule = MNISTDataModule(path=str(kaggle_style_csv(folder)))
    datamodule.setup("fit")
    train_part = tuple(t.numpy() for t in datamodule.train_part)
    test = tuple(t.numpy() for t in datamodule.splits["test"])
    sides = {"lightning": lambda seed: lightning_fit(datamodule, seed)[:2]}
    if not args.skip_keras:
        sides["keras"] = lambda seed: keras_fit(train_part, test, seed)
    for run in sides.values():  # warm-up: imports, graph tracing, allocator
        run(100)
    runs = {name: [] for name in sides}
    for rep in range(args.reps):  # alternate, so that machine noise hits both sides alike
        for name, run in sides.items():
            runs[name].append(run(rep))
            print(f"  {name:9s} rep {rep}: {runs[name][-1][0]:.2f} s, accuracy {runs[name][-1][1]:.4f}", flush=True)
    out = {"fit_seconds": {n: statistics.median(s for s, _ in r) for n, r in runs.items()},
           "fit_seconds_runs": {n: [round(s, 3) for s, _ in r] for n, r in runs.items()},
           "test_accuracy": {n: [round(a, 4) for _, a in r] for n, r in runs.items()},
           "workload": {"train_rows": len(datamodule.splits["train"][0]), "val_rows": len(datamodule.splits["val"][0]),
                        "test_rows": len(test[1]), "epochs": 15, "batch_size": 500}}
    if "keras" in runs:
        out["fit_ratio"] = out["fit_seconds"]["lightning"] / out["fit_seconds"]["keras"]
    return out


def bench_gpu(args, folder: Path) -> dict:
    """The original workload on the GPU: Lightning's fit (its steps CUDA graphs, the batches handed over one at a
    time and in groups of GROUP, and without graphs), the plain loop's and the graph floor's, alternating after a
    warm-up of each; and the fast CNN over 5 seeds."""
    csv = str(kaggle_style_csv(folder))
    datamodule, grouped = MNISTDataModule(path=csv), MNISTDataModule(path=csv, steps_per_execution=GROUP)
    datamodule.setup("fit")
    grouped.setup("fit")
    cuda = torch.device("cuda")

    def fresh(seed: int, **options) -> LitMNIST:
        L.seed_everything(seed, verbose=False)
        return LitMNIST(**options)

    accuracy = {}

    def lightning(seed: int, data: MNISTDataModule = datamodule, **options) -> float:
        seconds, trainer = timed_fit(fresh(seed, **options), data, 15, "gpu")
        kind = "without_graphs" if options else "graphs" if data is datamodule else f"steps_per_execution_{GROUP}"
        accuracy.setdefault(kind, []).append(round(float(trainer.callback_metrics["test/acc"]), 4))
        return seconds

    sides = {"lightning": lightning,
             f"lightning_steps_per_execution_{GROUP}": lambda seed: lightning(seed, grouped),
             "lightning_without_graphs": lambda seed: lightning(seed, cuda_graphs=False),
             "plain_loop": lambda seed: plain_fit(fresh(seed), datamodule, 15, cuda),
             "graph_floor": lambda seed: graph_floor_fit(fresh(seed), datamodule, 15)}
    for run in sides.values():
        run(100)
    runs = {name: [] for name in sides}
    for rep in range(args.reps):
        for name, run in sides.items():
            runs[name].append(run(rep))
        print("  gpu rep " + ", ".join(f"{n} {r[-1]:.3f} s" for n, r in runs.items()), flush=True)
    out = {"gpu_fit_seconds": {n: statistics.median(r) for n, r in runs.items()},
           "gpu_fit_seconds_runs": {n: [round(s, 3) for s in r] for n, r in runs.items()},
           "gpu_lightning_test_accuracy": accuracy}
    fast = [recipe_lightning_fit(seed, "gpu") for seed in range(-1, 5)][1:]  # the first warms up
    out["gpu_cnn_fast"] = {"test_accuracy": [round(a, 4) for _, a in fast], "fit_seconds": [round(s, 3) for s, _ in fast],
                           "mean_accuracy": statistics.mean(a for _, a in fast),
                           "median_fit_seconds": statistics.median(s for s, _ in fast)}
    return out


def recipe_lightning_fit(seed: int, accelerator: str = "cpu") -> tuple[float, float]:
    """The recipe as ``fit.py --config lit_mnist/configs/cnn_fast.yaml`` trains it, with nothing written."""
    cli = variant(["--config", str(FAST_RECIPE), "--trainer.accelerator", accelerator], max(seed, 0))
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    seconds = time.perf_counter() - start
    cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    return seconds, float(cli.trainer.callback_metrics["test/acc"])


def recipe_keras_fit(seed: int) -> tuple[float, float]:
    """The recipe's net, batches, schedule and loss in Keras (its Adam: Keras's, with the recipe's settings)."""
    from parity import keras_reference
    from parity.twins import Twins

    cli = variant(["--config", str(FAST_RECIPE)], seed)
    data, trainer = cli.datamodule, cli.trainer
    twins = Twins.of(cli.model, data.pixel_stats, trainer.max_epochs, data.hparams.batch_size,
                     trainer.check_val_every_n_epoch)
    train, val, test = (tuple(t.numpy() for t in data.splits[s]) for s in ("train", "val", "test"))
    model = twins.keras(seed, twins.steps_per_epoch(len(train[0])))
    seconds = keras_reference.fit(model, twins, train, val, seed)
    return seconds, float((keras_reference.predict(model, test[0]).argmax(1) == test[1]).mean())


def recipe_plain_fit(seed: int) -> tuple[float, float]:
    """The recipe as a plain PyTorch loop, the floor Lightning's fit is measured against: the same module
    (net, initialisation, loss), the same batches, optimizer and one-cycle schedule, and one validation
    pass at the end, as the recipe's ``check_val_every_n_epoch``; no Trainer, hooks, metrics or logging."""
    cli = variant(["--config", str(FAST_RECIPE)], seed)
    module, datamodule, epochs = cli.model, cli.datamodule, cli.trainer.max_epochs
    hp = module.hparams
    (name, args), = hp.optimizer.items()
    if name != "torch_adam" or "one_cycle" not in args["lr"] or cli.trainer.check_val_every_n_epoch != epochs:
        raise SystemExit("error: the plain loop follows a recipe of stock Adam, one-cycle and one validation "
                         f"pass; {FAST_RECIPE} asks for something else")
    module.pixel_mean.fill_(datamodule.pixel_stats[0])
    module.pixel_std.fill_(datamodule.pixel_stats[1])
    epoch = [0]
    batches = TensorBatches(*datamodule.splits["train"], datamodule.hparams.batch_size, shuffle=True, seed=seed,
                            epoch=lambda: epoch[0])
    start = time.perf_counter()
    optimizer = module.make_optimizer()
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args["lr"]["one_cycle"]["max_lr"],
                                                   total_steps=epochs * len(batches), cycle_momentum=False)
    optimizer.keras_flow.schedule = None  # torch's scheduler steps it here, as the recipe's did
    module.train()
    for epoch[0] in range(epochs):
        for x, y in batches:
            loss = torch.nn.functional.cross_entropy(module.logits(x.float()), y, label_smoothing=hp.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    module.eval()
    with torch.no_grad():
        val_x, val_y = datamodule.splits["val"]
        module.logits(val_x.float()).argmax(1).eq(val_y).sum().item()
        seconds = time.perf_counter() - start
        test_x, test_y = datamodule.splits["test"]
        return seconds, module.logits(test_x.float()).argmax(1).eq(test_y).float().mean().item()


def bench_cnn_fast(args, seeds: int = 5) -> dict:
    """The fast CNN recipe (``lit_mnist/configs/cnn_fast.yaml``, read as compare.py's variant) over 5 seeds,
    and the same recipe in Keras (same arrays, net, batches, schedule and loss), alternating in this process
    after a warm-up of each."""
    sides = {"lightning": recipe_lightning_fit, "plain": recipe_plain_fit}
    if not args.skip_keras:
        sides["keras"] = recipe_keras_fit
    for run in sides.values():
        run(100)
    runs = {name: [] for name in sides}
    for seed in range(seeds):
        for name, run in sides.items():
            runs[name].append(run(seed))
            print(f"  cnn_fast {name:9s} seed {seed}: {runs[name][-1][0]:.2f} s, accuracy {runs[name][-1][1]:.4f}",
                  flush=True)
    out = {"recipe": str(FAST_RECIPE.relative_to(REPO)), "test_accuracy": [round(a, 4) for _, a in runs["lightning"]],
           "fit_seconds": [round(s, 3) for s, _ in runs["lightning"]]}
    out["mean_accuracy"] = statistics.mean(out["test_accuracy"])
    out["median_fit_seconds"] = statistics.median(out["fit_seconds"])
    out["plain_fit_seconds"] = [round(s, 3) for s, _ in runs["plain"]]
    out["plain_test_accuracy"] = [round(a, 4) for _, a in runs["plain"]]
    out["lightning_over_plain"] = out["median_fit_seconds"] / statistics.median(out["plain_fit_seconds"])
    if "keras" in runs:
        out["keras_fit_seconds"] = [round(s, 3) for s, _ in runs["keras"]]
        out["keras_test_accuracy"] = [round(a, 4) for _, a in runs["keras"]]
        out["fit_ratio"] = out["median_fit_seconds"] / statistics.median(out["keras_fit_seconds"])
    return {"cnn_fast": out}


def bench_csv(folder: Path) -> dict:
    source = mnist_csv(folder)
    cold, cold_runs = median_time(lambda: reader.parse_digits(source), 3)
    sources.load(source, cache_dir=folder / "cache")  # fills the cache
    cached, cached_runs = median_time(lambda: sources.load(source, cache_dir=folder / "cache"), 5)
    return {"csv_load_seconds": {"cold": cold, "cached": cached, "cold_runs": cold_runs, "cached_runs": cached_runs,
                                 "rows": 60000}}


# one read of a CSV in a process of its own: its time, and the process's peak RSS (VmHWM: getrusage's maximum
# would carry the parent's over exec)
_SCALE_READ = """
import json, sys, time
path, side, cache_dir = sys.argv[1], sys.argv[2], sys.argv[3]
if side == "parse_digits":
    from lit_mnist.data.reader import parse_digits
    start = time.perf_counter()
    rows = len(parse_digits(path))
elif side == "cached":  # the entry is there: mapped, not read
    from lit_mnist.data.sources import load
    start = time.perf_counter()
    digits = load(path, cache_dir=cache_dir)
    rows, mapped = len(digits), type(digits.pixels).__name__ == "memmap"
else:
    import pyarrow as pa, pyarrow.csv as pacsv
    with open(path) as f:
        types = dict.fromkeys(f.readline().strip().split(","), pa.uint8())
    start = time.perf_counter()
    rows = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types)).num_rows
seconds = time.perf_counter() - start
with open("/proc/self/status") as f:
    peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
print(json.dumps({"rows": rows, "seconds": seconds, "peak_bytes": peak, "mapped": side == "cached" and mapped}))
"""


# a fit of one epoch by fit.py's own code (entry.call of apps.fit.main), its peak RSS and the fit's seconds
_SCALE_FIT = """
import json, sys
from lit_mnist.apps.entry import call, quiet_process
quiet_process()
from lit_mnist.apps.fit import main
code = call(main, sys.argv[1:])
with open("/proc/self/status") as f:
    peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
print(json.dumps({"code": code, "peak_bytes": peak}))
"""


def bench_scale(args, folder: Path) -> dict:
    """The first read (``parse_digits``, no cache) of a CSV of N times Kaggle's rows, against pyarrow's own read
    of the same file with every column typed uint8, and the cached read (``sources.load`` of the entry a read left,
    memory-mapped): time and peak RSS, each read in a fresh process, the three sides in turn ``--scale-reps``
    times; then fit.py's fit of one epoch of the default model on the file, with an empty cache (the first read)
    and from the cache, in turn; medians and every run."""
    out = {}
    for times in (1, 10, 100) if args.scale_100 else (1, 10):
        path = scale_csv(folder, times)
        runs = {"parse_digits": [], "pyarrow": [], "cached": []}
        for _ in range(args.scale_reps):
            for side, side_runs in runs.items():
                if side == "cached":
                    _scale_read(path, "fill", folder / "cache")
                side_runs.append(_scale_read(path, side, folder / "cache"))
                cache.clear(folder / "cache")
        rows = runs["pyarrow"][0]["rows"]
        if any(run["rows"] != rows for side_runs in runs.values() for run in side_runs):
            raise RuntimeError(f"{path}: the two reads disagree on the rows: {runs}")
        out[f"{times}x"] = _scale_figures(path, rows, runs)
        out[f"{times}x"].update(_epoch_figures(path, folder, args.scale_reps))
        print(f"  {times}x: {_scale_line(out[f'{times}x'])}", flush=True)
        if times > 1:
            path.unlink()
    return {"scale": out}


def _epoch_figures(path: Path, folder: Path, reps: int) -> dict:
    """fit.py's one-epoch fit of the file, first with an empty cache, then from the cache, then from the cache with
    batches read from the cache's file (``--data.memory_share 0``), ``reps`` times in turn."""
    runs = {"first_fit": [], "cached_fit": [], "mapped_fit": []}
    for _ in range(reps):
        cache.clear(folder / "cache")
        for side, side_runs in runs.items():
            side_runs.append(_scale_fit(path, folder, *(["--data.memory_share", "0"] if side == "mapped_fit" else [])))
    cache.clear(folder / "cache")
    figures = {}
    for side, side_runs in runs.items():
        figures[f"{side}_seconds"] = statistics.median(run["seconds"] for run in side_runs)
        figures[f"{side}_epoch_seconds"] = statistics.median(run["fit_seconds"] for run in side_runs)
        figures[f"{side}_peak_mb"] = statistics.median(run["peak_bytes"] for run in side_runs) / 1e6
        figures[f"{side}_runs"] = [{"seconds": round(run["seconds"], 2), "fit_seconds": round(run["fit_seconds"], 2),
                                    "peak_mb": round(run["peak_bytes"] / 1e6)} for run in side_runs]
    train_rows = runs["first_fit"][0]["train_rows"]
    figures["train_rows"] = train_rows
    figures["epoch_us_per_row"] = figures["cached_fit_epoch_seconds"] / train_rows * 1e6
    figures["mapped_epoch_us_per_row"] = figures["mapped_fit_epoch_seconds"] / train_rows * 1e6
    return figures


def _scale_fit(path: Path, folder: Path, *extra: str) -> dict:
    root = folder / "fit"
    shutil.rmtree(root, ignore_errors=True)
    options = ["--data.path", str(path), "--data.cache_dir", str(folder / "cache"), "--trainer.max_epochs", "1",
               "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
               "--trainer.accelerator", "cpu", *extra]
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", _SCALE_FIT, *options], cwd=REPO, capture_output=True,
                            check=False, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"fit.py failed on {path}:\n{result.stderr[-2000:]}")
    run = json.loads(result.stdout.strip().splitlines()[-1])
    metrics = json.loads(next(root.glob("lightning_logs/version_*/metrics.json")).read_text())
    return {"seconds": seconds, "peak_bytes": run["peak_bytes"], "fit_seconds": metrics["fit_seconds"],
            "train_rows": metrics["train_samples"]}


def scale_csv(folder: Path, times: int) -> Path:
    """Kaggle's rows ``times`` over, as one CSV: the first 42,000 MNIST training rows, repeated."""
    one = kaggle_style_csv(folder)
    if times == 1:
        return one
    path = folder / f"train_x{times}.csv"
    with open(one, "rb") as source:
        header, body = source.readline(), source.read()
    with open(path, "wb") as f:
        f.write(header)
        f.writelines(body for _ in range(times))
    return path


def _scale_read(path: Path, side: str, cache_dir: Path) -> dict:
    """``side`` in a process of its own: parse_digits, pyarrow, cached, or fill (a read that leaves the entry)."""
    side, cached = ("cached", False) if side == "fill" else (side, True)
    result = subprocess.run([sys.executable, "-c", _SCALE_READ, str(path), side, str(cache_dir)], cwd=REPO,
                            capture_output=True, check=False, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{side} failed on {path}:\n{result.stderr[-2000:]}")
    run = json.loads(result.stdout.strip().splitlines()[-1])
    if cached and side == "cached" and not run["mapped"]:
        raise RuntimeError(f"the cached read of {path} did not come from the cache:\n{result.stdout[-2000:]}")
    return run


def _scale_figures(path: Path, rows: int, runs: dict[str, list[dict]]) -> dict:
    pixel_bytes = rows * 784
    figures = {"rows": rows, "file_mb": path.stat().st_size / 1e6, "pixel_mb": pixel_bytes / 1e6}
    for side, side_runs in runs.items():
        figures[f"{side}_seconds"] = statistics.median(run["seconds"] for run in side_runs)
        figures[f"{side}_peak_mb"] = statistics.median(run["peak_bytes"] for run in side_runs) / 1e6
        figures[f"{side}_runs"] = [{"seconds": round(run["seconds"], 2), "peak_mb": round(run["peak_bytes"] / 1e6)}
                                   for run in side_runs]
    figures["time_ratio"] = figures["parse_digits_seconds"] / figures["pyarrow_seconds"]
    figures["cached_over_first_peak"] = figures["cached_peak_mb"] / figures["parse_digits_peak_mb"]
    figures["peak_over_pixels"] = figures["parse_digits_peak_mb"] / figures["pixel_mb"]
    figures["peak_target_mb"] = 1.5 * figures["pixel_mb"] + 600
    return figures


def _scale_line(f: dict) -> str:
    return (f"{f['rows']:,} rows, {f['file_mb']:.0f} MB: first read {f['parse_digits_seconds']:.1f} s, peak "
            f"{f['parse_digits_peak_mb']:.0f} MB ({f['peak_over_pixels']:.2f} x the pixels' {f['pixel_mb']:.0f} MB; "
            f"target {f['peak_target_mb']:.0f} MB at 10x); pyarrow's typed read {f['pyarrow_seconds']:.1f} s, peak "
            f"{f['pyarrow_peak_mb']:.0f} MB; time ratio {f['time_ratio']:.2f} (target <= 1.3 at 10x); cached read "
            f"{f['cached_seconds']:.2f} s, peak {f['cached_peak_mb']:.0f} MB (target < 1 s at 10x); a fit of one epoch: "
            f"first {f['first_fit_seconds']:.1f} s, peak {f['first_fit_peak_mb']:.0f} MB; cached "
            f"{f['cached_fit_seconds']:.1f} s, peak {f['cached_fit_peak_mb']:.0f} MB, its epoch "
            f"{f['cached_fit_epoch_seconds']:.1f} s ({f['epoch_us_per_row']:.1f} us a training row); batches read "
            f"from the cache's file {f['mapped_fit_seconds']:.1f} s, peak {f['mapped_fit_peak_mb']:.0f} MB, its epoch "
            f"{f['mapped_fit_epoch_seconds']:.1f} s ({f['mapped_epoch_us_per_row']:.1f} us a row)")


def bench_predict(folder: Path) -> dict:
    datamodule = MNISTDataModule()
    trainer = L.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0, logger=False, accelerator="cpu",
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(LitMNIST(), datamodule=datamodule)  # one step: a real Lightning checkpoint; speed needs no accuracy
    path = folder / "model.ckpt"
    trainer.save_checkpoint(path)
    x = datamodule.splits["test"][0]
    start = time.perf_counter()
    loaded = LitMNIST.load_from_checkpoint(path, weights_only=True).eval()
    load_seconds = time.perf_counter() - start

    def predict():
        with torch.inference_mode():
            for batch in x.split(1000):
                loaded(batch)

    predict()
    seconds, _ = median_time(predict, 5)
    return {"predict_images_per_second": len(x) / seconds, "checkpoint_load_seconds": load_seconds}


def bench_report() -> dict:
    """The confusion heatmap of 100 and 1,000 classes, made and rendered as a run's report does (its tick labels
    measured on the figure's own canvas)."""
    import numpy as np

    from lit_mnist.apps import plots

    seconds = {}
    for k in (100, 1000):
        confusion = np.random.default_rng(0).integers(0, 50, (k, k))
        seconds[str(k)], _ = median_time(lambda c=confusion: plots.render(plots.confusion_figure(c)), 3 if k == 100 else 1)
    return {"report_heatmap_seconds": seconds}


def bench_test_fast() -> dict:
    """``make test``'s test run (the Makefile's fast set), in a process of its own: its wall time and its slowest
    test (pytest's --durations)."""
    fast = re.search(r"^FAST := (.+)$", (REPO / "Makefile").read_text(), re.MULTILINE).group(1)
    command = [sys.executable, "-m", "pytest", "-m", fast, "--hypothesis-profile", "fast", "--durations", "1", "-q",
               "-p", "no:cacheprovider"]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO, capture_output=True, check=False, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"the fast tests failed:\n{result.stdout[-2000:]}")
    slowest = re.search(r"^([0-9.]+)s (call|setup|teardown) +(\S+)$", result.stdout, re.MULTILINE)
    return {"test_fast": {"seconds": seconds, "slowest_test_seconds": float(slowest.group(1)),
                          "slowest_test": slowest.group(3), "summary": result.stdout.strip().splitlines()[-1]}}


def bench_fit_py(folder: Path, reps: int) -> dict:
    """``scripts/fit.py`` as a user runs it, each time in a fresh process, in a new working folder.

    The first run downloads MNIST from the mirror (``fit_py_first_run_seconds``); the figure
    is the median of ``reps`` runs after it, which find the data prepared, as every later run does."""
    data = folder / "fit_py_data"
    env = dict(os.environ, PYTHONUNBUFFERED="1", LIT_MNIST_DATA_DIR=str(data), LIT_MNIST_CACHE_DIR=str(data / "cache"))
    imports = [_seconds([sys.executable, "-c", "import torch, lightning"], env) for _ in range(3)]
    times, fits, last_line = [], [], ""
    for rep in range(reps + 1):
        command = [sys.executable, str(REPO / "scripts" / "fit.py"), "--trainer.default_root_dir",
                   str(folder / f"runs{rep}"), "--trainer.enable_progress_bar", "false"]
        start = time.perf_counter()
        result = subprocess.run(command, cwd=folder, env=env, capture_output=True, check=False, text=True)
        times.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise RuntimeError(f"scripts/fit.py failed:\n{result.stderr[-2000:]}")
        last_line = result.stdout.strip().splitlines()[-1]
        fits.append(json.loads(next((folder / f"runs{rep}").glob("lightning_logs/*/metrics.json")).read_text())[
            "fit_seconds"])
        print(f"  scripts/fit.py {'first run' if rep == 0 else f'run {rep}'}: {times[-1]:.1f} s", flush=True)
    beyond = [t - f - statistics.median(imports) for t, f in zip(times[1:], fits[1:])]
    return {"fit_py_seconds": statistics.median(times[1:]), "fit_py_runs": [round(t, 2) for t in times[1:]],
            "fit_py_first_run_seconds": times[0], "fit_py_last_line": last_line,
            "fit_py_fit_seconds": [round(f, 3) for f in fits[1:]],
            "import_torch_lightning_seconds": statistics.median(imports),
            "fit_py_overhead_seconds": statistics.median(beyond)}


def _seconds(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, capture_output=True, check=True)
    return time.perf_counter() - start


def gemm_gflops(reps: int = 7) -> float:
    """The machine's speed now: the first layer's matmul (500x784 by 784x128), median of ``reps`` timings.

    VMs drift (here by up to 2x within an hour); recorded before and after, it says how fast the machine
    ran while the other figures were taken."""
    x, w = torch.rand(500, 784), torch.rand(784, 128)
    for _ in range(20):
        x @ w
    seconds, _ = median_time(lambda: [x @ w for _ in range(100)], reps)
    return 2 * 500 * 784 * 128 * 100 / seconds / 1e9


def device_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "lightning": L.__version__, "python": platform.python_version()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


SECTIONS = ("csv", "scale", "predict", "fit_py", "fit", "cnn_fast", "host_step", "gpu", "report", "test_fast", "chain")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench.json"))
    parser.add_argument("--reps", type=int, default=5, help="timed repetitions per side, after one warm-up")
    parser.add_argument("--skip-keras", action="store_true", help="no TensorFlow: Lightning figures only")
    parser.add_argument("--skip-fit-py", action="store_true", help="skip the end-to-end runs of scripts/fit.py")
    parser.add_argument("--fit-py-reps", type=int, default=3, help="end-to-end runs of scripts/fit.py (median)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, help="run these sections alone (default: all)")
    parser.add_argument("--scale-100", action="store_true", help="scale: 100 times Kaggle's rows too (7.7 GB of CSV)")
    parser.add_argument("--scale-reps", type=int, default=2, help="scale: reads per side and size, alternating")
    args = parser.parse_args()
    if args.reps < 1 or args.fit_py_reps < 1 or args.scale_reps < 1:
        parser.error("--reps, --fit-py-reps and --scale-reps must be at least 1")
    warnings.filterwarnings("ignore")
    quiet_process()
    result = {"device": device_info()}
    result["device"]["gemm_gflops_before"] = gemm_gflops()
    chosen = [s for s in (args.only or SECTIONS) if not (s == "fit_py" and args.skip_fit_py)
              and not (s == "gpu" and not torch.cuda.is_available())]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sections = {"csv": lambda: bench_csv(folder), "scale": lambda: bench_scale(args, folder),
                    "predict": lambda: bench_predict(folder),
                    "fit_py": lambda: bench_fit_py(folder, args.fit_py_reps), "fit": lambda: bench_fit(args, folder),
                    "cnn_fast": lambda: bench_cnn_fast(args), "gpu": lambda: bench_gpu(args, folder),
                    "host_step": lambda: host_seconds_per_step("gpu" if torch.cuda.is_available() else "cpu"),
                    "report": bench_report, "test_fast": bench_test_fast, "chain": lambda: bench_chain(args)}
        for name in chosen:
            print(f"{name} ...", flush=True)
            result.update(sections[name]())
    result["device"]["gemm_gflops_after"] = gemm_gflops()
    result["targets"] = TARGETS
    atomic.write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(summary(result))
    return 0


def bench_chain(args) -> dict:
    """A chain's training step (forward, backward, on a batch of 500) in a KerasNet, which runs a chain as a
    Sequential and a graph by its plan, against its modules in a bare nn.Sequential: the graph support costs a chain
    nothing. Alternating, after a warm-up; the original dense net and the shipped CNN."""
    from collections import OrderedDict

    from lit_mnist.model.net import KerasNet, build_net, graph_plan

    out = {}
    for name, layers in (("dense", None), ("cnn", _config_layers("cnn.yaml"))):
        torch.manual_seed(0)
        net = build_net(layers, 10, (28, 28))
        bare = torch.nn.Sequential(OrderedDict(net.named_children()))
        graph = KerasNet(list(net.layers))
        graph.plan = graph_plan(list(net.layers))  # the same chain, run as a graph would be
        x, y = torch.rand(500, 784) * 255, torch.randint(0, 10, (500,))

        sides = {"keras_net": net, "bare_sequential": bare, "as_a_graph": graph}
        runs = {side: [] for side in sides}
        for _ in range(2):
            for model in sides.values():
                _train_step(model, x, y)
        for _ in range(max(args.reps, 5)):
            for side, model in sides.items():
                start = time.perf_counter()
                _train_step(model, x, y)
                runs[side].append(time.perf_counter() - start)
        medians = {side: statistics.median(r) for side, r in runs.items()}
        out[name] = {"step_seconds": medians, "runs": {k: [round(v, 5) for v in r] for k, r in runs.items()},
                     "keras_net_over_bare": medians["keras_net"] / medians["bare_sequential"]}
    return {"chain_step": out}


def _train_step(model, x, y) -> None:
    torch.nn.functional.cross_entropy(model(x), y).backward()


def _config_layers(name: str):
    import yaml

    return yaml.safe_load((REPO / "lit_mnist" / "configs" / name).read_text())["model"]["layers"]


def summary(r: dict) -> str:
    device = r["device"]
    lines = [(f"device: {device['cpu']}, {device['torch_threads']} threads; first-layer matmul "
             f"{device['gemm_gflops_before']:.0f} GFLOP/s before, {device['gemm_gflops_after']:.0f} after")]
    if "fit_seconds" in r:
        lines.append("fit (median): " + ", ".join(f"{k} {v:.2f} s" for k, v in r["fit_seconds"].items())
                     + (f"; ratio {r['fit_ratio']:.2f} (target <= {TARGETS['fit_ratio']})" if "fit_ratio" in r else ""))
    if "csv_load_seconds" in r:
        csv = r["csv_load_seconds"]
        lines.append(f"CSV 60,000 rows: cold {csv['cold']:.3f} s, cached {csv['cached']:.3f} s")
    for times, figures in r.get("scale", {}).items():
        lines.append(f"CSV of {times} Kaggle's rows: {_scale_line(figures)}")
    if "predict_images_per_second" in r:
        lines.append(f"predict: {r['predict_images_per_second']:,.0f} images/s")
    if "fit_py_seconds" in r:
        lines.append(f"scripts/fit.py end to end (median of {len(r['fit_py_runs'])}): {r['fit_py_seconds']:.1f} s; "
                     f"first run, with the download: {r['fit_py_first_run_seconds']:.1f} s; beyond its fit and the "
                     f"import of torch and Lightning ({r['import_torch_lightning_seconds']:.1f} s): "
                     f"{r['fit_py_overhead_seconds']:.1f} s")
    if "host_seconds_per_step" in r:
        lines.append("host time per step (a one-layer net, batches of 8): " + ", ".join(
            f"{k} {v * 1e6:.0f} us" for k, v in r["host_seconds_per_step"].items()))
    if "cnn_fast" in r:
        c = r["cnn_fast"]
        lines.append(f"cnn_fast: accuracy mean {c['mean_accuracy']:.4f}, min {min(c['test_accuracy']):.4f}; "
                     f"median fit {c['median_fit_seconds']:.2f} s (a plain PyTorch loop "
                     f"{statistics.median(c['plain_fit_seconds']):.2f} s: x{c['lightning_over_plain']:.2f})"
                     + (f"; Keras {statistics.median(c['keras_fit_seconds']):.2f} s, ratio {c['fit_ratio']:.2f}"
                        if "fit_ratio" in c else ""))
    if "report_heatmap_seconds" in r:
        lines.append("confusion heatmap, made and rendered: " + ", ".join(
            f"{k} classes {v:.2f} s" for k, v in r["report_heatmap_seconds"].items()))
    if "test_fast" in r:
        t = r["test_fast"]
        lines.append(f"make test's run: {t['seconds']:.1f} s ({t['summary']}); slowest test {t['slowest_test_seconds']:.2f} s "
                     f"({t['slowest_test']}); targets {TARGETS['test_fast']['seconds']:.0f} s and "
                     f"{TARGETS['test_fast']['slowest_test_seconds']:.0f} s")
    if "chain_step" in r:
        lines.append("a chain's training step (median): " + "; ".join(
            f"{name} " + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in c["step_seconds"].items())
            + f" (KerasNet / bare Sequential {c['keras_net_over_bare']:.3f})" for name, c in r["chain_step"].items()))
    if "gpu_fit_seconds" in r:
        lines.append(f"GPU fit ({r['device']['gpu']}, medians): " + ", ".join(
            f"{k} {v:.3f} s" for k, v in r["gpu_fit_seconds"].items()))
        c = r["gpu_cnn_fast"]
        lines.append(f"GPU cnn_fast: accuracy mean {c['mean_accuracy']:.4f}, min {min(c['test_accuracy']):.4f}; "
                     f"median fit {c['median_fit_seconds']:.3f} s")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
