"""Math oracles of the autoregressive pixel models: causality, normalisation, blind spots,
sampler agreement and sampling from the modelled distribution."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from genlab.errors import ConfigError
from genlab.models import DataInfo, build_model
from genlab.models.autoregressive.masked import MaskedConv2d, to_input
from genlab.models.autoregressive.sampling import AutoregressiveModel, sample_autoregressive

FAMILIES = ["pixelcnn", "gated_pixelcnn", "pixelrnn", "pixelrnn-diagonal"]
SMALL = {"channels": 12, "head_hidden": 12}  # four features per colour for RGB


def spec(family: str, **keys) -> dict:
    """The model mapping of a test family; ``pixelrnn-diagonal`` is a Diagonal BiLSTM."""
    if family == "pixelrnn-diagonal":
        return {"name": "pixelrnn", "lstm": "diagonal", **keys}
    return {"name": family, **keys}


def tiny(family: str, shape, levels: int, **extra) -> AutoregressiveModel:
    torch.manual_seed(0)
    model = build_model(spec(family, **{**SMALL, **extra}), DataInfo(shape, levels))
    assert isinstance(model, AutoregressiveModel)
    return model.double().eval()


def all_images(shape, levels: int) -> torch.Tensor:
    """Every image of the given shape as integer levels, (levels ** D, C, H, W)."""
    d = math.prod(shape)
    grid = torch.tensor(list(itertools.product(range(levels), repeat=d)), dtype=torch.long)
    return grid.view(-1, *shape)


def dependence(model: AutoregressiveModel, shape, c: int, i: int, j: int) -> torch.Tensor:
    """sum |d logits(c, i, j) / d input| over 8 random inputs, (C, H, W): which inputs the
    output at (c, i, j) sees (several inputs, so that no ReLU pattern hides a path)."""
    x = torch.rand(8, *shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    x = (2 * x - 1).requires_grad_(True)
    out = model.logits(x)  # (8, C, P, H, W); images are independent
    (grad,) = torch.autograd.grad(out[:, c, :, i, j].sum(), x)
    return grad.abs().sum(0)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("channels, levels", [(1, 2), (3, 2), (3, 256)])
def test_causal_in_raster_then_colour_order(family, channels, levels):
    shape = (channels, 4, 4)
    model = tiny(family, shape, levels, channels=24, head_hidden=24)  # no dead colour paths
    order = torch.arange(math.prod(shape)).view(4, 4, channels).permute(2, 0, 1)  # (C, H, W)
    for c, i, j in itertools.product(range(channels), range(4), range(4)):
        dep = dependence(model, shape, c, i, j)
        now = order[c, i, j]
        assert torch.all(dep[order >= now] == 0), f"output ({c},{i},{j}) sees the future"
        if now > 0:  # and it does see the previous pixel-channel: the check can fail
            assert dep[order == now - 1].item() > 0, f"output ({c},{i},{j}) misses its past"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    "shape, levels",
    [
        ((1, 3, 3), 2),
        ((3, 2, 2), 2),
        ((1, 1, 3), 16),
        ((3, 1, 1), 16),
        pytest.param((1, 1, 2), 256, marks=pytest.mark.slow),
    ],
    ids=str,
)
def test_probabilities_of_all_images_sum_to_one(family, shape, levels):
    """3x3 binary (512 images), 2x2 RGB binary (4096), the categorical head with 16 levels on
    1x3 grey and 1x1 RGB images (4096 each) and, marked slow, 1x2 8-bit images (65536)."""
    model = tiny(family, shape, levels)
    with torch.no_grad():
        log_p = model.log_prob_levels(all_images(shape, levels))  # (levels ** D,)
    assert torch.logsumexp(log_p, 0).exp().item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("channels, levels", [(1, 2), (1, 256), (3, 2), (3, 256)])
def test_naive_and_cached_samplers_agree(family, channels, levels):
    torch.manual_seed(0)
    model = build_model(spec(family, **SMALL), DataInfo((channels, 5, 4), levels))
    draws = {
        s: sample_autoregressive(model, 6, generator=torch.Generator().manual_seed(7), sampler=s)
        for s in ("naive", "cached")
    }
    assert torch.equal(draws["naive"], draws["cached"])
    assert draws["cached"].shape == (6, channels, 5, 4)
    assert len(draws["cached"].unique()) > 1  # not a constant image
    other = model.sample(6, generator=torch.Generator().manual_seed(8))
    assert not torch.equal(other, draws["cached"])
    assert torch.equal(model.sample(6, generator=torch.Generator().manual_seed(7)), draws["naive"])


@pytest.mark.parametrize("family", FAMILIES)
def test_samples_follow_the_model_distribution(family):
    """Frequencies of 4000 cached samples of 2x2 binary images match the model's p(x)."""
    shape = (1, 2, 2)
    model = tiny(family, shape, 2)
    images = all_images(shape, 2)  # (16, 1, 2, 2)
    with torch.no_grad():
        p = model.log_prob_levels(images).exp()  # (16,)
    n = 4000
    s = model.sample(n, generator=torch.Generator().manual_seed(0)).round().long()
    index = (s.flatten(1) * torch.tensor([8, 4, 2, 1])).sum(1)  # image -> row of all_images
    freq = torch.bincount(index, minlength=16).double() / n
    assert torch.all((freq - p).abs() <= 4 * (p * (1 - p) / n).sqrt() + 1e-3)


