"""Hostile Keras files, built by hand with h5py and zipfile in Keras's layouts: each is refused in one line (exit 2,
no traceback), nothing is written, no byte of a planted local file reaches an output, and nothing is read past the
limits. The honest file they start from imports."""

import io
import json
import zipfile

import h5py
import numpy as np
import pytest

from lit_mnist.apps import import_keras
from lit_mnist.apps.entry import call

SECRET = b"SECRET-KEY-0123456789abcdefghijklmnopqrstuvwxyzABCDEF"[:48]  # 48 bytes: a 4x3 float32 kernel's
KERNEL, BIAS = np.arange(12, dtype=np.float32).reshape(4, 3) / 10, np.zeros(3, np.float32)


def _config(units=3, name="dense") -> dict:
    dense = {"class_name": "Dense", "config": {"name": name, "units": units, "activation": "softmax", "use_bias": True}}
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "input_layer"}}, dense]}}


def _weights(write_vars=None, models=()) -> bytes:
    """model.weights.h5 as Keras 3 writes it (layers/dense/vars/0 and 1, under layers/<model>/ for each of
    ``models`` it is nested in); ``write_vars(h5, vars_group)`` writes the variables instead of the honest kernel
    and bias."""
    data = io.BytesIO()
    with h5py.File(data, "w") as h5:
        variables = h5.create_group("".join(f"layers/{m}/" for m in models) + "layers/dense/vars")
        variables.attrs["name"] = "dense"
        if write_vars is None:
            variables["0"], variables["1"] = KERNEL, BIAS
        else:
            write_vars(h5, variables)
    return data.getvalue()


def _keras(path, config=None, weights=None, extra=()) -> str:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", json.dumps(config or _config()))
        archive.writestr("model.weights.h5", weights if weights is not None else _weights())
        for name, content in extra:
            archive.writestr(name, content)
    return str(path)


def _h5(path, write_weights=None) -> str:
    """An .h5 file as Keras 2 writes it: model_config, model_weights/dense/dense/kernel:0 and bias:0."""
    with h5py.File(path, "w") as h5:
        h5.attrs["model_config"] = json.dumps(_config())
        h5.attrs["keras_version"] = "2.15.0"
        group = h5.create_group("model_weights/dense")
        group.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
        if write_weights is None:
            group["dense/kernel:0"], group["dense/bias:0"] = KERNEL, BIAS
        else:
            write_weights(h5, group)
    return str(path)


def _refused(tmp_path, capsys, model, expected, *options):
    out = tmp_path / "out" / "model.ckpt"
    out.parent.mkdir(exist_ok=True)
    assert call(import_keras.main, [str(model), "--out", str(out), *options]) == 2
    printed = capsys.readouterr()
    assert printed.err.startswith(f"error: {model}: ") and printed.err.count("\n") == 1, printed.err
    assert expected in printed.err, printed.err
    assert "Traceback" not in printed.err and SECRET.decode() not in printed.out + printed.err
    assert list((tmp_path / "out").iterdir()) == []  # nothing written


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "id_secret"
    path.write_bytes(SECRET)
    return path


def test_the_honest_files_import(tmp_path, capsys):
    for model in (_keras(tmp_path / "m.keras"), _h5(tmp_path / "m.h5")):
        out = tmp_path / f"{model}.ckpt"
        assert call(import_keras.main, [model, "--out", str(out)]) == 0, capsys.readouterr().err
        assert out.is_file()


@pytest.mark.parametrize("layout", ["keras", "h5"])
def test_a_weight_kept_in_a_local_file_is_refused_and_never_read(tmp_path, capsys, secret, layout):
    def external(h5, group, name):
        group.create_dataset(name, shape=(4, 3), dtype="f4", external=[(str(secret), 0, 48)])

    if layout == "keras":
        model = _keras(tmp_path / "m.keras", weights=_weights(lambda h5, v: (external(h5, v, "0"),
                                                                               v.create_dataset("1", data=BIAS))))
        where = "layers/dense/vars/0"
    else:
        model = _h5(tmp_path / "m.h5", lambda h5, g: (external(h5, g, "dense/kernel:0"),
                                                      g.create_dataset("dense/bias:0", data=BIAS)))
        where = "dense/dense/kernel:0"
    _refused(tmp_path, capsys, model, f"the weight {where} keeps its bytes in an external file")


