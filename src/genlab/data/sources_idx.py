"""MNIST, Fashion-MNIST and KMNIST: four IDX files each, found or downloaded by ``locate``."""

from __future__ import annotations

from genlab.config import DataConfig
from genlab.data.idx import read_idx_pair
from genlab.data.images import ImageSet, check_labels, numbered_classes
from genlab.data.locate import locate
from genlab.data.sources import Loaded, register_source

# the label names each dataset's documentation gives, in label order
CLASSES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(i) for i in range(10)),
    "fashion-mnist": (
        "t-shirt/top",
        "trouser",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "ankle boot",
    ),
    # Clanuwat et al. 2018, table 1: the ten hiragana, romanised
    "kmnist": ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
}


def load_idx_dataset(cfg: DataConfig, progress: bool) -> Loaded:
    """(train, test) of the IDX dataset ``cfg.name``, as (N, 1, 28, 28) uint8 with labels."""
    train_images, train_labels, test_images, test_labels = locate(cfg, cfg.name, progress=progress)
    sets = []
    for images_path, labels_path in ((train_images, train_labels), (test_images, test_labels)):
        images, labels = read_idx_pair(images_path, labels_path)
        classes = CLASSES.get(cfg.name) or numbered_classes(10)
        check_labels(labels, classes, labels_path)
        sets.append(ImageSet.from_numpy(images[:, None], labels, classes))
    return sets[0], sets[1]


register_source("mnist", "MNIST handwritten digits, 28x28 grey, 60k train / 10k test")(
    load_idx_dataset
)
register_source("fashion-mnist", "Zalando's Fashion-MNIST clothing, 28x28 grey, 60k / 10k")(
    load_idx_dataset
)
register_source("kmnist", "Kuzushiji-MNIST cursive Japanese, 28x28 grey, 60k / 10k")(
    load_idx_dataset
)
