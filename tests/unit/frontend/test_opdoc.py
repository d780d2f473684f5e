"""`netspec ops`: every registered op documents itself and every param."""

from __future__ import annotations

from dataclasses import MISSING
from pathlib import Path

import pytest

from compiler.opdoc import describe_op, list_ops
from compiler.ops import DEFAULT_OPS
from compiler.params import describe_type, schema_fields

OPS = DEFAULT_OPS.names()


def test_there_are_ops() -> None:
    assert {"conv2d", "concat", "max_pool2d", "spatial_softmax"} <= set(OPS)


@pytest.mark.parametrize("name", OPS)
def test_describe_op_lists_every_param(name: str) -> None:
    op = DEFAULT_OPS.get(name)
    text = describe_op(op)
    lines = text.splitlines()
    assert lines[0] == f"{name}  ({op.family or 'op'}; {op.arity_text()})"
    assert op.doc.strip() and op.doc.strip() in text
    rows = schema_fields(op.params)
    if not rows:
        assert "  (none)" in lines
    for f, tp in rows:
        required = f.default is MISSING and f.default_factory is MISSING
        row = [x for x in lines if x.startswith(f"  {f.name}: ")]
        assert len(row) == 1, f"{name}: param {f.name} is not listed once"
        assert describe_type(tp) in row[0]
        assert ("(required)" in row[0]) == required
        assert f.metadata.get("doc"), f"{name}: param {f.name} has no doc"


def test_list_ops_names_every_op_under_its_family() -> None:
    text = list_ops(DEFAULT_OPS)
    families = {op.family or "other" for op in DEFAULT_OPS}
    assert {x[:-1] for x in text.splitlines() if x and not x[0].isspace()
            and x.endswith(":")} == families
    for name in OPS:
        assert any(x.split()[:1] == [name] for x in text.splitlines()), name


# --- defaults that differ from Keras (issue 10) ------------------------------------------
# Keras's source is read with ast (no TensorFlow import): op -> (file under keras/src/layers,
# class). Every param both sides have must default alike, unless KERAS_DEFAULTS says not.
KERAS_CLASSES = {
    "conv2d": ("convolutional/conv2d.py", "Conv2D"),
    "conv2d_transpose": ("convolutional/conv2d_transpose.py", "Conv2DTranspose"),
    "depthwise_conv2d": ("convolutional/depthwise_conv2d.py", "DepthwiseConv2D"),
    "conv_lstm2d": ("rnn/conv_lstm2d.py", "ConvLSTM2D"),
    "max_pool2d": ("pooling/max_pooling2d.py", "MaxPooling2D"),
    "avg_pool2d": ("pooling/average_pooling2d.py", "AveragePooling2D"),
    "batch_norm": ("normalization/batch_normalization.py", "BatchNormalization"),
    "dense": ("core/dense.py", "Dense"),
    "lstm": ("rnn/lstm.py", "LSTM"),
    "upsample2d": ("reshaping/up_sampling2d.py", "UpSampling2D"),
}


def _keras_defaults(rel: str, cls: str) -> dict[str, object]:
    import ast
    import importlib.util

    spec = importlib.util.find_spec("keras")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("keras is not installed")
    path = Path(spec.submodule_search_locations[0]) / "src" / "layers" / rel
    tree = ast.parse(path.read_text())
    init = next(f for c in ast.walk(tree) if isinstance(c, ast.ClassDef) and c.name == cls
                for f in c.body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    args = init.args.args[-len(init.args.defaults):] if init.args.defaults else []
    pairs = list(zip(args, init.args.defaults, strict=True)) + list(
        zip(init.args.kwonlyargs, init.args.kw_defaults, strict=True))
    return {a.arg: ast.literal_eval(d) for a, d in pairs if d is not None
            and isinstance(d, (ast.Constant, ast.Tuple))}


def _norm(value: object) -> object:
    if isinstance(value, (tuple, list)) and len(set(value)) == 1:
        return value[0]  # (1, 1) is 1
    return "linear" if value is None else value


@pytest.mark.parametrize("name", sorted(KERAS_CLASSES))
def test_defaults_match_keras_or_are_listed(name: str) -> None:
    from dataclasses import fields

    from compiler.opdoc import KERAS_DEFAULTS

    keras = _keras_defaults(*KERAS_CLASSES[name])
    ours = {f.name: f.default for f in fields(DEFAULT_OPS.get(name).params)
            if f.default is not MISSING}
    listed = KERAS_DEFAULTS.get(name, {})
    for param, value in ours.items():
        if param not in keras:
            continue
        if param in listed:
            assert _norm(keras[param]) == _norm(listed[param]) != _norm(value), (name, param)
        else:
            assert _norm(keras[param]) == _norm(value), \
                f"{name}.{param}: netspec {value!r}, Keras {keras[param]!r}; add to KERAS_DEFAULTS"
    assert set(listed) <= set(ours)


def test_conv_padding_difference_is_shown_in_the_listing_and_the_op_page() -> None:
    page = describe_op(DEFAULT_OPS.get("conv2d"))
    assert "Differs from Keras: default padding 'same' (Keras: 'valid')" in page
    assert "  padding: one of valid, same (default 'same'; Keras: 'valid')" in page
    listing = [x for x in list_ops(DEFAULT_OPS).splitlines() if x.split()[:1] == ["conv2d"]]
    assert "[default padding 'same' (Keras: 'valid')]" in listing[0]
    pool = describe_op(DEFAULT_OPS.get("max_pool2d"))
    assert "Keras:" not in pool  # valid, as Keras