def test_the_companion_such_a_weight_does_read_the_local_file(tmp_path, secret):
    """What the refusal prevents: read as h5py reads it, the kernel is the planted file's bytes."""
    path = tmp_path / "w.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("k", shape=(4, 3), dtype="f4", external=[(str(secret), 0, 48)])
    with h5py.File(path, "r") as h5:
        assert h5["k"][()].tobytes() == SECRET


def _other_file(tmp_path) -> str:
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["data"] = np.frombuffer(SECRET, np.float32).reshape(4, 3)
    return str(other)


@pytest.mark.parametrize("case, expected", [
    ("external link", "layers/dense/vars/0 is an external link (to another file)"),
    ("soft link", "layers/dense/vars/0 is a soft link"),
    ("virtual", "the weight layers/dense/vars/0 is a virtual dataset"),
    ("chunked", "the weight layers/dense/vars/0 is stored chunked or filtered"),
    ("gzip", "the weight layers/dense/vars/0 is stored chunked or filtered"),
    ("strings", "the weight layers/dense/vars/0 is not numbers"),
    ("never written", "the weight layers/dense/vars/0 declares 48 bytes but stores 0"),
    ("huge kernel", "the weight layers/dense/vars/0 declares 4294967296 bytes, past the limit"),
])
def test_hdf5_objects_that_keras_never_writes_are_refused_before_they_are_read(tmp_path, capsys, case, expected):
    other = _other_file(tmp_path)

    def write(h5, variables):
        if case == "external link":
            variables["0"] = h5py.ExternalLink(other, "/data")
        elif case == "soft link":
            h5["elsewhere"] = KERNEL
            variables["0"] = h5py.SoftLink("/elsewhere")
        elif case == "virtual":
            layout = h5py.VirtualLayout(shape=(4, 3), dtype="f4")
            layout[:] = h5py.VirtualSource(other, "data", shape=(4, 3))
            variables.create_virtual_dataset("0", layout)
        elif case in ("chunked", "gzip"):
            variables.create_dataset("0", data=KERNEL, chunks=(2, 3), compression="gzip" if case == "gzip" else None)
        elif case == "strings":
            variables["0"] = np.array([b"1.0"] * 12).reshape(4, 3)
        elif case == "never written":
            variables.create_dataset("0", shape=(4, 3), dtype="f4")
        elif case == "huge kernel":
            variables.create_dataset("0", shape=(4, 1 << 28), dtype="f4")  # 4 GiB declared, nothing stored
        variables["1"] = BIAS

    _refused(tmp_path, capsys, _keras(tmp_path / "m.keras", weights=_weights(write)), expected)


def test_a_huge_dataset_that_no_layer_names_is_never_read(tmp_path, capsys):
    def write(h5, variables):
        variables["0"], variables["1"] = KERNEL, BIAS
        unused = h5.create_group("layers/unused/vars")
        unused.attrs["name"] = "unused"
        unused.create_dataset("0", shape=(1 << 29,), dtype="f4")  # 2 GiB declared, never written

    out = tmp_path / "m.ckpt"
    assert call(import_keras.main, [_keras(tmp_path / "m.keras", weights=_weights(write)), "--out", str(out)]) == 0
    assert out.is_file()


