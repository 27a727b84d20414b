"""Datasets: IDX parsing, locating Fashion-MNIST, user paths, image folders."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from nnjoules.data import (
    ImageTensorDataset,
    fashion_mnist_splits,
    find_fashion_mnist,
    image_folder_splits,
    load_data,
    read_idx,
)
from nnjoules.data.fashion_mnist import FILES
from nnjoules.errors import InputError


def idx_bytes(array: np.ndarray) -> bytes:
    header = b"\x00\x00\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_fake_fashion_mnist(folder: Path, *, n_train: int = 30, n_test: int = 10,
                             gz: bool = True) -> None:
    """Four IDX files in the Fashion-MNIST layout, with images that encode their index."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        images[:, 0, 0] = np.arange(n)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for name, arr in zip(FILES[split], (images, labels), strict=True):
            data = idx_bytes(arr)
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)


def test_idx_round_trip_raw_and_gzip(tmp_path: Path) -> None:
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(arr))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(arr)))
    assert np.array_equal(read_idx(tmp_path / "a"), arr)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), arr)


@pytest.mark.parametrize("data, message", [
    (b"\x01\x02\x03", "bad magic"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x02", "truncated IDX header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "truncated IDX data"),
])
def test_idx_rejects_bad_files(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad"
    path.write_bytes(data)
    with pytest.raises(InputError, match=message):
        read_idx(path)


def test_user_path_splits_and_limits(tmp_path: Path) -> None:
    write_fake_fashion_mnist(tmp_path / "fm", gz=False)
    splits = fashion_mnist_splits(tmp_path / "fm", val_size=10, train_limit=5, val_limit=4)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (5, 4, 10)
    # train is the head of the 30 training images, val the last 10 (first 4 of them)
    raw = read_idx(tmp_path / "fm" / "train-images-idx3-ubyte")
    x, y = splits.val.batch(torch.arange(4))
    assert x.shape == (4, 1, 28, 28) and x.dtype == torch.float32
    expected = (raw[20:24].astype(np.float32) / 255 - 0.2860) / 0.3530
    assert np.allclose(x[:, 0].numpy(), expected, atol=1e-6)
    assert y.tolist() == [0, 1, 2, 3]
    assert splits.num_classes == 10 and splits.input_shape == (1, 28, 28)


def test_torchvision_layout_is_found(tmp_path: Path) -> None:
    write_fake_fashion_mnist(tmp_path / "FashionMNIST" / "raw")
    assert find_fashion_mnist(tmp_path) == tmp_path / "FashionMNIST" / "raw"


def test_missing_dataset_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such dataset folder"):
        load_data("fashion-mnist", str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no Fashion-MNIST IDX files"):
        load_data("fashion-mnist", str(tmp_path / "empty"))
    with pytest.raises(InputError, match="unknown dataset"):
        load_data("mnist-ish")


def test_image_folder_split_is_deterministic(tmp_path: Path) -> None:
    from PIL import Image

    for c, name in enumerate(("cat", "dog")):
        (tmp_path / name).mkdir()
        for i in range(10):
            pixels = np.full((8, 6, 3), 20 * i + c, dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{i:02d}.png")
    splits = image_folder_splits(tmp_path, size=(28, 28), channels=1, val_fraction=0.2)
    assert splits.classes == ("cat", "dog")
    assert (len(splits.train), len(splits.val)) == (16, 4)
    assert torch.equal(splits.test.labels, splits.val.labels) and "test = val" in splits.name
    x, y = splits.train.batch(torch.arange(16))
    assert x.shape == (16, 1, 28, 28) and sorted(set(y.tolist())) == [0, 1]
    with pytest.raises(InputError, match="no such image folder"):
        image_folder_splits(tmp_path / "missing")


def test_dataset_item_matches_batch() -> None:
    images = torch.randint(0, 256, (4, 1, 2, 2), dtype=torch.uint8)
    ds = ImageTensorDataset(images, torch.arange(4), mean=(0.5,), std=(0.25,))
    x, y = ds[2]
    xb, yb = ds.batch(torch.tensor([2]))
    assert torch.equal(x, xb[0]) and int(y) == int(yb[0]) == 2


@pytest.mark.usefixtures("fashion_mnist_installed")
def test_debian_package_is_read() -> None:
    splits = fashion_mnist_splits(test_limit=100)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (50_000, 10_000, 100)
    counts = torch.bincount(splits.val.labels, minlength=10)
    assert int(counts.min()) > 900  # the validation split holds every class
