"""PyTorch's own module configurations (``torch.testing._internal.common_modules.module_db``)
run through shrew_nn and compared with torch.

For every ``ModuleInfo`` whose layer shrew_nn has, every sample of its
``module_inputs_func`` (in training mode, and in eval mode too where the module's
``train_and_eval_differ``) is run in f64 on every backend:

* the torch module (seeded, initialised by torch) is built from the sample's constructor
  arguments, the shrew module from the same arguments through the ``MODULES`` table;
* torch's initialised state dict loads strictly into the shrew module (same keys, shapes,
  dtypes), and the shrew module's state dict loads strictly back into torch;
* outputs, the gradients of ``sum(out * w)`` (fixed random ``w``) with respect to every
  floating input and every parameter, and the buffers after the forward (BatchNorm's
  running statistics and batch count) are compared.

``MODULES`` is the one mapping table: torch class -> shrew class with its constructor-kwarg
renames, torch defaults that differ from shrew's and forward-kwarg renames, or the reason
the class is not run. ``SAMPLES_NOT_RUN`` and ``EVAL_NOT_RUN`` give the reason for any
sample of a mapped class that is not run (the eval-mode repeats of the recurrent layers and
of MultiheadAttention, identical to their training-mode runs at dropout 0).
``test_every_sample_is_accounted_for`` fails when module_db has a class or sample neither run
nor explained.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from torch.testing._internal.common_modules import module_db

import shrew_core as sc
import shrew_nn as nn

TOL = dict(rtol=1e-9, atol=1e-11)  # f64 throughout
SEED = 0


def _activation_name(fn) -> str:
    """torch passes the feed-forward activation as a function or a name."""
    if isinstance(fn, str):
        return fn
    names = {torch.nn.functional.relu: "relu", torch.nn.functional.gelu: "gelu"}
    if fn not in names:
        raise AssertionError(f"TransformerEncoderLayer activation {fn} is not mapped")
    return names[fn]


@dataclass(frozen=True)
class To:
    """How a torch module's sample becomes a shrew module call."""

    cls: type
    renames: dict[str, str] = field(default_factory=dict)  # torch ctor kwarg -> shrew kwarg
    defaults: dict = field(default_factory=dict)  # torch defaults shrew does not share
    forward: dict[str, str | int] = field(default_factory=dict)  # kwarg -> kwarg | position
    convert: dict = field(default_factory=dict)  # ctor kwarg -> function of torch's value


_3D = "3-d layers are not in shrew_nn (1-d and 2-d convolution and pooling only)"
_LAZY = "lazy modules (shapes inferred at the first call) are not implemented in shrew_nn"
_PAD = "padding layers are not modules in shrew_nn: shrew_core.pad covers constant padding"
_ACT = "activation not implemented in shrew_nn (compose it from shrew_core ops)"
_LOSS = "loss not implemented in shrew_nn"
_NORM = "normalisation layer not implemented in shrew_nn"
_POOL = "pooling variant not implemented in shrew_nn"

