"""Implicit density, direct: generative adversarial networks (one-pass sampling, no
likelihood)."""
