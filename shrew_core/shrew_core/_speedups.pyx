# cython: language_level=3, boundscheck=False, wraparound=False
"""Compiled per-op host path: the same functions as ``_shapes.py``, typed for Cython.

``layout.py`` and ``autograd.py`` import from here when the extension is built
(``pip install ./shrew_core`` builds it) and fall back to ``_shapes`` otherwise.
benchmarks/bench_core_hotpath.py measures the gain.
"""


def contiguous_strides(tuple shape):
    cdef Py_ssize_t n = len(shape), i
    cdef long long acc = 1
    out = [0] * n
    for i in range(n - 1, -1, -1):
        out[i] = acc
        acc *= <long long>shape[i]
    return tuple(out)


def is_contiguous(tuple shape, tuple strides):
    cdef Py_ssize_t i
    cdef long long acc = 1, d
    for i in range(len(shape) - 1, -1, -1):
        d = shape[i]
        if d != 1 and <long long>strides[i] != acc:
            return False
        acc *= d
    return True


def broadcast_shapes(tuple a, tuple b):
    if a == b:
        return a
    cdef Py_ssize_t na = len(a), nb = len(b), n = max(na, nb), i
    cdef long long da, db
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


def broadcast_strides(tuple shape, tuple strides, tuple target):
    cdef Py_ssize_t nt = len(target), ns = len(shape), i
    cdef long long t, d
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


def view_strides(tuple shape, tuple strides, tuple new_shape):
    cdef long long numel = 1, chunk_base_stride, tensor_numel = 1, view_numel = 1
    cdef Py_ssize_t view_d, tensor_d
    for d in shape:
        numel *= <long long>d
    if numel == 0 or len(shape) == 0:
        return contiguous_strides(new_shape)
    new_strides = [0] * len(new_shape)
    view_d = len(new_shape) - 1
    chunk_base_stride = strides[len(strides) - 1]
    for tensor_d in range(len(shape) - 1, -1, -1):
        tensor_numel *= <long long>shape[tensor_d]
        if tensor_d == 0 or (
            shape[tensor_d - 1] != 1
            and <long long>strides[tensor_d - 1] != tensor_numel * chunk_base_stride
        ):
            while view_d >= 0 and (view_numel < tensor_numel or new_shape[view_d] == 1):
                new_strides[view_d] = view_numel * chunk_base_stride
                view_numel *= <long long>new_shape[view_d]
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


def topo_order(root):
    """Tensors with a grad Node reachable from root, each before its inputs (iterative)."""
    cdef list order = []
    cdef set seen = {id(root._node)}
    cdef list stack = [(root, 0)]
    cdef Py_ssize_t i
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
