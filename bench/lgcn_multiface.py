"""Detector-free multi-face LGCN (paper section 4.3) on HELEN for a fixed CPU budget.

Trains the CPU-sized LGCN of `lgcn_helen.py` the way the paper trains its multi-face
network: with background crops in every batch (`data.negatives`; the paper added 30,000
IJB-B non-face images, here squares of the training images clear of the face, plus
zoomed-in face parts so a face seen at a too-fine pyramid level stays silent) and a
scale jitter wide enough to cover one pyramid octave. Then pairs of held-out HELEN faces
are put side by side (256 x 512) and `predict --multi-face`'s code must find both faces
and nothing else, with no face detector. Prints faces found per image, the count of
images with exactly the two true faces, and each true face's NME (inter-ocular).

    python bench/lgcn_multiface.py [--minutes 40] [--pairs 20] [--out runs/bench_multiface]
                                   [--no-negatives] [--scale 0.35] [--set K=V ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

from lgcn_helen import (
    add_network_args,
    common_overrides,
    lgcn_overrides,
    run,
    two_face_check,
)
import numpy as np


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=40.0, help="training budget")
    p.add_argument("--out", default="runs/bench_multiface")
    add_network_args(p, steps_per_epoch=24)
    p.add_argument("--scale", type=float, default=0.35,
                   help="scale jitter U[1-s, 1+s]: ~0.35 covers the pyramid's octave")
    p.add_argument("--negatives", default="{fraction: 0.25, min_scale: 0.5, max_scale: 3.0, "
                                          "face_parts: 0.5}",
                   help="data.negatives mapping (YAML)")
    p.add_argument("--no-negatives", action="store_true", help="train on faces only")
    p.add_argument("--pairs", type=int, default=20, help="two-face images to check")
    p.add_argument("--first-pair", type=int, default=0,
                   help="start at validation faces 2k, 2k+1 (e.g. 20: past the pairs "
                        "DetectOptions' defaults were set on)")
    p.add_argument("--run", help="skip training: check this finished run directory")
    args = p.parse_args()
    if not Path(args.data).is_dir():
        print(f"HELEN not found at {args.data} (set NETSPEC_SHARED_DATA or --data)")
        return 2
    row = {}
    if args.run:
        run_dir = Path(args.run)
    else:
        extra = [f"data.augment.scale={args.scale}"]
        if not args.no_negatives:
            extra.append(f"data.negatives={args.negatives}")
        args.overrides = [*extra, *args.overrides]
        row = run("lgcn_multiface", "specs/lgcn.yaml",
                  [*lgcn_overrides(args), *common_overrides(args, args.minutes * 0.9)], args,
                  shape_model=True)
        run_dir = Path(row["run"])
    check = two_face_check(run_dir, args, args.pairs, args.first_pair)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"fit": row, "two_faces": check}, indent=1))
    if row:
        pca = row.get("pca", {})
        print(f"\nsingle-face validation NME {100 * row['nme']:.2f} % "
              f"(+PCA {100 * pca.get('nme', float('nan')):.2f} %), {row['epochs']} epochs")
    nme = np.asarray(check["nme_of_true_faces"], float)
    found = np.isfinite(nme) & (nme < 0.2)
    print(f"two faces side by side ({check['pairs']} images): exactly both true faces in "
          f"{check['exactly_two']} images; faces found per image {check['faces_found']}; "
          f"true faces found (NME < 20 %) {int(found.sum())} of {nme.size}, their median "
          f"NME {100 * np.median(nme[found]) if found.any() else float('nan'):.2f} %")
    print(f"results: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