@pytest.mark.parametrize("member, content, expected", [
    ("../escape.txt", b"x", "a zip member named '../escape.txt': not a plain relative name"),
    ("/etc/passwd", b"x", "a zip member named '/etc/passwd': not a plain relative name"),
    ("config.json", b"{}", "the zip holds two members named 'config.json'"),
])
def test_zip_members_with_unsafe_or_repeated_names_are_refused(tmp_path, capsys, member, content, expected):
    with pytest.warns(UserWarning, match="Duplicate name") if member == "config.json" else _nothing():
        model = _keras(tmp_path / "m.keras", extra=[(member, content)])
    _refused(tmp_path, capsys, model, expected)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_zip_bomb_is_refused_by_its_declared_size_before_it_is_inflated(tmp_path, capsys):
    model = _keras(tmp_path / "m.keras", weights=bytes(40 << 20))  # 40 MiB of zeros: ~40 KiB in the zip
    _refused(tmp_path, capsys, model, "model.weights.h5 declares 41943040 bytes, over the limit of 8388608",
             "--max-bytes", str(8 << 20))


def test_a_zip_member_that_lies_about_its_size_is_not_inflated_past_it(tmp_path, capsys):
    """The header is not trusted: a member declaring 1 KiB but inflating to 40 MiB is read no further than that
    (then its checksum fails)."""
    model = tmp_path / "m.keras"
    _keras(model, weights=bytes(40 << 20))
    data = bytearray(model.read_bytes())
    entry = next(i for i in range(len(data)) if data[i:i + 4] == b"PK\x01\x02"
                 and data[i + 46:i + 46 + int.from_bytes(data[i + 28:i + 30], "little")] == b"model.weights.h5")
    data[entry + 24:entry + 28] = (1024).to_bytes(4, "little")  # the central directory's uncompressed size
    model.write_bytes(bytes(data))
    _refused(tmp_path, capsys, model, "damaged zip file (BadZipFile", "--max-bytes", str(8 << 20))


def test_a_file_over_the_limit_is_refused_before_it_is_read(tmp_path, capsys):
    model = _keras(tmp_path / "m.keras")
    _refused(tmp_path, capsys, model, "bytes, over the limit of 100 (--max-bytes raises it)", "--max-bytes", "100")


@pytest.mark.parametrize("layout", ["keras", "h5"])
def test_a_truncated_file_is_refused(tmp_path, capsys, layout):
    model = tmp_path / f"m.{layout}"
    _keras(model) if layout == "keras" else _h5(model)
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    _refused(tmp_path, capsys, model, "damaged")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_naming_the_layer_and_variable(tmp_path, capsys, value):
    kernel = KERNEL.copy()
    kernel[1, 2] = value

    def write(h5, variables):
        variables["0"], variables["1"] = kernel, BIAS

    model = _keras(tmp_path / "m.keras", weights=_weights(write))
    _refused(tmp_path, capsys, model, "layer 1 'dense' (Dense): its kernel holds NaN or infinite values")
    out = tmp_path / "inspect.ckpt"
    assert call(import_keras.main, [model, "--out", str(out), "--allow-nonfinite"]) == 0 and out.is_file()


@pytest.mark.parametrize("mutate, expected", [
    (lambda c: c["config"]["layers"][1].update(class_name=["Dense"]), "layer 1: 'class_name' must be text, got ['Dense']"),
    (lambda c: c["config"]["layers"][1]["config"].update(name=["dense"]), "layer 1 (Dense): 'name' must be text"),
    (lambda c: c["config"]["layers"][1].update(config=[1, 2]), "layer 1 (Dense): 'config' must be a mapping, got [1, 2]"),
    (lambda c: c["config"]["layers"][1]["config"].pop("units"), "layer 1 'dense' (Dense): units missing"),
    (lambda c: c["config"]["layers"][1]["config"].update(units=2_000_000_000), ("units must be a positive integer "
                                                                                "at most 2**24, got 2000000000")),
    (lambda c: c["config"]["layers"][0]["config"].update(batch_shape=[None, 100000, 100000, 1]),
     "holds 10,000,000,000 values, over 2**24"),
])
def test_a_config_of_the_wrong_types_or_absurd_sizes_is_one_line(tmp_path, capsys, mutate, expected):
    config = _config()
    mutate(config)
    _refused(tmp_path, capsys, _keras(tmp_path / "m.keras", config=config), expected)


