"""The importer's recurrent ops: ONNX LSTM, GRU and RNN on shrew_nn's sequence kernels.

ONNX weights (gates LSTM ``i, o, f, c``, GRU ``z, r, h``) are re-ordered into PyTorch's
order by tensor ops (so gradients reach the initializers) and run by the same per-direction
ops as ``shrew_nn.LSTM``/``GRU``/``RNN``. GRU with ``linear_before_reset=0`` (ONNX's
default, not PyTorch's) runs a step loop of tensor ops. Peepholes, ``clip``,
``input_forget``, non-default activations and ragged ``sequence_lens`` raise
``OnnxUnsupportedError``.
"""

from __future__ import annotations

import numpy as np

import shrew_core as sc
from shrew_nn.rnn import _in_bias, _project, _run_direction

from .errors import OnnxUnsupportedError

_TO_TORCH = {"LSTM": (0, 2, 3, 1), "GRU": (1, 0, 2)}  # torch gate k = ONNX gate _TO_TORCH[k]
_DEFAULT_ACTS = {"LSTM": ["sigmoid", "tanh", "tanh"], "GRU": ["sigmoid", "tanh"],
                 "RNN": ["tanh"]}  # fmt: skip


def _torch_order(t: sc.Tensor, kind: str) -> sc.Tensor:
    order = _TO_TORCH.get(kind)
    if order is None:
        return t
    parts = t.chunk(len(order), 0)
    return sc.cat([parts[i] for i in order], 0)


def _opt(a, i):
    return a[i] if len(a) > i else None


def _recurrent(kind: str):
    def run(node, a):
        at = node.attrs

        def bad(what):
            return OnnxUnsupportedError(f"ONNX import: {kind} node {node.name!r}: {what}")

        if at.get("clip") is not None:
            raise bad("clip")
        if at.get("input_forget", 0):
            raise bad("input_forget=1")
        if kind == "LSTM" and _opt(a, 7) is not None:
            raise bad("peephole weights (input P)")
        x, W, R = a[0], a[1], a[2]
        B, seq_lens, h0 = _opt(a, 3), _opt(a, 4), _opt(a, 5)
        c0 = _opt(a, 6) if kind == "LSTM" else None
        layout = at.get("layout", 0)
        if layout:
            x = x.transpose(0, 1)
            h0 = None if h0 is None else h0.transpose(0, 1)
            c0 = None if c0 is None else c0.transpose(0, 1)
        T, batch = x.shape[0], x.shape[1]
        H = int(at.get("hidden_size", R.shape[-1]))
        direction = at.get("direction", "forward")
        dirs = 2 if direction == "bidirectional" else 1
        mode = _mode(kind, at.get("activations"), dirs, bad)
        if seq_lens is not None and any(int(v) != T for v in np.asarray(seq_lens.numpy())):
            raise bad("sequence_lens shorter than the sequence (ragged batches)")
        G = W.shape[1]
        zeros = sc.zeros(dirs, batch, H, dtype=x.dtype, device=x.device)
        h0 = zeros if h0 is None else h0
        c0 = zeros if (c0 is None and kind == "LSTM") else c0
        ys, hs, cs = [], [], []
        for d in range(dirs):
            reverse = d == 1 or direction == "reverse"
            w_ih, w_hh = _torch_order(W[d], kind), _torch_order(R[d], kind)
            b_ih = b_hh = None
            if B is not None:
                b_ih, b_hh = _torch_order(B[d, :G], kind), _torch_order(B[d, G:], kind)
            if kind == "GRU" and not at.get("linear_before_reset", 0):
                y, h = _gru_reset_first(x, W[d], R[d], None if B is None else B[d], h0[d],
                                        reverse)  # fmt: skip
                c = None
            else:
                xproj = _project(x, w_ih, _in_bias(mode, b_ih, b_hh))
                y, h, c = _run_direction(mode, xproj, w_hh, b_hh, h0[d],
                                         None if c0 is None else c0[d], reverse)  # fmt: skip
            ys.append(y)
            hs.append(h)
            cs.append(c)
        Y, Y_h = sc.stack(ys, 1), sc.stack(hs, 0)
        Y_c = sc.stack(cs, 0) if kind == "LSTM" else None
        if layout:
            Y, Y_h = Y.permute(2, 0, 1, 3), Y_h.transpose(0, 1)
            Y_c = None if Y_c is None else Y_c.transpose(0, 1)
        return [Y, Y_h, Y_c][: node.n_out] if node.n_out > 1 else Y

    return run


def _mode(kind: str, activations, dirs: int, bad) -> str:
    acts = [s.lower() for s in (activations or [])]
    default = _DEFAULT_ACTS[kind]
    if kind == "RNN" and acts and all(s == "relu" for s in acts):
        return "RNN_RELU"
    if acts and acts != default * dirs:
        raise bad(f"activations {activations}")
    return "RNN_TANH" if kind == "RNN" else kind


def _gru_reset_first(x, W, R, B, h, reverse: bool):
    """ONNX GRU, ``linear_before_reset=0``: ``h~ = tanh(W_h x + R_h (r * h) + Wb_h + Rb_h)``."""
    Wz, Wr, Wh = W.chunk(3, 0)
    Rz, Rr, Rh = R.chunk(3, 0)
    if B is None:
        bz = br = bh = rbh = None
    else:
        wb, rb = B.chunk(2, 0)
        wbz, wbr, wbh = wb.chunk(3, 0)
        rbz, rbr, rbh = rb.chunk(3, 0)
        bz, br, bh = wbz + rbz, wbr + rbr, wbh
    T = x.shape[0]
    xz, xr, xh = (_project(x, w, b) for w, b in ((Wz, bz), (Wr, br), (Wh, bh)))
    outs = [None] * T
    for t in (range(T - 1, -1, -1) if reverse else range(T)):
        z = sc.sigmoid(xz[t] + h @ Rz.t())
        r = sc.sigmoid(xr[t] + h @ Rr.t())
        n = xh[t] + (r * h) @ Rh.t()
        n = sc.tanh(n if rbh is None else n + rbh)
        h = (1 - z) * n + z * h
        outs[t] = h
    return sc.stack(outs, 0), h


RNN_OPS = {"LSTM": _recurrent("LSTM"), "GRU": _recurrent("GRU"), "RNN": _recurrent("RNN")}
