"""The whole pipeline end to end, at two data sizes, run as a user runs it.

For each size in ``--sizes`` (users), in its own temporary folder, two subprocesses:

1. ``mktpipe generate --users N --days D --start-date <today - D - 2>`` (the data ends three
   days before today, so no timestamp is in the future);
2. ``mktpipe backfill`` (no arguments: the whole landing range, batched: ingest, sentiment and
   daily as one batch each, graph + features + labels per snapshot every
   ``pipeline.snapshot_every_days`` days and on the last day, then train, score and report).

Every ``paths.*`` setting points into the temporary folder (``MKTPIPE__PATHS__*``), the export
key is a fresh random one (``MKTPIPE_EXPORT_KEY``) and ``SPARK_LOCAL_IP=127.0.0.1``. While the
backfill runs, the resident memory (VmRSS) of its process tree is sampled every
``--interval`` seconds from /proc: the mktpipe Python process, its JVM, and any other
descendants (PySpark's Python workers); the peaks are reported per kind and for the tree as a
whole (the peak of the per-sample sum, not the sum of the peaks).

Printed per size: the per-stage breakdown read from the backfill's run manifest
(``<warehouse>/_runs/backfill-*.json``: runs, seconds, share of the backfill, rows in and out;
"start-up, other" is the backfill's wall time not spent inside a stage: Python imports, the
JVM's start, listing the landing zone, the summary), the wall times, the event count (bronze
events written by ingest), throughput and peak memory. Then the growth ratios from the
smallest to the largest size, per stage and in total: a time ratio near 1 while the rows grow
several times means the stage is fixed cost (Spark job and Delta commit overhead) at these
sizes; a time ratio near the rows ratio means it scales with the data.

    .venv/bin/python bench/pipeline.py                           # 1000 and 4000 users x 120 days
    .venv/bin/python bench/pipeline.py --sizes 500,2000 --days 60 --json pipeline.json --keep

Each size runs once (a full backfill at these sizes takes minutes). The machine's load average
is printed with the figures: on a shared machine, compare the ratios measured in one run, not
absolute seconds across runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PATH_KEYS = ("landing", "warehouse", "truth", "models", "reports", "exports", "checkpoints")
OTHER = "start-up, other"
MIB = 1024 * 1024


class BenchFailed(RuntimeError):
    """A subprocess failed; the message says which and where its log is."""


# --- memory of a process tree, from /proc --------------------------------------------------------

def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's children file; /proc scan as a fallback)."""
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    found_file = False
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                found_file = True
                kids += [int(k) for k in fh.read().split()]
        except OSError:
            continue
    if found_file:
        return kids
    for entry in os.listdir("/proc"):  # kernels without CONFIG_PROC_CHILDREN
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    # the second field (comm) may hold spaces: the ppid follows its ')'
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return kids


def _rss_and_name(pid: int) -> tuple[int, str]:
    """(VmRSS in bytes, process name); (0, '') when the process is gone or has no memory."""
    rss, name = 0, ""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("Name:"):
                    name = line.split(None, 1)[1].strip()
                elif line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    return rss, name


def tree_rss(root: int) -> dict[str, int]:
    """Bytes resident now in ``root`` (python), its java descendants (jvm) and the rest."""
    out = {"python": 0, "jvm": 0, "other": 0}
    seen, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        rss, name = _rss_and_name(pid)
        kind = "python" if pid == root else "jvm" if name == "java" else "other"
        out[kind] += rss
        todo += _children(pid)
    out["total"] = out["python"] + out["jvm"] + out["other"]
    return out


class RssSampler(threading.Thread):
    """Samples ``tree_rss(pid)`` every ``interval`` seconds until ``stop()``; keeps the peaks."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak = {"python": 0, "jvm": 0, "other": 0, "total": 0}
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            now = tree_rss(self.pid)
            if now["total"]:
                self.samples += 1
                for k, v in now.items():
                    self.peak[k] = max(self.peak[k], v)
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


# --- running the CLI ------------------------------------------------------------------------------

def mktpipe_cli() -> str:
    """The ``mktpipe`` console script of this interpreter's environment."""
    here = Path(sys.executable).parent / "mktpipe"
    if here.exists():
        return str(here)
    found = shutil.which("mktpipe")
    if not found:
        sys.exit("bench/pipeline.py: no `mktpipe` command next to this Python or on PATH; "
                 "run `make setup` (pip install -e .) first")
    return found


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text[-lines:])


