"""The benchmark suite's own code (bench/report.py, bench/workloads.py): where the report goes, what it
reads from the results file, and how the C++ port's epoch lines are parsed. No benchmark runs here."""

import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
sys.path.insert(0, str(BENCH))

report = pytest.importorskip("report")
workloads = pytest.importorskip("workloads")

MACHINE = {
    "cpu_model": "Test CPU 9000",
    "vector_extensions": ["avx2", "avx512bw", "avx512f"],
    "cores": 2,
    "blas": "openblas 0.3 (Haswell, pthreads)",
}


def results(machine=MACHINE, busy=None):
    """A small pytest-benchmark results dict: SGEMM, B1 for two implementations, optionally a busy run."""
    flops = workloads.WORKLOADS["B1"].gemm_flops(60000)
    benchmarks = [
        {
            "stats": {"median": 0.08, "rounds": 9},
            "extra_info": {"implementation": "sgemm", "flops": 2 * 2048**3},
        },
        {
            "stats": {"median": 0.2, "rounds": 7},
            "extra_info": {"workload": "B1", "implementation": "numba", "gemm_flops": flops},
        },
        {
            "stats": {"median": 0.5, "rounds": 7},
            "extra_info": {"workload": "B1", "implementation": "torch", "gemm_flops": flops},
        },
    ]
    if busy is not None:
        benchmarks.append({"stats": {"median": 30.0, "rounds": 1}, "extra_info": busy})
    info = {"python_version": "3.11.7", "mlp_versions": {"numpy": "9.9"}}
    if machine is not None:
        info["mlp_machine"] = machine
    return {"machine_info": info, "datetime": "2026-12-01T04:00:00", "benchmarks": benchmarks}


def busy_run(auto_busy=0.5, auto_quiet=0.35, unmanaged_quiet=0.36):
    def variant(quiet, busy, threads, managed, first=()):
        return {
            "quiet": [quiet] * 3,
            "busy": [busy] * 3,
            "first_busy": list(first),
            "threads": {"quiet": [threads[0]] * 3, "busy": [threads[1]] * 3},
            "others_load": {"quiet": [0.02, 0.03, 0.04], "busy": [1.0] * 3},
            "quiet_median": quiet,
            "busy_median": busy,
            "ratio": busy / quiet,
            "managed": managed,
        }

    return {
        "busy_workload": "B1",
        "implementation": "numba",
        "loadavg_before": "0.10 0.20 0.30",
        "loadavg_after": "1.10 0.40 0.35",
        "variants": {
            "numba_auto": variant(auto_quiet, auto_busy, (2, 1), True, first=[1.3, 1.2, 1.4]),
            "numba_unmanaged": variant(unmanaged_quiet, 9.0, (2, 2), False),
        },
    }


def write(tmp_path, data, name="results.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def committed_results():
    """bench/RESULTS.md as committed, to check that it is left alone."""
    path = BENCH / "RESULTS.md"
    if not path.exists():
        pytest.skip("bench/RESULTS.md is not in this checkout")
    before = path.read_bytes(), path.stat().st_mtime_ns
    yield path
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before, "report.py touched bench/RESULTS.md"


def test_report_writes_where_it_is_told_and_leaves_results_md_alone(tmp_path, committed_results, capsys):
    out = tmp_path / "elsewhere.md"
    report.main([str(write(tmp_path, results())), "--out", str(out)])
    text = out.read_text()
    assert text.startswith("# Benchmark results")
    assert "| mlp, Numba engine | 0.200 | 7 | 0.40 |" in text
    assert capsys.readouterr().out == ""


def test_report_without_out_goes_to_stdout_only(tmp_path, committed_results, capsys):
    report.main([str(write(tmp_path, results()))])
    assert "# Benchmark results" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_report_names_the_machine_recorded_in_the_file_not_this_one(tmp_path, capsys):
    report.main([str(write(tmp_path, results()))])
    text = capsys.readouterr().out
    assert "Test CPU 9000; vector extensions: AVX2, AVX-512BW, AVX-512F; 2 cores visible" in text
    assert "Versions: numpy 9.9." in text


def test_report_carries_a_note_on_the_conditions(tmp_path, capsys):
    report.main([str(write(tmp_path, results())), "--note", "two other test runs kept 1.5 cores busy"])
    assert "**Conditions:** two other test runs kept 1.5 cores busy" in capsys.readouterr().out


def test_report_says_when_the_machine_was_not_recorded(tmp_path, capsys):
    report.main([str(write(tmp_path, results(machine=None)))])
    assert "Machine: not recorded in the results file" in capsys.readouterr().out


def test_a_bad_results_file_leaves_the_old_report_in_place(tmp_path):
    out = tmp_path / "RESULTS.md"
    out.write_text("the old report\n")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SystemExit, match="cannot read"):
        report.main([str(bad), "--out", str(out)])
    with pytest.raises(SystemExit, match="not a pytest-benchmark JSON file"):
        report.main([str(write(tmp_path, {"benchmarks": "x"}, "odd.json")), "--out", str(out)])
    assert out.read_text() == "the old report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["RESULTS.md", "bad.json", "odd.json"]


