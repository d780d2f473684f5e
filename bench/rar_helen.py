"""RAR ablations on HELEN (68 points, 80x80 gray), one fixed CPU budget per variant.

Every variant is `specs/rar.yaml` trained from scratch on the same HELEN rows with the same
validation faces held out (the last data.val_split rows) for the same number of epochs
and steps, then scored by `netspec eval` on the final shape (NME / inter-ocular, FR@0.10,
AUC@0.08):

    conv8            steps=0 robust_init=false   S_d, the maxima of the conv8 maps
    robust init      steps=0                     T = 0: the robust initial shape S_0
    1 step, learned  steps=1                     one refinement step
    T, learned       attention=learned           REINFORCE attention (the spec's default)
    T, surrogate     attention=surrogate         attend to the largest-error landmark
    T, no attention  attention=none              uniform Gamma
    T, S_d as S_0    robust_init=false           refinement from the detected shape

    python bench/rar_helen.py --out DIR [--epochs 6] [--steps 49] [--steps-t 3]

A rerun with the same --out reuses finished runs instead of training them again.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import time

from netspec_cli import SHARED, netspec  # noqa: E402 - bench/ is on sys.path

SPEC = "specs/rar.yaml"
VARIANTS = {
    "conv8": ["steps=0", "robust_init=false"],
    "robust init": ["steps=0"],
    "1 step, learned": ["attention=learned", "steps=1"],
    "T, learned": ["attention=learned"],
    "T, surrogate": ["attention=surrogate"],
    "T, no attention": ["attention=none"],
    "T, S_d as S_0": ["robust_init=false"],
}
SPREAD = ("robust init", "T, learned")  # retrained with other seeds: the run-to-run spread


def train_and_score(run: Path, sets: list[str], data: Path) -> dict:
    """Fit one variant (unless RUN already finished), then eval it on the held-out faces."""
    flags = [a for s in sets for a in ("--set", s)]
    state = run / "state.json"
    t0 = time.perf_counter()
    if not (state.is_file() and (run / "model.keras").is_file()):
        if run.exists():
            raise SystemExit(f"{run} holds an unfinished run: remove it or use another --out")
        netspec(["fit", SPEC, "-o", str(run), "--data", str(data), *flags])
    seconds = time.perf_counter() - t0
    result = json.loads(netspec(["eval", str(run), "--json"]).strip().splitlines()[-1])
    result["seconds"] = seconds
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="work folder (reused on a rerun)")
    ap.add_argument("--epochs", type=int, default=6, help="epochs per variant")
    ap.add_argument("--steps", type=int, default=49, help="steps per epoch (batch 16; 49 = "
                                                          "every training face once)")
    ap.add_argument("--steps-t", type=int, default=3, help="T, the refinement steps")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N rows (0: all)")
    ap.add_argument("--seeds", type=int, default=2, help="seeds of the 'robust init' and "
                                                         "'T, learned' variants (spread)")
    args = ap.parse_args()
    data = SHARED / "helen68"
    if not data.is_dir():
        raise SystemExit(f"HELEN 68-point faces not found under {SHARED} "
                         "(set NETSPEC_SHARED_DATA)")
    budget = [f"train.epochs={args.epochs}", f"train.steps_per_epoch={args.steps}",
              f"steps={args.steps_t}",
              *([f"data.limit={args.limit}"] if args.limit else [])]
    rows: dict[str, dict] = {}
    t0 = time.perf_counter()
    for name, sets in VARIANTS.items():
        slug = name.lower().replace(", ", "_").replace(" ", "_").replace("s_d_as_s_0", "sd_init")
        rows[name] = train_and_score(args.out / slug, [*budget, *sets, "train.seed=0"], data)
    spread: dict[str, list[float]] = {name: [rows[name]["nme"]] for name in SPREAD}
    for name in SPREAD:
        slug = name.lower().replace(", ", "_").replace(" ", "_")
        for seed in range(1, args.seeds):
            run = args.out / f"{slug}_seed{seed}"
            spread[name].append(train_and_score(
                run, [*budget, *VARIANTS[name], f"train.seed={seed}", f"data.seed={seed}"],
                data)["nme"])
    wall = time.perf_counter() - t0

    first = next(iter(rows.values()))
    print(f"RAR on HELEN: {first['n']} held-out faces ({first['data']}, split "
          f"{first['split']}); {args.epochs} epochs x {args.steps} steps of 16 faces per "
          f"variant, T = {args.steps_t}; spec defaults (80 px, widths [16, 32, 64]); wall "
          f"{wall:.0f} s")
    print(f"{'variant':<16} {'NME':>8} {'FR@0.10':>8} {'AUC@0.08':>9} {'train s':>8}")
    for name, r in rows.items():
        print(f"{name:<16} {100 * r['nme']:7.2f}% {100 * r['fr_010']:7.2f}% "
              f"{100 * r['auc_008']:8.2f}% {r['seconds']:8.0f}")
    for name, nmes in spread.items():
        if len(nmes) > 1:
            print(f"seed-to-seed ({name}, {len(nmes)} seeds): NME "
                  + ", ".join(f"{100 * x:.2f}%" for x in nmes)
                  + f"; range {100 * (max(nmes) - min(nmes)):.2f} points")


if __name__ == "__main__":
    main()
