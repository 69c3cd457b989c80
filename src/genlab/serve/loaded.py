"""A run as the worker thread holds it: its model (loaded once, read-only from the folder),
its test images when the latent explorer asks for them, and the codes of a fixed pool of
test images with their principal directions.

Nothing here writes: the run is opened without the temporaries cleanup that commands do, so
the server leaves the runs folder exactly as it found it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from genlab.errors import RunError
from genlab.models.base import GenerativeModel, SupportsEncode, code_of, device_of
from genlab.runs import OpenRun, RunDir
from genlab.serve.runs_index import weights_signature

POOL = 2000  # test images whose codes the latent explorer maps (the most a map shows)
POOL_SEED = 0  # which test images: a fixed permutation, so a smaller map is a prefix of it
ENCODE_BATCH = 500


@dataclass(frozen=True)
class Pca:
    """Principal directions of the pool's codes: ``mean`` (L,), ``directions`` (K, L) rows,
    ``sd`` (K,) standard deviations along them, ``ratio`` (K,) explained variance ratios."""

    mean: torch.Tensor
    directions: torch.Tensor
    sd: torch.Tensor
    ratio: torch.Tensor

    def project(self, codes: torch.Tensor, k: int = 2) -> torch.Tensor:
        return (codes - self.mean) @ self.directions[:k].T


def principal(codes: torch.Tensor, most: int = 8) -> Pca:
    """The leading ``most`` principal directions of ``codes`` (N, L), N >= 2."""
    x = codes.double()
    mean = x.mean(0)
    _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
    var = s.square() / max(1, x.shape[0] - 1)
    total = float(var.sum()) or 1.0
    k = min(most, vh.shape[0])
    return Pca(mean.float(), vh[:k].float(), var[:k].sqrt().float(), (var[:k] / total).float())


class LoadedRun:
    """One run's model and what the explorer computed from it, owned by the worker thread."""

    def __init__(self, name: str, path: Path, device: torch.device) -> None:
        self.name, self.path = name, path
        self.signature = weights_signature(path)
        run = RunDir(path)
        if not run.config_path.exists():
            raise RunError(f"{name} has no config.json: it is not a finished genlab run folder")
        self.opened = OpenRun(run, run.read_config(), progress=False, device=device)
        self.model: GenerativeModel = self.opened.model
        self._test: tuple[torch.Tensor, torch.Tensor | None] | None = None

    @property
    def device(self) -> torch.device:
        return device_of(self.model)

    # -- test images ------------------------------------------------------------------------
    def _load_test(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self._test is None:
            data = self.opened.data
            images = data.tensor("test").float().contiguous()
            labels = data.split("test").labels
            self._test = (images, None if labels is None else labels.long().contiguous())
            self.opened.__dict__.pop("data", None)  # the other splits are not kept
        return self._test

    @property
    def test_images(self) -> torch.Tensor:
        """The test split as the model sees it (N, C, H, W), on the CPU."""
        return self._load_test()[0]

    @property
    def test_labels(self) -> torch.Tensor | None:
        return self._load_test()[1]

    @property
    def classes(self) -> tuple[str, ...]:
        return self.opened.data_info.classes

    def test_index(self, i: int) -> int:
        from genlab.serve.problems import not_found

        if not 0 <= i < self.test_images.shape[0]:
            raise not_found(
                f"no test image {i}: the test split has {self.test_images.shape[0]} "
                f"(0 to {self.test_images.shape[0] - 1})"
            )
        return i

    # -- the pool of the latent explorer -------------------------------------------------
    @cached_property
    def pool(self) -> torch.Tensor:
        """Test indices of the explorer's pool: a fixed permutation's first POOL."""
        n = self.test_images.shape[0]
        order = torch.randperm(n, generator=torch.Generator().manual_seed(POOL_SEED))
        return order[: min(POOL, n)]

    def labels_of(self, indices: torch.Tensor) -> torch.Tensor | None:
        labels = self.test_labels
        return None if labels is None else labels[indices]

    def encode(self, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Codes (B, L) of images (on the CPU), given their labels on a conditional model."""
        model = self.model
        if not isinstance(model, SupportsEncode):
            raise RunError(f"the {model.family} family has no encoder")
        parts = []
        with torch.no_grad():
            for start in range(0, images.shape[0], ENCODE_BATCH):
                batch = images[start : start + ENCODE_BATCH].to(self.device)
                given: dict[str, Any] = {}
                if model.conditional and labels is not None:
                    given["y"] = labels[start : start + ENCODE_BATCH].to(self.device)
                parts.append(code_of(model.encode(batch, **given)).flatten(1).float().cpu())
        return torch.cat(parts)

    @cached_property
    def pool_codes(self) -> torch.Tensor:
        return self.encode(self.test_images[self.pool], self.labels_of(self.pool))

    @cached_property
    def pca(self) -> Pca:
        return principal(self.pool_codes)

    def code_of_test(self, i: int) -> torch.Tensor:
        """The code (L,) of test image i (from the pool when it is there)."""
        where = (self.pool == i).nonzero()
        if where.numel():
            return self.pool_codes[int(where[0, 0])]
        index = torch.tensor([i])
        return self.encode(self.test_images[index], self.labels_of(index))[0]

    # -- memory -----------------------------------------------------------------------------
    def nbytes(self) -> int:
        """Bytes held: the model's parameters and buffers, the test images and the codes."""
        total = sum(t.numel() * t.element_size() for t in self.model.state_dict().values())
        if self._test is not None:
            total += self._test[0].numel() * self._test[0].element_size()
        codes = self.__dict__.get("pool_codes")
        if codes is not None:
            total += codes.numel() * codes.element_size()
        return total
