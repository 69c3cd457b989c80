"""Fixed-step solvers of an ODE ds/dt = f(t, s) on a tuple of tensors: Euler, Heun (the
explicit trapezoidal rule, second order; Karras et al. 2022, algorithm 1) and the classical
fourth-order Runge-Kutta method. The flow-matching sampler integrates the velocity field with
them, and the likelihood integrates it together with the divergence (Chen et al. 2018)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from tqdm.auto import tqdm

State = tuple[torch.Tensor, ...]
Field = Callable[[float, State], State]
Method = Literal["euler", "heun", "rk4"]
EVALUATIONS: dict[str, int] = {"euler": 1, "heun": 2, "rk4": 4}  # per step


def _axpy(state: State, h: float, slope: State) -> State:
    return tuple(s + h * d for s, d in zip(state, slope, strict=True))


def step(field: Field, t: float, h: float, state: State, method: Method) -> State:
    """One step of size h (negative: backwards in time) from (t, state)."""
    k1 = field(t, state)
    if method == "euler":
        return _axpy(state, h, k1)
    if method == "heun":
        k2 = field(t + h, _axpy(state, h, k1))
        return tuple(s + 0.5 * h * (a + b) for s, a, b in zip(state, k1, k2, strict=True))
    if method == "rk4":
        k2 = field(t + 0.5 * h, _axpy(state, 0.5 * h, k1))
        k3 = field(t + 0.5 * h, _axpy(state, 0.5 * h, k2))
        k4 = field(t + h, _axpy(state, h, k3))
        return tuple(
            s + h / 6.0 * (a + 2.0 * b + 2.0 * c + d)
            for s, a, b, c, d in zip(state, k1, k2, k3, k4, strict=True)
        )
    raise ValueError(f"unknown ODE method {method!r}; valid: euler, heun, rk4")


def integrate(
    field: Field,
    state: State,
    t0: float,
    t1: float,
    steps: int,
    method: Method,
    *,
    progress: bool = False,
    desc: str = "ODE",
) -> State:
    """The state at t1 from the state at t0, in ``steps`` equal steps of ``method``."""
    if steps < 1:
        raise ValueError(f"an ODE solve needs at least one step, got {steps}")
    h = (t1 - t0) / steps
    for i in tqdm(range(steps), desc=desc, disable=not progress, leave=False):
        state = step(field, t0 + i * h, h, state, method)
    return state
