"""The data layer: find/download datasets, load them as uint8 images, split and stream them.

``load_data(cfg)`` is the entry point; ``DATASETS`` lists the sources (``genlab list``).
"""

from genlab.data import sources_cifar, sources_folder, sources_idx, sources_npz  # registers them
from genlab.data.images import ImageSet
from genlab.data.sources import DATASETS, DataSource
from genlab.data.splits import DataSplits, load_data
from genlab.data.stream import BatchStream

__all__ = [
    "DATASETS",
    "BatchStream",
    "DataSource",
    "DataSplits",
    "ImageSet",
    "load_data",
    "sources_cifar",
    "sources_folder",
    "sources_idx",
    "sources_npz",
]
