"""shrew_data: datasets, a DataLoader with background prefetch, transforms, MNIST /
Fashion-MNIST (IDX files) and bundled real datasets through scikit-learn.

>>> import numpy as np
>>> from shrew_data import DataLoader, TensorDataset
>>> ds = TensorDataset(np.random.rand(100, 3).astype("float32"), np.arange(100))
>>> loader = DataLoader(ds, batch_size=32, shuffle=True, seed=0, num_workers=2)
>>> [x.shape for x, y in loader]
[(32, 3), (32, 3), (32, 3), (4, 3)]
"""

from .collate import default_collate, pin_batch
from .dataset import (
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    random_split,
)  # fmt: skip
from .errors import DataError, MissingDependencyError
from .loader import DataLoader
from .sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)  # fmt: skip

__version__ = "0.1.0"

__all__ = [
    "BatchSampler", "ConcatDataset", "DataError", "DataLoader", "Dataset", "IterableDataset",
    "MissingDependencyError", "RandomSampler", "Sampler", "SequentialSampler", "Subset",
    "SubsetRandomSampler", "TensorDataset", "WeightedRandomSampler", "default_collate",
    "pin_batch", "random_split",
]  # fmt: skip