MODULES: dict[str, To | str] = {
    "AdaptiveAvgPool2d": To(nn.AdaptiveAvgPool2d),
    "AvgPool2d": To(nn.AvgPool2d),
    "MaxPool2d": To(nn.MaxPool2d),
    "BatchNorm1d": To(nn.BatchNorm1d),
    "BatchNorm2d": To(nn.BatchNorm2d),
    "GroupNorm": To(nn.GroupNorm),
    "LayerNorm": To(nn.LayerNorm),
    "RMSNorm": To(nn.RMSNorm),
    "Conv1d": To(nn.Conv1d),
    "Conv2d": To(nn.Conv2d),
    "Linear": To(nn.Linear, forward={"input": 0}),
    "Bilinear": To(nn.Bilinear),
    "Embedding": To(nn.Embedding),
    "ReLU": To(nn.ReLU), "Sigmoid": To(nn.Sigmoid), "Tanh": To(nn.Tanh), "SiLU": To(nn.SiLU),
    "GELU": To(nn.GELU), "ELU": To(nn.ELU), "LeakyReLU": To(nn.LeakyReLU),
    "Mish": To(nn.Mish), "Softplus": To(nn.Softplus), "Hardtanh": To(nn.Hardtanh),
    "LogSigmoid": To(nn.LogSigmoid), "Softmax": To(nn.Softmax),
    "LogSoftmax": To(nn.LogSoftmax),
    "MSELoss": To(nn.MSELoss), "L1Loss": To(nn.L1Loss), "SmoothL1Loss": To(nn.SmoothL1Loss),
    "HuberLoss": To(nn.HuberLoss), "BCELoss": To(nn.BCELoss),
    "BCEWithLogitsLoss": To(nn.BCEWithLogitsLoss), "NLLLoss": To(nn.NLLLoss),
    "CrossEntropyLoss": To(nn.CrossEntropyLoss),
    "RNN": To(nn.RNN), "LSTM": To(nn.LSTM), "GRU": To(nn.GRU),
    "RNNCell": To(nn.RNNCell), "LSTMCell": To(nn.LSTMCell), "GRUCell": To(nn.GRUCell),
    "MultiheadAttention": To(nn.MultiheadAttention, defaults={"batch_first": False}),
    "TransformerEncoderLayer": To(
        nn.TransformerBlock,
        renames={"nhead": "n_heads", "dim_feedforward": "d_ff", "layer_norm_eps": "eps"},
        defaults={"dropout": 0.1, "activation": "relu", "batch_first": False,
                  "norm_first": False},
        forward={"src": 0, "src_mask": "mask", "src_key_padding_mask": "key_padding_mask"},
        convert={"activation": _activation_name}),
    "AdaptiveAvgPool1d": _POOL + " (1-d adaptive pooling)", "AdaptiveAvgPool3d": _3D,
    "AdaptiveMaxPool1d": _POOL, "AdaptiveMaxPool2d": _POOL, "AdaptiveMaxPool3d": _3D,
    "AvgPool1d": _POOL + " (1-d average pooling)", "AvgPool3d": _3D,
    "MaxPool1d": _POOL + " (1-d max pooling)", "MaxPool3d": _3D,
    "FractionalMaxPool2d": _POOL, "FractionalMaxPool3d": _3D,
    "LPPool1d": _POOL, "LPPool2d": _POOL, "LPPool3d": _3D,
    "BatchNorm3d": _3D, "InstanceNorm1d": _NORM, "InstanceNorm2d": _NORM,
    "InstanceNorm3d": _3D, "LocalResponseNorm": _NORM,
    "Conv3d": _3D, "ConvTranspose1d": "transposed convolution is not implemented in shrew_nn",
    "ConvTranspose2d": "transposed convolution is not implemented in shrew_nn",
    "ConvTranspose3d": _3D,
    "LazyConv1d": _LAZY, "LazyConv2d": _LAZY, "LazyConv3d": _LAZY,
    "LazyConvTranspose1d": _LAZY, "LazyConvTranspose2d": _LAZY, "LazyConvTranspose3d": _LAZY,
    "CircularPad1d": _PAD, "CircularPad2d": _PAD, "CircularPad3d": _PAD,
    "ConstantPad1d": _PAD, "ConstantPad2d": _PAD, "ConstantPad3d": _PAD,
    "ReflectionPad1d": _PAD, "ReflectionPad2d": _PAD, "ReflectionPad3d": _PAD,
    "ReplicationPad1d": _PAD, "ReplicationPad2d": _PAD, "ReplicationPad3d": _PAD,
    "ZeroPad1d": _PAD, "ZeroPad2d": _PAD, "ZeroPad3d": _PAD,
    "CELU": _ACT, "GLU": _ACT, "Hardshrink": _ACT, "Hardswish": _ACT, "PReLU": _ACT,
    "ReLU6": _ACT, "SELU": _ACT, "Softmax2d": _ACT, "Softmin": _ACT, "Softshrink": _ACT,
    "Softsign": _ACT, "Tanhshrink": _ACT, "Threshold": _ACT,
    "CTCLoss": _LOSS, "CosineEmbeddingLoss": _LOSS, "GaussianNLLLoss": _LOSS,
    "HingeEmbeddingLoss": _LOSS, "KLDivLoss": _LOSS, "LinearCrossEntropyLoss": _LOSS,
    "MarginRankingLoss": _LOSS, "MultiLabelMarginLoss": _LOSS,
    "MultiLabelSoftMarginLoss": _LOSS, "MultiMarginLoss": _LOSS, "PoissonNLLLoss": _LOSS,
    "SoftMarginLoss": _LOSS,
    "Transformer": "only the encoder block exists in shrew_nn (TransformerBlock)",
    "TransformerEncoder": "only the encoder block exists in shrew_nn (TransformerBlock)",
    "TransformerDecoderLayer": "only the encoder block exists in shrew_nn (TransformerBlock)",
}  # fmt: skip

# (torch class, sample desc) -> reason, for samples of mapped classes that are not run.
SAMPLES_NOT_RUN: dict[tuple[str, str], str] = {}

