"""Lowering a typed Graph to a Keras 3 functional model (the only TF-touching pass).

Inputs and outputs are dicts keyed by spec names; layer names come from the spec
(`keras_name`). Every layer's Keras shape is cross-checked against the IR: a
difference is a netspec bug (InternalError), never the user's.
"""

from __future__ import annotations

from typing import Any

from compiler.diagnostics import InternalError
from compiler.ir import Graph, keras_name
from compiler.ops import DEFAULT_OPS
from compiler.registry import Registry


def lower_to_keras(graph: Graph, ops: Registry = DEFAULT_OPS, *,
                   mixed_precision: bool | str = False) -> Any:
    """Build the keras.Model. With `mixed_precision` (True: "mixed_float16", or a policy
    name such as "mixed_bfloat16"), layers compute in 16 bits except those that produce
    outputs, which stay float32 for numerically safe losses."""
    import keras

    import compiler.keras_layers  # noqa: F401 - registers netspec's custom layers

    output_sources = {o.source for o in graph.outputs}
    policy = ("mixed_float16" if mixed_precision is True else mixed_precision) or None
    values: dict[str, Any] = {}
    inputs = {}
    for n in graph.inputs:
        x = keras.Input(shape=n.out.shape[1:], dtype=n.out.dtype, name=n.name)  # type: ignore[union-attr]
        inputs[n.name] = values[n.name] = x
    built: dict[str, Any] = {}  # spec name -> Keras layer, for layers that share weights
    for n in graph.nodes:
        opdef = ops.get(n.op)
        if opdef is None or n.out is None:
            raise InternalError(f"{n.loc}: layer '{n.name}' reached lowering untyped")
        if n.share is not None:  # one Keras layer called again: one weight set
            layer = built[n.share]
        else:
            layer = built[n.name] = opdef.lower(n.params, keras_name(n.name))
            if not n.trainable:
                layer.trainable = False
        if policy and n.name not in output_sources and hasattr(layer, "dtype_policy"):
            layer.dtype_policy = keras.DTypePolicy(policy)
        args = [values[i] for i in n.inputs]
        y = layer(args[0] if opdef.max_inputs == 1 else args)
        if tuple(y.shape) != n.out.shape:
            raise InternalError(
                f"{n.loc}: infer_{n.op} says {n.out} but Keras built {tuple(y.shape)} for "
                f"'{n.name}' - this is a netspec bug, please report it")
        values[n.name] = y
    outputs = {o.name: values[o.source] for o in graph.outputs}
    return keras.Model(inputs=inputs, outputs=outputs, name=keras_name(graph.name))
