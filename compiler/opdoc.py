"""`netspec ops`: op documentation generated from the params schemas.

Params are spelled as Keras spells them, and a few defaults deliberately differ from
Keras's (KERAS_DEFAULTS): both the listing and an op's page say so, since a user who
knows Keras would otherwise assume Keras's value.
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from compiler.params import describe_type, schema_fields
from compiler.registry import OpDef, Registry

# op -> {param: Keras's default} where netspec's default differs (checked against the
# schemas in tests/unit/frontend/test_opdoc.py and against Keras in tests/keras/).
KERAS_DEFAULTS: dict[str, dict[str, Any]] = {
    "conv2d": {"padding": "valid"},  # keras.layers.Conv2D
    "conv2d_transpose": {"padding": "valid"},  # keras.layers.Conv2DTranspose
    "depthwise_conv2d": {"padding": "valid"},  # keras.layers.DepthwiseConv2D
    "conv_lstm2d": {"padding": "valid"},  # keras.layers.ConvLSTM2D
}


def keras_differences(op: OpDef) -> list[str]:
    """"padding 'same' (Keras: 'valid')" for each default that differs from Keras's."""
    ours = {f.name: f.default for f in fields(op.params)}
    return [f"{name} {ours[name]!r} (Keras: {keras!r})"
            for name, keras in KERAS_DEFAULTS.get(op.name, {}).items()]


def list_ops(ops: Registry) -> str:
    by_family: dict[str, list[OpDef]] = {}
    for op in ops:
        by_family.setdefault(op.family or "other", []).append(op)
    lines = []
    for family in sorted(by_family):
        lines.append(f"{family}:")
        for op in sorted(by_family[family], key=lambda o: o.name):
            first = op.doc.strip().splitlines()[0] if op.doc.strip() else ""
            differs = keras_differences(op)
            note = f"[default {', '.join(differs)}] " if differs else ""
            lines.append(f"  {op.name:<24} {note}{first}")
    lines.append("\n`netspec ops NAME` documents one op's params. Params are Keras's; "
                 "[default ...] marks a default that differs from Keras's.")
    return "\n".join(lines) + "\n"


def describe_op(op: OpDef) -> str:
    lines = [f"{op.name}  ({op.family or 'op'}; {op.arity_text()})", "", op.doc.strip(), ""]
    differs = keras_differences(op)
    if differs:
        lines += [f"Differs from Keras: default {', '.join(differs)}; write the param to get "
                  "Keras's behaviour.", ""]
    lines.append("params:")
    rows = schema_fields(op.params)
    if not rows:
        lines.append("  (none)")
    for f, tp in rows:
        if f.default is not MISSING:
            default = f"default {f.default!r}"
        elif f.default_factory is not MISSING:
            default = f"default {f.default_factory()!r}"
        else:
            default = "required"
        doc = f.metadata.get("doc", "")
        keras = KERAS_DEFAULTS.get(op.name, {})
        if f.name in keras:
            default += f"; Keras: {keras[f.name]!r}"
        lines.append(f"  {f.name}: {describe_type(tp)} ({default})")
        if doc:
            lines.append(f"      {doc}")
    return "\n".join(lines) + "\n"
