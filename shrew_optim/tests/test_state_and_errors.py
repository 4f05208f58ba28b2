"""state_dict round trips (bit-identical resume) and bad input (clear errors, nothing
modified)."""

from __future__ import annotations

import numpy as np
import pytest

import shrew_core as sc
import shrew_optim as so

MAKERS = {
    "sgd": lambda p: so.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    "adam-amsgrad": lambda p: so.Adam(p, lr=0.01, amsgrad=True, weight_decay=0.1),
    "adamw": lambda p: so.AdamW(p, lr=0.01),
    "radam": lambda p: so.RAdam(p, lr=0.01, weight_decay=0.1),
    "rmsprop": lambda p: so.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    "adam-master-bf16": lambda p: so.Adam(p, lr=0.01, master_weights=True),
}


def _values(params):
    return [p.numpy().copy() for p in params]


@pytest.mark.parametrize("name", list(MAKERS))
def test_resume_is_bit_identical(name, device, oracle):
    init, grads = oracle.problem("f32", 30)
    half = name.endswith("bf16")

    def params(arrays):
        ps = [sc.tensor(a, device=device) for a in arrays]
        return [(p.to("bf16") if half else p).requires_grad_() for p in ps]

    def store(ps, gs):
        s = oracle.store(ps, gs, device)
        return s if not half else _cast(s, "bf16")

    a = params(init)
    opt_a = MAKERS[name](a)
    for gs in grads[:20]:
        opt_a.step(store(a, gs))
    saved = opt_a.state_dict()
    b = params([p.to("f32").numpy() for p in a])  # a fresh copy of the current weights
    opt_b = MAKERS[name](b)
    opt_b.load_state_dict(saved)
    for gs in grads[20:]:
        opt_a.step(store(a, gs))
        opt_b.step(store(b, gs))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.to("f32").numpy(), y.to("f32").numpy())
    assert saved["state"][0]["step"] == 20  # the saved dict did not move with opt_a


def _cast(store, dtype):
    out = sc.GradStore()
    for p, g in store.items():
        out[p] = g.to(dtype)
    return out


def test_state_dict_layout(device):
    w = sc.ones(2, 3, device=device).requires_grad_()
    b = sc.ones(3, device=device).requires_grad_()
    opt = so.Adam([{"params": [w]}, {"params": [b], "lr": 0.5}], lr=0.1)
    g = sc.GradStore()
    g[w] = sc.ones(2, 3, device=device)
    opt.step(g)
    sd = opt.state_dict()
    assert sd["optimizer"] == "Adam"
    assert [grp["params"] for grp in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.5
    assert set(sd["state"]) == {0}  # b never had a gradient: no state yet
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}
    # numpy arrays are accepted too (e.g. after a round trip through a file format)
    np_sd = {**sd, "state": {0: {k: (v.numpy() if isinstance(v, sc.Tensor) else v)
                                 for k, v in sd["state"][0].items()}}}  # fmt: skip
    opt.load_state_dict(np_sd)
    np.testing.assert_array_equal(opt.state[w]["exp_avg"].numpy(),
                                  sd["state"][0]["exp_avg"].numpy())


def _trained(device):
    w = sc.ones(2, 3, device=device).requires_grad_()
    opt = so.Adam([w], lr=0.1)
    g = sc.GradStore()
    g[w] = sc.ones(2, 3, device=device)
    opt.step(g)
    return w, opt


def _snapshot(opt):
    return (
        [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups],
        {id(p): {k: (v.numpy().copy() if isinstance(v, sc.Tensor) else v) for k, v in s.items()}
         for p, s in opt.state.items()},
    )  # fmt: skip


def _assert_unchanged(opt, snap):
    groups, state = _snapshot(opt)
    assert groups == snap[0]
    assert state.keys() == snap[1].keys()
    for k in state:
        for name, v in state[k].items():
            np.testing.assert_array_equal(v, snap[1][k][name])


def test_load_rejects_other_optimizer_type(device):
    w, opt = _trained(device)
    other = so.SGD([sc.ones(2, 3, device=device).requires_grad_()], lr=0.1, momentum=0.9)
    snap = _snapshot(opt)
    with pytest.raises(ValueError, match="Cannot load SGD state into Adam optimizer"):
        opt.load_state_dict(other.state_dict())
    _assert_unchanged(opt, snap)


