"""RED-Net ablations on YouTube-Faces clips, one fixed CPU budget, people held out.

Every variant is `specs/rednet_video.yaml` at a CPU size, trained on the same clips with
the same validation people held out (clip specs split by person) for the same number of
epochs and steps, then scored by `netspec eval` (NME / inter-ocular, FR@0.10, temporal
jitter). The image-model variants are the video spec without its LSTM
(`temporal=false`), which is the rednet.yaml network run on each frame:

    one-shot     temporal=false steps=1
    recurrent    temporal=false steps=2 (one weight set)
    cascade      temporal=false share_steps=false
    + temporal   steps=2 with the LSTM on the pose/expression features
    + identity   + temporal, and the identity head (cross-entropy over training people)

The recurrent variant is also trained with other seeds: the spread of those runs is the
run-to-run noise that the differences are compared with.

    python bench/rednet_ytf.py --out DIR [--epochs 2] [--steps 60] [--seeds 2]

A rerun with the same --out resumes finished runs instead of training them again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import statistics
import time

from netspec_cli import SHARED, netspec  # noqa: E402 - bench/ is on sys.path

SPEC = "specs/rednet_video.yaml"
CPU_SIZE = ["size=64", "widths=[8, 16, 16, 32, 32]", "id_channels=16", "lstm_units=16",
            "train.optimizer=adam", "train.learning_rate=0.002"]
VARIANTS = {
    "one-shot": ["temporal=false", "steps=1"],
    "recurrent": ["temporal=false", "steps=2"],
    "cascade": ["temporal=false", "share_steps=false"],
    "+ temporal": ["temporal=true", "steps=2"],
    "+ identity": ["temporal=true", "steps=2", "identity=true"],  # 224 training people
}


def train_and_score(run: Path, sets: list[str], data: Path) -> dict:
    """Fit (or resume) one variant, then eval its best model on the held-out people."""
    flags = [a for s in sets for a in ("--set", s)]
    state = run / "state.json"
    done = state.is_file() and json.loads(state.read_text()).get("stopped") == "completed"
    t0 = time.perf_counter()
    if not done:
        netspec(["fit", SPEC, "-o", str(run), "--data", str(data), *flags,
                 *(["--resume"] if state.is_file() else [])])
    seconds = time.perf_counter() - t0
    out = netspec(["eval", str(run), "--json"])
    result = json.loads(out.strip().splitlines()[-1])
    result["seconds"] = seconds
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="work folder (resumable)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs per variant")
    ap.add_argument("--steps", type=int, default=60, help="steps per epoch (batch 5 clips)")
    ap.add_argument("--seeds", type=int, default=2, help="seeds of the recurrent variant")
    args = ap.parse_args()
    data = SHARED / "ytf68"
    if not (data / "frames.csv").is_file():
        raise SystemExit(f"YouTube-Faces frames not found under {SHARED} "
                         "(set NETSPEC_SHARED_DATA)")
    budget = [f"train.epochs={args.epochs}", f"train.steps_per_epoch={args.steps}"]
    rows: dict[str, dict] = {}
    t0 = time.perf_counter()
    for name, sets in VARIANTS.items():
        run = args.out / name.replace("+ ", "plus_").replace("-", "_")
        rows[name] = train_and_score(run, [*CPU_SIZE, *budget, *sets, "train.seed=0"], data)
    spread = [rows["recurrent"]["nme"]]
    for seed in range(1, args.seeds):
        run = args.out / f"recurrent_seed{seed}"
        spread.append(train_and_score(run, [*CPU_SIZE, *budget, *VARIANTS["recurrent"],
                                            f"train.seed={seed}"], data)["nme"])
    wall = time.perf_counter() - t0

    first = next(iter(rows.values()))
    print(f"RED-Net on YouTube-Faces clips: {first['n']} held-out frames "
          f"({first['data']}, split {first['split']}); {args.epochs} epochs x {args.steps} "
          f"steps of 5 clips per variant; 64 px CPU-sized network; wall {wall:.0f} s")
    print(f"{'variant':<12} {'NME':>8} {'FR@0.10':>8} {'clip NME':>9} {'jitter':>8} "
          f"{'train s':>8}")
    for name, r in rows.items():
        v = r.get("video", {})
        print(f"{name:<12} {100 * r['nme']:7.2f}% {100 * r['fr_010']:7.2f}% "
              f"{100 * v.get('clip_nme_mean', float('nan')):8.2f}% "
              f"{100 * v.get('jitter', float('nan')):7.2f}% {r['seconds']:8.0f}")
    if len(spread) > 1:
        sd = statistics.stdev(spread)
        print(f"run-to-run spread (recurrent, {len(spread)} seeds): NME "
              + ", ".join(f"{100 * x:.2f}%" for x in spread) + f"; sd {100 * sd:.2f} points")
        base = rows["recurrent"]["nme"]
        for name, r in rows.items():
            if name != "recurrent":
                gap = r["nme"] - base
                verdict = "larger than" if abs(gap) > 2 * sd else "within"
                print(f"  {name} vs recurrent: {100 * gap:+.2f} points, {verdict} 2 sd")


if __name__ == "__main__":
    main()
