"""MLlib on a native BLAS (OpenBLAS through ``libblas.so.3``) against its Java fallback.

    python bench/blas.py [--sizes 20000] [--rounds 2] [--modes java,native,native:Prescott]

MLlib calls BLAS through dev.ludovic.netlib: the native library when ``libblas.so.3`` loads
(``make blas`` installs Debian's OpenBLAS), else Java (``VectorBLAS``, JDK vector API).
Each mode runs in its own process (one Spark session each, same data, same seeds), the modes
interleaved for ``--rounds`` rounds (java, native, ..., then reversed) so that the machine's
drift falls on every mode alike. A mode is:

* ``java``: the native library hidden (``-Ddev.ludovic.netlib.blas.nativeLibPath`` pointing
  at a missing file, through ``JDK_JAVA_OPTIONS``);
* ``native``: what a mktpipe session gets (``mktpipe.blas.prepare_environment``: one thread
  per call, and OpenBLAS's kernels for this CPU's flags where OpenBLAS does not recognise it);
* ``native:<core>``: the same with ``OPENBLAS_CORETYPE=<core>`` forced, e.g. ``Prescott``,
  what OpenBLAS 0.3.21 alone picks on a CPU it does not know (a VM's generic model name).

Each process times, after a warm-up on 2,000 rows:

* ``gemm``: MLlib's ``DenseMatrix.multiply`` of two random 1000 x 1000 matrices in the JVM
  (pure level-3 BLAS; best of 3);
* the churn model's logistic regression and multilayer perceptron, and a Gaussian mixture
  segmentation (k 3..5), on bench/models.py's synthetic 40-feature table, validation included.

The models' validation figures are printed per mode: a BLAS changes rounding, not results.
Prints a table of best-of-rounds seconds per mode and the ratio to ``java``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MISSING = "/nonexistent/mktpipe-bench/libblas.so.3"


def _mode_env(mode: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    if mode == "java":
        env["JDK_JAVA_OPTIONS"] = (f"-Ddev.ludovic.netlib.blas.nativeLibPath={MISSING} "
                                   f"-Ddev.ludovic.netlib.lapack.nativeLibPath={MISSING}")
    elif mode.startswith("native:"):
        env["OPENBLAS_CORETYPE"] = mode.split(":", 1)[1]
    elif mode != "native":
        raise SystemExit(f"unknown mode {mode!r}: use java, native or native:<core>")
    return env


def child(sizes: list[int]) -> dict:
    """Runs in the mode's process: the BLAS in use, gemm seconds, each fit's seconds."""
    import logging

    sys.path.insert(0, str(HERE))
    from models import synthetic_features  # bench/models.py

    from mktpipe.config import load_config
    from mktpipe.models import churn, segmentation
    from mktpipe.session import get_spark

    logging.basicConfig(level=logging.WARNING)
    spark = get_spark(load_config("local"))
    jvm = spark._jvm
    blas = jvm.dev.ludovic.netlib.blas.BLAS.getInstance().getClass().getSimpleName()
    fits = {
        "lr": lambda df: churn.fit(df.drop("bought_7d", "spend_90d"), "churned",
                                   config={"models": ("lr",)}),
        "mlp": lambda df: churn.fit(df.drop("bought_7d", "spend_90d"), "churned",
                                    config={"models": ("mlp",)}),
        "gmm": lambda df: segmentation.fit(df, [f"num_{i:02d}" for i in range(10)], config={
            "algorithms": ("gmm",), "k_min": 3, "k_max": 5}),
    }
    import tempfile

    scratch = tempfile.TemporaryDirectory(prefix="mktpipe-bench-blas-")
    warm = synthetic_features(spark, 2000, scratch.name, seed=1).cache()
    for fit in fits.values():
        fit(warm)
    warm.unpersist()

    dense = jvm.org.apache.spark.ml.linalg.DenseMatrix
    rng = jvm.java.util.Random(7)
    a, b = dense.rand(1000, 1000, rng), dense.rand(1000, 1000, rng)
    a.multiply(b)  # warm-up
    gemm = []
    for _ in range(3):
        start = time.perf_counter()
        a.multiply(b)
        gemm.append(time.perf_counter() - start)
    out = {"blas": blas, "coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
           "seconds": {"gemm": min(gemm)}, "quality": {}}
    for size in sizes:
        table = synthetic_features(spark, size, scratch.name).cache()
        table.count()
        for name, fit in fits.items():
            start = time.perf_counter()
            model = fit(table)
            out["seconds"][f"{name}@{size}"] = time.perf_counter() - start
            m = model.metrics
            out["quality"][f"{name}@{size}"] = (
                f"silhouette={m['silhouette']:.4f}" if name == "gmm"
                else f"AP={m['ensemble']['average_precision']:.4f}")
        table.unpersist()
    spark.stop()
    scratch.cleanup()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20000", help="feature table rows, comma-separated")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--modes", default="java,native,native:Prescott")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per mode's process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.child:
        print("RESULT " + json.dumps(child(sizes)), flush=True)
        return 0

    modes = args.modes.split(",")
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    hung: dict[str, int] = {}
    for round_ in range(args.rounds):
        for mode in (modes if round_ % 2 == 0 else modes[::-1]):
            start = time.perf_counter()
            try:
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", "--sizes", args.sizes],
                    env=_mode_env(mode), capture_output=True, text=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                # the Java fallback's LAPACK (F2J) has been seen to spin forever in a Gaussian
                # mixture's dsyev: say so and go on with the other modes (the killed child's
                # JVM exits with it, as a PySpark gateway does when its driver goes)
                hung[mode] = hung.get(mode, 0) + 1
                print(f"round {round_ + 1} {mode:16s} did not finish in {args.timeout} s "
                      "(killed)", flush=True)
                continue
            line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
            if proc.returncode or line is None:
                sys.stderr.write(proc.stderr[-4000:])
                raise SystemExit(f"mode {mode} failed (exit {proc.returncode})")
            result = json.loads(line[len("RESULT "):])
            runs[mode].append(result)
            print(f"round {round_ + 1} {mode:16s} BLAS={result['blas']:10s} "
                  f"{time.perf_counter() - start:6.1f} s  "
                  + " ".join(f"{k}={v:.2f}" for k, v in result["seconds"].items()), flush=True)

    if hung:
        print("did not finish: " + ", ".join(f"{m} {n}x" for m, n in hung.items()))
    modes = [m for m in modes if runs[m]]
    if not modes:
        return 1
    keys = list(runs[modes[0]][0]["seconds"])
    best = {m: {k: min(r["seconds"][k] for r in runs[m]) for k in keys} for m in modes}
    print(f"\nbest of the finished runs of {args.rounds} round(s), seconds (ratio to {modes[0]}); "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'what':14s}" + "".join(f"{m:>26s}" for m in modes))
    for k in keys:
        base = best[modes[0]][k]
        print(f"{k:14s}" + "".join(f"{best[m][k]:>17.2f} ({best[m][k] / base:4.2f}x)"
                                    for m in modes))
    print("validation per mode (first round): " + "; ".join(
        f"{m}: " + ", ".join(f"{k} {v}" for k, v in runs[m][0]["quality"].items())
        for m in modes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
