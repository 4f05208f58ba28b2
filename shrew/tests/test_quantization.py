"""shrew.quantization: integer codes against torch.quantize_per_tensor / per_channel (random
data, exact .5 boundaries, odd zero points), scales and zero points per granularity,
int4 packing and sizes, dequantisation, bad input, QuantizedLinear against
``dequantize() @ x`` (and that it runs the backend kernel, never a float weight),
quantize_model / quantize_named_parameters / quantization_stats."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

import shrew_core as sc
import shrew_nn as nn
from shrew.quantization import (
    QuantConfig,
    QuantizationError,
    QuantizedLinear,
    QuantizedTensor,
    quantization_stats,
    quantize,
    quantize_model,
    quantize_named_parameters,
    quantize_with_params,
)
from shrew_core import hooks

pytestmark = pytest.mark.filterwarnings("ignore:.*quantize_per.*deprecated:UserWarning")

CONFIGS = {
    "int8": QuantConfig.int8(),
    "int8_asym": QuantConfig.int8().asymmetric(),
    "int8_pc": QuantConfig.int8_per_channel(),
    "int8_pc_asym": QuantConfig.int8_per_channel().asymmetric(),
    "int4": QuantConfig.int4(),
    "int4_pc_asym": QuantConfig.int4_per_channel().asymmetric(),
    "int4_g32": QuantConfig.int4_per_group(32),
    "int4_g64_asym": QuantConfig.int4_per_group(64).asymmetric(),
    "int8_g128": QuantConfig.int8().per_group(128),
}


def _torch_codes(x: np.ndarray, q: QuantizedTensor) -> np.ndarray:
    """torch's integers for ``x`` with q's scales/zero points, clamped to q's range."""
    c = q.config
    t = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    if c.granularity == "per_tensor":
        out = torch.quantize_per_tensor(t, float(q.scales), int(q.zero_points), torch.qint8)
    else:  # per channel, or per group = per channel over rows of group_size values
        rows = t.reshape(t.shape[0], -1) if c.granularity == "per_channel" else \
            t.reshape(-1, c.group_size)  # fmt: skip
        scales = torch.from_numpy(q.scales.reshape(-1).astype(np.float64))
        zps = torch.from_numpy(q.zero_points.reshape(-1).astype(np.int64))
        out = torch.quantize_per_channel(rows, scales, zps, 0, torch.qint8)
    codes = out.int_repr().numpy().reshape(x.shape)
    return np.clip(codes, c.qmin, c.qmax)


def _exact_weight(q: QuantizedTensor) -> np.ndarray:
    """(codes - zero point) * scale of a 2-D weight in float64 (no rounding)."""
    reps = q.shape[1] // q.scales.shape[-1] if q.scales.ndim == 2 else q.shape[1]
    def expand(a):
        a = a.astype(np.float64)
        return np.repeat(a.reshape(q.shape[0], -1) if a.ndim else a.reshape(1, 1), reps, axis=1)
    return (q.int_values() - expand(q.zero_points)) * expand(q.scales)


# ------------------------------------------------------------------ codes vs torch
@pytest.mark.parametrize("name", list(CONFIGS))
def test_codes_match_torch(name):
    config = CONFIGS[name]
    rng = np.random.default_rng(len(name))
    x = (rng.standard_normal((48, 256)) * rng.uniform(0.1, 3, (48, 1))).astype(np.float32)
    x[3] += 2.0  # one channel far from zero (asymmetric ranges)
    q = quantize(sc.tensor(x), config)
    codes = q.int_values()
    assert codes.shape == x.shape and codes.dtype == np.int8
    assert_array_equal(codes, _torch_codes(x, q))
    assert codes.min() >= config.qmin and codes.max() <= config.qmax


