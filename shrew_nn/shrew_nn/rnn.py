"""Recurrent layers: RNN/LSTM/GRU and their cells, PyTorch-compatible (parameter names
``weight_ih_l{k}[_reverse]``, gate orders i,f,g,o for LSTM and r,z,n for GRU).

Each layer and direction runs as ONE custom autograd op over the whole sequence:

* the input projection of every time step is a single GEMM, outside the op (autograd
  differentiates it);
* the op's forward loops over time doing ``h @ W_hhᵀ`` plus the cell update; its backward
  walks time in reverse with a hand-derived cell gradient (a handful of ops per step instead
  of autograd through ~15 small ops), and computes ``dW_hh`` as ONE GEMM over all steps.

The per-step cell update is written in ``_lstm_cell`` / ``_lstm_cell_backward`` (and the GRU
and RNN equivalents) so a backend kernel can replace each of them 1:1 (see the README).
"""

from __future__ import annotations

import math
from typing import Any

import shrew_core as sc
from shrew_core import Tensor

from . import functional as F
from ._utils import uniform_param
from .module import Module

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


# ---------------------------------------------------------------------------- cell maths
def _lstm_cell(gates: Tensor, c: Tensor, hidden: int):
    """One LSTM step from pre-activations ``gates`` [B, 4H] (i, f, g, o) and ``c`` [B, H]:
    returns ``h, c_new, a, g, tc`` with ``a = sigmoid(gates)``, ``g = tanh(gates_g)`` and
    ``tc = tanh(c_new)``."""
    H = hidden
    a = gates.sigmoid()
    g = gates[:, 2 * H : 3 * H].tanh()
    c_new = a[:, H : 2 * H] * c + a[:, :H] * g
    tc = c_new.tanh()
    return a[:, 3 * H :] * tc, c_new, a, g, tc


def _one_minus(x: Tensor) -> Tensor:
    return x.affine(-1.0, 1.0)


def _lstm_backward_factors(A: Tensor, G: Tensor, C_prev: Tensor, TC: Tensor, hidden: int):
    """Everything the LSTM backward needs that does not depend on the recurrence, for all
    steps at once ([T, B, *]): ``M`` [T, B, 4H] (d_gates = [dc, dc, dc, dh] * M), ``K``
    (dc += dh * K) and the forget gate ``F`` (dc_prev = dc * F)."""
    H = hidden
    SD = A * _one_minus(A)  # sigmoid'
    M = sc.cat([
        G * SD[..., :H],
        C_prev * SD[..., H : 2 * H],
        A[..., :H] * _one_minus(G * G),
        TC * SD[..., 3 * H :],
    ], dim=2)  # fmt: skip
    K = A[..., 3 * H :] * _one_minus(TC * TC)
    return M, K, A[..., H : 2 * H].contiguous()


def _lstm_cell_backward(dh: Tensor, dc: Tensor, M: Tensor, K: Tensor, F: Tensor, w_hh: Tensor):
    """One step of the LSTM backward recurrence: ``(d_gates, dh_prev, dc_prev)``."""
    dc = dc + dh * K
    d_gates = sc.cat([dc, dc, dc, dh], dim=1) * M
    return d_gates, d_gates @ w_hh, dc * F


def _gru_cell(xg: Tensor, hg: Tensor, h: Tensor, hidden: int):
    """One GRU step from input part ``xg`` [B, 3H] and hidden part ``hg = h W_hhᵀ + b_hh``
    (r, z, n): returns ``h_new, (rz, n)``."""
    H = hidden
    rz = (xg[:, : 2 * H] + hg[:, : 2 * H]).sigmoid()
    n = (xg[:, 2 * H :] + rz[:, :H] * hg[:, 2 * H :]).tanh()
    return n + rz[:, H:] * (h - n), (rz, n)


def _gru_cell_backward(dh: Tensor, h_prev: Tensor, hg: Tensor, saved, hidden: int):
    """Gradient of one GRU step: returns ``(d_xg [B, 3H], d_hg [B, 3H], dh_prev_direct)``."""
    H = hidden
    rz, n = saved
    r, z = rz[:, :H], rz[:, H:]
    dn = dh * (1.0 - z) * (1.0 - n * n)
    drz = sc.cat([dn * hg[:, 2 * H :], dh * (h_prev - n)], dim=1) * rz * (1.0 - rz)
    return sc.cat([drz, dn], dim=1), sc.cat([drz, dn * r], dim=1), dh * z