# torch class -> reason its eval-mode samples are not run (its training-mode ones are).
_SAME_IN_EVAL = ("every sample has dropout 0, the only thing eval mode changes in this "
                 "module in shrew_nn and in torch's (grad-requiring) path: the training-mode "
                 "run of each sample covers it (kept out for the CI time budget)")
EVAL_NOT_RUN: dict[str, str] = {"RNN": _SAME_IN_EVAL, "LSTM": _SAME_IN_EVAL,
                                "GRU": _SAME_IN_EVAL, "MultiheadAttention": _SAME_IN_EVAL}

INFOS = {info.module_cls.__name__: info for info in module_db}


def _samples(name: str, training: bool) -> list:
    info = INFOS[name]
    torch.random.default_generator.manual_seed(SEED)  # CPU only: no lazy CUDA seeding
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return info.module_inputs_func(info, device="cpu", dtype=torch.float64,
                                       requires_grad=True, training=training)  # fmt: skip


def _modes(name: str) -> tuple[bool, ...]:
    """The modes torch tests the class in (eval too where ``train_and_eval_differ``)."""
    return (True, False) if INFOS[name].train_and_eval_differ else (True,)


def _skipped(name: str, training: bool, desc: str) -> bool:
    return (name, desc) in SAMPLES_NOT_RUN or (not training and name in EVAL_NOT_RUN)


def _cases() -> list[tuple[str, bool, int, str]]:
    out = []
    for info in module_db:
        name = info.module_cls.__name__
        if not isinstance(MODULES.get(name), To):
            continue
        for training in _modes(name):
            for i, sample in enumerate(_samples(name, training)):
                if not _skipped(name, training, sample.desc):
                    out.append((name, training, i, sample.desc))
    return out


CASES = _cases()
_CACHE: dict[tuple[str, bool], list] = {}


def _sample(name: str, training: bool, index: int):
    if (name, training) not in _CACHE:
        _CACHE[(name, training)] = _samples(name, training)
    return _CACHE[(name, training)][index]


def _shrew_value(v, device: str):
    """A torch value as shrew's: tensors (gradient flag kept), tuples, anything else."""
    if isinstance(v, torch.Tensor):
        t = sc.tensor(v.detach().numpy(), device=device)
        return t.requires_grad_() if v.requires_grad and v.dtype.is_floating_point else t
    if isinstance(v, (tuple, list)):
        return type(v)(_shrew_value(x, device) for x in v)
    return v


def _constructor(to: To, torch_cls, args, kwargs, device: str) -> dict:
    """The sample's constructor arguments by torch's names, mapped to shrew's kwargs."""
    sig = inspect.signature(torch_cls.__init__)
    if any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values()):
        assert not args, f"{torch_cls.__name__}: positional args with a *args signature"
        given = dict(kwargs)
    else:
        given = dict(sig.bind(None, *args, **kwargs).arguments)
        given.pop(next(iter(sig.parameters)))  # self
    out = {}
    for k, v in {**to.defaults, **given}.items():
        v = to.convert[k](v) if k in to.convert else v
        out[to.renames.get(k, k)] = _shrew_value(v, device)
    return out


def _flat(out) -> list:
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [out]


def _np(t) -> np.ndarray:
    return t.numpy() if isinstance(t, sc.Tensor) else t.detach().numpy()


def _close(actual, expected, what: str) -> None:
    a, e = _np(actual), _np(expected)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != torch {e.shape}"
    assert a.dtype == e.dtype, f"{what}: dtype {a.dtype} != torch {e.dtype}"
    np.testing.assert_allclose(a, e, err_msg=what, **TOL)


@pytest.fixture(autouse=True)
def _quiet_torch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("name,training,index,desc", CASES,
                         ids=[f"{n}-{'train' if t else 'eval'}-{i}-{d or 'default'}"
                              for n, t, i, d in CASES])  # fmt: skip
