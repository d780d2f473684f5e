"""RCN-300W vs its denoising keypoint model alone vs the joint model, on HELEN, one budget.

Per seed: RCN-300W (`specs/rcn_300w.yaml`) and the denoiser (`specs/rcn_denoise.yaml`,
trained on the training shapes alone) each get the same wall-clock budget on the same
split (HELEN's last 10 % held out); then `specs/rcn_300w_joint.yaml` loads both frozen
runs three times, scoring what RCN section 4 compares:

    RCN          softmax(RCN logits)                        combine=rcn
    denoiser     softmax(denoiser logits on RCN's argmax)   combine=denoiser
    joint        softmax(RCN logits + denoiser logits)      combine=sum

plus the denoiser on its own task (35 of 68 keypoints thrown anywhere; NME over all 68).
The spread over seeds is the run-to-run noise the differences are compared with.
Figures are validation NME / inter-ocular (outer eye corners), FR@0.08/0.10 and AUC@0.08
from `netspec eval`.

    python bench/denoise_helen.py --out DIR [--rcn-minutes 8] [--den-minutes 4] [--seeds 2]

A rerun with the same --out keeps finished runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import statistics

from netspec_cli import SHARED, netspec  # noqa: E402 - bench/ is on sys.path

KEYS = ("nme", "fr_008", "fr_010", "auc_008")


def fit(spec: str, run: Path, data: Path, sets: list[str]) -> None:
    if (run / "model.keras").is_file():
        return
    flags = [a for s in sets for a in ("--set", s)]
    netspec(["fit", spec, "-o", str(run), "--data", str(data), *flags])


def score(run: Path) -> dict:
    return json.loads(netspec(["eval", str(run), "--json"]).strip().splitlines()[-1])


def widths(rcn: int, den: int, den_map: int) -> list[str]:
    w = "[" + ",".join([str(rcn)] * 7) + "]"
    return [f"enc_filters={w}", f"conv1_filters={w}", f"conv2_filters={w}",
            f"extra_fine_filters={rcn}", f"den_width={den}", f"den_map={den_map}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="work folder (resumable)")
    ap.add_argument("--rcn-minutes", type=float, default=8.0, help="RCN-300W budget per seed")
    ap.add_argument("--den-minutes", type=float, default=4.0, help="denoiser budget per seed")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--rcn-width", type=int, default=32, help="RCN channels (paper: 64)")
    ap.add_argument("--den-width", type=int, default=32, help="denoiser channels (paper: 64)")
    ap.add_argument("--den-map", type=int, default=20, help="denoiser map side (code: 80)")
    args = ap.parse_args()
    data = SHARED / "helen68"
    if not data.is_dir():
        raise SystemExit(f"no HELEN at {data}; set NETSPEC_SHARED_DATA")
    size = widths(args.rcn_width, args.den_width, args.den_map)
    rcn_sets = [s for s in size if not s.startswith("den_")]
    rows: dict[str, list[dict]] = {}
    for seed in range(args.seeds):
        root = args.out / f"seed{seed}"
        seeded = [f"train.seed={seed}", f"data.seed={seed}", "train.epochs=10000"]
        rcn, den = root / "rcn_300w", root / "rcn_denoise"
        fit("specs/rcn_300w.yaml", rcn, data,
            [*rcn_sets, *seeded, f"train.max_minutes={args.rcn_minutes}"])
        fit("specs/rcn_denoise.yaml", den, data,
            [*size, *seeded, f"train.max_minutes={args.den_minutes}"])
        rows.setdefault("denoiser, own task (35 of 68 thrown)", []).append(score(den))
        for label, combine in (("RCN", "rcn"), ("denoiser on RCN's points", "denoiser"),
                               ("joint (RCN + denoiser)", "sum")):
            run = root / f"joint_{combine}"
            fit("specs/rcn_300w_joint.yaml", run, data,
                [*size, f"rcn_run={rcn}", f"denoiser_run={den}", f"combine={combine}",
                 "train.epochs=1", "train.steps_per_epoch=1"])
            rows.setdefault(label, []).append(score(run))
    print(f"\nHELEN 68-point, validation = last 10 % ({rows['RCN'][0]['n']} faces); "
          f"RCN {args.rcn_width} ch / {args.rcn_minutes} min, denoiser {args.den_width} ch "
          f"at {args.den_map}x{args.den_map} / {args.den_minutes} min; {args.seeds} seed(s); "
          "mean (min-max over seeds)")
    print(f"| model | {' | '.join(KEYS)} |\n|---|{'---|' * len(KEYS)}")
    for label, results in rows.items():
        cells = []
        for k in KEYS:
            vals = [r[k] * 100 for r in results]
            spread = f" ({min(vals):.2f}-{max(vals):.2f})" if len(vals) > 1 else ""
            cells.append(f"{statistics.mean(vals):.2f}{spread}")
        print(f"| {label} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