# ---------------------------------------------------------------------------- sequence ops
def _order(T: int, reverse: bool):
    return range(T - 1, -1, -1) if reverse else range(T)


def _prev_states(hs: list, h0: Tensor, reverse: bool) -> Tensor:
    """``[T, B, H]``: the hidden state each step started from (time order)."""
    prev = [h0] + hs[:-1] if not reverse else hs[1:] + [h0]
    return sc.stack(prev)


def _shifted(S: Tensor, s0: Tensor, reverse: bool) -> Tensor:
    """``[T, B, H]`` states -> the state each step started from (time order)."""
    T = S.shape[0]
    if reverse:
        return sc.cat([S[1:], s0.unsqueeze(0)]) if T > 1 else s0.unsqueeze(0)
    return sc.cat([s0.unsqueeze(0), S[: T - 1]]) if T > 1 else s0.unsqueeze(0)


class _LSTMSeq(sc.Function):
    """xproj [T, B, 4H], w_hh [4H, H], h0, c0 [B, H] -> [T + 2, B, H]: the outputs, h_T, c_T.

    The forward keeps the gate activations; the step-independent parts of the backward are
    then computed for all steps at once, leaving 5 small ops + 1 GEMM per step."""

    @staticmethod
    def forward(ctx, xproj, w_hh, h0, c0, reverse, grad_mode):
        T, H = xproj.shape[0], w_hh.shape[1]
        wt = w_hh.t().contiguous()
        keep = grad_mode and any(ctx.needs_input_grad)
        h, c = h0, c0
        hs, As, Gs, Cs, TCs = [None] * T, [None] * T, [None] * T, [None] * T, [None] * T
        for t in _order(T, reverse):
            h, c, a, g, tc = _lstm_cell(xproj[t] + h @ wt, c, H)
            hs[t] = h
            if keep:
                As[t], Gs[t], Cs[t], TCs[t] = a, g, c, tc
        y = sc.stack(hs + [h, c])
        if keep:
            C = sc.stack(Cs)
            M, K, F_ = _lstm_backward_factors(sc.stack(As), sc.stack(Gs),
                                              _shifted(C, c0, reverse), sc.stack(TCs), H)
            ctx.save_for_backward(w_hh)
            ctx.state = (M, K, F_, _shifted(y[:T], h0, reverse), reverse)
        return y

    @staticmethod
    def backward(ctx, gy):
        (w_hh,) = ctx.saved_tensors
        M, K, F_, H_prev, reverse = ctx.state
        T, H = M.shape[0], w_hh.shape[1]
        dh, dc = gy[T], gy[T + 1]
        d_gates = [None] * T
        for t in reversed(_order(T, reverse)):
            d_gates[t], dh_rec, dc = _lstm_cell_backward(dh + gy[t], dc, M[t], K[t], F_[t], w_hh)
            dh = dh_rec
        dx = sc.stack(d_gates)
        dw = dx.reshape(-1, 4 * H).t() @ H_prev.reshape(-1, H)
        ctx.state = None
        return dx, dw, dh, dc


class _GRUSeq(sc.Function):
    """xproj [T, B, 3H] (with b_ih), w_hh [3H, H], b_hh [3H], h0 -> [T + 1, B, H]."""

    @staticmethod
    def forward(ctx, xproj, w_hh, b_hh, h0, reverse):
        T, H = xproj.shape[0], w_hh.shape[1]
        wt = w_hh.t().contiguous()
        h = h0
        hs, hgs, saved = [None] * T, [None] * T, [None] * T
        for t in _order(T, reverse):
            hgs[t] = h @ wt + b_hh
            h, saved[t] = _gru_cell(xproj[t], hgs[t], h, H)
            hs[t] = h
        ctx.save_for_backward(w_hh, h0)
        ctx.state = (hs, hgs, saved, reverse)
        return sc.stack(hs + [h])

    @staticmethod
    def backward(ctx, gy):
        w_hh, h0 = ctx.saved_tensors
        hs, hgs, saved, reverse = ctx.state
        T, H = len(hs), w_hh.shape[1]
        dh = gy[T]
        dxs, dhgs = [None] * T, [None] * T
        for t in reversed(_order(T, reverse)):
            dh = dh + gy[t]
            h_prev = (hs[t + 1] if t + 1 < T else h0) if reverse else (hs[t - 1] if t else h0)
            dxs[t], dhgs[t], direct = _gru_cell_backward(dh, h_prev, hgs[t], saved[t], H)
            dh = direct + dhgs[t] @ w_hh
        dx, dhg = sc.stack(dxs), sc.stack(dhgs).reshape(-1, 3 * H)
        dw = dhg.t() @ _prev_states(hs, h0, reverse).reshape(-1, H)
        ctx.state = None
        return dx, dw, dhg.sum(0), dh


