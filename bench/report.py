"""Turn pytest-benchmark JSON files into the Markdown of bench/RESULTS.md: seconds per epoch (medians),
ratios to PyTorch, the fraction of the GEMM roofline, the busy-machine ratios, with the machine the
results were measured on (read from the files, never from the machine running this script) and the
command.

    python bench/report.py RESULTS.json [MORE.json ...] [--out bench/RESULTS.md] [--plot bench/results.png]

Without --out the Markdown goes to stdout; with it, the file is replaced only once the new text is
complete.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import WORKLOADS, describe_machine

DEFAULT_COMMAND = (
    "cat /proc/loadavg && MLP_DATA_DIR=../shared/data/mnist .venv/bin/python -m pytest bench "
    "--benchmark-json bench/results.json && .venv/bin/python bench/report.py bench/results.json "
    "--out bench/RESULTS.md --plot bench/results.png"
)

GOALS = {  # workload: (implementation, max ratio to torch or None, min roofline fraction or None)
    "B1": ("numba", 0.45, 0.60),
    "B2": ("numba", 0.8, None),
    "B3": ("numba", 0.45, None),
    "B4": ("numba", None, 0.80),
}
ORDER = ["numba", "numpy", "cpp", "cupy", "torch", "sklearn"]
NAMES = {
    "numba": "mlp, Numba engine",
    "numpy": "mlp, generic NumPy path",
    "cpp": "C++ port",
    "cupy": "mlp on CuPy",
    "torch": "PyTorch CPU",
    "sklearn": "scikit-learn MLPClassifier",
}


def seconds_of(bench):
    epochs = bench.get("extra_info", {}).get("epoch_seconds")
    if epochs:
        return statistics.median(epochs), len(epochs)
    return bench["stats"]["median"], bench["stats"]["rounds"]


def machine_line(data):
    """The machine the results were measured on, as recorded in the file by bench/conftest.py."""
    info = data.get("machine_info", {}).get("mlp_machine")
    if info is None:  # an older file: the per-benchmark extra_info, if any
        info = next(
            (
                dict(
                    cpu_model=b["extra_info"]["cpu_model"],
                    vector_extensions=b["extra_info"].get("vector_extensions", []),
                    cores=data.get("machine_info", {}).get("cpu", {}).get("count", "?"),
                )
                for b in data.get("benchmarks", [])
                if "cpu_model" in b.get("extra_info", {})
            ),
            None,
        )
    if info is None:
        return "not recorded in the results file (re-run the benchmarks to record it)"
    return describe_machine(info)


def collect(data):
    """(the SGEMM benchmark or None, its FLOP rate or None,
    {workload: {implementation: (seconds, rounds, gemm_flops)}})."""
    benches = data["benchmarks"]
    sgemm = next((b for b in benches if b.get("extra_info", {}).get("implementation") == "sgemm"), None)
    rate = sgemm["extra_info"]["flops"] / sgemm["stats"]["median"] if sgemm else None
    table = {}
    for bench in benches:
        info = bench.get("extra_info", {})
        if "workload" in info:
            table.setdefault(info["workload"], {})[info["implementation"]] = (
                *seconds_of(bench),
                info["gemm_flops"],
            )
    return sgemm, rate, table


def render(data, command, note=None):
    """The Markdown of RESULTS.md for one (possibly merged) results dict; `note` a paragraph on the
    conditions of the run, placed under the machine."""
    sgemm, rate, table = collect(data)
    machine = data.get("machine_info", {})
    recorded = machine.get("mlp_versions")
    versions = (
        ", ".join(f"{k} {v}" for k, v in recorded.items()) if recorded else "not recorded in the results file"
    )
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine_line(data)}; Python {machine.get('python_version', '?')}; "
        f"run on {data.get('datetime', '?')[:19]}.",
        f"Versions: {versions}.",
    ]
    if "loadavg" in machine:
        lines.append(
            f"Load average (1, 5, 15 min) when the run started: {machine['loadavg'].get('start', '?')}; "
            f"when it ended: {machine['loadavg'].get('end', '?')} (2 cores shared with other work: "
            "figures taken under load are slower than the machine can do)."
        )
    if note:
        lines += ["", f"**Conditions:** {note}"]
    lines.append("")
    if sgemm is not None:
        lines += [
            f"SGEMM rate measured in the same run (float32 2048x2048 matmul through NumPy's BLAS, median of "
            f"{sgemm['stats']['rounds']}): **{rate / 1e9:.0f} GFLOP/s**. The roofline of a workload is its "
            "matrix-multiply FLOPs per epoch (forward, weight gradients, input gradients of all but the first "
            "layer) at that rate; *roofline* below is roofline seconds / measured seconds. The C++ port "
            "multiplies with its own GEMM, not NumPy's BLAS, so it can pass 100 %.",
            "",
        ]
    for name, workload in WORKLOADS.items():
        if table.get(name):
            lines += render_workload(name, workload, table[name], rate)
    lines += render_busy(data)
    return "\n".join(lines)


def render_workload(name, workload, rows, rate):
    flops = next(iter(rows.values()))[2]
    roofline = flops / rate if rate else None
    torch = rows.get("torch", (None,))[0]
    lines = [f"## {name}: {workload.description}, float32, one epoch of 60 000", ""]
    if roofline:
        lines += [f"Roofline: {roofline:.3f} s ({flops / 1e9:.1f} GFLOP).", ""]
    lines += [
        "| implementation | s/epoch (median) | rounds | × PyTorch CPU | roofline |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for impl in ORDER:
        if impl not in rows:
            continue
        seconds, rounds, _ = rows[impl]
        ratio = f"{seconds / torch:.2f}" if torch else "–"
        fraction = f"{roofline / seconds:.0%}" if roofline else "–"
        lines.append(f"| {NAMES[impl]} | {seconds:.3f} | {rounds} | {ratio} | {fraction} |")
    goal = GOALS.get(name)
    if goal and goal[0] in rows:
        seconds = rows[goal[0]][0]
        checks = []
        if goal[1] is not None and torch:
            checks.append(
                f"≤ {goal[1]} × PyTorch: {seconds / torch:.2f} "
                f"({'met' if seconds / torch <= goal[1] else 'missed'})"
            )
        if goal[2] is not None and roofline:
            checks.append(
                f"≥ {goal[2]:.0%} of the roofline: {roofline / seconds:.1%} "
                f"({'met' if roofline / seconds >= goal[2] else 'missed'})"
            )
        if checks:
            lines += ["", f"Goal for the Numba engine: {'; '.join(checks)}."]
    lines.append("")
    return lines


BUSY_NAMES = {
    "numba_auto": "mlp, Numba engine, automatic threads (default)",
    "numba_unmanaged": "mlp, Numba engine, BLAS threads left alone (before)",
    "xp_auto": "mlp, generic NumPy path, automatic threads (default)",
    "numba_1_thread": "mlp, Numba engine, n_threads=1",
    "xp_unmanaged": "mlp, generic NumPy path, BLAS threads left alone (before)",
    "xp_1_thread": "mlp, generic NumPy path, n_threads=1",
    "torch": "PyTorch CPU (torch.set_num_threads(cores), its default)",
    "torch_1_thread": "PyTorch CPU, torch.set_num_threads(1)",
}
BUSY_GOAL = 2.5


def render_busy(data):
    """The busy-machine section from bench/test_busy.py's extra_info."""
    runs = [b["extra_info"] for b in data["benchmarks"] if "busy_workload" in b.get("extra_info", {})]
    if not runs:
        return []
    lines = [
        "## B1 on a busy machine: one epoch quiet, and with another process spinning on one core",
        "",
        "bench/test_busy.py: a bounded spinning process is paused for the quiet epochs and resumed for the "
        "busy ones, alternating round by round; every variant of an implementation trains in the same "
        "rounds (A/B in one run). Medians over the rounds. *Threads* are what the automatic policy chose "
        "(most common value); *first busy epoch* is the epoch right after the competitor appeared, still "
        "decided from the quiet epoch before it. *Others' load* is the CPU (in cores) used by every other "
        "process during the quiet epochs: the background the quiet figures were measured against.",
        "",
        "| implementation | threads quiet / busy | quiet s/epoch | busy s/epoch | **busy / quiet** "
        "| first busy epoch | rounds | others' load when quiet |",
        "| --- | :---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    variants = {}
    for run in runs:
        for name, v in run["variants"].items():
            variants[name] = v
            threads = " / ".join(_mode(v["threads"][phase]) for phase in ("quiet", "busy"))
            first = f"{statistics.median(v['first_busy']):.3f}" if v["first_busy"] else "–"
            others = v.get("others_load", {}).get("quiet") or []
            load = f"{statistics.median(others):.2f}" if others else "?"
            lines.append(
                f"| {BUSY_NAMES.get(name, name)} | {threads} | {v['quiet_median']:.3f} | "
                f"{v['busy_median']:.3f} | **{v['ratio']:.2f}** | {first} | {len(v['quiet'])} | {load} |"
            )
    seen = "; ".join(
        f"{run['implementation']}: {run.get('loadavg_before', '?')} before, "
        f"{run.get('loadavg_after', '?')} after"
        for run in runs
    )
    lines += ["", f"Load average (1, 5, 15 min) seen around each case: {seen}."]
    checks = []
    for engine in ("numba", "xp"):
        auto, unmanaged = variants.get(f"{engine}_auto"), variants.get(f"{engine}_unmanaged")
        if auto is None:
            continue
        text = (
            f"{BUSY_NAMES[f'{engine}_auto'].split(', automatic')[0]}: busy / quiet {auto['ratio']:.2f} "
            f"({'met' if auto['ratio'] <= BUSY_GOAL else 'missed'})"
        )
        if unmanaged is not None:
            text += (
                f", quiet epoch {auto['quiet_median'] / unmanaged['quiet_median']:.2f} × the unmanaged one "
                f"(today's speed kept when ≈ 1)"
            )
        checks.append(text)
    if checks:
        lines += [
            "",
            f"Goal: busy / quiet ≤ {BUSY_GOAL} with the quiet speed kept. " + "; ".join(checks) + ".",
        ]
    lines.append("")
    return lines


def _mode(values):
    values = [v for v in values if v is not None]
    if not values:
        return "default"
    return str(max(set(values), key=values.count))


def plot(data, path):
    """Seconds per epoch per implementation, one panel per workload with the roofline dashed, and one
    for the busy machine (quiet and busy bars, log scale); written like `write_atomically`."""
    from matplotlib.figure import Figure

    _, rate, table = collect(data)
    names = [name for name in WORKLOADS if name in table]
    busy = {
        name: v
        for b in data["benchmarks"]
        if "busy_workload" in b.get("extra_info", {})
        for name, v in b["extra_info"]["variants"].items()
    }
    panels = len(names) + (1 if busy else 0)
    if panels == 0:
        raise SystemExit("report.py: nothing to plot in these results")
    fig = Figure(figsize=(11, 2.2 * panels + (0.8 if busy else 0)), layout="constrained")
    axes = fig.subplots(panels, 1, squeeze=False)[:, 0]
    colours = {
        "numba": "#1f77b4",
        "numpy": "#9ecae1",
        "cpp": "#2ca02c",
        "cupy": "#9467bd",
        "torch": "#d62728",
        "sklearn": "#ff7f0e",
    }
    for ax, name in zip(axes, names, strict=False):  # the last axis, if any, is the busy panel
        rows = [(impl, table[name][impl][0], table[name][impl][2]) for impl in ORDER if impl in table[name]]
        labels = [NAMES[impl] for impl, _, _ in rows]
        seconds = [s for _, s, _ in rows]
        ax.barh(labels, seconds, color=[colours[impl] for impl, _, _ in rows])
        if rate:
            ax.axvline(rows[0][2] / rate, color="black", linestyle="--", linewidth=1, label="GEMM roofline")
            ax.legend(loc="upper right", fontsize=8)
        ax.invert_yaxis()
        for y, value in enumerate(seconds):
            ax.text(value, y, f" {value:.3g} s", va="center", fontsize=8)
        ax.set_xlim(0, max(seconds) * 1.18)
        ax.set_title(
            f"{name}: {WORKLOADS[name].description} (seconds per epoch, lower is better)", fontsize=10
        )
    if busy:
        ax = axes[-1]
        labels = [BUSY_NAMES.get(name, name) for name in busy]
        positions = range(len(labels))
        quiet = [v["quiet_median"] for v in busy.values()]
        loaded = [v["busy_median"] for v in busy.values()]
        ax.barh([p - 0.2 for p in positions], quiet, height=0.4, color="#9ecae1", label="quiet")
        ax.barh([p + 0.2 for p in positions], loaded, height=0.4, color="#d62728", label="one core busy")
        ax.set_yticks(list(positions), labels, fontsize=8)
        ax.set_xscale("log")
        ax.invert_yaxis()
        for p, value, v in zip(positions, loaded, busy.values(), strict=True):
            ax.text(value, p + 0.2, f" {value:.3g} s ({v['ratio']:.1f}×)", va="center", fontsize=8)
        ax.set_xlim(min(quiet) / 1.5, max(loaded) * 6)
        ax.set_title(
            "B1 with another process spinning on one of the cores (seconds per epoch, log scale)", fontsize=10
        )
        ax.legend(loc="lower right", fontsize=8)
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    try:
        fig.savefig(temporary, dpi=90, format=path.suffix.lstrip(".") or "png")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load(paths):
    """One results dict from one or more pytest-benchmark JSON files (benchmarks concatenated; the
    machine, date and versions of the first file, whose machine must match the others')."""
    merged = None
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise SystemExit(f"report.py: cannot read {path}: {error}") from None
        if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
            raise SystemExit(f"report.py: {path} is not a pytest-benchmark JSON file (no 'benchmarks' list)")
        if merged is None:
            merged = dict(data, benchmarks=list(data["benchmarks"]))
            continue
        if machine_line(data) != machine_line(merged):
            raise SystemExit(
                f"report.py: {path} was measured on another machine ({machine_line(data)}) than "
                f"{paths[0]} ({machine_line(merged)}); report them separately"
            )
        merged["benchmarks"] += data["benchmarks"]
    return merged


def write_atomically(path, text):
    """Replace `path` with `text` only once it is completely written (the old file stays otherwise)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bench/report.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("json", nargs="+", help="pytest-benchmark JSON files (--benchmark-json)")
    parser.add_argument("--out", help="write the Markdown here (default: stdout)")
    parser.add_argument("--command", default=DEFAULT_COMMAND, help="the command recorded in the report")
    parser.add_argument("--plot", help="also draw the tables as a PNG here (needs matplotlib)")
    parser.add_argument(
        "--note", help="a paragraph on the conditions of the run (load, other work), shown under the machine"
    )
    args = parser.parse_args(argv)
    for path in (args.out, args.plot):
        if path is not None and not Path(path).resolve().parent.is_dir():
            parser.error(f"the folder of {path} does not exist")
    data = load(args.json)
    text = render(data, args.command, args.note)
    if args.plot:
        plot(data, args.plot)
        link = (
            os.path.relpath(Path(args.plot).resolve(), Path(args.out).resolve().parent)
            if args.out
            else args.plot
        )
        text += f"\n![seconds per epoch]({Path(link).as_posix()})\n"
    if args.out:
        write_atomically(args.out, text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
