"""RED-Net end to end on real faces: the CPU-sized rednet spec fits on HELEN 68-point
crops (7-point detection step + 68-map step, one weight set), saves, and `netspec eval`
of its model.keras agrees with the run's val_nme; then the paper's staged training: the
video spec warm-starts from that run and fits on YouTube-Faces clips."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytestmark = [pytest.mark.keras, pytest.mark.slow]

SPEC = Path(__file__).resolve().parents[2] / "specs" / "rednet.yaml"
VIDEO = SPEC.with_name("rednet_video.yaml")

SMALL = ["size=64", "widths=[8, 16, 16, 32, 32]", "train.optimizer=adam",
         "train.learning_rate=0.003", "train.epochs=1", "train.steps_per_epoch=4",
         "train.batch_size=8", "data.limit=96", "data.val_split=16"]


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    from netspec.cli import main

    helen = shared_data / "helen68"
    if not helen.is_dir():
        pytest.skip(f"HELEN 68-point faces not found at {helen}")
    run = tmp_path_factory.mktemp("rednet") / "image"
    sets = [a for s in SMALL for a in ("--set", s)]
    assert main(["fit", str(SPEC), "-o", str(run), "--data", str(helen), *sets]) == 0
    return run


def test_the_video_model_warm_starts_from_the_image_run(
        image_run: Path, shared_data: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    from netspec.cli import main

    ytf = shared_data / "ytf68"
    if not (ytf / "frames.csv").is_file():
        pytest.skip(f"YouTube-Faces frames not found at {ytf}")
    sets = [*SMALL, "id_channels=16", "lstm_units=16", "data.limit=20", "data.val_split=0.25",
            "train.batch_size=5", f"train.init_from={image_run}", "train.init_partial=true"]
    capsys.readouterr()
    run = tmp_path / "video"
    assert main(["fit", str(VIDEO), "-o", str(run), "--data", str(ytf),
                 *[a for s in sets for a in ("--set", s)]]) == 0
    err = capsys.readouterr().err
    # every layer but the temporal part comes from the image run
    assert f"initial weights: 50 layer(s) from {image_run}" in err
    assert "are not in" in err and "rec.s1.pe_lstm, rec.s1.pe_new" in err
    (record,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert math.isfinite(record["val_nme"])


def test_rednet_fits_and_evaluates_on_helen(image_run: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from netspec.cli import main

    run = image_run
    (record,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert math.isfinite(record["val_detection_loss"]) and record["val_detection_loss"] > 0
    assert math.isfinite(record["val_heatmaps_loss"])
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 16 and result["nme"] == pytest.approx(record["val_nme"], rel=1e-5)