def test_load_rejects_wrong_shapes_and_counts(device):
    w, opt = _trained(device)
    snap = _snapshot(opt)
    v, other = _trained(device)
    sd = other.state_dict()
    sd["state"][0]["exp_avg_sq"] = sc.zeros(3, 2, device=device)
    sd["param_groups"][0]["lr"] = 0.7  # would change if the load went half-way
    with pytest.raises(ValueError, match=r"'exp_avg_sq' of parameter 0 has shape \(3, 2\)"):
        opt.load_state_dict(sd)
    _assert_unchanged(opt, snap)
    two = so.Adam([sc.ones(1, device=device).requires_grad_(),
                   sc.ones(1, device=device).requires_grad_()]).state_dict()  # fmt: skip
    with pytest.raises(ValueError, match="doesn't match the size of optimizer's group"):
        opt.load_state_dict(two)
    groups = so.Adam([{"params": [sc.ones(1, device=device).requires_grad_()]},
                      {"params": [sc.ones(1, device=device).requires_grad_()]}]).state_dict()
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict(groups)
    bad_lr = other.state_dict()
    bad_lr["param_groups"][0]["lr"] = -1.0
    with pytest.raises(ValueError, match="Invalid learning rate: -1.0"):
        opt.load_state_dict(bad_lr)
    with pytest.raises(ValueError, match="expected a dict"):
        opt.load_state_dict({"state": {}})
    _assert_unchanged(opt, snap)


