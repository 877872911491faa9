"""The image-folder reader: Keras's layout and order, the formats and colour modes, resizing as Keras resizes, and
a one-line error naming the file for every kind of bad folder or image."""

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lit_mnist.data import folders
from lit_mnist.data.folders import read_image_folder
from lit_mnist.errors import DataError


def save(path: Path, array: np.ndarray, mode: str | None = None, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)).save(path, **options)
    return path


def noise(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def one_line_error(path: Path, *args, **kwargs) -> str:
    """The DataError message of reading ``args[0]`` (a folder), checked to be one line starting with ``path``."""
    with pytest.raises(DataError) as caught:
        read_image_folder(*args, **kwargs)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message


def test_classes_are_the_sorted_subfolders_and_labels_index_them(tmp_path):
    images = {name: noise((6, 5), seed) for seed, name in enumerate(["class_2", "class_10", "class_1"])}
    for name, image in images.items():
        save(tmp_path / name / "0.png", image)
    digits = read_image_folder(tmp_path)
    assert digits.label_names == ("class_1", "class_10", "class_2")  # sorted(), as Keras: class_10 before class_2
    np.testing.assert_array_equal(digits.labels, [0, 1, 2])
    assert digits.labels.dtype == np.int64 and digits.pixels.dtype == np.uint8
    assert digits.image_shape == (6, 5) and digits.pixels.shape == (3, 30)
    assert digits.ids is None and digits.id_name is None
    for row, name in zip(digits.pixels, digits.label_names):
        np.testing.assert_array_equal(row, images[name].reshape(-1))


def test_images_at_any_depth_in_keras_order_and_other_files_ignored(tmp_path):
    a = tmp_path / "a"
    files = {name: save(a / name, noise((4, 4), seed)) for seed, name in
             enumerate(["z.PNG", "sub/deeper/c.bmp", "b.png", "sub/a.gif"])}
    (a / "notes.txt").write_text("not an image")
    (a / "photo.webp").write_bytes(b"not in Keras's list")
    save(tmp_path / "stray.png", noise((4, 4), 9))  # beside the class folders: no class
    save(tmp_path / ".cache" / "x.png", noise((4, 4), 9))  # a hidden folder is no class
    digits = read_image_folder(tmp_path)
    assert digits.label_names == ("a",)
    # by folder, then by name: the class folder's own files first, as Keras walks them
    order = ["b.png", "z.PNG", "sub/a.gif", "sub/deeper/c.bmp"]
    expected = [np.asarray(Image.open(files[name]).convert("L")).reshape(-1) for name in order]
    np.testing.assert_array_equal(digits.pixels, expected)


def test_an_empty_class_folder_is_kept_as_a_class_and_named_in_a_warning(tmp_path, caplog):
    save(tmp_path / "0" / "a.png", noise((3, 3), 0))
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "readme.txt").write_text("no images here")
    save(tmp_path / "2" / "a.png", noise((3, 3), 1))
    with caplog.at_level(logging.INFO, logger="lit_mnist"):
        digits = read_image_folder(tmp_path)
    assert digits.label_names == ("0", "1", "2")
    np.testing.assert_array_equal(digits.labels, [0, 2])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"{tmp_path}: class folders with no images, kept as classes: 1"]


def test_png_jpeg_bmp_and_the_first_frame_of_a_gif(tmp_path):
    image = noise((10, 12), 0)
    save(tmp_path / "png" / "x.png", image)
    save(tmp_path / "bmp" / "x.bmp", image)
    save(tmp_path / "jpeg" / "x.jpeg", np.full((10, 12), 90, np.uint8), quality=95)
    frames = [Image.fromarray(np.full((10, 12), level, np.uint8)) for level in (40, 200)]
    (tmp_path / "gif").mkdir()
    frames[0].save(tmp_path / "gif" / "x.gif", save_all=True, append_images=frames[1:])
    assert Image.open(tmp_path / "gif" / "x.gif").n_frames == 2
    digits = read_image_folder(tmp_path)
    assert digits.label_names == ("bmp", "gif", "jpeg", "png") and digits.image_shape == (10, 12)
    bmp, gif, jpeg, png = digits.pixels.astype(int)
    np.testing.assert_array_equal(png, image.reshape(-1))
    np.testing.assert_array_equal(bmp, image.reshape(-1))
    assert (gif == 40).all()  # the first frame, not the second (200)
    assert np.abs(jpeg - 90).max() <= 2  # lossy


