"""RED-Net end to end on real faces: the CPU-sized rednet spec fits on HELEN 68-point
crops (7-point detection step + 68-map step, one weight set), saves, and `netspec eval`
of its model.keras agrees with the run's val_nme."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytestmark = [pytest.mark.keras, pytest.mark.slow]

SPEC = Path(__file__).resolve().parents[2] / "specs" / "rednet.yaml"

SMALL = ["size=64", "widths=[8, 16, 16, 32, 32]", "train.optimizer=adam",
         "train.learning_rate=0.003", "train.epochs=1", "train.steps_per_epoch=4",
         "train.batch_size=8", "data.limit=96", "data.val_split=16"]


def test_rednet_fits_and_evaluates_on_helen(tmp_path: Path, shared_data: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from netspec.cli import main

    helen = shared_data / "helen68"
    if not helen.is_dir():
        pytest.skip(f"HELEN 68-point faces not found at {helen}")
    run = tmp_path / "rednet"
    sets = [a for s in SMALL for a in ("--set", s)]
    assert main(["fit", str(SPEC), "-o", str(run), "--data", str(helen), *sets]) == 0
    (record,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert math.isfinite(record["val_detection_loss"]) and record["val_detection_loss"] > 0
    assert math.isfinite(record["val_heatmaps_loss"])
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 16 and result["nme"] == pytest.approx(record["val_nme"], rel=1e-5)
