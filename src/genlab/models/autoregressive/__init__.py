"""Explicit density, tractable: fully visible belief nets, p(x) = prod_i p(x_i | x_<i).

Exact likelihood, sequential sampling (one network pass per pixel, or a cached pass).
"""