def run_logged(cmd: list[str], env: dict[str, str], cwd: Path, log: Path,
               sample_interval: float | None = None) -> tuple[float, dict[str, int], int]:
    """Run ``cmd`` with stdout and stderr to ``log``; (seconds, peak RSS, samples).
    Raises BenchFailed (after printing the log's tail) when it exits non-zero."""
    print(f"  $ {' '.join(cmd)}   (log: {log})", flush=True)
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        sampler = RssSampler(proc.pid, sample_interval) if sample_interval else None
        if sampler:
            sampler.start()
        try:
            rc = proc.wait()
        except BaseException:  # Ctrl-C: stop the child's whole session (its JVM too)
            try:
                os.killpg(proc.pid, 15)
                proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, 9)
            raise
        finally:
            if sampler:
                sampler.stop()
        elapsed = time.perf_counter() - started
    if rc != 0:
        print(f"\n!! `{' '.join(cmd[1:3])}` exited {rc} after {elapsed:.1f} s; "
              f"last lines of {log}:\n{tail(log)}\n", file=sys.stderr, flush=True)
        raise BenchFailed(f"{' '.join(cmd[1:3])} exited {rc} (log: {log})")
    peak = sampler.peak if sampler else {}
    return elapsed, peak, sampler.samples if sampler else 0


