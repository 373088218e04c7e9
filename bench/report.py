"""Turn a pytest-benchmark JSON file into bench/RESULTS.md: seconds per epoch (medians), ratios to
PyTorch, and the fraction of the GEMM roofline, with the machine and the command.

    python bench/report.py bench/results.json [--out bench/RESULTS.md] [--command "..."]
"""
import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workloads import WORKLOADS  # noqa: E402

GOALS = {  # workload: (implementation, max ratio to torch or None, min roofline fraction or None)
    "B1": ("numba", 0.45, 0.60),
    "B2": ("numba", 0.8, None),
    "B3": ("numba", 0.45, None),
    "B4": ("numba", None, 0.80),
}
ORDER = ["numba", "numpy", "cpp", "cupy", "torch", "sklearn"]
NAMES = {"numba": "mlp, Numba engine", "numpy": "mlp, generic NumPy path", "cpp": "C++ port",
         "cupy": "mlp on CuPy", "torch": "PyTorch CPU", "sklearn": "scikit-learn MLPClassifier"}


def seconds_of(bench):
    epochs = bench.get("extra_info", {}).get("epoch_seconds")
    if epochs:
        return statistics.median(epochs), len(epochs)
    return bench["stats"]["median"], bench["stats"]["rounds"]


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def collect(data):
    """(the SGEMM benchmark, its FLOP rate, {workload: {implementation: (seconds, rounds, gemm_flops)}})."""
    benches = data["benchmarks"]
    sgemm = next(b for b in benches if b.get("extra_info", {}).get("implementation") == "sgemm")
    rate = sgemm["extra_info"]["flops"] / sgemm["stats"]["median"]
    table = {}
    for bench in benches:
        info = bench.get("extra_info", {})
        if "workload" in info:
            table.setdefault(info["workload"], {})[info["implementation"]] = (*seconds_of(bench), info["gemm_flops"])
    return sgemm, rate, table


def render(data, command):
    sgemm, rate, table = collect(data)
    machine = data.get("machine_info", {})
    lines = [
        "# Benchmark results",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {cpu_model()}, {machine.get('cpu', {}).get('count', '?')} logical CPUs visible, "
        f"Python {machine.get('python_version', platform.python_version())}; run on {data.get('datetime', '?')[:19]}.",
        f"Versions: {', '.join(f'{k} {v}' for k, v in versions().items())}.",
        "",
        f"SGEMM rate measured in the same run (float32 2048x2048 matmul through NumPy's BLAS, median of "
        f"{sgemm['stats']['rounds']}): **{rate / 1e9:.0f} GFLOP/s**. The roofline of a workload is its "
        "matrix-multiply FLOPs per epoch (forward, weight gradients, input gradients of all but the first "
        "layer) at that rate; *roofline* below is roofline seconds / measured seconds. The C++ port "
        "multiplies with its own GEMM, not NumPy's BLAS, so it can pass 100 %.",
        "",
    ]
    for name, workload in WORKLOADS.items():
        rows = table.get(name)
        if not rows:
            continue
        flops = next(iter(rows.values()))[2]
        roofline = flops / rate
        torch = rows.get("torch", (None,))[0]
        lines += [f"## {name}: {workload.description}, float32, one epoch of 60 000", "",
                  f"Roofline: {roofline:.3f} s ({flops / 1e9:.1f} GFLOP).", "",
                  "| implementation | s/epoch (median) | rounds | × PyTorch CPU | roofline |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for impl in ORDER:
            if impl not in rows:
                continue
            seconds, rounds, _ = rows[impl]
            ratio = f"{seconds / torch:.2f}" if torch else "–"
            lines.append(f"| {NAMES[impl]} | {seconds:.3f} | {rounds} | {ratio} | {roofline / seconds:.0%} |")
        goal = GOALS.get(name)
        if goal and goal[0] in rows:
            seconds = rows[goal[0]][0]
            checks = []
            if goal[1] is not None and torch:
                checks.append(f"≤ {goal[1]} × PyTorch: {seconds / torch:.2f} "
                              f"({'met' if seconds / torch <= goal[1] else 'missed'})")
            if goal[2] is not None:
                checks.append(f"≥ {goal[2]:.0%} of the roofline: {roofline / seconds:.1%} "
                              f"({'met' if roofline / seconds >= goal[2] else 'missed'})")
            lines += ["", f"Goal for the Numba engine: {'; '.join(checks)}."]
        lines.append("")
    return "\n".join(lines)


def plot(data, path):
    """Seconds per epoch per implementation, one panel per workload, with the roofline dashed."""
    from matplotlib.figure import Figure

    _, rate, table = collect(data)
    names = [name for name in WORKLOADS if name in table]
    fig = Figure(figsize=(11, 2.2 * len(names)), layout="constrained")
    axes = fig.subplots(len(names), 1, squeeze=False)[:, 0]
    colours = {"numba": "#1f77b4", "numpy": "#9ecae1", "cpp": "#2ca02c", "cupy": "#9467bd", "torch": "#d62728",
               "sklearn": "#ff7f0e"}
    for ax, name in zip(axes, names):
        rows = [(impl, table[name][impl][0], table[name][impl][2]) for impl in ORDER if impl in table[name]]
        labels = [NAMES[impl] for impl, _, _ in rows]
        seconds = [s for _, s, _ in rows]
        ax.barh(labels, seconds, color=[colours[impl] for impl, _, _ in rows])
        ax.axvline(rows[0][2] / rate, color="black", linestyle="--", linewidth=1, label="GEMM roofline")
        ax.invert_yaxis()
        for y, value in enumerate(seconds):
            ax.text(value, y, f" {value:.3g} s", va="center", fontsize=8)
        ax.set_xlim(0, max(seconds) * 1.18)
        ax.set_title(f"{name}: {WORKLOADS[name].description} (seconds per epoch, lower is better)", fontsize=10)
        ax.legend(loc="upper right", fontsize=8)
    fig.savefig(path, dpi=90)


def versions():
    found = {}
    for module in ("numpy", "numba", "torch", "sklearn"):
        try:
            found[module] = __import__(module).__version__
        except Exception:
            pass
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("json")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "RESULTS.md"))
    parser.add_argument("--command", default="MLP_DATA_DIR=../shared/data/mnist .venv/bin/python -m pytest bench "
                                              "--benchmark-json bench/results.json && .venv/bin/python bench/report.py bench/results.json "
                                              "--plot bench/results.png")
    parser.add_argument("--plot", help="also draw the table as a PNG here (needs matplotlib)")
    args = parser.parse_args()
    data = json.loads(Path(args.json).read_text())
    text = render(data, args.command)
    if args.plot:
        plot(data, args.plot)
        text += f"\n![seconds per epoch]({Path(args.plot).name})\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