class _RNNSeq(sc.Function):
    """xproj [T, B, H] (both biases), w_hh [H, H], h0 -> [T + 1, B, H]; tanh or relu."""

    @staticmethod
    def forward(ctx, xproj, w_hh, h0, reverse, relu, grad_mode):
        T = xproj.shape[0]
        wt = w_hh.t().contiguous()
        h = h0
        hs = [None] * T
        for t in _order(T, reverse):
            pre = xproj[t] + h @ wt
            h = pre.relu() if relu else pre.tanh()
            hs[t] = h
        y = sc.stack(hs + [h])
        if grad_mode and any(ctx.needs_input_grad):
            Y = y[:T]
            D = (Y > 0).to(Y.dtype) if relu else _one_minus(Y * Y)  # act' for all steps
            ctx.save_for_backward(w_hh)
            ctx.state = (D, _shifted(Y, h0, reverse), reverse)
        return y

    @staticmethod
    def backward(ctx, gy):
        (w_hh,) = ctx.saved_tensors
        D, H_prev, reverse = ctx.state
        T, H = D.shape[0], w_hh.shape[1]
        dh = gy[T]
        dpres = [None] * T
        for t in reversed(_order(T, reverse)):
            dpres[t] = (dh + gy[t]) * D[t]
            dh = dpres[t] @ w_hh
        dx = sc.stack(dpres)
        dw = dx.reshape(-1, H).t() @ H_prev.reshape(-1, H)
        ctx.state = None
        return dx, dw, dh


def _run_direction(mode: str, xproj: Tensor, w_hh: Tensor, b_hh: Tensor | None,
                   h0: Tensor, c0: Tensor | None, reverse: bool):  # fmt: skip
    """Run one layer-direction over ``xproj`` [T, B, G]: ``(out [T, B, H], h_T, c_T|None)``."""
    T = xproj.shape[0]
    if mode == "LSTM":
        y = _LSTMSeq.apply(xproj, w_hh, h0, c0, reverse, sc.is_grad_enabled())
        return y[:T], y[T], y[T + 1]
    if mode == "GRU":
        if b_hh is None:
            b_hh = sc.zeros(w_hh.shape[0], dtype=w_hh.dtype, device=w_hh.device)
        y = _GRUSeq.apply(xproj, w_hh, b_hh, h0, reverse)
    else:
        y = _RNNSeq.apply(xproj, w_hh, h0, reverse, mode == "RNN_RELU", sc.is_grad_enabled())
    return y[:T], y[T], None


