"""mlp.images: a user's own digit photo, prepared the way MNIST was made, reads like MNIST."""

import re
import struct
import sys
import zlib

import numpy as np
import pytest

import mlp
from mlp import images
from mlp.images import load_digit, preprocess_digit

Image = pytest.importorskip("PIL.Image")


# ---- fixtures and helpers ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def mnist(mnist_dir):
    return mlp.datasets.load_mnist(mnist_dir)


@pytest.fixture(scope="module")
def model(mnist):
    (X_train, y_train), _ = mnist
    return mlp.fit(X_train[:20000], y_train[:20000], hidden_sizes=[128], epochs=3, seed=0)


def centre_of_mass(image):
    image = np.asarray(image, dtype=np.float64).reshape(28, 28)
    mass = image.sum()
    return np.array([image.sum(axis=1) @ np.arange(28), image.sum(axis=0) @ np.arange(28)]) / mass


def user_like(mnist_row, rng, *, size=200, canvas=(320, 300)):
    """A 'photo' of an MNIST digit: upscaled, dark ink on white paper, somewhere off-centre."""
    digit = Image.fromarray(np.round(mnist_row.reshape(28, 28) * 255).astype(np.uint8))
    digit = digit.resize((size, size), Image.Resampling.BICUBIC)
    digit = Image.fromarray(255 - np.asarray(digit))
    paper = Image.new("L", canvas, 255)
    paper.paste(digit, (int(rng.integers(0, canvas[0] - size)), int(rng.integers(0, canvas[1] - size))))
    return paper


# ---- the main promise -------------------------------------------------------------------------
def test_user_like_pngs_are_recognised(model, mnist, tmp_path):
    _, (X_test, y_test) = mnist
    rng = np.random.default_rng(0)
    n = 50
    read = []
    for i in range(n):
        path = tmp_path / f"digit_{i}.png"
        user_like(X_test[i], rng).save(path)
        x = load_digit(path)
        assert x.dtype == np.float32 and x.shape == (784,)
        assert x.min() >= 0.0 and x.max() == pytest.approx(1.0, abs=0.05)
        read.append(x)
    predicted = model.predict(np.stack(read))
    on_originals = model.predict(X_test[:n])
    assert np.mean(predicted == y_test[:n]) >= 0.9
    assert np.mean(predicted == on_originals) >= 0.9


def test_preprocessing_an_mnist_digit_changes_it_little(mnist):
    _, (X_test, _) = mnist
    correlations = []
    for x in X_test[:300]:
        out = preprocess_digit(x.reshape(28, 28))
        assert np.abs(centre_of_mass(out) - centre_of_mass(x)).max() <= 1.0
        assert np.abs(centre_of_mass(out) - 14).max() <= 1.0
        correlations.append(np.corrcoef(out, x)[0, 1])
    correlations = np.array(correlations)
    assert np.median(correlations) > 0.999  # most are reproduced exactly
    assert np.mean(correlations > 0.95) >= 0.95  # the rest are off by a pixel of rounding


# ---- formats and colours ------------------------------------------------------------------
def test_jpeg_reads_like_png(mnist, tmp_path):
    _, (X_test, _) = mnist
    rng = np.random.default_rng(1)
    for i in range(5):
        photo = user_like(X_test[i], rng)
        photo.save(tmp_path / "d.png")
        photo.convert("RGB").save(tmp_path / "d.jpg", quality=80)
        png, jpeg = load_digit(tmp_path / "d.png"), load_digit(tmp_path / "d.jpg")
        assert np.corrcoef(png, jpeg)[0, 1] > 0.97
        assert np.abs(centre_of_mass(jpeg) - 14).max() <= 0.5 + 1e-9


def test_rgb_and_rgba_images(model, mnist, tmp_path):
    _, (X_test, y_test) = mnist
    rng = np.random.default_rng(2)
    grey = user_like(X_test[0], rng)
    ink = 1 - np.asarray(grey, dtype=np.float64) / 255  # 1 where the pen was
    # blue ballpoint on white paper
    pen = np.array([20, 40, 160], dtype=np.float64)
    rgb = (255 - ink[..., None] * (255 - pen)).round().astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(tmp_path / "blue.png")
    # black ink on a transparent background (what drawing apps export)
    rgba = np.zeros((*ink.shape, 4), dtype=np.uint8)
    rgba[..., 3] = np.round(ink * 255).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "transparent.png")

    reference = load_digit(grey)  # a Pillow image directly
    for name in ("blue.png", "transparent.png"):
        x = load_digit(tmp_path / name)
        assert np.corrcoef(x, reference)[0, 1] > 0.98, name
    assert model.predict(load_digit(tmp_path / "blue.png").reshape(1, -1))[0] == y_test[0]
    np.testing.assert_allclose(
        load_digit(rgb), load_digit(tmp_path / "blue.png"), atol=5e-3
    )  # array input (Pillow rounds its grey)


# ---- the steps, one by one -------------------------------------------------------------------
def test_aspect_ratio_and_size_are_kept_like_mnist():
    paper = np.full((300, 400), 255, dtype=np.uint8)
    paper[20:220, 330:380] = 0  # a black bar 200 tall, 50 wide, near the top right corner
    out = preprocess_digit(paper).reshape(28, 28)
    rows = np.flatnonzero(out.any(axis=1))
    cols = np.flatnonzero(out.any(axis=0))
    assert rows.size == 20 and cols.size == 5
    np.testing.assert_allclose(centre_of_mass(out), [14, 14], atol=0.5)