def window(i: int, j: int, reach: int, size: int) -> list[tuple[int, int]]:
    """Causal past of (i, j) within ``reach`` rows above and columns either side."""
    rows = [(r, c) for r in range(max(0, i - reach), i) for c in range(size)]
    return [(r, c) for r, c in rows if abs(c - j) <= reach] + [
        (i, c) for c in range(max(0, j - reach), j)
    ]


def test_gated_pixelcnn_has_no_blind_spot():
    """Default gated PixelCNN (7x7 first layer, 4 more 3x3 layers: reach 7) on 12x12 images:
    every pixel above and to the left within the reach influences the output."""
    model = tiny("gated_pixelcnn", (1, 12, 12), 2, channels=8)
    for i, j in [(11, 4), (8, 8), (5, 0), (11, 11)]:
        dep = dependence(model, (1, 12, 12), 0, i, j)[0]
        missed = [(r, c) for r, c in window(i, j, 7, 12) if dep[r, c] == 0]
        assert missed == [], f"gated PixelCNN misses {missed} for pixel {(i, j)}"


def test_pixelcnn_blind_spot_is_above_right():
    """Plain PixelCNN with the same nominal reach (7x7 mask A, 4 blocks with 3x3 mask B) does
    not see some pixels above and to the right of the current one (van den Oord et al. 2016,
    "Conditional Image Generation with PixelCNN Decoders", figure 1); everything above-left
    and on the current row is seen."""
    model = tiny("pixelcnn", (1, 12, 12), 2, channels=8)
    i, j = 11, 4
    dep = dependence(model, (1, 12, 12), 0, i, j)[0]
    missed = [(r, c) for r, c in window(i, j, 7, 12) if dep[r, c] == 0]
    assert missed, "expected a blind spot"
    assert all(r < i and c > j for r, c in missed), missed
    assert (i - 1, j + 4) in missed  # the first unreached pixel: one row up, four right


@pytest.mark.parametrize("family", FAMILIES)
def test_loss_and_exact_likelihood_agree(family):
    model = tiny(family, (1, 4, 4), 256)
    x = torch.randint(0, 256, (3, 1, 4, 4)).double() / 255
    ll = model.log_likelihood(x, k=1)
    assert ll.kind == "exact" and ll.values.shape == (3,)
    terms = model.loss(x, "main")
    assert terms["loss"].item() == pytest.approx(-ll.values.mean().item())
    assert terms["bits_per_dim"].item() == pytest.approx(terms["loss"].item() / (16 * math.log(2)))
    # levels are recovered by rounding: x and x + small noise have the same likelihood
    noisy = (x + 0.3 / 255).clamp(0, 1)
    assert torch.allclose(model.log_likelihood(noisy, k=1).values, ll.values)


