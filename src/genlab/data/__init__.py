"""Datasets: sources, splits, binarisation and in-memory batching.

>>> from genlab.config import DataConfig
>>> data = load_data(DataConfig(name="digits"))
>>> x, labels = next(data.stream("train", 64, shuffle=True).epoch(0))   # x: (64, 1, 8, 8)
"""

from genlab.data.images import ImageSet
from genlab.data.sources import DATASETS, DataSource
from genlab.data.splits import DataSplits, load_data
from genlab.data.stream import BatchStream

__all__ = ["DATASETS", "BatchStream", "DataSource", "DataSplits", "ImageSet", "load_data"]