def _in_bias(mode: str, b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor | None:
    """LSTM/RNN fold both biases into the input GEMM; GRU keeps b_hh inside (r * (...))."""
    if b_ih is None:
        return None
    return b_ih if mode == "GRU" else b_ih + b_hh


def _project(x: Tensor, w_ih: Tensor, bias: Tensor | None) -> Tensor:
    """The input projection of every step as ONE GEMM: [T, B, I] -> [T, B, G]."""
    T, B, I = x.shape
    return sc.linear(x.reshape(T * B, I), w_ih, bias).reshape(T, B, w_ih.shape[0])


# ---------------------------------------------------------------------------- layers
class _RNNBase(Module):
    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, dtype: Any = sc.f32,
                 device: Any = "cpu") -> None:  # fmt: skip
        super().__init__()
        name = type(self).__name__
        if num_layers < 1:
            raise ValueError(f"{name}: num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        if hidden_size < 1:
            raise ValueError(f"{name}: hidden_size must be positive, got {hidden_size}")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        dirs = 2 if bidirectional else 1
        gate = _GATES[mode] * hidden_size
        bound = 1.0 / math.sqrt(hidden_size)
        self._names: list[tuple[str, ...]] = []
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size * dirs
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                names = [f"weight_ih{sfx}", f"weight_hh{sfx}"]
                setattr(self, names[0], uniform_param((gate, in_size), bound, dtype, device))
                setattr(self, names[1], uniform_param((gate, hidden_size), bound, dtype, device))
                if bias:
                    names += [f"bias_ih{sfx}", f"bias_hh{sfx}"]
                    setattr(self, names[2], uniform_param((gate,), bound, dtype, device))
                    setattr(self, names[3], uniform_param((gate,), bound, dtype, device))
                self._names.append(tuple(names))

    def _weights(self, layer: int, d: int):
        names = self._names[layer * (2 if self.bidirectional else 1) + d]
        w = [getattr(self, n) for n in names]
        return (w + [None, None])[:4]

    def _check_state(self, h: Tensor, what: str, batch: int, unbatched: bool) -> Tensor:
        n = self.num_layers * (2 if self.bidirectional else 1)
        want = (n, self.hidden_size) if unbatched else (n, batch, self.hidden_size)
        if h.shape != want:
            raise sc.ShapeError(f"{type(self).__name__}: expected {what} of shape {want}, got "
                                f"{h.shape}")  # fmt: skip
        return h.unsqueeze(1) if unbatched else h

    def _forward(self, x: Tensor, h0: Tensor | None, c0: Tensor | None):
        name = type(self).__name__
        if x.ndim not in (2, 3):
            raise sc.ShapeError(f"{name}: expected input [T, B, I] (or [B, T, I] with "
                                f"batch_first, or unbatched [T, I]), got {x.shape}")  # fmt: skip
        if x.shape[-1] != self.input_size:
            raise sc.ShapeError(f"{name}: expected input_size {self.input_size}, got input of "
                                f"shape {x.shape}")  # fmt: skip
        unbatched = x.ndim == 2
        if unbatched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        T, B = x.shape[:2]
        dirs = 2 if self.bidirectional else 1
        H = self.hidden_size
        zeros = None
        if h0 is None or (self.mode == "LSTM" and c0 is None):
            zeros = sc.zeros(self.num_layers * dirs, B, H, dtype=x.dtype, device=x.device)
        h0 = zeros if h0 is None else self._check_state(h0, "h_0", B, unbatched)
        if self.mode == "LSTM":
            c0 = zeros if c0 is None else self._check_state(c0, "c_0", B, unbatched)
        hn, cn = [], []
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh = self._weights(layer, d)
                k = layer * dirs + d
                xproj = _project(x, w_ih, _in_bias(self.mode, b_ih, b_hh))
                out, h, c = _run_direction(self.mode, xproj, w_hh, b_hh, h0[k],
                                           None if c0 is None else c0[k], d == 1)  # fmt: skip
                outs.append(out)
                hn.append(h)
                cn.append(c)
            x = outs[0] if dirs == 1 else sc.cat(outs, dim=2)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        h_n = sc.stack(hn)
        c_n = sc.stack(cn) if self.mode == "LSTM" else None
        if unbatched:
            x, h_n = x.squeeze(1), h_n.squeeze(1)
            c_n = None if c_n is None else c_n.squeeze(1)
        elif self.batch_first:
            x = x.transpose(0, 1)
        return x, h_n, c_n

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class RNN(_RNNBase):
    """Elman RNN: ``h_t = act(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh)``.

    Args:
        input_size, hidden_size, num_layers: sizes.
        nonlinearity: ``"tanh"`` or ``"relu"``.
        bias, batch_first, dropout (between layers, training only), bidirectional.

    Shape:
        input ``[T, B, I]`` (``[B, T, I]`` if batch_first, or ``[T, I]``), optional
        ``h_0 [L*D, B, H]`` -> ``(output [T, B, D*H], h_n [L*D, B, H])``.

    Attributes:
        weight_ih_l{k}[_reverse] ``[H, I or D*H]``, weight_hh_l{k} ``[H, H]``, bias_ih_l{k},
        bias_hh_l{k} ``[H]``: all U(-1/√H, 1/√H).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, dtype: Any = sc.f32,
                 device: Any = "cpu") -> None:  # fmt: skip
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNN_" + nonlinearity.upper(), input_size, hidden_size, num_layers,
                         bias, batch_first, dropout, bidirectional, dtype, device)  # fmt: skip
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        out, h_n, _ = self._forward(input, hx, None)
        return out, h_n


class LSTM(_RNNBase):
    """Long short-term memory, gates ``i, f, g, o`` stacked in that order (PyTorch's).

    Shape:
        input as ``RNN``; optional ``(h_0, c_0)`` -> ``(output, (h_n, c_n))``.

    Attributes:
        weight_ih_l{k}[_reverse] ``[4H, I or D*H]``, weight_hh_l{k} ``[4H, H]``,
        bias_ih_l{k}, bias_hh_l{k} ``[4H]``: all U(-1/√H, 1/√H).

    Examples:
        >>> import shrew_core as sc, shrew_nn as nn
        >>> out, (h, c) = nn.LSTM(8, 16, batch_first=True)(sc.randn(2, 5, 8))
        >>> out.shape, h.shape
        ((2, 5, 16), (1, 2, 16))
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, dtype: Any = sc.f32,
                 device: Any = "cpu") -> None:  # fmt: skip
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype, device)  # fmt: skip

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None):
        h0, c0 = (None, None) if hx is None else hx
        out, h_n, c_n = self._forward(input, h0, c0)
        return out, (h_n, c_n)