def test_results_from_two_machines_are_not_merged(tmp_path):
    first = write(tmp_path, results(), "a.json")
    second = write(tmp_path, results(machine=dict(MACHINE, cpu_model="Another CPU")), "b.json")
    with pytest.raises(SystemExit, match="measured on another machine"):
        report.main([str(first), str(second)])


def test_busy_section_gives_ratios_threads_and_the_goal(tmp_path, capsys):
    report.main([str(write(tmp_path, results(busy=busy_run())))])
    text = capsys.readouterr().out
    assert "## B1 on a busy machine" in text
    assert (
        "| mlp, Numba engine, automatic threads (default) | 2 / 1 | 0.350 | 0.500 | **1.43** | 1.300 | 3 | 0.03 |"
        in text
    )
    assert (
        "| mlp, Numba engine, BLAS threads left alone (before) | 2 / 2 | 0.360 | 9.000 | **25.00** | – | 3 |"
        in text
    )
    assert "busy / quiet 1.43 (met), quiet epoch 0.97 × the unmanaged one" in text
    assert "numba: 0.10 0.20 0.30 before" in text


def test_busy_goal_missed_is_said(tmp_path, capsys):
    report.main([str(write(tmp_path, results(busy=busy_run(auto_busy=1.0))))])
    assert "busy / quiet 2.86 (missed)" in capsys.readouterr().out


def test_plot_is_written_beside_the_report_with_a_relative_link(tmp_path):
    pytest.importorskip("matplotlib")
    out, picture = tmp_path / "RESULTS.md", tmp_path / "pictures" / "results.png"
    picture.parent.mkdir()
    report.main([str(write(tmp_path, results(busy=busy_run()))), "--out", str(out), "--plot", str(picture)])
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![seconds per epoch](pictures/results.png)" in out.read_text()


def test_report_refuses_an_output_folder_that_does_not_exist(tmp_path):
    with pytest.raises(SystemExit):
        report.main([str(write(tmp_path, results())), "--out", str(tmp_path / "missing" / "R.md")])


# ---- the C++ port's epoch lines ---------------------------------------------------------------
CPP_OUTPUT = """data: 60000 training images of 28x28 from /tmp/x; 100 test images
epoch 1/3  loss 0.4123  acc 0.8811  lr 1.00e-03  cpu 0.262s  0.141s
epoch 2/3  loss 0.2011  acc 0.9411  lr 1.00e-03  cpu 0.250s  0.136s
epoch 3/3  loss 0.1500  acc 0.9555  lr 1.00e-03  cpu 12.000s  7.5s
model: 784-128-64-10
training time: 7.777s
test accuracy 0.9500  (loss 0.1600, 100 images)
"""


def test_cpp_epoch_seconds_are_the_wall_seconds_only():
    assert workloads.cpp_epoch_seconds(CPP_OUTPUT) == [0.141, 0.136, 7.5]


def test_cpp_epoch_line_in_another_format_is_an_error():
    with pytest.raises(ValueError, match="one wall-clock figure"):
        workloads.cpp_epoch_seconds("epoch 1/3  loss 0.4  0.2s  0.1s\n")
    with pytest.raises(ValueError, match="found 0"):
        workloads.cpp_epoch_seconds("epoch 1/3  loss 0.4\n")


def test_machine_names_the_cpu_and_its_vector_extensions():
    info = workloads.machine()
    assert info["cpu_model"] and isinstance(info["vector_extensions"], list)
    assert all(e == "avx2" or e.startswith("avx512") for e in info["vector_extensions"])
    line = workloads.describe_machine(info)
    assert info["cpu_model"] in line and "vector extensions:" in line
