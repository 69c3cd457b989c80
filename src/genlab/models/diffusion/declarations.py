"""What the diffusion family declares about itself: its tiny test configurations (DDPM with
eps and v prediction, flow matching, and their conditional twins) and its zoo entries."""

from __future__ import annotations

from genlab.models.declarations import GREY, TinyConfig, ZooEntry

TINY = {"channels": 8, "channel_mults": [1, 2], "blocks": 1, "attention": True}
TINY_DDPM = {**TINY, "timesteps": 20, "sample_steps": 4}
TINY_FLOW = {
    **TINY,
    "objective": "flow_matching",
    "sampler": "euler",
    "sample_steps": 4,
    "ode_solver": "heun",
    "ode_steps": 2,
}
ZOO_NET = {"channels": 16, "channel_mults": [1, 2], "blocks": 1, "attention": False}
ZOO_EVAL = {"steps_curve": [5, 10, 20, 50], "steps_curve_samples": 200}


TINY_CONFIGS = {
    "ddpm_eps": TinyConfig(TINY_DDPM, 256),
    "ddpm_v": TinyConfig(
        {
            **TINY,
            "prediction": "v",
            "schedule": "cosine",
            "variance": "beta",
            "timesteps": 20,
            "sampler": "ddpm",
            "sample_steps": 5,
        },
        256,
    ),
    "flow_matching": TinyConfig(TINY_FLOW, 256),
    "ddpm_cond": TinyConfig({**TINY_DDPM, "conditional": True}, 256),
    "flow_matching_cond": TinyConfig({**TINY_FLOW, "conditional": True}, 256),
}
# the zoo's U-Net is the smallest that samples recognisable garments within minutes on a
# CPU (16 channels at 28x28, 32 at 14x14, no attention: about 350 training images/s on
# two threads); its evaluation is sized to the same minutes: 20 sampling steps, the FD
# against steps on 200 samples up to 50 steps, the bound on 1000 test images with 10
# Monte-Carlo steps each, the ODE estimate on 500 with 8 Heun steps
ZOO_ENTRIES = (
    ZooEntry(
        "diffusion-grey",
        GREY,
        0.20,
        2,
        # variance beta: the tighter bound (with the exact denoiser of Gaussian data the
        # bound meets the NLL with beta_t, and stays 0.58 nats above it with beta~_t);
        # DDIM with eta 0, the sampler, does not use it
        {
            **ZOO_NET,
            "objective": "ddpm",
            "schedule": "cosine",
            "variance": "beta",
            "sample_steps": 20,
        },
        {"batch_size": 64, "lr": 1e-3, "grad_clip": 1.0, "fd_every": 1, "fd_samples": 1000},
        {**ZOO_EVAL, "bound_terms": 10, "likelihood_images": 1000},
    ),
    ZooEntry(
        "flow-matching-grey",
        GREY,
        0.15,
        2,
        {
            **ZOO_NET,
            "objective": "flow_matching",
            "sampler": "euler",
            "sample_steps": 20,
            "ode_solver": "heun",
            "ode_steps": 8,
        },
        {"batch_size": 64, "lr": 1e-3, "grad_clip": 1.0, "fd_every": 1, "fd_samples": 1000},
        {**ZOO_EVAL, "likelihood_images": 500},
    ),
)