def test_grey_is_inferred_where_every_image_has_equal_channels(tmp_path):
    level = noise((5, 5), 0)
    save(tmp_path / "a" / "grey.png", level)
    save(tmp_path / "b" / "rgb_but_grey.png", np.stack([level] * 3, axis=-1))
    digits = read_image_folder(tmp_path)
    assert digits.image_shape == (5, 5) and digits.pixels.shape == (2, 25)
    np.testing.assert_array_equal(digits.pixels, [level.reshape(-1)] * 2)


def test_one_colour_image_makes_all_colour_channels_last(tmp_path):
    level, colour = noise((5, 4), 0), noise((5, 4, 3), 1)
    save(tmp_path / "a" / "1.png", level)
    save(tmp_path / "a" / "2.png", np.stack([level] * 3, axis=-1))
    save(tmp_path / "b" / "3.png", colour)  # after two grey ones: the array widens
    digits = read_image_folder(tmp_path)
    assert digits.image_shape == (5, 4, 3) and digits.pixels.shape == (3, 60)
    grey = np.stack([level] * 3, axis=-1)
    np.testing.assert_array_equal(digits.pixels, np.stack([grey, grey, colour]).reshape(3, -1))
    assert digits.pixels.flags.c_contiguous


def test_alpha_palette_and_sixteen_bit_images(tmp_path):
    colour, alpha = noise((4, 6, 3), 0), noise((4, 6), 1)
    save(tmp_path / "a_rgba" / "x.png", np.dstack([colour, alpha]))
    palette = Image.fromarray(colour).quantize(8)  # P mode, a colour palette
    (tmp_path / "b_palette").mkdir()
    palette.save(tmp_path / "b_palette" / "x.png")
    digits = read_image_folder(tmp_path)
    rgba, pal = digits.pixels.reshape(2, 4, 6, 3)
    np.testing.assert_array_equal(rgba, colour)  # alpha dropped, not blended
    np.testing.assert_array_equal(pal, np.asarray(palette.convert("RGB")))

    grey = tmp_path / "grey"
    save(grey / "la" / "x.png", np.dstack([alpha, colour[..., 0]]), mode="LA")
    deep = (alpha.astype(np.uint16) << 8) | 0xAB  # 16 bits: the high byte is the grey level
    save(grey / "sixteen" / "x.png", deep)
    assert Image.open(grey / "sixteen" / "x.png").mode.startswith("I")
    digits = read_image_folder(grey)
    assert digits.image_shape == (4, 6)
    np.testing.assert_array_equal(digits.pixels, [alpha.reshape(-1)] * 2)


def test_grayscale_converts_colour_with_the_601_luma(tmp_path):
    colour = noise((8, 8, 3), 0)
    save(tmp_path / "a" / "x.png", colour)
    digits = read_image_folder(tmp_path, color_mode="grayscale")
    assert digits.image_shape == (8, 8)
    luma = colour.astype(float) @ [0.299, 0.587, 0.114]
    assert np.abs(digits.pixels.reshape(8, 8) - luma).max() <= 0.5 + 1e-6


def test_rgb_repeats_a_grey_image_on_three_channels(tmp_path):
    level = noise((3, 4), 0)
    save(tmp_path / "a" / "x.png", level)
    digits = read_image_folder(tmp_path, color_mode="rgb")
    assert digits.image_shape == (3, 4, 3)
    np.testing.assert_array_equal(digits.pixels.reshape(3, 4, 3), np.stack([level] * 3, axis=-1))