@pytest.mark.parametrize("make, message", [
    (lambda p: so.SGD(p, lr=-0.1), "Invalid learning rate: -0.1"),
    (lambda p: so.SGD(p, momentum=-1), "Invalid momentum value: -1"),
    (lambda p: so.SGD(p, weight_decay=-1), "Invalid weight_decay value: -1"),
    (lambda p: so.SGD(p, nesterov=True), "Nesterov momentum requires a momentum"),
    (lambda p: so.Adam(p, lr=-1e-3), "Invalid learning rate: -0.001"),
    (lambda p: so.Adam(p, eps=-1.0), "Invalid epsilon value: -1.0"),
    (lambda p: so.Adam(p, betas=(1.0, 0.9)), "Invalid beta parameter at index 0: 1.0"),
    (lambda p: so.AdamW(p, betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1"),
    (lambda p: so.RAdam(p, weight_decay=-0.1), "Invalid weight_decay value: -0.1"),
    (lambda p: so.RMSprop(p, alpha=-0.5), "Invalid alpha value: -0.5"),
    (lambda p: so.Adam([{"params": p, "lr": -2.0}]), "Invalid learning rate: -2.0"),
    (lambda p: so.Adam([{"params": p, "lrr": 2.0}]), "unknown hyperparameter"),
    (lambda p: so.Adam([]), "empty parameter list"),
    (lambda p: so.Adam([p[0], p[0]]), "more than one parameter group"),
])  # fmt: skip
def test_invalid_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make([sc.ones(2).requires_grad_()])


def test_bad_parameters():
    with pytest.raises(ValueError, match="is not a variable; call requires_grad_"):
        so.SGD([sc.ones(2)], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors or dicts, but got Tensor"):
        so.SGD(sc.ones(2).requires_grad_(), lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        so.SGD([np.ones(2)], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        w = sc.ones(2).requires_grad_()
        y = w * 2
        y._requires_grad = True  # a non-leaf that requires grad, as autograd makes them
        so.SGD([y], lr=0.1)


def test_lr_setter_and_step_errors(device):
    w = sc.ones(2, 2, device=device).requires_grad_()
    opt = so.SGD([w], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        opt.lr = -1
    assert opt.lr == 0.1
    g = sc.GradStore()
    g[w] = sc.ones(4, device=device)
    with pytest.raises(sc.ShapeError, match=r"gradient of shape \(4,\) for a parameter of shape"):
        opt.step(g)
    np.testing.assert_array_equal(w.numpy(), np.ones((2, 2), np.float32))
    assert opt.state == {}
    # a bad gradient for a later parameter: the earlier one is not updated either
    v = sc.ones(3, device=device).requires_grad_()
    opt = so.Adam([w, v], lr=0.1)
    g = sc.GradStore()
    g[w] = sc.ones(2, 2, device=device)
    g[v] = sc.ones(2, device=device)
    with pytest.raises(sc.ShapeError):
        opt.step(g)
    np.testing.assert_array_equal(w.numpy(), np.ones((2, 2), np.float32))
    assert opt.state == {}


def _torch_trained(make_torch, init, grads):
    import torch

    tp = [torch.tensor(a, requires_grad=True) for a in init]
    topt = make_torch(tp)
    for gs in grads:
        for p, g in zip(tp, gs):
            p.grad = torch.tensor(g)
        topt.step()
    return tp, topt


@pytest.mark.parametrize("name", ["SGD-momentum", "SGD-plain", "Adam-amsgrad", "RMSprop",
                                  "RAdam"])
def test_torch_state_dict_loads_and_continues(name, device, oracle):
    """A torch optimizer's own state dict (torch tensors, torch's group keys such as
    foreach/differentiable, SGD's state without "step") loads; the next steps match."""
    import torch

    kind, kw = {"SGD-momentum": ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True)),
                "SGD-plain": ("SGD", dict(lr=0.1)),
                "Adam-amsgrad": ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
                "RMSprop": ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True)),
                "RAdam": ("RAdam", dict(lr=0.01))}[name]  # fmt: skip
    init, grads = oracle.problem("f64", 12)
    tp, topt = _torch_trained(lambda p: getattr(torch.optim, kind)(p, **kw), init, grads[:6])
    saved = topt.state_dict()
    if kind == "SGD":
        assert all("step" not in st for st in saved["state"].values())
    sp = oracle.params([p.detach().numpy() for p in tp], device)
    sopt = getattr(so, kind)(sp, **kw)
    sopt.load_state_dict(saved)
    assert sopt.param_groups[0]["foreach"] is None  # torch's keys are kept, like torch
    for gs in grads[6:]:
        sopt.step(oracle.store(sp, gs, device))
        oracle.torch_step(topt, tp, gs)
    oracle.assert_close([p.numpy() for p in sp], [p.detach().numpy() for p in tp], "f64")
    # and back: torch loads ours
    topt2 = getattr(torch.optim, kind)([torch.tensor(p.numpy(), requires_grad=True)
                                        for p in sp], **kw)  # fmt: skip
    ours = sopt.state_dict()
    topt2.load_state_dict({"state": {i: {k: (torch.tensor(v.numpy()) if isinstance(v, sc.Tensor)
                                             else torch.tensor(float(v)) if k == "step" else v)
                                         for k, v in st.items()}
                                     for i, st in ours["state"].items()},
                           "param_groups": ours["param_groups"]})  # fmt: skip


def test_torch_state_dict_with_tensor_hyperparameters(device, oracle):
    import torch

    init, grads = oracle.problem("f32", 8)
    kw = dict(lr=torch.tensor(0.01), betas=(torch.tensor(0.8), torch.tensor(0.99)))
    tp, topt = _torch_trained(lambda p: torch.optim.Adam(p, **kw), init, grads[:4])
    sp = oracle.params([p.detach().numpy() for p in tp], device)
    sopt = so.Adam(sp, lr=sc.tensor(0.5))
    sopt.load_state_dict(topt.state_dict())
    lr, (b1, _) = sopt.param_groups[0]["lr"], sopt.param_groups[0]["betas"]
    assert isinstance(lr, sc.Tensor) and float(lr) == float(kw["lr"]) and isinstance(b1, sc.Tensor)
    for gs in grads[4:]:
        sopt.step(oracle.store(sp, gs, device))
        oracle.torch_step(topt, tp, gs)
    oracle.assert_close([p.numpy() for p in sp], [p.detach().numpy() for p in tp], "f32")


@pytest.mark.parametrize("kind", ["SGD", "Adam", "AdamW", "RAdam", "RMSprop"])
def test_tensor_lr_and_betas(kind, device, oracle):
    import torch

    kw_s = {"lr": sc.tensor(0.01)}
    kw_t = {"lr": torch.tensor(0.01)}
    if kind in ("Adam", "AdamW", "RAdam"):  # torch's RAdam takes 0-d tensor betas only
        b1, b2 = ([[[0.9]]], [[0.99]]) if kind != "RAdam" else (0.9, 0.99)
        kw_s["betas"] = (sc.tensor(b1), sc.tensor(b2))
        kw_t["betas"] = (torch.tensor(b1), torch.tensor(b2))
    got, want = oracle.run(lambda p: getattr(so, kind)(p, **kw_s),
                           lambda p: getattr(torch.optim, kind)(p, **kw_t), device, "f32")
    oracle.assert_close(got, want, "f32")
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        getattr(so, kind)([sc.ones(2).requires_grad_()], lr=sc.tensor([0.1, 0.2]))
    if kind in ("Adam", "AdamW", "RAdam"):
        with pytest.raises(ValueError, match=r"Tensor betas\[0\] must be 1-element"):
            getattr(so, kind)([sc.ones(2).requires_grad_()], betas=(sc.ones(2), 0.9))
