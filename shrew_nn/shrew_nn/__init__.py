"""shrew_nn: neural-network layers, activations and losses for Shrew, PyTorch-compatible
(parameter names, shapes, layouts and gate orders match ``torch.nn``, so state dicts move
between the two).

>>> import shrew_core as sc, shrew_nn as nn
>>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
>>> loss = nn.functional.cross_entropy(net(sc.randn(5, 4)), sc.tensor([0, 1, 2, 1, 0]))
>>> grads = loss.backward()
>>> grads[net[0].weight].shape
(8, 4)
"""

from . import functional, init
from .activation import (
    ELU,
    GELU,
    GeLU,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    ReLU,
    Sigmoid,
    SigmoidAct,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
    TanhAct,
)  # fmt: skip
from .attention import MultiHeadAttention
from .containers import ModuleDict, ModuleList, Sequential
from .conv import Conv1d, Conv2d
from .dropout import Dropout
from .linear import Bilinear, Embedding, Flatten, Identity, Linear, Unflatten
from .loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)  # fmt: skip
from .module import IncompatibleKeys, Module, Parameter, StateDictError
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm, RMSNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .transformer import TransformerBlock

FlattenLayer = Flatten  # the seed's spelling
MultiheadAttention = MultiHeadAttention  # PyTorch's spelling

__version__ = "0.1.0"

__all__ = [
    "functional", "init", "Module", "Parameter", "StateDictError", "IncompatibleKeys",
    "Sequential", "ModuleList", "ModuleDict", "Linear", "Bilinear", "Identity", "Flatten",
    "FlattenLayer", "Unflatten", "Embedding", "Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d",
    "AdaptiveAvgPool2d", "RNNCell", "RNN", "LSTMCell", "LSTM", "GRUCell", "GRU",
    "MultiHeadAttention", "MultiheadAttention", "TransformerBlock", "BatchNorm1d",
    "BatchNorm2d", "LayerNorm", "GroupNorm", "RMSNorm", "Dropout", "ReLU", "GELU", "GeLU",
    "SiLU", "LeakyReLU", "ELU", "Mish", "Sigmoid", "Tanh", "Hardtanh", "LogSigmoid",
    "SigmoidAct", "TanhAct", "Softplus", "Softmax", "LogSoftmax", "MSELoss", "L1Loss",
    "SmoothL1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss", "NLLLoss", "CrossEntropyLoss",
]  # fmt: skip