def test_images_of_different_sizes_are_refused_naming_two_files(tmp_path):
    save(tmp_path / "a" / "1.png", noise((28, 28), 0))
    save(tmp_path / "b" / "7.png", noise((32, 30), 0))
    message = one_line_error(tmp_path, tmp_path)
    assert "a/1.png is 28x28 and b/7.png is 32x30 (height x width)" in message
    assert "--data.image_shape [H, W]" in message


def reference_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    x = torch.from_numpy(image.astype(np.float32))[None, None]
    y = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False)
    return y[0, 0].round().clamp(0, 255).to(torch.uint8).numpy()


def test_image_shape_resizes_as_bilinear_interpolation_without_antialiasing(tmp_path):
    small, large = noise((5, 7), 0), noise((40, 31), 1)
    save(tmp_path / "a" / "small.png", small)
    save(tmp_path / "b" / "large.png", large)
    digits = read_image_folder(tmp_path, image_shape=[12, 10])
    assert digits.image_shape == (12, 10)
    np.testing.assert_array_equal(digits.pixels, [reference_resize(small, (12, 10)).reshape(-1),
                                                  reference_resize(large, (12, 10)).reshape(-1)])

    edge = tmp_path / "edge"
    save(edge / "a" / "x.png", np.array([[0, 255]], np.uint8))
    # half-pixel centres, edges clamped (tf.image.resize's bilinear): 0, 63.75, 191.25, 255
    np.testing.assert_array_equal(read_image_folder(edge, image_shape=(1, 4)).pixels, [[0, 64, 191, 255]])


def test_pillow_antialiased_resize_would_give_other_grey_levels(tmp_path):
    """The companion: the choice of resize matters, so Pillow's (antialiased) is not a stand-in for Keras's."""
    image = noise((40, 40), 2)  # high frequencies everywhere
    save(tmp_path / "a" / "x.png", image)
    ours = read_image_folder(tmp_path, image_shape=(10, 10)).pixels.reshape(10, 10).astype(int)
    pillow = np.asarray(Image.fromarray(image).resize((10, 10), Image.Resampling.BILINEAR)).astype(int)
    assert np.abs(ours - pillow).max() > 20


def test_image_shape_channels_set_the_colour_mode_and_alpha_is_refused(tmp_path):
    save(tmp_path / "a" / "x.png", noise((4, 4, 3), 0))
    assert read_image_folder(tmp_path, image_shape=(4, 4, 1)).image_shape == (4, 4)
    assert read_image_folder(tmp_path, image_shape=(2, 2, 3)).image_shape == (2, 2, 3)
    assert "4 channels; expected 1 (grey) or 3 (colour); drop alpha first" in one_line_error(
        tmp_path, tmp_path, image_shape=[4, 4, 4])
    assert "but color_mode is 'rgb'" in one_line_error(tmp_path, tmp_path, image_shape=(4, 4, 1), color_mode="rgb")
    for shape in ([0, 4], [4], ["4", 4], [4.5, 4], 7):
        assert "expected [height, width] or [height, width, channels]" in one_line_error(
            tmp_path, tmp_path, image_shape=shape)
    assert "color_mode 'rgba'" in one_line_error(tmp_path, tmp_path, color_mode="rgba")