def test_masks_order_colours_at_the_centre_tap():
    """Mask A: output colour g sees input colours < g at the centre; mask B: <= g. Taps above
    and to the left are open for every colour pair, taps after the centre closed."""
    from genlab.models.autoregressive.masked import build_mask, channel_groups

    rgb = torch.arange(3)
    a = build_mask(rgb, rgb, (3, 3), (1, 1), "A")
    b = build_mask(rgb, rgb, (3, 3), (1, 1), "B")
    assert torch.equal(a[:, :, 1, 1], torch.tril(torch.ones(3, 3), -1))
    assert torch.equal(b[:, :, 1, 1], torch.tril(torch.ones(3, 3)))
    for m in (a, b):
        assert torch.all(m[:, :, 0] == 1) and torch.all(m[:, :, 1, 0] == 1)
        assert torch.all(m[:, :, 1, 2] == 0) and torch.all(m[:, :, 2] == 0)
    assert channel_groups(7, 3).tolist() == [0, 0, 0, 1, 1, 2, 2]


def test_network_input_of_levels():
    k = torch.tensor([0, 1, 255])
    assert to_input(k, 256).tolist() == [-1.0, pytest.approx(-1 + 2 / 255), 1.0]


@pytest.mark.parametrize("family", FAMILIES)
def test_bad_configs_are_one_line_errors(family):
    with pytest.raises(ConfigError, match="kernel"):
        build_model(spec(family, kernel=4), DataInfo((1, 8, 8), 2))
    with pytest.raises(ConfigError, match="image channels"):
        build_model(spec(family, channels=2), DataInfo((3, 8, 8), 2))


def test_diagonal_bilstm_sees_the_whole_context_row_lstm_a_triangle():
    """One Diagonal BiLSTM layer sees every earlier pixel of a 7x7 image but one: the last pixel
    of the row above, which the mask-A first layer only passes to later pixels of the current
    row (the right-to-left sweep reads that layer's output). One Row LSTM layer sees a
    triangle (van den Oord et al. 2016, figure 4): it misses pixels above-right and far left."""
    for i, j in [(6, 0), (4, 3), (6, 6)]:
        diagonal = tiny("pixelrnn-diagonal", (1, 7, 7), 2, layers=1, first_kernel=3)
        dep = dependence(diagonal, (1, 7, 7), 0, i, j)[0]
        missed = [(r, c) for r, c in window(i, j, 7, 7) if dep[r, c] == 0]
        assert missed == ([] if j == 6 else [(i - 1, 6)]), (i, j, missed)
        row = tiny("pixelrnn", (1, 7, 7), 2, layers=1, first_kernel=3)
        dep = dependence(row, (1, 7, 7), 0, i, j)[0]
        assert len([(r, c) for r, c in window(i, j, 7, 7) if dep[r, c] == 0]) > 1


@pytest.mark.parametrize(
    "kernel, centre, mask_type, channels, data_channels",
    [
        ((3, 3), None, "B", 6, 1),
        ((7, 7), None, "A", 1, 1),
        ((7, 7), None, "A", 3, 3),
        ((1, 7), (0, 3), "A", 4, 1),
        ((1, 3), (0, 1), "B", 4, 1),
        ((2, 3), (1, 1), "B", 6, 3),
    ],
)
def test_a_masked_convolution_computes_only_its_open_taps(
    kernel, centre, mask_type, channels, data_channels
):
    """The layer cuts its kernel to the rows and columns the mask keeps open; the result is
    the full masked convolution of the zero-padded input, and the cut kernel is smaller."""
    torch.manual_seed(0)
    layer = MaskedConv2d(channels, 2 * channels, kernel, mask_type, data_channels, centre=centre)
    x = torch.randn(3, channels, 9, 11)
    full = F.conv2d(F.pad(x, layer.padding), layer.weight * layer.mask, layer.bias)
    torch.testing.assert_close(layer(x), full, rtol=1e-5, atol=1e-5)
    r0, r1, c0, c1 = layer.window
    assert layer.mask[:, :, :r0].sum() == layer.mask[:, :, r1:].sum() == 0
    assert layer.mask[..., :c0].sum() == layer.mask[..., c1:].sum() == 0
    if kernel[0] > 1 and centre is None:  # rows below the centre are closed: not computed
        assert r1 - r0 == kernel[0] // 2 + 1
