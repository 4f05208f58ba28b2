"""shrew_data: datasets, a DataLoader with background prefetch, transforms, MNIST /
Fashion-MNIST (IDX files) and bundled real datasets through scikit-learn.

>>> import numpy as np
>>> from shrew_data import DataLoader, TensorDataset
>>> ds = TensorDataset(np.random.rand(100, 3).astype("float32"), np.arange(100))
>>> loader = DataLoader(ds, batch_size=32, shuffle=True, seed=0, num_workers=2)
>>> [x.shape for x, y in loader]
[(32, 3), (32, 3), (32, 3), (4, 3)]
"""

from . import transforms
from .arrays import ArrayDataset, train_test_split
from .collate import default_collate, pin_batch
from .csv_dataset import CsvDataset
from .dataset import (
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    random_split,
)
from .distributed_sampler import DistributedSampler
from .download import default_cache_dir, download_file, sha256_file
from .errors import DataError, MissingDependencyError
from .idx import read_idx, write_idx
from .loader import DataLoader
from .mnist import MNIST, FashionMNIST, MnistDataset
from .sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)
from .sklearn_datasets import load_breast_cancer, load_digits, load_iris, load_wine
from .transforms import one_hot

__version__ = "0.1.0"

__all__ = [
    "ArrayDataset", "BatchSampler", "ConcatDataset", "CsvDataset", "DataError", "DataLoader",
    "Dataset", "FashionMNIST", "IterableDataset", "MNIST", "MissingDependencyError",
    "MnistDataset", "RandomSampler", "Sampler", "SequentialSampler", "Subset",
    "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler", "default_cache_dir",
    "default_collate", "download_file", "load_breast_cancer", "load_digits", "load_iris",
    "load_wine", "one_hot", "pin_batch", "random_split", "read_idx", "sha256_file",
    "train_test_split", "transforms", "write_idx",
]  # fmt: skip
__all__ += ["DistributedSampler"]
