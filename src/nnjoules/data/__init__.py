"""Datasets: Fashion-MNIST from local IDX files (or torchvision), users' image folders."""

from nnjoules.data.datasets import DataSplits as DataSplits
from nnjoules.data.datasets import ImageTensorDataset as ImageTensorDataset
from nnjoules.data.fashion_mnist import fashion_mnist_splits as fashion_mnist_splits
from nnjoules.data.fashion_mnist import find_fashion_mnist as find_fashion_mnist
from nnjoules.data.fashion_mnist import load_fashion_mnist as load_fashion_mnist
from nnjoules.data.folder import image_folder_splits as image_folder_splits
from nnjoules.data.idx import read_idx as read_idx

__all__ = ["DataSplits", "ImageTensorDataset", "fashion_mnist_splits", "find_fashion_mnist",
           "image_folder_splits", "load_data", "load_fashion_mnist", "read_idx"]


def load_data(name: str = "fashion-mnist", path: str | None = None, *,
              train_limit: int | None = None, val_limit: int | None = None,
              test_limit: int | None = None, download: bool = False) -> DataSplits:
    """The splits of a dataset by name: ``"fashion-mnist"`` (``path``: the folder of its
    IDX files, optional) or ``"imagefolder"`` (``path``: a folder of class subfolders).

    Raises:
        InputError: unknown name, missing files or folders.
    """
    from nnjoules.errors import InputError

    if name == "fashion-mnist":
        return fashion_mnist_splits(path, train_limit=train_limit, val_limit=val_limit,
                                    test_limit=test_limit, download=download)
    if name == "imagefolder":
        if path is None:
            raise InputError("the imagefolder dataset needs a folder (--data-dir)")
        splits = image_folder_splits(path)
        if train_limit or val_limit or test_limit:
            splits = DataSplits(name=splits.name, train=splits.train.subset(0, train_limit),
                                val=splits.val.subset(0, val_limit),
                                test=splits.test.subset(0, test_limit),
                                input_shape=splits.input_shape,
                                num_classes=splits.num_classes, classes=splits.classes)
        return splits
    raise InputError(f"unknown dataset {name!r}; use 'fashion-mnist' or 'imagefolder'")
