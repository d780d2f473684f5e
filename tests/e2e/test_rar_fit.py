"""RAR end to end on real faces: a CPU-tiny specs/rar.yaml (robust initial shape from the
training shapes, 2 attentive refinement steps) fits on HELEN 68-point crops with a
validation split held out, and `netspec eval` of its model.keras scores the final shape
S_T with the run's own val_nme."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytestmark = [pytest.mark.keras, pytest.mark.slow]

SPEC = Path(__file__).resolve().parents[2] / "specs" / "rar.yaml"
TINY = ["widths=[8, 16]", "convs=[1, 1]", "deconv_width=8", "sip_width=8", "a_units=16",
        "r_units=32", "steps=2", "train.epochs=1", "train.steps_per_epoch=2",
        "train.batch_size=8", "data.limit=32", "data.val_split=8"]


def test_rar_fits_and_evaluates_on_helen(shared_data: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from netspec.cli import main

    helen = shared_data / "helen68"
    if not helen.is_dir():
        pytest.skip(f"HELEN 68-point faces not found at {helen}")
    run = tmp_path / "rar"
    sets = [a for s in TINY for a in ("--set", s)]
    assert main(["fit", str(SPEC), "-o", str(run), "--data", str(helen), *sets]) == 0
    err = capsys.readouterr().err
    # the robust initial shape's templates come from the 32 training faces only
    assert "representative shapes from 32 training shapes" in err
    (record,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for key in ("val_heatmaps_loss", "val_refine_loss", "val_attention_loss", "val_nme"):
        assert math.isfinite(record[key]), key
    assert record["val_refine_loss"] > 0
    assert main(["eval", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 8 and result["split"] == "val"
    assert result["nme"] == pytest.approx(record["val_nme"], rel=1e-5)
    assert {"fr_008", "fr_010", "auc_008", "auc_010"} <= set(result)
