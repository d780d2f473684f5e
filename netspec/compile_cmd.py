"""`netspec compile`: write model.keras, ir.txt, summary.txt and the resolved spec.

The output folder is checked (and made) before the slow lowering, so a bad `-o` fails at
once with a plain error; every file written, temporaries included, lies inside it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import io
import os
from pathlib import Path
from typing import Any

from compiler.api import Spec, expanded_document
from compiler.diagnostics import SourceLoc, SpecError
from compiler.dump import dump_spec
from compiler.format import format_graph
from compiler.ops import DEFAULT_OPS
from runtime.atomic import atomic_save_model, atomic_write_text
from runtime.run_dir import ensure_output_dir

FILES = ("model.keras", "ir.txt", "summary.txt", "spec.resolved.yaml")
_CMDLINE = SourceLoc("<command line>")


def default_output_dir(spec: Spec, root: Path = Path("build")) -> Path:
    """build/<spec name>, refused when the name would lead outside build/."""
    out = root / spec.name
    lexical = Path(os.path.normpath(out))  # '..' folded without following symlinks
    if out.name != spec.name or lexical.parent != Path(os.path.normpath(root)):
        raise SpecError.at(spec.document.loc_of("name") or SourceLoc(spec.file),
                           f"spec name '{spec.name}' does not name a folder inside {root}/",
                           hint="use a plain name (letters, digits, '_', '-', '.'), or pass "
                                "-o DIR")
    return out


def summary_text(model: Any) -> str:  # noqa: ANN401 - keras.Model
    """model.summary() at a width that fits the longest layer name, shape and count, so
    nothing is cut (Keras' rich table otherwise stops at the console's 80 columns)."""
    rows = [(f"{layer.name} ({type(layer).__name__})", _shape_text(layer))
            for layer in model.layers]
    name_w = max([len("Layer (type)"), *(len(r[0]) for r in rows)]) + 4
    shape_w = max([len("Output Shape"), *(len(r[1]) for r in rows)]) + 4
    count_w = max(len(f"{model.count_params():,}"), len("Param #")) + 4
    links_w = 60  # "Connected to" may wrap at ", " inside its cell; nothing is lost
    text = _summary(model, [name_w, shape_w, count_w, links_w])
    if "Connected to" not in text:  # Keras drops the column for chain-like models
        text = _summary(model, [name_w, shape_w, count_w])
    return text


def _summary(model: Any, widths: list[int]) -> str:  # noqa: ANN401 - keras.Model
    line_length = sum(widths) + len(widths) + 1
    positions = [sum(widths[:i + 1]) / sum(widths) for i in range(len(widths))]
    positions[-1] = 1.0
    out = io.StringIO()
    with _console_columns(line_length + 4):
        model.summary(print_fn=lambda line, *a, **k: out.write(line.rstrip() + "\n"),
                      line_length=line_length, positions=positions)
    return out.getvalue()


def _shape_text(layer: Any) -> str:  # noqa: ANN401 - keras.Layer
    try:
        out = layer.output
        shapes = [o.shape for o in out] if isinstance(out, (list, tuple)) else [out.shape]
        return ", ".join(str(tuple(s)) for s in shapes)
    except (AttributeError, ValueError):
        return "?" * 24


@contextmanager
def _console_columns(n: int) -> Iterator[None]:
    """rich (which Keras' summary prints through) sizes its console from $COLUMNS."""
    saved = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(n)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = saved


def compile_to_dir(spec: Spec, out: Path, *, mixed_precision: bool = False) -> list[Path]:
    """Lower the spec, save it and its text forms; each file is written atomically."""
    from compiler.lower_keras import lower_to_keras

    ensure_output_dir(out)
    model = lower_to_keras(spec.graph, DEFAULT_OPS, mixed_precision=mixed_precision)
    if any(n.init_from for n in spec.graph.nodes):  # composed trained parts: their weights
        from runtime.train.initial_weights import initial_weights

        initial_weights(model, spec.graph)
    files = [out / f for f in FILES]
    try:
        atomic_save_model(model, files[0])
        atomic_write_text(files[1], format_graph(spec.graph, DEFAULT_OPS))
        atomic_write_text(files[2], summary_text(model))
        atomic_write_text(files[3], dump_spec(expanded_document(spec)))
    except OSError as e:  # disk full, folder removed or made read-only meanwhile
        raise SpecError.at(SourceLoc(str(e.filename or out)),
                           f"cannot write the compiled model: {e.strerror or e}",
                           hint="check the free space and permissions of the output "
                                "folder") from None
    return files