def folder_bytes(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def latest_manifest(warehouse: Path) -> dict:
    paths = sorted((warehouse / "_runs").glob("backfill-*.json"))
    if not paths:
        raise BenchFailed(f"no backfill manifest under {warehouse / '_runs'}")
    manifests = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    return max(manifests, key=lambda m: m.get("started_at", ""))


def stage_table(manifest: dict, wall_s: float) -> list[dict]:
    """Per stage, in pipeline order: runs, seconds, rows in / out; plus the unaccounted rest."""
    rows: dict[str, dict] = {}
    for s in manifest.get("stages", []):
        r = rows.setdefault(s["stage"], {"stage": s["stage"], "runs": 0, "seconds": 0.0,
                                         "rows_in": 0, "rows_out": 0, "statuses": []})
        r["runs"] += 1
        r["seconds"] += float(s.get("elapsed_s") or 0.0)
        r["rows_in"] += int(s.get("rows_in") or 0)
        r["rows_out"] += int(s.get("rows_out") or 0)
        r["statuses"].append(s.get("status", "?"))
    out = list(rows.values())
    for r in out:
        r["status"] = "/".join(sorted(set(r.pop("statuses"))))
    in_stages = sum(r["seconds"] for r in out)
    out.append({"stage": OTHER, "runs": 1, "seconds": max(wall_s - in_stages, 0.0),
                "rows_in": 0, "rows_out": 0, "status": "-"})
    for r in out:
        r["share"] = r["seconds"] / wall_s if wall_s else 0.0
    return out


def measure(users: int, days: int, folder: Path, cli: str, interval: float) -> dict:
    folder.mkdir(parents=True)
    paths = {k: folder / k for k in PATH_KEYS}
    paths["truth"] = paths["landing"] / "_truth"  # where generate writes it (as base.yaml)
    env = dict(os.environ)
    env.update({f"MKTPIPE__PATHS__{k.upper()}": str(p) for k, p in paths.items()})
    env["MKTPIPE_EXPORT_KEY"] = secrets.token_hex(32)
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    if (REPO / "conf" / "base.yaml").exists():
        env.setdefault("MKTPIPE_CONF_DIR", str(REPO / "conf"))  # we run in the temp folder
    start = dt.date.today() - dt.timedelta(days=days + 2)

    print(f"\n== {users} users x {days} days from {start}, in {folder}", flush=True)
    gen_s, _, _ = run_logged([cli, "generate", "--users", str(users), "--days", str(days),
                              "--start-date", start.isoformat()],
                             env, folder, folder / "generate.log")
    match = re.search(r"wrote landing zone .*?: (\d+) rows", tail(folder / "generate.log"))
    landing_rows = int(match.group(1)) if match else None
    landing_bytes = folder_bytes(paths["landing"])

    back_s, peak, samples = run_logged([cli, "backfill"], env, folder, folder / "backfill.log",
                                       sample_interval=interval)
    manifest = latest_manifest(paths["warehouse"])
    if manifest.get("status") != "ok":
        print(tail(folder / "backfill.log"), file=sys.stderr)
        raise BenchFailed(f"backfill manifest status {manifest.get('status')!r} "
                          f"(log: {folder / 'backfill.log'})")
    stages = stage_table(manifest, back_s)
    ingest = next((s for s in manifest["stages"] if s["stage"] == "ingest"), {})
    events = (ingest.get("details", {}).get("events") or {}).get("written")
    if events is None:  # an older manifest: the ingest rows out (every source) then
        events = ingest.get("rows_out", 0)
    return {
        "users": users, "days": days, "start_date": start.isoformat(),
        "landing_rows": landing_rows, "landing_bytes": landing_bytes,
        "ingest_rows_in": ingest.get("rows_in"), "ingest_rows_out": ingest.get("rows_out"),
        "events": events, "generate_s": gen_s, "backfill_s": back_s, "total_s": gen_s + back_s,
        "warehouse_bytes": folder_bytes(paths["warehouse"]),
        "peak_rss_bytes": peak, "rss_samples": samples,
        "run_id": manifest.get("run_id"), "stages": stages,
    }


# --- printing ---------------------------------------------------------------------------------

def print_size(r: dict) -> None:
    print(f"\n{r['users']} users x {r['days']} days: {r['landing_rows']} landing rows "
          f"({r['landing_bytes'] / MIB:.0f} MiB), {r['events']} events; "
          f"warehouse {r['warehouse_bytes'] / MIB:.0f} MiB; run {r['run_id']}")
    head = (f"  {'stage':<16} {'runs':>4} {'seconds':>8} {'share':>6} {'rows in':>10} "
            f"{'rows out':>10}  status")
    print(head)
    print("  " + "-" * (len(head) - 2))
    for s in r["stages"]:
        print(f"  {s['stage']:<16} {s['runs']:>4} {s['seconds']:>8.1f} {s['share']:>6.1%} "
              f"{s['rows_in']:>10} {s['rows_out']:>10}  {s['status']}")
    print("  " + "-" * (len(head) - 2))
    print(f"  {'backfill wall':<16} {'':>4} {r['backfill_s']:>8.1f} {1:>6.0%}")
    print(f"  generate {r['generate_s']:.1f} s + backfill {r['backfill_s']:.1f} s "
          f"= {r['total_s']:.1f} s end to end")
    print(f"  throughput: {r['events'] / r['total_s']:,.0f} events/s end to end, "
          f"{r['events'] / r['backfill_s']:,.0f} events/s in the backfill "
          f"({(r['landing_rows'] or 0) / r['backfill_s']:,.0f} landing rows/s)")
    p = r["peak_rss_bytes"]
    if p:
        print(f"  peak driver RSS ({r['rss_samples']} samples): python {p['python'] / MIB:,.0f}"
              f" MiB, JVM {p['jvm'] / MIB:,.0f} MiB, other children {p['other'] / MIB:,.0f} "
              f"MiB, tree total {p['total'] / MIB:,.0f} MiB")


def growth(a: dict, b: dict) -> dict:
    """Ratios large / small per stage and in total."""
    def ratio(x, y):
        return (x / y) if y else None

    sa = {s["stage"]: s for s in a["stages"]}
    per_stage = []
    for s in b["stages"]:
        o = sa.get(s["stage"])
        if o is None:
            continue
        per_stage.append({"stage": s["stage"], "rows_ratio": ratio(s["rows_out"], o["rows_out"]),
                          "time_ratio": ratio(s["seconds"], o["seconds"]),
                          "seconds_small": o["seconds"], "seconds_large": s["seconds"]})
    return {
        "users_ratio": ratio(b["users"], a["users"]), "events_ratio": ratio(b["events"],
                                                                            a["events"]),
        "landing_rows_ratio": ratio(b["landing_rows"] or 0, a["landing_rows"] or 0),
        "generate_time_ratio": ratio(b["generate_s"], a["generate_s"]),
        "backfill_time_ratio": ratio(b["backfill_s"], a["backfill_s"]),
        "total_time_ratio": ratio(b["total_s"], a["total_s"]),
        "peak_rss_ratio": ratio(b["peak_rss_bytes"].get("total", 0),
                                a["peak_rss_bytes"].get("total", 0)),
        "stages": per_stage,
    }


def print_growth(a: dict, b: dict, g: dict) -> None:
    def fmt(x, width=8):
        return f"{'-':>{width}}" if x is None else f"{'x' + format(x, '.2f'):>{width}}"

    print(f"\ngrowth, {b['users']} vs {a['users']} users (data x{g['events_ratio']:.2f} events, "
          f"x{g['landing_rows_ratio']:.2f} landing rows): time ratio near 1 = fixed cost, "
          f"near the data ratio = scales with data")
    head = f"  {'stage':<16} {'rows out':>8} {'time':>8} {'small s':>8} {'large s':>8}"
    print(head)
    print("  " + "-" * (len(head) - 2))
    for s in g["stages"]:
        print(f"  {s['stage']:<16} {fmt(s['rows_ratio'])} {fmt(s['time_ratio'])} "
              f"{s['seconds_small']:>8.1f} {s['seconds_large']:>8.1f}")
    print("  " + "-" * (len(head) - 2))
    print(f"  {'generate':<16} {fmt(g['landing_rows_ratio'])} {fmt(g['generate_time_ratio'])} "
          f"{a['generate_s']:>8.1f} {b['generate_s']:>8.1f}")
    print(f"  {'backfill wall':<16} {fmt(g['events_ratio'])} {fmt(g['backfill_time_ratio'])} "
          f"{a['backfill_s']:>8.1f} {b['backfill_s']:>8.1f}")
    print(f"  {'end to end':<16} {fmt(g['events_ratio'])} {fmt(g['total_time_ratio'])} "
          f"{a['total_s']:>8.1f} {b['total_s']:>8.1f}")
    cost = g["total_time_ratio"] / g["events_ratio"] if g["events_ratio"] else None
    print(f"  cost per event x{cost:.2f} (1.0 = linear; < 1 while fixed overhead dominates); "
          f"peak driver RSS {fmt(g['peak_rss_ratio'], 0).strip()}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,4000", help="users per size, comma-separated")
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--interval", type=float, default=0.5,
                        help="seconds between memory samples (default 0.5)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    parser.add_argument("--json", metavar="OUT", help="also write the figures as JSON to OUT")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.sizes.split(",") if n.strip()]
    if not sizes:
        parser.error("--sizes: at least one size")
    cli = mktpipe_cli()
    load_before = os.getloadavg()[0]
    results, folders = [], []
    try:
        for n in sizes:
            folder = Path(tempfile.mkdtemp(prefix=f"mktpipe-bench-pipeline-{n}-")) / "run"
            folders.append(folder.parent)
            results.append(measure(n, args.days, folder, cli, args.interval))
            print_size(results[-1])  # now: a later size that fails does not lose this one
    except BenchFailed as exc:
        print(f"bench/pipeline.py: {exc}", file=sys.stderr)
        if not args.keep:
            print("(pass --keep to keep the temporary folders and logs)", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"\nkept: {', '.join(map(str, folders))}")
        else:
            for f in folders:
                shutil.rmtree(f, ignore_errors=True)
    load_after = os.getloadavg()[0]

    print(f"\nmktpipe end to end (generate + batched backfill, subprocesses), {args.days} days, "
          f"{os.cpu_count()} cores, load average {load_before:.1f} before, "
          f"{load_after:.1f} after (each size's figures are printed above, as it completed)")
    g = growth(results[0], results[-1]) if len(results) >= 2 else None
    if g:
        print_growth(results[0], results[-1], g)
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"days": args.days, "cores": os.cpu_count(), "load_before": load_before,
             "load_after": load_after, "sizes": results, "growth": g}, indent=2),
            encoding="utf-8")
        print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
