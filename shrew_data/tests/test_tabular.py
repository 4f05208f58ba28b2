import builtins

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import shrew_core as sc
from shrew_data import (
    CsvDataset,
    DataError,
    DataLoader,
    MissingDependencyError,
    load_breast_cancer,
    load_digits,
    load_iris,
    load_wine,
    train_test_split,
)


def _needs_sklearn():
    pytest.importorskip("sklearn")


@pytest.mark.parametrize("load,n,features,classes", [
    (load_iris, 150, (4,), 3), (load_wine, 178, (13,), 3), (load_breast_cancer, 569, (30,), 2),
    (load_digits, 1797, (1, 8, 8), 10),
])
def test_bundled_datasets(load, n, features, classes):
    _needs_sklearn()
    ds = load()
    assert len(ds) == n and ds.features.shape == (n, *features)
    assert ds.features.dtype == np.float32 and ds.targets.dtype == np.int64
    assert len(ds.classes) == classes and set(np.unique(ds.targets)) == set(range(classes))
    x, y = ds[0]
    assert x.shape == features and 0 <= int(y) < classes


def test_digits_are_images_in_unit_range(device):
    _needs_sklearn()
    ds = load_digits()
    assert float(ds.features.max()) == 1.0 and float(ds.features.min()) == 0.0
    assert load_digits(images=False).features.shape == (1797, 64)
    x, y = next(iter(DataLoader(ds, batch_size=16, device=device)))
    assert x.shape == (16, 1, 8, 8) and x.device == sc.as_device(device)


def test_stratified_split():
    _needs_sklearn()
    ds = load_iris()
    train, test = train_test_split(ds, test_size=0.2, seed=0)
    assert len(train) == 120 and len(test) == 30
    assert not set(train.indices) & set(test.indices)
    assert np.bincount(ds.targets[test.indices]).tolist() == [10, 10, 10]
    again = train_test_split(ds, test_size=0.2, seed=0)
    assert again[1].indices == test.indices
    with pytest.raises(DataError, match="test_size must be in"):
        train_test_split(ds, test_size=1.5)


def test_missing_sklearn_is_a_clear_error(monkeypatch):
    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name == "sklearn" or name.startswith("sklearn."):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    for load in (load_iris, load_digits):
        with pytest.raises(MissingDependencyError, match="needs scikit-learn.*pip install"):
            load()
    assert issubclass(MissingDependencyError, ImportError)


def test_csv_dataset(tmp_path, device):
    path = tmp_path / "d.csv"
    path.write_text("a,b,c,label\n1,2,3,0\n4,5,6,1\n7,8,9,1\n")
    ds = CsvDataset(path)
    assert len(ds) == 3 and ds.feature_names == ["a", "b", "c"]
    x, y = ds[1]
    assert_array_equal(x, [4, 5, 6]) and y == 1.0
    ds = CsvDataset.load(path, feature_cols=["c", 0], target_cols=[-1], target_dtype="i64")
    assert_array_equal(ds.features[0], [3, 1]) and ds.targets.dtype == np.int64
    x, y = next(iter(DataLoader(ds, batch_size=3, device=device)))
    assert x.shape == (3, 2) and y.dtype == sc.i64
    multi = CsvDataset(path, target_cols=["b", "c"])
    assert multi.targets.shape == (3, 2) and multi.features.shape == (3, 2)
    tsv = tmp_path / "d.tsv"
    tsv.write_text("1\t2\n3\t4\n")
    assert_array_equal(CsvDataset(tsv, has_header=False, delimiter="\t").targets, [2, 4])


def test_csv_errors(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n3\n")
    with pytest.raises(DataError, match="line 3 has 1 fields, expected 2"):
        CsvDataset(path)
    path.write_text("a,b\n1,2\n3,x\n")
    with pytest.raises(DataError, match="line 3, column 'b': 'x' is not a number"):
        CsvDataset(path)
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="unknown column 'z'"):
        CsvDataset(path, feature_cols=["z"])
    with pytest.raises(DataError, match="column 5 out of range"):
        CsvDataset(path, target_cols=[5])
    path.write_text("a,b\n")
    with pytest.raises(DataError, match="no data rows"):
        CsvDataset(path)
    with pytest.raises(DataError, match="file not found"):
        CsvDataset(tmp_path / "nope.csv")