class GRU(_RNNBase):
    """Gated recurrent unit, gates ``r, z, n`` (PyTorch's order and equations:
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) n + z h``).

    Shape:
        as ``RNN``: ``(output, h_n)``.

    Attributes:
        weight_ih_l{k} ``[3H, I]``, weight_hh_l{k} ``[3H, H]``, biases ``[3H]``: U(±1/√H).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, dtype: Any = sc.f32,
                 device: Any = "cpu") -> None:  # fmt: skip
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype, device)  # fmt: skip

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        out, h_n, _ = self._forward(input, hx, None)
        return out, h_n


# ---------------------------------------------------------------------------- cells
class _CellBase(Module):
    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool,
                 dtype: Any, device: Any) -> None:  # fmt: skip
        super().__init__()
        self.mode, self.input_size, self.hidden_size, self.bias = (
            mode, input_size, hidden_size, bias)  # fmt: skip
        gate = _GATES[mode] * hidden_size
        bound = 1.0 / math.sqrt(hidden_size)
        self.weight_ih = uniform_param((gate, input_size), bound, dtype, device)
        self.weight_hh = uniform_param((gate, hidden_size), bound, dtype, device)
        self.bias_ih = uniform_param((gate,), bound, dtype, device) if bias else None
        self.bias_hh = uniform_param((gate,), bound, dtype, device) if bias else None

    def _step(self, x: Tensor, h: Tensor | None, c: Tensor | None):
        name, H = type(self).__name__, self.hidden_size
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise sc.ShapeError(f"{name}: expected input [B, {self.input_size}] or "
                                f"[{self.input_size}], got {x.shape}")  # fmt: skip
        unbatched = x.ndim == 1
        if unbatched:
            x = x.unsqueeze(0)
        B = x.shape[0]
        states = []
        for s, what in ((h, "h"), (c, "c")):
            if s is not None and s.shape != ((H,) if unbatched else (B, H)):
                raise sc.ShapeError(f"{name}: expected {what} of shape "
                                    f"{(H,) if unbatched else (B, H)}, got {s.shape}")  # fmt: skip
            if s is None:
                s = sc.zeros(B, H, dtype=x.dtype, device=x.device)
            elif unbatched:
                s = s.unsqueeze(0)
            states.append(s)
        xproj = sc.linear(x, self.weight_ih, _in_bias(self.mode, self.bias_ih, self.bias_hh))
        _, h1, c1 = _run_direction(self.mode, xproj.unsqueeze(0), self.weight_hh, self.bias_hh,
                                   states[0], states[1], False)  # fmt: skip
        if unbatched:
            h1 = h1.squeeze(0)
            c1 = None if c1 is None else c1.squeeze(0)
        return h1, c1

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(_CellBase):
    """One Elman RNN step: ``forward(x [B, I], h [B, H] | None) -> h'``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", dtype: Any = sc.f32,
                 device: Any = "cpu") -> None:  # fmt: skip
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got "
                             f"{nonlinearity!r}")  # fmt: skip
        super().__init__("RNN_" + nonlinearity.upper(), input_size, hidden_size, bias, dtype,
                         device)  # fmt: skip
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, hx, None)[0]


class LSTMCell(_CellBase):
    """One LSTM step: ``forward(x, (h, c) | None) -> (h', c')``; gates i, f, g, o."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 dtype: Any = sc.f32, device: Any = "cpu") -> None:  # fmt: skip
        super().__init__("LSTM", input_size, hidden_size, bias, dtype, device)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None):
        h, c = (None, None) if hx is None else hx
        return self._step(input, h, c)


class GRUCell(_CellBase):
    """One GRU step: ``forward(x, h | None) -> h'``; gates r, z, n."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 dtype: Any = sc.f32, device: Any = "cpu") -> None:  # fmt: skip
        super().__init__("GRU", input_size, hidden_size, bias, dtype, device)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        return self._step(input, hx, None)[0]
