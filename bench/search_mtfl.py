"""A real, small Information-Synthesis weight search on MTFL, and what parallel trials buy.

Runs `netspec search specs/is_net.yaml` twice on the same settings, each in a fresh
study directory: once with --workers 1 (trials in one process) and once with
--workers 2 (each trial in its own process, TF threads split between them). Prints
the trials, beta_hat, f_hat_min vs f_min, the wall time of each and the speed-up.
Trials read a subset list of the shared MTFL faces (paths only, nothing is copied)
so each trial does not decode all 10,000 images.

    python bench/search_mtfl.py [--faces 1200] [--val 200] [--epochs 1] [--initial 8]
                                [--max-trials 10] [--phi 0.002] [--workers 1,2] [--keep DIR]
                                [--executor local|ray] [--address HOST:PORT]

--executor ray runs the trials as Ray tasks: on the cluster at --address, or on a
head this script starts on 127.0.0.1 with every core (both searches share it, so Ray's
start-up is not in either wall time). Each trial reserves cores / workers CPUs
(search.resources.cpus), so one worker gets all the cores, as in the local executor.

Measured on the shared 2-core dev box while other jobs kept its load at 6-9: the
defaults took 19 min wall (10 min of CPU; workers 1: 634 s, workers 2: 493 s);
--faces 400 --val 100 --initial 4 --max-trials 5 took 7 min. On idle cores expect less.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
import contextlib
import json
import os
from pathlib import Path
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NETSPEC_SHARED_DATA", REPO.parent / "shared" / "data"))


def subset(n: int, out: Path) -> Path:
    """The first `n` MTFL rows as a list file with absolute image paths."""
    root = SHARED / "mtfl"
    rows = (root / "train.txt").read_text().splitlines()[:n]
    path = out / f"mtfl_{n}.txt"
    path.write_text("".join(f"{root / r.split()[0]} {' '.join(r.split()[1:])}\n"
                            for r in rows))
    return path


@contextlib.contextmanager
def ray_head(cores: int) -> Iterator[str]:
    """A Ray head on 127.0.0.1 with `cores` CPUs for the duration; yields its address.
    It uses Ray's token authentication with a fresh token, which the searches inherit."""
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
         "--node-ip-address=127.0.0.1", f"--port={port}", f"--num-cpus={cores}",
         "--include-dashboard=false", "--disable-usage-stats"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if head.poll() is not None:
                raise SystemExit("the Ray head did not start")
            time.sleep(0.3)
        yield f"127.0.0.1:{port}"
    finally:
        head.send_signal(signal.SIGTERM)
        head.wait(60)


def run(study: Path, faces: Path, sets: list[str], workers: int,
        ray_address: str | None = None) -> float:
    cmd = [sys.executable, "-m", "netspec", "search", "specs/is_net.yaml", "-o", str(study),
           "--data", str(faces), "--format", "mtfl", "--workers", str(workers)]
    if ray_address:
        cores = os.cpu_count() or 1
        cmd += ["--executor", "ray", "--address", ray_address,
                "--set", f"search.resources.cpus={max(1, cores // workers)}"]
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    print(f"\n$ {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    with subprocess.Popen(cmd, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True) as proc:
        for line in proc.stderr or ():  # the search's progress lines, as they come
            if not line.startswith(("WARNING:", "I0000")):
                print(line, end="", flush=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"search failed with exit code {proc.returncode}")
    return wall


def describe(study: Path) -> dict[str, object]:
    records = [json.loads(x) for x in (study / "study.jsonl").read_text().splitlines()]
    prop = next((r for r in reversed(records) if r["kind"] == "proposal"), None)
    best = min((r for r in records if r["status"] == "ok"), key=lambda r: r["objective"])
    return {"trials": len(records), "trial_seconds": sum(r["seconds"] for r in records),
            "beta_hat": prop and prop["point"], "f_hat_min": prop and prop["predicted"],
            "f_min": prop and prop["objective"], "best": best["objective"],
            "best_trial": best["trial"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=1200, help="MTFL rows read by each trial")
    ap.add_argument("--val", type=int, default=200, help="of which held out for validation")
    ap.add_argument("--epochs", type=int, default=1, help="epochs per trial")
    ap.add_argument("--initial", type=int, default=8, help="initial random trials")
    ap.add_argument("--max-trials", type=int, default=10, help="trial budget in all")
    ap.add_argument("--phi", type=float, default=0.002, help="stop when |f_hat_min - f_min| "
                                                              "< phi (val_loss units)")
    ap.add_argument("--workers", default="1,2", help="comma-separated worker counts to time")
    ap.add_argument("--keep", type=Path, help="keep the study dirs here (default: a temp dir)")
    ap.add_argument("--executor", choices=("local", "ray"), default="local",
                    help="where trials run (ray: Ray tasks)")
    ap.add_argument("--address", help="Ray cluster to use (default: start a head here)")
    args = ap.parse_args()
    if not (SHARED / "mtfl" / "train.txt").is_file():
        raise SystemExit(f"MTFL not found under {SHARED} (set NETSPEC_SHARED_DATA)")
    work = args.keep or Path(tempfile.mkdtemp(prefix="search_mtfl_"))
    work.mkdir(parents=True, exist_ok=True)
    faces = subset(args.faces, work)
    sets = [f"data.val_split={args.val}", f"search.trial.epochs={args.epochs}",
            f"search.initial.count={args.initial}", f"search.max_trials={args.max_trials}",
            f"search.phi={args.phi}"]
    print(f"MTFL subset: {args.faces - args.val} train / {args.val} val faces; "
          f"{args.epochs} epoch(s) per trial; {os.cpu_count()} CPU core(s); executor "
          f"{args.executor}; load average {os.getloadavg()[0]:.1f}; studies in {work}")
    results = {}
    with contextlib.ExitStack() as stack:
        address = args.address
        if args.executor == "ray" and address is None:
            address = stack.enter_context(ray_head(os.cpu_count() or 1))
        for w in (int(x) for x in args.workers.split(",")):
            study = work / f"workers{w}"
            if (study / "study.jsonl").exists():
                raise SystemExit(f"{study} already holds a study; use a fresh --keep dir")
            wall = run(study, faces, sets, w, address if args.executor == "ray" else None)
            results[w] = {**describe(study), "wall_s": wall}
    print("\nsummary")
    for w, r in results.items():
        print(f"  workers {w}: {r['trials']} trials in {r['wall_s']:.0f} s wall "
              f"(sum of trial times {r['trial_seconds']:.0f} s); beta_hat {r['beta_hat']}; "
              f"f_hat_min {r['f_hat_min']} vs f_min {r['f_min']}; best {r['best']:.5g} "
              f"(trial {r['best_trial']})")
    if 1 in results and len(results) > 1:
        base = results[1]
        for w, r in results.items():
            if w != 1:
                same = r["trials"] == base["trials"]
                per_trial = (base["wall_s"] / base["trials"]) / (r["wall_s"] / r["trials"])
                print(f"  speed-up workers {w} over 1: {base['wall_s'] / r['wall_s']:.2f}x wall"
                      f" ({per_trial:.2f}x per trial)"
                      + ("" if same else " [the two searches ran different trial counts]"))


if __name__ == "__main__":
    main()
