"""MNIST and Fashion-MNIST: find them in any common layout, download them safely, convert them.

``load_mnist()`` returns ``(X_train, y_train), (X_test, y_test)`` as NumPy arrays: X of shape
(N, 784) (or (N, 28, 28) with ``flatten=False``), float32 in [0, 1] by default; y int64 of shape (N,).
``load_mnist(split="test")`` returns just ``(X_test, y_test)`` and reads only those files.

Where the data comes from
-------------------------
With ``path``, the first layout found there is used:

- a folder of the four IDX files, gzip-compressed or not: ``train-images-idx3-ubyte[.gz]``,
  ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``
  (the ``train-images.idx3-ubyte`` spelling is accepted too), also in ``raw/`` or in the
  ``MNIST/raw`` (``FashionMNIST/raw``) layout that torchvision writes;
- a Keras-style ``mnist.npz`` (keys ``x_train``, ``y_train``, ``x_test``, ``y_test``), the file or a
  folder holding it;
- Kaggle-style CSVs ``mnist_train.csv`` and ``mnist_test.csv`` (an optional header row, then one row
  per image: the label and 784 pixels 0..255), the folder or the path of either file;
- the binary files ``train.mlpd`` and ``test.mlpd`` (:mod:`mlp.datasets.mlpd`), the folder or either file.

Without ``path``: ``$MLP_DATA_DIR`` (for MNIST ``$MLP_DATA_DIR/mnist`` then ``$MLP_DATA_DIR``; for
Fashion-MNIST ``$MLP_DATA_DIR/fashion-mnist``), then the cache folder (``cache_dir``, else
``$XDG_CACHE_HOME/mlp/<dataset>``, else ``~/.cache/mlp/<dataset>``), then a download into the cache
folder when ``download=True`` (:mod:`mlp.datasets.download`).

Hostile files
-------------
Every reader checks what it reads and raises :class:`DatasetFormatError` (a ``ValueError``) naming
the file and the problem: magic numbers, dimensions, declared sizes against the bytes present (or,
compressed, against what the compressed bytes can hold) and against :data:`limits`, image and label
counts, labels in 0..9, pixels in 0..255. Sizes are checked before anything is allocated, and
decompression stops at the size the header declares, so bombs fail fast in bounded memory. Missing
data raises :class:`DatasetNotFoundError`, failed downloads :class:`DownloadError`.

Modules: ``idx``, ``keras_npz``, ``csv``, ``mlpd`` (one per format), ``discovery`` (layouts and
lookup), ``download`` (mirrors and cache), ``load`` (``load_mnist``), ``convert``, ``errors``.
"""

from ._common import FILE_NAMES, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, Limits, limits
from .convert import convert
from .csv import save_csv
from .discovery import default_cache_dir
from .download import DEFAULT_MIRRORS, MNIST_SHA256, CacheWarning, download_mnist
from .errors import DatasetFormatError, DatasetNotFoundError, DownloadError
from .idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx, write_idx
from .keras_npz import save_npz
from .load import load_mnist
from .mlpd import BINARY_MAGIC, BINARY_VERSION, read_binary, write_binary

__all__ = [
    "BINARY_MAGIC",
    "BINARY_VERSION",
    "DEFAULT_MIRRORS",
    "FILE_NAMES",
    "IMAGES_MAGIC",
    "LABELS_MAGIC",
    "MNIST_SHA256",
    "TEST_IMAGES",
    "TEST_LABELS",
    "TRAIN_IMAGES",
    "TRAIN_LABELS",
    "CacheWarning",
    "DatasetFormatError",
    "DatasetNotFoundError",
    "DownloadError",
    "Limits",
    "convert",
    "default_cache_dir",
    "download_mnist",
    "limits",
    "load_mnist",
    "read_binary",
    "read_idx",
    "save_csv",
    "save_npz",
    "write_binary",
    "write_idx",
]
