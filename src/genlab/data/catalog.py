"""Where each downloadable dataset lives and the SHA-256 of every file, with provenance.

Checksums either cover the downloaded bytes or, where noted (``uncompressed=True``), the
gunzipped content: Debian's ``dataset-fashion-mnist`` package recompresses the .gz files,
so only the content hash identifies Fashion-MNIST across copies.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: its name at the download location and how to verify it."""

    name: str  # file name at the download location, also the name it is saved under
    sha256: str
    uncompressed: bool  # True: sha256 of the gunzipped content, False: of the file's bytes
    local_names: tuple[str, ...]  # names accepted on disk, preferred first (name among them)


@dataclass(frozen=True)
class DatasetFiles:
    """A dataset's official download location (replaced by ``data.mirror``) and its files."""

    base_url: str
    files: tuple[RemoteFile, ...]


IDX_STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _idx_files(hashes: tuple[str, str, str, str], uncompressed: bool) -> tuple[RemoteFile, ...]:
    return tuple(
        RemoteFile(f"{stem}.gz", sha, uncompressed, (f"{stem}.gz", stem))
        for stem, sha in zip(IDX_STEMS, hashes, strict=True)
    )


CATALOG: dict[str, DatasetFiles] = {
    # SHA-256 of the uncompressed IDX content, computed from Debian's dataset-fashion-mnist
    # copies (/usr/share/datasets/fashion-mnist); the official .gz files decompress to the
    # same bytes. (Official .gz hashes, for reference: 3aede38d..., a04f1713..., 346e55b9...,
    # 67da17c7..., as listed by torchvision's prototype datasets.)
    "fashion-mnist": DatasetFiles(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        _idx_files(
            (
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            ),
            uncompressed=True,
        ),
    ),
    # SHA-256 of the official .gz files (9912422, 28881, 1648877, 4542 bytes; md5 f68b3c2d...,
    # d53e105e..., 9fb629c4..., ec29112d...), as listed identically by torchvision's prototype
    # datasets and several independent projects pinning the yann.lecun.com / ossci / cvdf
    # mirrors, which serve the same bytes.
    "mnist": DatasetFiles(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        _idx_files(
            (
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            ),
            uncompressed=False,
        ),
    ),
    # SHA-256 of the official .gz files (md5 bdb82020..., e144d726..., 5c965bf0..., 7320c461...),
    # as listed identically by torchvision's prototype datasets, torchvision-ruby and others.
    "kmnist": DatasetFiles(
        "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
        _idx_files(
            (
                "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
                "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
                "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
                "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
            ),
            uncompressed=False,
        ),
    ),
    # SHA-256 of cifar-10-python.tar.gz (170498071 bytes, md5 c58f3010...), as listed by
    # torchvision's prototype datasets and many projects pinning the Toronto archive.
    "cifar10": DatasetFiles(
        "https://www.cs.toronto.edu/~kriz/",
        (
            RemoteFile(
                "cifar-10-python.tar.gz",
                "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
                False,
                ("cifar-10-batches-py", "cifar-10-python.tar.gz"),
            ),
        ),
    ),
}