def test_sample_matches_torch(name, training, index, desc, device):
    to, sample = MODULES[name], _sample(name, training, index)
    cin, fin = sample.constructor_input, sample.forward_input
    torch_cls = INFOS[name].module_cls
    torch.random.default_generator.manual_seed(SEED)  # CPU only: no lazy CUDA seeding
    t_mod = torch_cls(*cin.args, **cin.kwargs).to(torch.float64)
    s_mod = to.cls(**_constructor(to, torch_cls, cin.args, cin.kwargs, device)).to(device)
    s_mod.to(sc.f64)
    # state dicts: torch's initialised one loads strictly here, ours strictly into torch
    t_sd = t_mod.state_dict()
    assert sorted(s_mod.state_dict()) == sorted(t_sd), "state-dict keys differ from torch's"
    s_mod.load_state_dict({k: sc.tensor(v.numpy(), device=device) for k, v in t_sd.items()})
    t_mod.load_state_dict({k: torch.tensor(v.numpy()) for k, v in s_mod.state_dict().items()})
    t_mod.train(training)
    s_mod.train(training)
    # the same inputs; kwargs renamed (an int puts a kwarg at that position)
    s_args = [_shrew_value(a, device) for a in fin.args]
    s_kwargs = {}
    for k, v in fin.kwargs.items():
        target = to.forward.get(k, k)
        if isinstance(target, int):
            s_args.insert(target, _shrew_value(v, device))
        else:
            s_kwargs[target] = _shrew_value(v, device)
    t_out, s_out = _flat(t_mod(*fin.args, **fin.kwargs)), _flat(s_mod(*s_args, **s_kwargs))
    assert len(s_out) == len(t_out), f"{len(s_out)} outputs vs torch {len(t_out)}"
    for i, (s, t) in enumerate(zip(s_out, t_out)):
        assert (s is None) == (t is None), f"output {i}: {s!r} vs torch {t!r}"
        if t is not None:
            _close(s, t, f"output {i}")
    for bname, buf in t_mod.named_buffers():
        _close(dict(s_mod.named_buffers())[bname], buf, f"buffer {bname}")
    # f64 gradients of sum(out * w) wrt every floating input and every parameter
    rng = np.random.default_rng(1)
    pairs = [(s, t) for s, t in zip(s_out, t_out)
             if t is not None and t.dtype.is_floating_point and t.requires_grad]  # fmt: skip
    if not pairs:
        return
    ws = [rng.standard_normal(tuple(t.shape)) for _, t in pairs]
    t_loss = sum((t * torch.tensor(w)).sum() for (_, t), w in zip(pairs, ws))
    s_loss = sum((s * sc.tensor(w, device=device)).sum() for (s, _), w in zip(pairs, ws))
    t_ins = [t for t in _flat(list(fin.args) + list(fin.kwargs.values()))
             if isinstance(t, torch.Tensor) and t.requires_grad]  # fmt: skip
    s_ins = [s for s in _flat(s_args + list(s_kwargs.values()))
             if isinstance(s, sc.Tensor) and s.requires_grad]  # fmt: skip
    t_params = dict(t_mod.named_parameters())
    s_params = dict(s_mod.named_parameters())
    assert sorted(s_params) == sorted(t_params), "parameter names differ from torch's"
    wrt = t_ins + list(t_params.values())
    t_grads = torch.autograd.grad(t_loss, wrt, allow_unused=True)
    s_grads = s_loss.backward()
    whats = [f"grad of input {i}" for i in range(len(t_ins))] + [f"grad of {n}" for n in t_params]
    for what, s_t, tg in zip(whats, s_ins + [s_params[n] for n in t_params], t_grads):
        sg = s_grads.get(s_t)
        if tg is None:
            assert sg is None or not np.any(sg.numpy()), f"{what}: torch has none"
        else:
            assert sg is not None, f"{what}: shrew has none"
            _close(sg, tg, what)


def test_every_sample_is_accounted_for():
    """Each module_db class is mapped or has a reason; each sample of a mapped class runs or
    has a reason; no reason is left for a class or sample module_db no longer has."""
    for name in INFOS:
        target = MODULES.get(name)
        assert target is not None, f"module_db has {name}, which MODULES does not list"
        assert isinstance(target, To) or target.strip(), f"{name}: empty reason"
    assert set(MODULES) == set(INFOS), f"MODULES lists {set(MODULES) - set(INFOS)}"
    run = {(n, t, i) for n, t, i, _ in CASES}
    total = not_run = 0
    for name, target in MODULES.items():
        if not isinstance(target, To):
            continue
        for training in _modes(name):
            for i, s in enumerate(_samples(name, training)):
                total += 1
                skipped = _skipped(name, training, s.desc)
                not_run += skipped
                assert ((name, training, i) in run) != skipped, (name, training, i, s.desc)
    for (name, desc), reason in SAMPLES_NOT_RUN.items():
        assert reason.strip() and any(s.desc == desc for s in _samples(name, True))
    for name, reason in EVAL_NOT_RUN.items():
        assert reason.strip() and False in _modes(name), f"{name} has no eval-mode samples"
    assert len(run) + not_run == total and len(run) == len(CASES) > 0
