"""LGCN on HELEN (68 points) for a fixed CPU budget: NME with / without the PCA shape
model and with / without the kernel convolution, RCN-300W on the same split, and the
detection-less two-face check end to end.

The budget is shared out by wall clock through `train.max_minutes`: lgcn and its
`kernel_conv=false` ablation get `--lgcn-share` each, rcn_300w the rest (skipped with
`--no-rcn`). Every run holds out the same last 10 % of the HELEN rows (`data.val_split:
0.1`) and is scored there with `netspec eval`'s code (`runtime.evaluate.score_run.evaluate_run`,
split val; NME / inter-ocular). On a CPU the network is narrowed and run at 48 px by
default (`--size`, `--filters`, `--local-depth`, `--local-wide`, `--global-depth`; the
paper: 96, 128, 15, 5, 7), trained with Adam (the paper's momentum SGD needs far more
epochs than a CPU budget allows). Afterwards two validation faces at a time are put side by side
(256 x 512) and `runtime.predict.multiface` must find both without a face detector.

    python bench/lgcn_helen.py [--minutes 20] [--out runs/bench_lgcn] [--no-rcn]
                               [--size 48] [--filters 16] [--set K=V ...]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import sys
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("NETSPEC_SHARED_DATA", REPO.parent / "shared" / "data"))

import numpy as np  # noqa: E402

from compiler.api import load_spec  # noqa: E402

KEYS = ("nme", "fr_008", "fr_010", "auc_008")
MATCH_NME = 0.2  # a detection within 20 % inter-ocular NME of a true face is that face


def lgcn_overrides(args: argparse.Namespace) -> list[str]:
    """The CPU-sized LGCN: resolution, width, depth, kernel and dilation scaled together."""
    ratio = args.size / 96
    kernel = max(3, int(round(45 * ratio)) | 1)
    return [f"size={args.size}", f"filters={args.filters}", f"local_depth={args.local_depth}",
            f"local_wide={min(args.local_wide, args.local_depth)}",
            f"global_depth={args.global_depth}",
            f"kernel_size={kernel}", f"dilation={max(1, int(round(4 * ratio)))}",
            "train.optimizer=adam", f"train.learning_rate={args.lr}", "train.schedule=constant",
            "train.clipnorm=10.0", "train.clipvalue=null"]


def common_overrides(args: argparse.Namespace, minutes: float) -> list[str]:
    return [f"train.max_minutes={minutes:.2f}", "train.epochs=10000",
            f"train.steps_per_epoch={args.steps_per_epoch}", f"train.batch_size={args.batch}",
            "train.val_examples=null", "data.val_split=0.1", *args.overrides]


def run(name: str, spec_file: str, overrides: list[str], args: argparse.Namespace,
        shape_model: bool) -> dict[str, Any]:
    from runtime.evaluate.score_run import evaluate_run
    from runtime.train.fit import fit_spec

    out = Path(args.out) / name
    spec = load_spec(REPO / spec_file, overrides)
    print(f"\n== {name}: {spec_file} {' '.join(overrides)}", flush=True)
    t0 = time.time()
    fit = fit_spec(spec, out, data=args.data, overrides=overrides, explicit_dir=False,
                   quiet=True)
    train_s = time.time() - t0
    res = evaluate_run(fit.run_dir, data=args.data, split_name="val", shape_model=shape_model)
    row = {"run": str(fit.run_dir), "epochs": fit.epochs_done, "train_s": round(train_s),
           "best_epoch": fit.best_epoch, **{k: res[k] for k in (*KEYS, "n")}}
    if "shape_model" in res:
        row["pca"] = {k: res["shape_model"][k] for k in KEYS}
    return row


def two_face_check(run_dir: Path, args: argparse.Namespace, pairs: int, first: int = 0
                   ) -> dict[str, Any]:
    """Pairs of validation faces side by side (faces 2i and 2i + 1 for i = first, ...):
    faces found and their NME (inter-ocular)."""
    from PIL import Image

    from runtime.datasets import load_faces, spec_data_config, split
    from runtime.predict.multiface import (
        DetectOptions,
        detect_face_records,
        keras_predictor,
        spec_face_size,
    )
    from runtime.run_dir import load_run
    from runtime.shapes.shape_model import ShapeModel

    spec, model = load_run(run_dir)
    shape = ShapeModel.load(run_dir / "shape_model.npz")
    dcfg = spec_data_config(spec, args.data)
    val = split(load_faces(spec, dcfg), dcfg)[1]
    predict = keras_predictor(model, spec)
    opts = DetectOptions(threshold=args.threshold, min_side=dcfg.size)
    found, errors, exact = [], [], 0
    for i in range(first, min(first + pairs, len(val) // 2)):
        a, b = 2 * i, 2 * i + 1
        imgs = [np.asarray(Image.open(val.paths[j]).convert("RGB"), np.float32) for j in (a, b)]
        if imgs[0].shape[0] != imgs[1].shape[0]:
            continue
        image = np.concatenate(imgs, axis=1)
        truth = [val.landmarks[a], val.landmarks[b] + [imgs[0].shape[1], 0]]
        faces = detect_face_records(model, spec, image, shape, opts, predict,
                                    spec_face_size(spec))
        found.append(len(faces))
        pair = []
        for t in truth:
            iod = np.linalg.norm(t[36] - t[45])
            errs = [np.linalg.norm(f.points - t, axis=1).mean() / iod for f in faces]
            pair.append(float(min(errs)) if errs else float("nan"))
        errors += pair
        exact += int(len(faces) == 2 and all(e < MATCH_NME for e in pair))
    return {"pairs": len(found), "faces_found": found,
            "both_found": int(sum(n == 2 for n in found)), "exactly_two": exact,
            "nme_of_true_faces": [round(e, 4) for e in errors]}


def add_network_args(p: argparse.ArgumentParser, *, steps_per_epoch: int) -> None:
    """Data, the CPU-sized LGCN, its training and the multi-face threshold (the options
    `lgcn_overrides`, `common_overrides` and `two_face_check` read)."""
    p.add_argument("--data", default=str(SHARED / "helen68"))
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--filters", type=int, default=16)
    p.add_argument("--local-depth", type=int, default=6)
    p.add_argument("--local-wide", type=int, default=2,
                   help="leading 5x5 local convs (the paper: 5; 3x3 after them)")
    p.add_argument("--global-depth", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps-per-epoch", type=int, default=steps_per_epoch,
                   help="short epochs, so the best validation model is picked often")
    p.add_argument("--threshold", type=float, default=0.25, help="multi-face peak threshold")
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   help="extra override for every run")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=20.0, help="total wall-clock budget")
    p.add_argument("--lgcn-share", type=float, default=0.4,
                   help="fraction of the budget for each LGCN training (the rest: rcn_300w)")
    p.add_argument("--no-rcn", action="store_true", help="skip the rcn_300w comparison")
    p.add_argument("--out", default="runs/bench_lgcn")
    p.add_argument("--pairs", type=int, default=10, help="two-face images to check")
    add_network_args(p, steps_per_epoch=12)
    args = p.parse_args()
    if not Path(args.data).is_dir():
        print(f"HELEN not found at {args.data} (set NETSPEC_SHARED_DATA or --data)")
        return 2
    share = args.minutes * args.lgcn_share * 0.85  # leave time for validation and eval
    rows: dict[str, Any] = {}
    lgcn = lgcn_overrides(args)
    rows["lgcn"] = run("lgcn", "specs/lgcn.yaml", [*lgcn, *common_overrides(args, share)],
                       args, shape_model=True)
    rows["lgcn_no_kernel_conv"] = run(
        "lgcn_nokconv", "specs/lgcn.yaml",
        [*lgcn, "kernel_conv=false", *common_overrides(args, share)], args, shape_model=True)
    if not args.no_rcn:
        rest = max(args.minutes * (1 - 2 * args.lgcn_share) * 0.85, 0.5)
        rows["rcn_300w"] = run("rcn_300w", "specs/rcn_300w.yaml",
                               common_overrides(args, rest), args, shape_model=False)
    rows["two_faces"] = two_face_check(Path(rows["lgcn"]["run"]), args, args.pairs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows, indent=1))

    print(f"\nHELEN validation (last 10 %), NME / inter-ocular, budget {args.minutes} min "
          f"(LGCN {args.size} px, {args.filters} filters, depth {args.local_depth}+"
          f"{args.global_depth})")
    print(f"{'run':22s} {'epochs':>6s} {'train s':>7s} {'NME %':>7s} {'FR@.08':>7s} "
          f"{'+PCA NME %':>10s} {'+PCA FR@.08':>11s}")
    for name in ("lgcn", "lgcn_no_kernel_conv", "rcn_300w"):
        r = rows.get(name)
        if r is None:
            continue
        pca = r.get("pca")
        extra = (f"{100 * pca['nme']:10.2f} {100 * pca['fr_008']:11.2f}" if pca
                 else f"{'-':>10s} {'-':>11s}")
        print(f"{name:22s} {r['epochs']:6d} {r['train_s']:7d} {100 * r['nme']:7.2f} "
              f"{100 * r['fr_008']:7.2f} {extra}")
    tf_ = rows["two_faces"]
    print(f"two faces side by side: both found in {tf_['both_found']} of {tf_['pairs']} "
          f"images (faces found per image {tf_['faces_found']}); NME of each true face's "
          f"nearest detection {tf_['nme_of_true_faces']}")
    print(f"results: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
