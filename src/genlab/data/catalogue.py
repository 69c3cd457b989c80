"""Where the standard datasets live and how a downloaded file is checked.

``sha256`` is the hash of the file as published; ``content_sha256`` (IDX files) the hash of
its uncompressed content, which also matches re-compressed copies such as Debian's. A file
passes if either matches.

Provenance of the hashes:
- MNIST: SHA-256 of the four .gz files as listed by many independent projects (e.g. the
  TensorFlow Datasets / Keras mirrors); they agree with the md5s torchvision uses.
- Fashion-MNIST: content hashes computed from Debian's `dataset-fashion-mnist` files; file
  hashes of the official .gz as published next to the official md5s.
- KMNIST: file SHA-256s of the official .gz as published next to the official md5s
  (train-images bdb82020…, train-labels e144d726…, t10k-images 5c965bf0…, t10k-labels 7320c461…).
- CIFAR-10: SHA-256 of cifar-10-python.tar.gz (md5 c58f30108f718f92721af3b95e74349a), as used
  by Keras and torchvision-derived projects.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteFile:
    name: str
    sha256: str
    content_sha256: str | None = None


@dataclass(frozen=True)
class RemoteDataset:
    base_url: str
    files: dict[str, RemoteFile]  # role (train_images, ...) -> file


IDX_ROLES = ("train_images", "train_labels", "test_images", "test_labels")
IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _idx(base_url: str, sha: tuple[str, ...], content: tuple[str | None, ...]) -> RemoteDataset:
    files = {
        role: RemoteFile(f"{name}.gz", file_hash, content_hash)
        for role, name, file_hash, content_hash in zip(
            IDX_ROLES, IDX_NAMES, sha, content, strict=True
        )
    }
    return RemoteDataset(base_url, files)


CATALOGUE: dict[str, RemoteDataset] = {
    "mnist": _idx(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ),
        (None, None, None, None),
    ),
    "fashion-mnist": _idx(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        ),
        (
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    ),
    "kmnist": _idx(
        "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        (
            "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
            "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
            "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
            "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
        ),
        (None, None, None, None),
    ),
    "cifar10": RemoteDataset(
        "https://www.cs.toronto.edu/~kriz/",
        {
            "archive": RemoteFile(
                "cifar-10-python.tar.gz",
                "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
            )
        },
    ),
}