def test_a_small_digit_is_scaled_up():
    canvas = np.zeros((100, 100), dtype=np.float32)
    canvas[40:48, 50:54] = 1.0  # white on black, 8 x 4
    out = preprocess_digit(canvas).reshape(28, 28)
    assert np.flatnonzero(out.any(axis=1)).size == 20
    assert np.flatnonzero(out.any(axis=0)).size == 10


def test_inversion():
    ink = np.zeros((40, 40))
    ink[10:30, 15:25] = 1.0
    white_on_black = preprocess_digit(ink)
    np.testing.assert_allclose(preprocess_digit(1 - ink), white_on_black)  # auto: light paper inverted
    np.testing.assert_allclose(preprocess_digit(1 - ink, invert=True), white_on_black)
    np.testing.assert_allclose(preprocess_digit(ink, invert=False), white_on_black)
    with pytest.raises(ValueError, match="no ink"):
        preprocess_digit(1 - ink, invert=False)  # white paper taken for ink: nothing is brighter
    with pytest.raises(ValueError, match="invert"):
        preprocess_digit(ink, invert="yes")


def test_grey_paper_and_faint_noise_are_removed():
    rng = np.random.default_rng(0)
    photo = 0.75 + 0.03 * rng.standard_normal((120, 120))  # grey paper with sensor noise
    photo[30:90, 55:65] = 0.2  # a grey pencil stroke
    out = preprocess_digit(np.clip(photo, 0, 1)).reshape(28, 28)
    assert np.flatnonzero(out.any(axis=1)).size == 20
    assert out.max() == pytest.approx(1.0, abs=0.05)


def test_resize_matches_pillows_bilinear():
    rng = np.random.default_rng(0)
    for shape, size in (((200, 130), (20, 13)), ((7, 5), (20, 14)), ((45, 45), (20, 20))):
        a = rng.random(shape).astype(np.float32)
        expected = np.asarray(Image.fromarray(a, mode="F").resize(size[::-1], Image.Resampling.BILINEAR))
        np.testing.assert_allclose(images._resize(a.astype(np.float64), *size), expected, atol=1e-6)


# ---- errors ------------------------------------------------------------------------------
def test_blank_images_raise(tmp_path):
    Image.new("L", (50, 50), 255).save(tmp_path / "blank.png")
    with pytest.raises(ValueError, match=r"blank\.png.*no ink"):
        load_digit(tmp_path / "blank.png")
    for blank in (np.zeros((28, 28)), np.full((28, 28), 0.5), np.full((10, 10), 200, dtype=np.uint8)):
        with pytest.raises(ValueError, match="no ink"):
            preprocess_digit(blank)
    noise = np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)  # found by mutation tests
    with pytest.raises(ValueError, match="no ink that stands out of the paper's noise"):
        preprocess_digit(noise)


def test_bad_files_and_arrays_raise_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape("missing.png")):
        load_digit(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"notes\.png.*not an image"):
        load_digit(tmp_path / "notes.png")
    with pytest.raises(IsADirectoryError):
        load_digit(tmp_path)
    with pytest.raises(ValueError, match="2-D"):
        preprocess_digit(np.zeros(784))
    with pytest.raises(ValueError, match="NaN"):
        preprocess_digit(np.full((5, 5), np.nan))


def test_missing_pillow_says_how_to_install_and_arrays_still_work(monkeypatch, tmp_path):
    digit = np.zeros((40, 40), dtype=np.uint8)
    digit[5:35, 18:22] = 255
    Image.fromarray(digit).save(tmp_path / "one.png")
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r'pip install "mlp-from-scratch\[plot\]"'):
        load_digit(tmp_path / "one.png")
    assert preprocess_digit(digit).shape == (784,)  # pure NumPy
    assert load_digit(digit).shape == (784,)


def _png_header(width, height):
    """A PNG that declares width x height grey pixels and holds almost nothing (a few hundred bytes)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(64)))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("width, height", [(10_000, 10_000), (8_000, 8_000), (40_000, 40_000)])
def test_huge_declared_images_are_refused_before_decoding(tmp_path, width, height):
    # 10^8 pixels (Pillow warns), 6.4e7 (under Pillow's limit, over ours), 1.6e9 (Pillow refuses at open)
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(width, height))
    with pytest.raises(ValueError, match=r"bomb\.png: the image is (too large|.* pixels, more than)") as info:
        load_digit(path)
    assert type(info.value) is ValueError
    assert "crop it to the digit or scale it down" in str(info.value)


def test_huge_arrays_and_pillow_images_are_refused(monkeypatch):
    lazy = np.broadcast_to(np.uint8(0), (7_000, 7_000))  # 49 million pixels, no memory
    with pytest.raises(
        ValueError, match=re.escape("7000 x 7000 = 49,000,000 pixels, more than mlp.images.MAX_IMAGE_PIXELS")
    ):
        preprocess_digit(lazy)
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ValueError, match="20 x 10 = 200 pixels"):
        load_digit(Image.new("L", (20, 10)))


@pytest.mark.parametrize("cut", [20, 40, 50])
def test_truncated_or_corrupt_pngs_raise_value_error(tmp_path, cut):
    digit = np.zeros((40, 40), dtype=np.uint8)
    digit[5:35, 18:22] = 255
    Image.fromarray(digit).save(tmp_path / "one.png")
    data = (tmp_path / "one.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:cut])
    with pytest.raises(ValueError, match=r"cut\.png"):
        load_digit(tmp_path / "cut.png")
    flipped = bytearray(data)
    flipped[cut] ^= 0xFF
    (tmp_path / "flip.png").write_bytes(bytes(flipped))
    try:
        load_digit(tmp_path / "flip.png")
    except ValueError as error:
        assert "flip.png" in str(error)