@pytest.mark.parametrize("granularity", ["per_tensor", "per_channel"])
def test_codes_match_torch_many_values(granularity):
    """2^18 values with an odd zero point: per tensor torch rounds x*inv+zp once (a fused
    multiply-add), per channel it rounds x*inv first; both are reproduced exactly."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((512, 512)).astype(np.float32)
    config = QuantConfig(8, symmetric=False, granularity=granularity)
    shape = () if granularity == "per_tensor" else (512,)
    scales = np.full(shape, np.float32(x.std() / 40))
    zps = np.full(shape, 7, np.int64)
    q = quantize_with_params(sc.tensor(x), scales, zps, config)
    assert_array_equal(q.int_values(), _torch_codes(x, q))


@pytest.mark.parametrize("granularity", ["per_tensor", "per_channel"])
@pytest.mark.parametrize("zp", [0, 1, -3])
def test_exact_half_boundaries(granularity, zp):
    """x / scale exactly k + 0.5: round half to even (with the zero point added first)."""
    scale = np.float32(0.5)
    x = (np.arange(-20, 20, dtype=np.float32) + np.float32(0.5)) * scale  # x/scale = k + .5
    x2 = x.reshape(4, 10)
    config = QuantConfig(8, symmetric=False, granularity=granularity)
    shape = () if granularity == "per_tensor" else (4,)
    q = quantize_with_params(sc.tensor(x2), np.full(shape, scale), np.full(shape, zp), config)
    expected = np.clip(np.rint(x2 / scale + zp), -128, 127)  # exact in f32 here
    assert_array_equal(q.int_values(), expected)
    assert_array_equal(q.int_values(), _torch_codes(x2, q))


# ------------------------------------------------------------------ scales, ranges, shapes
def test_scales_and_zero_points_shapes():
    x = sc.randn(6, 128)
    assert quantize(x, CONFIGS["int8"]).scales.shape == ()
    q = quantize(x, CONFIGS["int8_pc"])
    assert q.scales.shape == (6,) and q.zero_points.shape == (6,)
    q = quantize(x, QuantConfig.int4_per_group(32))
    assert q.scales.shape == (6, 4) and q.zero_points.shape == (6, 4)
    assert q.scales.dtype == np.float32 and q.zero_points.dtype == np.int8
    assert_array_equal(q.zero_points, np.zeros((6, 4)))  # symmetric
    assert quantize(sc.randn(2, 3, 64), QuantConfig.int8().per_group(64)).scales.shape == (2, 3, 1)
    assert quantize(sc.tensor(2.5), CONFIGS["int8_pc"]).scales.shape == ()  # rank 0: per tensor


def test_symmetric_scale_and_range():
    x = np.array([[-2.0, 1.0, 0.5], [0.25, -0.125, 0.0]], np.float32)
    q = quantize(sc.tensor(x), QuantConfig.int8_per_channel())
    assert_allclose(q.scales, np.float32([2.0 / 127, 0.25 / 127]), rtol=0)
    assert q.int_values()[0, 0] == -127 and q.int_values()[1, 0] == 127
    q4 = quantize(sc.tensor(x), QuantConfig.int4_per_channel())
    # 1.0 * f32(1 / f32(2/7)) = 3.4999998: rounds to 3, as torch does
    assert q4.int_values().min() == -7 and q4.int_values()[0].tolist() == [-7, 3, 2]


def test_asymmetric_range_includes_zero():
    x = np.array([[1.0, 2.0, 3.0, 4.0], [-3.0, -1.0, 0.0, 5.0]], np.float32)
    for bits, qmin, qmax in ((8, -128, 127), (4, -8, 7)):
        q = quantize(sc.tensor(x), QuantConfig(bits, False, "per_channel"))
        assert_allclose(q.scales, np.float32([4.0, 8.0]) / np.float32(qmax - qmin))
        codes = q.int_values()
        assert codes.min() == qmin and codes.max() == qmax
        # zero is representable: dequantize(zero point) == 0; positive row: zp == qmin
        assert q.zero_points[0] == qmin
        deq = q.dequantize().numpy()
        assert deq[1, 2] == 0.0
        assert_allclose(deq, x, atol=float(q.scales.max()) / 2 + 1e-6)


def test_all_zero_and_empty():
    q = quantize(sc.zeros(3, 4), QuantConfig.int8_per_channel())
    assert_array_equal(q.scales, np.ones(3))
    assert_array_equal(q.int_values(), np.zeros((3, 4)))
    q = quantize(sc.zeros(0, 4), QuantConfig.int4())
    assert q.int_values().shape == (0, 4) and q.data.nbytes == 0
    assert q.dequantize().shape == (0, 4)


# ------------------------------------------------------------------ packing and sizes
@pytest.mark.parametrize("shape", [(7,), (3, 5), (1,), (4, 64), (2, 3, 3)])
def test_int4_packing(shape):
    x = sc.randn(*shape)
    q = quantize(x, QuantConfig.int4().asymmetric())
    n = int(np.prod(shape))
    assert q.data.dtype == np.uint8 and q.data.shape == ((n + 1) // 2,)
    codes = q.int_values().reshape(-1)
    assert_array_equal(q.data & 15, (codes[0::2] + 8).astype(np.uint8))  # low nibble first
    assert_array_equal((q.data >> 4)[: n // 2], (codes[1::2] + 8).astype(np.uint8))
    assert q.size_bytes == (n + 1) // 2 + 4 + 1  # codes + one f32 scale + one int8 zero point


def test_size_bytes_and_compression():
    x = sc.randn(64, 256)
    q8 = quantize(x, QuantConfig.int8_per_channel())
    assert q8.size_bytes == 64 * 256 + 64 * 4 + 64
    assert q8.compression_ratio == pytest.approx(64 * 256 * 4 / q8.size_bytes)
    q4 = quantize(x, QuantConfig.int4_per_group(32))
    assert q4.size_bytes == 64 * 256 // 2 + 64 * 8 * (4 + 1)
    assert q4.compression_ratio > 5.0
    q16 = quantize(x.to(sc.f16), QuantConfig.int8())
    assert q16.compression_ratio == pytest.approx(64 * 256 * 2 / (64 * 256 + 5))


@pytest.mark.parametrize("dtype", [sc.f32, sc.f64, sc.f16, sc.bf16])
@pytest.mark.parametrize("name", ["int8_pc_asym", "int4_g32", "int4"])
def test_dequantize_dtype_shape_error(dtype, name):
    x = sc.randn(8, 64).to(dtype)
    q = quantize(x, CONFIGS[name])
    d = q.dequantize()
    assert d.shape == (8, 64) and d.dtype == dtype and d.device == x.device
    half_step = q._expanded(q.scales) / 2
    rounding = 0 if dtype.itemsize >= 4 else np.abs(x.to(sc.f32).numpy()) * 2.0 ** -7
    err = np.abs(d.to(sc.f64).numpy() - x.to(sc.f64).numpy())
    assert (err <= half_step * (1 + 1e-5) + rounding + 1e-7).all(), err.max()


# ------------------------------------------------------------------ bad input
def test_bad_input():
    with pytest.raises(QuantizationError, match="non-finite"):
        quantize(sc.tensor([1.0, float("nan")]))
    with pytest.raises(QuantizationError, match="non-finite"):
        quantize(sc.tensor([[1.0, float("inf")]]), QuantConfig.int8_per_channel())
    with pytest.raises(sc.DTypeError, match="floating-point"):
        quantize(sc.tensor([1, 2, 3]))
    with pytest.raises(QuantizationError, match="bits must be 8 or 4"):
        QuantConfig(bits=3)
    with pytest.raises(QuantizationError, match="group_size"):
        QuantConfig.int4_per_group(48)
    with pytest.raises(QuantizationError, match="granularity"):
        QuantConfig(granularity="per_row")
    with pytest.raises(sc.ShapeError, match="group_size 32 does not divide the last dim 48"):
        quantize(sc.randn(4, 48), QuantConfig.int4_per_group(32))
    with pytest.raises(sc.ShapeError, match="needs at least one dim"):
        quantize(sc.tensor(1.0), QuantConfig.int4_per_group(32))
    assert issubclass(QuantizationError, sc.ShrewError)


# ------------------------------------------------------------------ QuantizedLinear
class _Counter:
    """Counts backend calls by method (through shrew_core.hooks)."""

    def __init__(self):
        self.calls: list[tuple[str, tuple]] = []

    def on_backend_call(self, call):
        shapes = tuple(a.shape for a in call.args if isinstance(a, sc.Layout))
        self.calls.append((call.method, shapes))

    def __enter__(self):
        hooks.add_backend_observer(self)
        return self

    def __exit__(self, *exc):
        hooks.remove_backend_observer(self)


@pytest.mark.parametrize("name", ["int8", "int8_pc_asym", "int4_g32", "int4_pc_asym"])
@pytest.mark.parametrize("batch", [1, 4, 5, 33])
def test_quantized_linear_values(device, name, batch):
    lin = nn.Linear(64, 24, device=device)
    q = QuantizedLinear.from_linear(lin, CONFIGS[name])
    assert list(q.parameters()) == []
    direct = quantize(lin.weight, CONFIGS[name])  # qweight (read back from the buffers)
    assert_array_equal(q.qweight.int_values(), direct.int_values())
    assert_array_equal(q.qweight.scales, direct.scales)
    assert_array_equal(q.qweight.zero_points, direct.zero_points)
    x = sc.randn(batch, 64, device=device)
    w = _exact_weight(q.qweight)
    ref = x.numpy() @ w.T + lin.bias.detach().numpy()
    assert_allclose(q(x).numpy(), ref, rtol=1e-5, atol=1e-5)
    assert_allclose(q.dequantize_weight().numpy(), w, rtol=1e-6, atol=1e-7)


def test_quantized_linear_runs_the_kernel_without_a_float_weight(device):
    lin = nn.Linear(64, 16, device=device)
    q = QuantizedLinear.from_linear(lin, QuantConfig.int4_per_group(32))
    x = sc.randn(3, 64, device=device)
    with _Counter() as counter:
        q(x)
    methods = [m for m, _ in counter.calls]
    assert methods.count("quantized_linear") == 1
    if device == "cpu":  # the reference backend composes the kernel's default from primitives
        assert methods == ["quantized_linear", "binary"]  # the kernel, then + bias
        assert all((16, 64) not in shapes for _, shapes in counter.calls)


def test_quantized_linear_shapes_dtypes_views(device):
    lin = nn.Linear(32, 8, device=device)
    q = QuantizedLinear.from_linear(lin, QuantConfig.int8_per_channel().asymmetric())
    w = _exact_weight(q.qweight)
    b = lin.bias.detach().numpy()
    x3 = sc.randn(2, 3, 32, device=device)
    assert_allclose(q(x3).numpy(), x3.numpy() @ w.T + b, rtol=1e-5, atol=1e-5)
    x1 = sc.randn(32, device=device)
    assert q(x1).shape == (8,)
    xt = sc.randn(32, 5, device=device).t()  # non-contiguous
    assert_allclose(q(xt).numpy(), xt.numpy() @ w.T + b, rtol=1e-5, atol=1e-5)
    for dtype, tol in ((sc.f64, 1e-12), (sc.bf16, 3e-2)):
        xd = sc.randn(4, 32, device=device).to(dtype)
        y = q(xd)
        assert y.dtype == dtype
        ref = xd.to(sc.f64).numpy() @ w.T + b
        assert_allclose(y.to(sc.f64).numpy(), ref, rtol=tol, atol=tol * np.abs(ref).max())
    with pytest.raises(sc.ShapeError, match=r"expected input \[\.\.\., 32\]"):
        q(sc.randn(4, 31, device=device))
    with pytest.raises(sc.DTypeError):
        q(sc.ones(4, 32, dtype=sc.i64, device=device))


def test_quantized_linear_input_gradient_matches_torch():
    lin = nn.Linear(64, 8)
    q = QuantizedLinear.from_linear(lin, QuantConfig.int4_per_group(32).asymmetric())
    x = sc.randn(5, 64).requires_grad_()
    y = q(x)
    g = sc.randn(5, 8)
    grad = (y * g).sum().backward()[x]
    wt = torch.from_numpy(q.qweight.dequantize().numpy()).double()
    xt = torch.from_numpy(x.detach().numpy()).double().requires_grad_()
    (torch.nn.functional.linear(xt, wt) * torch.from_numpy(g.numpy()).double()).sum().backward()
    assert_allclose(grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_state_dict_and_device_move():
    q = QuantizedLinear.from_linear(nn.Linear(64, 4), QuantConfig.int4_per_group(64).asymmetric())
    sd = q.state_dict()
    assert set(sd) == {"weight_data", "weight_scales", "weight_zero_points", "bias"}
    assert sd["weight_data"].dtype == sc.u8 and sd["weight_data"].shape == (128,)
    x = sc.randn(2, 64)
    ref = q(x).numpy()
    q.to("reference")
    assert_allclose(q(x.to("reference")).numpy(), ref, rtol=1e-5, atol=1e-6)
    q.to(sc.f64)  # scales are brought back to f32 for the kernel
    assert_allclose(q(x.to("reference")).numpy(), ref, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ model-level helpers
class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Sequential(nn.Linear(32, 32)))
        self.attn = nn.MultiHeadAttention(32, 4)
        self.head = nn.Linear(32, 10)
        self.norm = nn.LayerNorm(32)

    def forward(self, x):
        h = self.norm(self.body(x))
        h = h + self.attn(h.unsqueeze(0), h.unsqueeze(0), h.unsqueeze(0))[0].squeeze(0)
        return self.head(h)


def test_quantize_model_replaces_every_linear():
    model = _Net()
    x = sc.randn(6, 64)
    ref = model(x).numpy()
    q = quantize_model(model, QuantConfig.int8_per_channel())
    kinds = {name: type(m).__name__ for name, m in q.named_modules()}
    assert kinds["body.0"] == kinds["body.2.0"] == kinds["head"] == "QuantizedLinear"
    assert kinds["attn.out_proj"] == "Linear"  # read directly by the attention, like torch
    assert [n for n, _ in q.body.named_children()] == ["0", "1", "2"]  # order kept
    assert type(model.head) is nn.Linear and type(model.body[0]) is nn.Linear  # untouched
    assert_allclose(q(x).numpy(), ref, rtol=0.05, atol=0.05)
    same = quantize_model(model, QuantConfig.int8(), inplace=True)
    assert same is model and isinstance(model.head, QuantizedLinear)
    assert isinstance(quantize_model(nn.Linear(4, 2)), QuantizedLinear)


def test_quantize_model_shares_a_reused_linear():
    shared = nn.Linear(8, 8)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    q = quantize_model(model, inplace=True)
    assert q[0] is q[2] and isinstance(q[0], QuantizedLinear)


def test_named_parameters_and_stats():
    model = nn.Sequential(nn.Linear(64, 32), nn.LayerNorm(32), nn.Linear(32, 8, bias=False))
    named = quantize_named_parameters(model, QuantConfig.int8_per_channel())
    assert [n for n, _ in named] == ["0.weight", "2.weight"]
    stats = quantization_stats(model, QuantConfig.int8_per_channel())
    assert (stats.quantized_tensors, stats.float_tensors) == (2, 3)
    assert stats.quantized_numel == 64 * 32 + 32 * 8 and stats.float_numel == 32 * 3
    assert stats.original_bytes == 4 * (64 * 32 + 32 * 8 + 32 * 3)
    assert stats.quantized_bytes == sum(q.size_bytes for _, q in named) + 4 * 32 * 3
    after = quantization_stats(quantize_model(model, QuantConfig.int8_per_channel()))
    assert after == stats
    assert stats.compression_ratio == pytest.approx(stats.original_bytes / stats.quantized_bytes)


def test_load_state_dict_updates_the_weight():
    """The buffers are the one source of truth: loading another layer's state changes the
    kernel's weight and ``qweight`` alike."""
    cfg = QuantConfig.int4_per_group(32).asymmetric()
    a = QuantizedLinear.from_linear(nn.Linear(64, 8), cfg)
    b = QuantizedLinear.from_linear(nn.Linear(64, 8), cfg)
    x = sc.randn(3, 64)
    a.load_state_dict(b.state_dict())
    assert_allclose(a(x).numpy(), b(x).numpy(), rtol=0, atol=0)
    assert_array_equal(a.qweight.int_values(), b.qweight.int_values())
    assert_array_equal(a.qweight.scales, b.qweight.scales)
    assert_array_equal(a.qweight.zero_points, b.qweight.zero_points)
    assert a.qweight.size_bytes == b.qweight.size_bytes == 256 + 16 * 5
