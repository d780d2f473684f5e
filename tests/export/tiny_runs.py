"""Tiny versions of every spec in specs/ (narrow widths by --set, the ops unchanged) and a
helper writing them as run folders, so exports are tested on each spec in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
_W7 = "[4,4,4,4,4,4,4]"
_RCN = [f"enc_filters={_W7}", f"conv1_filters={_W7}", f"conv2_filters={_W7}"]
_SUM = [f"enc_filters={_W7}", f"conv1_filters={_W7}"]
_IS = ["filters=[4,4,4,4]", "hidden=8"]
TINY: dict[str, list[str]] = {
    "rcn_4branch": _RCN, "rcn_5branch": _RCN, "rcn_6branch": _RCN, "rcn_7branch": _RCN,
    "rcn_6branch_skip": _RCN, "rcn_300w": [*_RCN, "extra_fine_filters=4"],
    "sumnet_4branch": _SUM, "sumnet_5branch": _SUM, "sumnet_6branch": _SUM,
    "sumnet_search": _SUM, "is_net": _IS, "is_cnn_baseline": _IS,
    "lgcn": ["filters=4", "local_depth=2", "global_depth=2", "size=48"],
    "rednet": ["size=32", "widths=[4,4,4,4,4]", "convs=[1,1,1,1,1]"],
    "rar": ["size=32", "widths=[4,4,4]", "convs=[1,1,1]", "deconv_width=4", "sip_width=4",
            "a_units=8", "r_units=8", "n_templates=3"],
}


def spec_names() -> list[str]:
    """Every runnable spec in specs/ (bases start with '_')."""
    return sorted(p.stem for p in (REPO / "specs").glob("*.yaml") if not p.stem.startswith("_"))


def write_run(name: str, run: Path, seed: int = 0, extra: tuple[str, ...] = ()) -> Path:
    """RUN/spec.resolved.yaml + RUN/model.keras of the tiny `name`, with seeded weights
    (non-zero heads, so outputs and their decoding are not degenerate)."""
    from compiler.api import expanded_document, load_spec
    from compiler.dump import dump_spec
    from compiler.lower_keras import lower_to_keras

    path = REPO / "specs" / f"{name}.yaml"
    if not path.is_file():  # a test spec beside this file (export_zoo)
        path = Path(__file__).with_name(f"{name}.yaml")
    spec = load_spec(path, [*TINY.get(name, []), *extra])
    run.mkdir(parents=True, exist_ok=True)
    (run / "spec.resolved.yaml").write_text(dump_spec(expanded_document(spec)))
    model = lower_to_keras(spec.graph)
    rng = np.random.default_rng(seed)
    model.set_weights([w if w.ndim < 2 else
                       rng.normal(0, 0.3, w.shape).astype(w.dtype) for w in model.get_weights()])
    model.save(run / "model.keras")
    return run