def test_an_undecodable_image_is_one_line_naming_it(tmp_path):
    save(tmp_path / "a" / "good.png", noise((16, 16), 0))
    text = tmp_path / "b" / "text.png"
    text.parent.mkdir()
    text.write_text("hello\nworld\n")
    assert "not a readable image (UnidentifiedImageError" in one_line_error(text, tmp_path)
    text.unlink()
    whole = save(tmp_path / "b" / "cut.png", noise((16, 16), 1)).read_bytes()
    (tmp_path / "b" / "cut.png").write_bytes(whole[: len(whole) // 2])
    assert "not a readable image (OSError" in one_line_error(tmp_path / "b" / "cut.png", tmp_path)


def test_decompression_bombs_are_refused_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    warned = save(tmp_path / "a" / "x.png", noise((12, 12), 0))  # 144 pixels: Pillow warns only
    assert "image too large to read safely (Image size (144 pixels) exceeds limit of 100 pixels" in one_line_error(
        warned, tmp_path)
    warned.unlink()
    refused = save(tmp_path / "a" / "y.png", noise((20, 20), 0))  # over twice the limit: Pillow refuses
    assert "image too large to read safely" in one_line_error(refused, tmp_path)


@pytest.mark.parametrize("layout", ["missing", "a file", "empty", "only files", "no images", "only hidden"])
def test_a_folder_without_classes_or_images_is_refused(tmp_path, layout):
    path = tmp_path / "images"
    if layout == "a file":
        path.write_text("x")
    elif layout != "missing":
        path.mkdir()
    if layout == "only files":
        save(path / "x.png", noise((3, 3), 0))
    if layout == "no images":
        (path / "0").mkdir()
        (path / "1" / "sub").mkdir(parents=True)
        (path / "1" / "x.txt").write_text("x")
    if layout == "only hidden":
        save(path / ".hidden" / "x.png", noise((3, 3), 0))
    message = one_line_error(path, path)
    expected = {"missing": "no such folder", "a file": "not a folder", "empty": "empty folder",
                "only files": "no class subfolders", "no images": "no images (.bmp .gif .jpeg .jpg .png) in its 2 "
                "class folders", "only hidden": "no class subfolders"}[layout]
    assert expected in message


def test_the_decoded_size_is_checked_before_the_array_is_made(tmp_path, monkeypatch):
    for k in range(3):
        save(tmp_path / "a" / f"{k}.png", noise((8, 8), k))
    monkeypatch.setattr(folders, "MAX_BYTES", 3 * 64 - 1)
    assert "3 images of 8x8x1 need 192 bytes, more than 191" in one_line_error(tmp_path, tmp_path)
    monkeypatch.setattr(folders, "MAX_BYTES", 3 * 64)
    assert len(read_image_folder(tmp_path)) == 3
    assert "3 images of 8x8x3 need 576 bytes" in one_line_error(tmp_path, tmp_path, color_mode="rgb")


def assert_as_keras_reads(folder: Path, mode: str, size: tuple[int, int], within: float) -> None:
    import keras

    ours = read_image_folder(folder, color_mode=mode, image_shape=size)
    dataset = keras.utils.image_dataset_from_directory(folder, shuffle=False, image_size=size, batch_size=None,
                                                       interpolation="bilinear", color_mode=mode, verbose=False)
    theirs = [(x.numpy(), int(y)) for x, y in dataset]
    assert ours.label_names == tuple(dataset.class_names)
    np.testing.assert_array_equal(ours.labels, [y for _, y in theirs])
    expected = np.stack([x.reshape(-1) for x, _ in theirs])
    assert np.abs(ours.pixels - expected).max() <= within, (folder.name, mode)


@pytest.mark.parity
def test_the_same_classes_and_pixels_as_keras(tmp_path):
    """Keras's own reader on the same folders: class names and order, and grey levels within one (PNG)."""
    from tests.conftest import require_the_parity_extra

    require_the_parity_extra()
    classes = ["class_2", "class_10", "class_1"]
    grey, colour, same, jpeg = (tmp_path / name for name in ("grey", "colour", "same", "jpeg"))
    for k, name in enumerate(classes):
        save(grey / name / "a.png", noise((9 + 7 * k, 20 - 3 * k), k))  # up and down: both ways of resizing
        save(grey / name / "sub" / "b.png", noise((12, 10), 10 + k))
        save(colour / name / "c.png", noise((15, 6 + 4 * k, 3), 20 + k))
        save(same / name / "c.png", noise((15, 6, 3), 30 + k))
        save(jpeg / name / "c.jpg", noise((16, 12, 3), 40 + k), quality=90)
    assert_as_keras_reads(grey, "grayscale", (12, 10), within=1)
    assert_as_keras_reads(colour, "rgb", (11, 9), within=1)
    assert_as_keras_reads(same, "grayscale", (15, 6), within=1)  # colour to grey, no resize: the luma alone
    # JPEG decoders differ by a few levels; the luma the decoder gives stays within 3 (that of its RGB: 9-13 off)
    assert_as_keras_reads(jpeg, "grayscale", (16, 12), within=3)
