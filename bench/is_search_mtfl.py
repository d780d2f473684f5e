"""The paper's Information-Synthesis search on MTFL, with the baselines it is judged by.

Runs `netspec search specs/is_net.yaml` with the paper's design (15 random feasible
initial trials, per-variable quadratic, beta2 + beta3 + beta4 <= 1) plus the spec's
noise replicates, each trial training `--epochs` epochs on a subset of the shared
MTFL faces (a list file of paths: nothing is copied). Then trains, for the same
budget and seed, the plain CNN `specs/is_cnn_baseline.yaml` and is_net at the paper's
beta* = (0.4014, 0, 0.5986). Prints report.txt, the noise estimate, beta_hat, the
best measured beta and the three-way comparison.

    python bench/is_search_mtfl.py --out DIR [--faces 3500] [--val 500] [--epochs 8]
                                   [--max-trials 25] [--replicates 3] [--phi-noise 1.0]

Rerunning the same command resumes: finished trials and runs are not trained again.
On the shared 2-core dev box one 3000-face epoch of is_net takes about 8 s.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import time

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NETSPEC_SHARED_DATA", REPO.parent / "shared" / "data"))
PAPER_BETA = {"beta2": 0.4014, "beta3": 0.0, "beta4": 0.5986}
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
sys.path.insert(0, str(REPO / "bench"))
from search_mtfl import subset  # noqa: E402 - the same MTFL list file as search_mtfl.py


def netspec(args: list[str]) -> float:
    """Run a netspec command, echoing its progress lines; returns its wall time."""
    cmd = [sys.executable, "-m", "netspec", *args]
    print(f"\n$ {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    with subprocess.Popen(cmd, cwd=REPO, env=ENV, stderr=subprocess.PIPE, text=True) as proc:
        for line in proc.stderr or ():
            if not line.startswith(("WARNING: All log", "I0000")):
                print(line, end="", flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"netspec {args[0]} failed with exit code {proc.returncode}")
    return time.perf_counter() - t0


def best_of(run: Path) -> dict[str, float]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x]
    best = min(rows, key=lambda r: r["val_loss"])
    return {"val_loss": best["val_loss"], "val_nme": best["val_nme"], "epoch": best["epoch"],
            "epochs": len(rows)}


def fmt(beta: dict[str, float]) -> str:
    return "(" + ", ".join(f"{beta[k]:.4f}" for k in ("beta2", "beta3", "beta4")) + ")"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="work folder (resumable)")
    ap.add_argument("--faces", type=int, default=3500, help="MTFL rows read by each run")
    ap.add_argument("--val", type=int, default=500, help="of which held out for validation")
    ap.add_argument("--epochs", type=int, default=8, help="epochs per trial and baseline")
    ap.add_argument("--max-trials", type=int, default=25, help="trial budget in all")
    ap.add_argument("--replicates", type=int, default=3, help="noise replicates of trial 1")
    ap.add_argument("--phi-noise", type=float, default=1.0, help="phi = this x noise sd")
    args = ap.parse_args()
    if not (SHARED / "mtfl" / "train.txt").is_file():
        raise SystemExit(f"MTFL not found under {SHARED} (set NETSPEC_SHARED_DATA)")
    work = args.out.resolve()
    work.mkdir(parents=True, exist_ok=True)
    faces = subset(args.faces, work)
    data = ["--data", str(faces), "--format", "mtfl", "--set", f"data.val_split={args.val}"]
    t0 = time.perf_counter()
    study = work / "study"
    netspec(["search", "specs/is_net.yaml", "-o", str(study), *data,
             "--set", f"search.trial.epochs={args.epochs}",
             "--set", f"search.max_trials={args.max_trials}",
             "--set", f"search.noise.replicates={args.replicates}",
             "--set", f"search.phi={{noise: {args.phi_noise}}}"])
    budget = ["--set", f"train.epochs={args.epochs}", "--set", "train.seed=0"]
    for spec, name in (("specs/is_cnn_baseline.yaml", "baseline"), ("specs/is_net.yaml",
                                                                     "paper_beta")):
        run = work / name
        again = ["--resume"] if (run / "state.json").exists() else []  # a rerun resumes
        netspec(["fit", spec, "-o", str(run), *data, *budget, *again])
    wall = time.perf_counter() - t0

    report = (study / "report.txt").read_text()
    records = [json.loads(x) for x in (study / "study.jsonl").read_text().splitlines() if x]
    last = {r["trial"]: r for r in records}
    ok = [r for r in last.values() if r["status"] == "ok"]
    best = min(ok, key=lambda r: r["objective"])
    prop = next((r for r in sorted(last.values(), key=lambda r: -r["trial"])
                 if r["kind"] == "proposal"), None)
    base, paper = best_of(work / "baseline"), best_of(work / "paper_beta")
    print("\n===== report.txt =====\n" + report)
    print("===== summary =====")
    print(f"data: {args.faces - args.val} train / {args.val} val MTFL faces; {args.epochs} "
          f"epochs per run; {len(last)} search trials; wall {wall:.0f} s "
          f"(sum of trial times {sum(r['seconds'] for r in last.values()):.0f} s)")
    noise = next((x for x in report.splitlines() if x.startswith("noise: ")), "noise: -")
    print(noise)
    if prop is not None:
        print(f"beta_hat (trial {prop['trial']}) = {fmt(prop['point'])}: f_hat_min "
              f"{prop['predicted']:.5g}, measured val_loss {prop['objective']:.5g}, "
              f"val_nme {100 * prop['metrics']['val_nme']:.2f} %")
    print(f"best measured (trial {best['trial']}, {best['kind']}) = {fmt(best['point'])}: "
          f"val_loss {best['objective']:.5g}, val_nme {100 * best['metrics']['val_nme']:.2f} %")
    print(f"paper beta* = {fmt(PAPER_BETA)} trained for the same budget: val_loss "
          f"{paper['val_loss']:.5g}, val_nme {100 * paper['val_nme']:.2f} %")
    print(f"plain CNN baseline (is_cnn_baseline), same budget: val_loss {base['val_loss']:.5g}, "
          f"val_nme {100 * base['val_nme']:.2f} %")
    print(f"plot: {study / 'surrogate.png'}")


if __name__ == "__main__":
    main()