def _tensor(layer: str) -> dict:
    return {"class_name": "__keras_tensor__", "config": {"shape": [None, 4], "dtype": "float32",
                                                         "keras_history": [layer, 0, 0]}}


def _functional(wiring: dict[str, list[str]], output: str) -> dict:
    """A Functional model in Keras 3's form: an input, then dense layers taking the layers ``wiring`` names."""
    layers = [{"class_name": "InputLayer", "name": "input_layer",
               "config": {"batch_shape": [None, 4], "name": "input_layer"}, "inbound_nodes": []}]
    for name, takes in wiring.items():
        layers.append({"class_name": "Dense", "name": name, "config": {"name": name, "units": 3, "use_bias": True},
                       "inbound_nodes": [{"args": [_tensor(t) for t in takes], "kwargs": {}}]})
    return {"class_name": "Functional", "config": {"name": "functional", "layers": layers,
                                                   "input_layers": [["input_layer", 0, 0]],
                                                   "output_layers": [[output, 0, 0]]}}


def _nested(depth: int) -> dict:
    model = _config()
    for level in range(depth):
        model = {"class_name": "Sequential", "config": {"name": f"level{level}", "layers": [
            {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": f"input{level}"}}, model]}}
    return model


@pytest.mark.parametrize("config, expected", [
    (_functional({"dense": ["dense_1"], "dense_1": ["dense"]}, "dense_1"),
     "layer 1 'dense' (Dense): takes 'dense_1', which is no layer before it"),  # a cycle
    (_functional({"dense": ["dense"]}, "dense"), "takes 'dense', which is no layer before it"),  # itself
    (_functional({"dense": ["input_layer"], "dense_1": ["elsewhere"]}, "dense_1"),
     "layer 2 'dense_1' (Dense): takes 'elsewhere', which is no layer before it"),
    (_functional({"dense": ["input_layer"]}, "nowhere"), "the model: 'output_layers' names 'nowhere', which is no layer"),
    (_nested(9), "models nested more than 8 deep"),
])
def test_a_graph_that_loops_points_nowhere_or_nests_too_deep_is_one_line(tmp_path, capsys, config, expected):
    _refused(tmp_path, capsys, _keras(tmp_path / "m.keras", config=config), expected)


def test_companion_the_same_graph_wired_forwards_and_a_shallow_nesting_import(tmp_path, capsys):
    nested = [*(f"level{level}" for level in reversed(range(5))), "sequential"]  # within the outermost, level5
    for name, config, weights in (("graph", _functional({"dense": ["input_layer"]}, "dense"), _weights()),
                                  ("nested", _nested(6), _weights(models=nested))):
        model, out = _keras(tmp_path / f"{name}.keras", config, weights), tmp_path / f"{name}.ckpt"
        assert call(import_keras.main, [model, "--out", str(out)]) == 0, capsys.readouterr().err
        assert out.is_file()


# the process's own peak (VmHWM): getrusage's ru_maxrss keeps the forking parent's across exec
PEAK = """
import re, sys, time
from lit_mnist.apps import import_keras
from lit_mnist.apps.entry import call
start = time.monotonic()
code = call(import_keras.main, sys.argv[1:])
peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) * 1024
print(code, peak, time.monotonic() - start)
"""


def _big_files(folder) -> dict:
    """The tiny files that would take gigabytes: a 2 GiB never-written dataset no layer names, a kernel declared
    784 x 2**19, a 0.5 GiB gzip-compressed chunked kernel, a member inflating to 1.2 GiB."""
    def unused(h5, variables):
        variables["0"], variables["1"] = KERNEL, BIAS
        group = h5.create_group("layers/unused/vars")
        group.attrs["name"] = "unused"
        group.create_dataset("0", shape=(1 << 29,), dtype="f4")

    def huge(h5, variables):
        variables.create_dataset("0", shape=(784, 1 << 19), dtype="f4")
        variables["1"] = BIAS

    def gzipped(h5, variables):
        variables.create_dataset("0", shape=(1 << 27,), dtype="f4", chunks=(1 << 20,), compression="gzip")[:] = 0
        variables["1"] = BIAS

    files = {name: _keras(folder / f"{name}.keras", weights=_weights(write))
             for name, write in (("unused", unused), ("huge", huge), ("gzip", gzipped))}
    with zipfile.ZipFile(folder / "bomb.keras", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("config.json", json.dumps(_config()))
        with archive.open("model.weights.h5", "w", force_zip64=True) as member:
            for _ in range(77):
                member.write(bytes(1 << 24))  # 1.2 GiB of zeros
    files["bomb"] = str(folder / "bomb.keras")
    return files


@pytest.mark.slow
def test_tiny_files_that_would_take_gigabytes_stay_under_1_5_gb_and_a_minute(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO, run_env

    expected_code = {"unused": 0, "huge": 2, "gzip": 2, "bomb": 2}
    for name, model in _big_files(tmp_path).items():
        done = subprocess.run([sys.executable, "-c", PEAK, model, "--out", str(tmp_path / f"{name}.ckpt")], cwd=REPO,
                              capture_output=True, text=True, check=False, env=run_env())
        code, peak, seconds = done.stdout.split()[-3:]
        assert int(code) == expected_code[name], (name, done.stderr[-2000:])
        assert int(peak) < 1.5e9 and float(seconds) < 60, (name, peak, seconds)


def _flat(units_in: int) -> dict:
    config = _config()
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, units_in]
    return config


def _flat_weights(units_in: int) -> bytes:
    return _weights(lambda h5, v: (v.__setitem__("0", np.ones((units_in, 3), np.float32)), v.__setitem__("1", BIAS)))


@pytest.mark.parametrize("units_in, shape, expected", [
    (12, [3, 4], [3, 4]), (12, [2, 2, 3], [2, 2, 3]), (12, [3, 4, 1], [3, 4]),
    (48, None, [4, 4, 3]),  # three times a square, never a square itself: colour, as fit.py reads a CSV's count
    (4, None, [2, 2]),
])
def test_a_model_of_flat_rows_takes_its_image_shape_from_the_option_or_the_count(tmp_path, capsys, units_in, shape,
                                                                                    expected):
    from lit_mnist.apps.checkpoints import load_model

    model, out = _keras(tmp_path / "m.keras", _flat(units_in), _flat_weights(units_in)), tmp_path / "m.ckpt"
    option = ["--image_shape", *map(str, shape)] if shape else []
    assert call(import_keras.main, [model, "--out", str(out), *option]) == 0, capsys.readouterr().err
    assert list(load_model(out).image_shape) == expected


@pytest.mark.parametrize("units_in, shape, expected", [
    (12, ["3"], "--image_shape takes H W or H W C, got 1 sizes"),
    (12, ["1", "2", "3", "4"], "--image_shape takes H W or H W C, got 4 sizes"),
    (12, ["2", "2"], "--image_shape [2, 2] holds 4 values; the model's rows have 12"),
    (48, ["2", "6", "4"], "--image_shape: image_shape [2, 6, 4] has 4 channels; lit-mnist's images have 1 (grey) or 3 (colour): drop"),
    (10, [], "rows of 10 values are neither a square grey image nor a square colour one"),
])
def test_a_flat_model_s_image_shape_that_does_not_fit_is_one_line(tmp_path, capsys, units_in, shape, expected):
    model = _keras(tmp_path / "m.keras", _flat(units_in), _flat_weights(units_in))
    if shape and not expected.startswith("--image_shape takes"):
        _refused(tmp_path, capsys, model, expected, "--image_shape", *shape)
        return
    out = tmp_path / "out" / "m.ckpt"
    out.parent.mkdir()
    assert call(import_keras.main, [model, "--out", str(out), *(["--image_shape", *shape] if shape else [])]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and not any(out.parent.iterdir()), err
