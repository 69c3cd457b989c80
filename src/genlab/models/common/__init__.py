"""Pieces families share: observation distributions, encoder/decoder networks, the
exponential moving average of weights."""
