"""Markov-chain attribution: order-k transition matrix and exact removal effects.

States are ``(start)``, the last k channels seen (fewer at the start of a path), and the
absorbing ``(conversion)`` and ``(null)``. Transition counts come from every journey's
consecutive states, each journey weighted by its count. The probability of reaching
conversion from the start is the absorption probability of this chain,

    (I - Q) b = r,    P(conversion) = b[start],

with Q the transient-to-transient block and r the transient-to-conversion column. Removing a
channel sends every state that holds it to null, which is the same system restricted to the
other states. Removal effect RE_c = 1 - P_c / P; credit_c = RE_c / sum RE x conversions.
All of it is exact (one sparse LU per channel), unlike tools that simulate walks.

Value: a conversion reached from state s is worth the mean value of the observed
conversions from s, so the expected value is the same solve with r * v(s); its removal
effects split the total value the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from attribution_analysis.paths.data import PathData

START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"
SOLVER = "exact absorbing-chain solve: sparse LU of (I - Q) per removed channel (scipy.sparse)"


@dataclass(frozen=True)
class MarkovFit:
    order: int
    state_labels: list[str]  # transient states, index 0 = start
    counts: sp.csr_matrix  # (S + 2, S + 2): transient states, then conversion, null
    p_conversion: float
    removal_effect: np.ndarray  # (C,)
    p_without: np.ndarray  # (C,)
    removal_effect_value: np.ndarray | None
    conversions: np.ndarray  # (C,) credited
    value: np.ndarray | None

    @property
    def n_states(self) -> int:
        return len(self.state_labels) - 1


def _collapse(data: PathData) -> tuple[np.ndarray, np.ndarray]:
    """Touch channels and per-unit lengths with consecutive repeats merged (a > a > b -> a > b)."""
    ch = data.touch_channel
    first = np.zeros(len(ch), dtype=bool)
    first[data.start[:-1]] = True
    keep = first.copy()
    keep[1:] |= ch[1:] != ch[:-1]
    keep |= first
    unit = data.touch_unit[keep]
    return ch[keep], np.bincount(unit, minlength=data.n_units)


def _state_codes(ch: np.ndarray, lengths: np.ndarray, order: int, n_channels: int) -> np.ndarray:
    """Code of the order-k state at each touch: sum_i (ch[t - i] + 1) * base^i, with 0 for
    positions before the path start (so shorter histories are their own states)."""
    base = n_channels + 1
    if base**order >= 2**62:
        raise ValueError("too many channels for this order")
    starts = np.repeat(np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    pos = np.arange(len(ch)) - starts
    code = ch + 1
    for i in range(1, order):
        shifted = np.zeros(len(ch), dtype=np.int64)
        shifted[i:] = ch[:-i] + 1
        code = code + np.where(pos >= i, shifted, 0) * base**i
    return code


def _decode(code: int, order: int, n_channels: int) -> list[int]:
    """Channels of a state code, oldest first."""
    base = n_channels + 1
    digits = [(code // base**i) % base for i in range(order)]
    return [d - 1 for d in reversed(digits) if d > 0]


@dataclass(frozen=True)
class ChainStructure:
    """Everything of a chain that does not depend on the outcome counts: states, the
    transition entries (one per journey step, weighted later) and state membership. The
    bootstrap re-weights it per replicate without rebuilding the states."""

    order: int
    codes: np.ndarray  # state codes (transient states 1..S; 0 is the start)
    n_transient: int
    src: np.ndarray  # per transition entry (one per journey step; duplicates summed later)
    dst: np.ndarray
    entry_unit: np.ndarray  # per transition entry: the unit whose count weights it
    entry_kind: np.ndarray  # 0: journeys of the unit, 1: its conversions, 2: its nulls
    last_state: np.ndarray  # (U,) state of each unit's last touch
    members: np.ndarray  # (S + 1, C) bool: state holds channel


def chain_structure(data: PathData, order: int = 1, collapse_repeats: bool = True):
    n_ch = len(data.channels)
    if collapse_repeats:
        ch, lengths = _collapse(data)
    else:
        ch, lengths = data.touch_channel, data.lengths
    code = _state_codes(ch, lengths, order, n_ch)
    codes, state = np.unique(code, return_inverse=True)
    state = state.ravel() + 1  # 0 is the start state
    n_transient = len(codes) + 1
    conv_state, null_state = n_transient, n_transient + 1
    n_units = len(lengths)
    ends = np.cumsum(lengths)
    begins = ends - lengths
    # Transitions: start -> first state; state[t] -> state[t+1] inside a path; last state ->
    # conversion (weight = conversions) and -> null (weight = nulls).
    within = np.ones(len(ch), dtype=bool)
    within[ends - 1] = False
    touch_unit = np.repeat(np.arange(n_units), lengths)
    units = np.arange(n_units)
    src = np.concatenate(
        [np.zeros(n_units, dtype=np.int64), state[within], state[ends - 1], state[ends - 1]]
    )
    dst = np.concatenate(
        [
            state[begins],
            state[np.flatnonzero(within) + 1],
            np.full(n_units, conv_state),
            np.full(n_units, null_state),
        ]
    )
    entry_unit = np.concatenate([units, touch_unit[within], units, units])
    entry_kind = np.concatenate(
        [
            np.zeros(n_units + int(within.sum()), dtype=np.int8),
            np.full(n_units, 1, np.int8),
            np.full(n_units, 2, np.int8),
        ]
    )
    members = np.zeros((n_transient, n_ch), dtype=bool)
    base = n_ch + 1
    for i in range(order):
        digit = (codes // base**i) % base
        has = digit > 0
        members[np.flatnonzero(has) + 1, digit[has] - 1] = True
    return ChainStructure(
        order=order,
        codes=codes,
        n_transient=n_transient,
        src=src,
        dst=dst,
        entry_unit=entry_unit,
        entry_kind=entry_kind,
        last_state=state[ends - 1],
        members=members,
    )


def _counts(chain: ChainStructure, conversions: np.ndarray, nulls: np.ndarray) -> sp.csr_matrix:
    per_kind = np.stack([conversions + nulls, conversions, nulls])  # (3, U)
    w = per_kind[chain.entry_kind, chain.entry_unit]
    size = chain.n_transient + 2
    counts = sp.coo_matrix((w, (chain.src, chain.dst)), shape=(size, size)).tocsr()
    counts.sum_duplicates()
    counts.eliminate_zeros()
    return counts


def solve_chain(
    chain: ChainStructure,
    conversions: np.ndarray,
    nulls: np.ndarray,
    value: np.ndarray | None = None,
) -> tuple[sp.csr_matrix, float, np.ndarray, float | None, np.ndarray]:
    """Counts, P(conversion), P(conversion) without each channel, and the same two on
    expected value (None / zeros without value), for per-unit outcome counts."""
    n_transient = chain.n_transient
    conv_state = n_transient
    n_ch = chain.members.shape[1]
    counts = _counts(chain, conversions, nulls)
    out = np.asarray(counts.sum(axis=1)).ravel()[:n_transient]
    probs = sp.diags(1.0 / np.where(out > 0, out, 1.0)) @ counts[:n_transient]
    q = probs[:, :n_transient].tocsc()
    r_conv = probs[:, conv_state].toarray().ravel()
    value_rate = None
    if value is not None:
        conv_from = counts[:n_transient, conv_state].toarray().ravel()
        value_from = np.bincount(chain.last_state, value, minlength=n_transient)
        mean_value = np.divide(
            value_from, conv_from, out=np.zeros(n_transient), where=conv_from > 0
        )
        value_rate = r_conv * mean_value

    def absorb(keep: np.ndarray) -> tuple[float, float | None]:
        idx = np.flatnonzero(keep)
        system = (sp.identity(len(idx), format="csc") - q[idx][:, idx]).tocsc()
        lu = splu(system)
        p = float(lu.solve(r_conv[idx])[0])  # start is always kept, at position 0
        v = None if value_rate is None else float(lu.solve(value_rate[idx])[0])
        return p, v

    p_conv, value_total = absorb(np.ones(n_transient, dtype=bool))
    p_without = np.zeros(n_ch)
    v_without = np.zeros(n_ch)
    for c in range(n_ch):
        p_without[c], vc = absorb(~chain.members[:, c])
        v_without[c] = vc if vc is not None else 0.0
    return counts, p_conv, p_without, value_total, v_without


def removal_effects(p_conv: float, p_without: np.ndarray) -> np.ndarray:
    """RE_c = 1 - P_c / P. Sending states to null can only lower the absorption probability
    (every path to conversion that avoids the channel survives), so 0 <= RE_c <= 1."""
    return 1.0 - p_without / p_conv if p_conv > 0 else np.zeros_like(p_without)


def fit_markov(data: PathData, order: int = 1, collapse_repeats: bool = True) -> MarkovFit:
    """Transition counts, P(conversion), removal effects and credit of a k-order chain."""
    n_ch = len(data.channels)
    chain = chain_structure(data, order, collapse_repeats)
    counts, p_conv, p_without, value_total, v_without = solve_chain(
        chain, data.conversions, data.nulls, data.value
    )
    removal = removal_effects(p_conv, p_without)
    total_conv = float(data.conversions.sum())
    credit = _share(removal) * total_conv
    removal_value = value_credit = None
    if data.value is not None and value_total:
        removal_value = 1.0 - v_without / value_total
        value_credit = _share(removal_value) * float(data.value.sum())
    labels = [START] + [
        " > ".join(data.channels[c] for c in _decode(int(k), order, n_ch)) for k in chain.codes
    ]
    return MarkovFit(
        order=order,
        state_labels=labels,
        counts=counts,
        p_conversion=p_conv,
        removal_effect=removal,
        p_without=p_without,
        removal_effect_value=removal_value,
        conversions=credit,
        value=value_credit,
    )


def _share(effect: np.ndarray) -> np.ndarray:
    total = effect.sum(axis=-1, keepdims=True)
    return np.divide(effect, total, out=np.zeros_like(effect), where=total > 0)


def top_transitions(fit: MarkovFit, limit: int = 200) -> tuple[list[dict], bool]:
    """The largest transitions by count, labelled, with their probabilities."""
    counts = fit.counts.tocoo()
    n_transient = len(fit.state_labels)
    out = np.asarray(fit.counts.sum(axis=1)).ravel()
    labels = [*fit.state_labels, CONVERSION, NULL]
    order = np.argsort(-counts.data, kind="stable")[:limit]
    rows = [
        {
            "source": labels[int(counts.row[i])],
            "target": labels[int(counts.col[i])],
            "count": float(counts.data[i]),
            "probability": float(counts.data[i] / out[counts.row[i]]),
        }
        for i in order
        if counts.row[i] < n_transient
    ]
    return rows, counts.nnz > limit
