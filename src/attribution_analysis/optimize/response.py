"""Channel response over a planning horizon, per posterior draw, in closed form.

Convention (the same as PyMC-Marketing's ``mmm.budget_optimizer`` with no carry-in): the
plan starts from zero adstock, spends ``X / H`` in each of the ``H`` horizon periods, and
counts the outcome of the horizon plus the ``l_max - 1`` periods of carry-over after it.
Because the spend is flat, the adstocked input in period t is ``x * W_t`` with
``W_t = sum of the adstock weights whose lag lands inside the horizon``, so the response is
``beta * sat(x * W_t / scale)`` summed over t: no convolution per evaluation, and the
gradient is analytic. That is why this is written here rather than calling the library's
optimizer, whose PyTensor graph costs ~18 s to compile and ~0.1-1 s per call (PITFALLS.md).

Adstock weights come from PyMC-Marketing's own adstock function (geometric or Weibull) on a
unit impulse, so they cannot drift from the fitted model; the saturation curves are the
NumPy twins in ``transforms`` that ``tests/test_transforms.py`` checks against the library.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.special import expit

# Spend is floored here (in scaled units) so that a Hill slope below 1 keeps a finite
# derivative at zero spend.
_TINY = 1e-12


@dataclass(frozen=True)
class ResponseCurves:
    """Per-draw response of every channel to a flat spend plan over ``horizon`` periods.

    Shapes: S draws, G geos (1 when national), C channels, T distinct periods of the
    timeline. Periods whose adstocked input is the same (the plateau of a flat plan) are
    stored once with their count, so a year-long horizon costs no more than a quarter.
    """

    channels: list[str]
    horizon: int
    timeline_weight: np.ndarray  # (S, G, C, T): adstocked input per unit of per-period input
    period_count: np.ndarray  # (T,): how many periods of the timeline share that weight
    beta: np.ndarray  # (S, G, C)
    saturation: str  # "hill" | "logistic"
    slope: np.ndarray | None  # (S, G, C) for hill
    kappa: np.ndarray | None  # (S, G, C) for hill
    lam: np.ndarray | None  # (S, G, C) for logistic
    input_per_spend: np.ndarray  # (G, C): geo share of the channel / channel scale in the geo
    target_scale: np.ndarray  # (G,)

    @property
    def n_draws(self) -> int:
        return int(self.beta.shape[0])

    @cached_property
    def _weight(self) -> np.ndarray:
        """beta x target scale x period count, (S, G, C, T): the outcome is sum(weight * sat)."""
        scale = self.beta * self.target_scale[None, :, None]
        return scale[..., None] * self.period_count

    @cached_property
    def _hill_offset(self) -> np.ndarray:
        """log W - log kappa, so that sat = expit(slope * (log(x u) + offset))."""
        return np.log(np.maximum(self.timeline_weight, _TINY)) - np.log(self.kappa)[..., None]

    def _evaluate(
        self, per_period: np.ndarray, select: slice | int, with_gradient: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Outcome and derivative per unit of per-period input for the channels ``select``;
        ``per_period`` broadcasts against (S, G, C[select], T) from the left."""
        unit = self.input_per_spend[:, select][:, ..., None]  # (G, C', 1)
        weight = self._weight[:, :, select]
        p = np.maximum(per_period, _TINY)
        if self.saturation == "hill":
            slope = self.slope[:, :, select][..., None]
            log_input = np.log(p * unit)
            h = expit(slope * (log_input + self._hill_offset[:, :, select]))
            value = weight * h
            gradient = weight * slope * h * (1 - h) / p if with_gradient else None
        else:
            lam = self.lam[:, :, select][..., None]
            w = self.timeline_weight[:, :, select]
            t = np.tanh(lam * p * unit * w / 2)
            value = weight * t
            gradient = weight * lam / 2 * (1 - t**2) * unit * w if with_gradient else None
        return value, gradient

    def channel_outcome(
        self, c: int, spend: np.ndarray, with_gradient: bool = False
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Outcome (K, S) of channel ``c`` for K horizon spends; optionally d outcome / d spend.

        The loop over channels (not draws, periods or geos) keeps the working array at
        K x S x G x T, a few MB even for 500 draws and a 200-point grid.
        """
        spend = np.atleast_1d(np.asarray(spend, dtype=float))
        per_period = (spend / self.horizon)[:, None, None, None]  # (K, 1, 1, 1)
        value, gradient = self._evaluate(per_period, c, with_gradient)
        value = value.sum(axis=(2, 3))
        if gradient is None:
            return value, None
        return value, gradient.sum(axis=(2, 3)) / self.horizon

    def outcome(self, spend: np.ndarray) -> np.ndarray:
        """Per-draw outcome (S, C) of one plan ``spend`` (C,) over the horizon."""
        return self.outcome_and_gradient(spend, with_gradient=False)[0]

    def outcome_and_gradient(
        self, spend: np.ndarray, with_gradient: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Per-draw outcome (S, C) of one plan and its derivative per unit of spend (S, C);
        all channels at once (the optimizer's inner loop)."""
        per_period = (np.asarray(spend, dtype=float) / self.horizon)[:, None]  # (C, 1)
        value, gradient = self._evaluate(per_period, slice(None), with_gradient)
        value = value.sum(axis=(1, 3))
        if gradient is None:
            return value, None
        return value, gradient.sum(axis=(1, 3)) / self.horizon

    def steady_state_saturation(self, spend: np.ndarray) -> np.ndarray:
        """Saturation level (S, C) in a long run at this per-horizon spend (0 none, 1 ceiling).

        Uses the full adstock weight sum (the plateau after ramp-up), averaged over geos
        with the channel's outcome weights.
        """
        per_period = np.asarray(spend, dtype=float) / self.horizon
        plateau = self.timeline_weight.max(axis=3)  # (S, G, C)
        z = np.maximum(per_period[None, None, :] * self.input_per_spend[None], _TINY) * plateau
        if self.saturation == "hill":
            level = expit(self.slope * (np.log(z) - np.log(self.kappa)))
        else:
            level = np.tanh(self.lam * z / 2)
        weight = self.beta * self.target_scale[None, :, None]
        return (level * weight).sum(axis=1) / np.maximum(weight.sum(axis=1), _TINY)


def timeline_weights(adstock_weights: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """W_t from lag weights (..., L): the sum of w_l over the lags l with t - l inside the
    horizon [0, H), for t over the horizon and its carry-over tail. Periods that see the
    same set of lags get the same W_t, so they are returned once: (W (..., T'), count (T',))."""
    lags = adstock_weights.shape[-1]
    t = np.arange(horizon + lags - 1)[:, None]
    lag = np.arange(lags)[None, :]
    inside = ((t - lag) >= 0) & ((t - lag) < horizon)  # (T, L)
    patterns, counts = np.unique(inside, axis=0, return_counts=True)
    weights = np.einsum("...l,tl->...t", adstock_weights, patterns.astype(float))
    return weights, counts.astype(float)


def library_adstock_weights(adstock: object, params: dict[str, np.ndarray]) -> np.ndarray:
    """Lag weights (S, G, C, L) from PyMC-Marketing's own adstock function on a unit impulse;
    ``params`` are arrays shaped (draws, geos, channels)."""
    import pytensor.tensor as pt
    import pytensor.xtensor as ptx

    dims = ("sample", "geo", "channel")
    l_max = int(adstock.l_max)
    first = next(iter(params.values()))
    impulse = np.zeros((l_max, *first.shape))
    impulse[0] = 1.0
    x = ptx.as_xtensor(pt.as_tensor_variable(impulse), dims=("lag", *dims))
    values = {k: ptx.as_xtensor(pt.as_tensor_variable(v), dims=dims) for k, v in params.items()}
    out = adstock.function(x, **values, dim="lag").transpose(*dims, "lag")
    return np.asarray(out.eval(), dtype=float)


def geometric_weights(alpha: np.ndarray, l_max: int, normalize: bool = True) -> np.ndarray:
    """Normalised geometric lag weights (..., L), the ridge fit's adstock."""
    weights = np.asarray(alpha, dtype=float)[..., None] ** np.arange(l_max)
    return weights / weights.sum(axis=-1, keepdims=True) if normalize else weights
