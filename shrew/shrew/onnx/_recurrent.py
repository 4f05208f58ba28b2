"""ONNX converters of RNN / LSTM / GRU and their cells.

shrew_nn (like PyTorch) stacks gates as LSTM ``i, f, g, o`` and GRU ``r, z, n``; ONNX wants
LSTM ``i, o, f, c`` and GRU ``z, r, h``, weights ``[dirs, G, I]`` and both biases in one
``B [dirs, 2G]``. The re-ordering is done by Split/Concat nodes on the original parameters
(runtimes fold them), so the file's initializers stay the state dict. GRU uses
``linear_before_reset=1``: ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, PyTorch's
equation. Each layer is one ONNX op; its ``Y [T, dirs, B, H]`` becomes the next layer's
``[T, B, dirs*H]`` input.
"""

from __future__ import annotations

import shrew_nn as nn

from .errors import OnnxUnsupportedError
from .export_module import ModuleExporter, Value, register_converter

_OP = {"LSTM": "LSTM", "GRU": "GRU", "RNN_TANH": "RNN", "RNN_RELU": "RNN"}
_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2)}  # ONNX gate k = torch gate _ORDER[k]


_KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _reorder(E: ModuleExporter, name: str, mode: str, hidden: int) -> str:
    order = _ORDER.get(mode)
    if order is None:
        return name
    parts = E.op("Split", name, E.ints([hidden] * len(order)), n_out=len(order), axis=0)
    return E.op("Concat", *[parts[i] for i in order], axis=0)


def _stack_dirs(E: ModuleExporter, names: list[str]) -> str:
    return E.op("Concat", *[E.op("Unsqueeze", n, E.ints([0])) for n in names], axis=0)


def _weights(E: ModuleExporter, mode: str, hidden: int, params: list[tuple]) -> tuple:
    """ONNX ``W, R, B`` for the directions' (w_ih, w_hh, b_ih, b_hh)."""
    W = _stack_dirs(E, [_reorder(E, E.param(p[0]), mode, hidden) for p in params])
    R = _stack_dirs(E, [_reorder(E, E.param(p[1]), mode, hidden) for p in params])
    B = None
    if params[0][2] is not None:
        B = _stack_dirs(E, [E.op("Concat", _reorder(E, E.param(p[2]), mode, hidden),
                                 _reorder(E, E.param(p[3]), mode, hidden), axis=0)
                            for p in params])  # fmt: skip
    return W, R, B


def _attrs(mode: str, hidden: int, dirs: int) -> dict:
    attrs = {"hidden_size": hidden, "direction": "bidirectional" if dirs == 2 else "forward"}
    if mode == "GRU":
        attrs["linear_before_reset"] = 1
    elif mode.startswith("RNN"):
        attrs["activations"] = ["Relu" if mode == "RNN_RELU" else "Tanh"] * dirs
    return attrs


@register_converter(nn.RNN, nn.LSTM, nn.GRU)
def _recurrent(E: ModuleExporter, m, input: Value, hx=None):
    out = E.run(m, input, hx)
    mode, H, L = m.mode, m.hidden_size, m.num_layers
    dirs = 2 if m.bidirectional else 1
    lstm = mode == "LSTM"
    h0, c0 = (hx if hx is not None else (None, None)) if lstm else (hx, None)
    unbatched = input.ndim == 2
    x = input.name
    if unbatched:
        x = E.op("Unsqueeze", x, E.ints([1]))
        h0 = None if h0 is None else E.op("Unsqueeze", h0, E.ints([1]))
        c0 = None if c0 is None else E.op("Unsqueeze", c0, E.ints([1]))
    else:
        if m.batch_first:
            x = E.op("Transpose", x, perm=[1, 0, 2])
        h0 = None if h0 is None else h0.name
        c0 = None if c0 is None else c0.name
    if getattr(m, "proj_size", 0):
        raise OnnxUnsupportedError(f"{E.where()}: LSTM proj_size={m.proj_size} has no ONNX "
                                   "equivalent (the ONNX LSTM op has no projection)")  # fmt: skip
    hs, cs = [], []
    for layer in range(L):
        params = [m._weights(layer, d) for d in range(dirs)]
        W, R, B = _weights(E, mode, H, [tuple(p[k] for k in _KINDS) for p in params])

        span = (E.ints([layer * dirs]), E.ints([(layer + 1) * dirs]), E.ints([0]))
        init = [None if s is None else E.op("Slice", s, *span) for s in (h0, c0)]
        ins = [x, W, R, B, None, init[0]] + ([init[1]] if lstm else [])
        res = E.op(_OP[mode], *ins, n_out=3 if lstm else 2, **_attrs(mode, H, dirs))
        x = E.op("Reshape", E.op("Transpose", res[0], perm=[0, 2, 1, 3]), E.ints([0, 0, -1]))
        hs.append(res[1])
        if lstm:
            cs.append(res[2])
    h_n = hs[0] if L == 1 else E.op("Concat", *hs, axis=0)
    c_n = None if not lstm else cs[0] if L == 1 else E.op("Concat", *cs, axis=0)
    if unbatched:
        x, h_n = E.op("Squeeze", x, E.ints([1])), E.op("Squeeze", h_n, E.ints([1]))
        c_n = None if c_n is None else E.op("Squeeze", c_n, E.ints([1]))
    elif m.batch_first:
        x = E.op("Transpose", x, perm=[1, 0, 2])
    if lstm:
        y, (h, c) = out
        return E.value(x, y), (E.value(h_n, h), E.value(c_n, c))
    return E.value(x, out[0]), E.value(h_n, out[1])


@register_converter(nn.RNNCell, nn.LSTMCell, nn.GRUCell)
def _cell(E: ModuleExporter, m, input: Value, hx=None):
    out = E.run(m, input, hx)
    mode, H = m.mode, m.hidden_size
    lstm = mode == "LSTM"
    h, c = (hx if hx is not None else (None, None)) if lstm else (hx, None)
    axes = E.ints([0, 1] if input.ndim == 1 else [0])
    lift = lambda v: None if v is None else E.op("Unsqueeze", v, axes)  # noqa: E731
    W, R, B = _weights(E, mode, H, [(m.weight_ih, m.weight_hh, m.bias_ih, m.bias_hh)])
    ins = [lift(input), W, R, B, None, lift(h)] + ([lift(c)] if lstm else [])
    res = E.op(_OP[mode], *ins, n_out=3 if lstm else 2, **_attrs(mode, H, 1))
    h1 = E.op("Squeeze", res[1], axes)
    if lstm:
        return E.value(h1, out[0]), E.value(E.op("Squeeze", res[2], axes), out[1])
    return E.value(h1, out)
