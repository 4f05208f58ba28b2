"""Pure-Python shape/stride arithmetic and the backward graph walk: the reference for
``_speedups.pyx``.

These few functions run on every op (or every backward), so shrew_core's build compiles the same
logic with Cython (``_speedups``); ``layout.py`` picks the compiled version when
present. Keep the two in step: tests run both against each other.
"""

from __future__ import annotations


def contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides = [0] * len(shape)
    acc = 1
    for i in range(len(shape) - 1, -1, -1):
        strides[i] = acc
        acc *= shape[i]
    return tuple(strides)


def is_contiguous(shape: tuple[int, ...], strides: tuple[int, ...]) -> bool:
    acc = 1
    for i in range(len(shape) - 1, -1, -1):
        d = shape[i]
        if d != 1 and strides[i] != acc:
            return False
        acc *= d
    return True


def broadcast_shapes(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    """NumPy broadcasting of two shapes, or None when they are incompatible."""
    if a == b:
        return a
    na, nb = len(a), len(b)
    n = max(na, nb)
    out = [0] * n
    for i in range(1, n + 1):
        da = a[na - i] if i <= na else 1
        db = b[nb - i] if i <= nb else 1
        if da == db or db == 1:
            out[n - i] = da
        elif da == 1:
            out[n - i] = db
        else:
            return None
    return tuple(out)


def broadcast_strides(
    shape: tuple[int, ...], strides: tuple[int, ...], target: tuple[int, ...]
) -> tuple[int, ...] | None:
    """Strides that view ``shape``/``strides`` as ``target`` (stride 0 on stretched dims)."""
    nt, ns = len(target), len(shape)
    if ns > nt:
        return None
    out = [0] * nt
    for i in range(1, nt + 1):
        t = target[nt - i]
        if i <= ns:
            d = shape[ns - i]
            if d == t:
                out[nt - i] = strides[ns - i] if d != 1 else 0
            elif d == 1:
                out[nt - i] = 0
            else:
                return None
    return tuple(out)


def view_strides(
    shape: tuple[int, ...], strides: tuple[int, ...], new_shape: tuple[int, ...]
) -> tuple[int, ...] | None:
    """Strides for reshaping a strided tensor without copying, or None if a copy is needed.

    Same algorithm as PyTorch's ``computeStride``: walk chunks of old dims that are
    contiguous with each other and split them into the new dims.
    """
    numel = 1
    for d in shape:
        numel *= d
    if numel == 0 or not shape:
        return contiguous_strides(new_shape)
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base_stride = strides[-1] if strides else 1
    tensor_numel = 1
    view_numel = 1
    for tensor_d in range(len(shape) - 1, -1, -1):
        tensor_numel *= shape[tensor_d]
        if tensor_d == 0 or (
            shape[tensor_d - 1] != 1 and strides[tensor_d - 1] != tensor_numel * chunk_base_stride
        ):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * chunk_base_stride
                view_numel *= new_shape[view_d]
                view_d -= 1
            if view_numel != tensor_numel:
                return None
            if tensor_d > 0:
                chunk_base_stride = strides[tensor_d - 1]
                tensor_numel = 1
                view_numel = 1
    if view_d != -1:
        return None
    return tuple(new_strides)


def topo_order(root) -> list:
    """Tensors with a grad Node reachable from root, each before its inputs (iterative DFS)."""
    order: list = []
    seen: set[int] = {id(root._node)}
    stack: list = [(root, 0)]
    while stack:
        t, i = stack.pop()
        inputs = t._node.inputs
        if i < len(inputs):
            stack.append((t, i + 1))
            child = inputs[i]
            if child is not None:
                node = child._node
                if node is not None and id(node) not in seen:
                    seen.add(id(node))
                    stack.append((child, 0))
        else:
            order.append(t)
    order.reverse()
    return order
