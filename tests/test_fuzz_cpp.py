"""Hostile files against the C++ port: the libFuzzer harnesses (cpp/fuzz/) replayed over their seed
corpus and run for a bounded time under AddressSanitizer + UBSan, and the command line fed crafted
model and data files (memory safety, allocation before validation, decompression bombs, planted
symlinks, /dev/zero, FIFOs and folders).

The fuzzers need Clang (Debian: `apt-get install clang`); without it those tests skip, except when
$CI is set: then they fail (.ci/run installs Clang). $MLP_FUZZ_SECONDS sets each fuzzer's run
(default 30 s); a crash leaves its input in the test's temporary folder: copy it into
cpp/fuzz/corpus/<harness>/crash-<name> once fixed, so that every later run replays it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import resource
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CPP = REPO / "cpp"
FUZZ = CPP / "fuzz"
CORPUS = FUZZ / "corpus"
HARNESSES = ("npz", "inflate", "json", "data")
BUILD_TIMEOUT = 900
JOBS = "2"


def _load_corpus_module():
    spec = importlib.util.spec_from_file_location("mlp_fuzz_corpus", FUZZ / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus_module()


def unavailable(message):
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: these tests must run, not skip)")
    pytest.skip(message)


def _run_build(commands):
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        if result.returncode != 0:
            pytest.fail(
                f"{' '.join(map(str, command))} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )


def build_cli(config=None, tmp_path_factory=None):
    """The Release build of cpp/ (mlp-cpp), in $MLP_CPP_BUILD_DIR or the pytest cache as
    tests/test_cpp.py builds it (cmake rebuilds only what changed); returns the mlp-cpp path."""
    if shutil.which("cmake") is None or not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        unavailable("cannot build the C++ port: cmake or a C++ compiler is missing")
    if os.environ.get("MLP_CPP_BUILD_DIR"):
        build = Path(os.environ["MLP_CPP_BUILD_DIR"]).resolve()
    elif config is not None and getattr(config, "cache", None) is not None:
        build = Path(config.cache.mkdir("mlp_cpp_build"))
    else:
        build = tmp_path_factory.mktemp("mlp_cpp_build")
    build.mkdir(parents=True, exist_ok=True)
    _run_build(
        [
            ["cmake", "-S", str(CPP), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"],
            ["cmake", "--build", str(build), "-j", JOBS, "--target", "mlp-cpp"],
        ]
    )
    exe = build / "mlp-cpp"
    assert exe.exists(), f"{exe} was not built"
    return exe


@pytest.fixture(scope="session")
def mlp_cpp(request, tmp_path_factory):
    return build_cli(request.config, tmp_path_factory)


@pytest.fixture(scope="session")
def fuzz_build(request, tmp_path_factory):
    """cpp/fuzz built with clang++ (-fsanitize=fuzzer,address,undefined); returns the folder."""
    clang = shutil.which("clang++")
    if clang is None:
        unavailable("the fuzz harnesses need clang++ with libFuzzer (Debian: apt-get install clang)")
    if os.environ.get("MLP_CPP_BUILD_DIR"):
        build = Path(os.environ["MLP_CPP_BUILD_DIR"]).resolve().parent / (
            Path(os.environ["MLP_CPP_BUILD_DIR"]).name + "-fuzz"
        )
    elif getattr(request.config, "cache", None) is not None:
        build = Path(request.config.cache.mkdir("mlp_cpp_fuzz_build"))
    else:
        build = tmp_path_factory.mktemp("mlp_cpp_fuzz_build")
    _run_build(
        [
            ["cmake", "-S", str(FUZZ), "-B", str(build), f"-DCMAKE_CXX_COMPILER={clang}"],
            ["cmake", "--build", str(build), "-j", JOBS],
        ]
    )
    return build


def _no_sanitizer_report(output):
    return not re.search(r"Sanitizer|runtime error:|deadly signal|out-of-memory|malloc limit", output)


# ---- the fuzzers -------------------------------------------------------------------------------------


def test_corpus_is_current():
    """make_corpus.py and the committed seed corpus list the same files (regression files crash-*
    aside). Bytes are not compared: another zlib may compress the same input differently."""
    for harness, files in corpus.corpus_files().items():
        folder = CORPUS / harness
        on_disk = {p.name for p in folder.iterdir() if not p.name.startswith("crash-")}
        assert on_disk == set(files), f"{folder}: run `python cpp/fuzz/make_corpus.py` and commit the corpus"


# libFuzzer's -rss_limit_mb reads the process's peak RSS (getrusage), and Linux carries the RSS of the
# forked copy of this pytest process into it across exec: after tests that grew pytest past 2 GiB,
# every fuzzer "ran out of memory" on its first, empty input. A shell in between forks again, so the
# fuzzer starts with its own, small peak.
def _fresh_process(command):
    return ["sh", "-c", '"$@"; exit $?', "sh", *command]


@pytest.mark.parametrize("harness", HARNESSES)
def test_corpus_replays_clean_under_asan(fuzz_build, harness):
    """Every corpus file (valid, crafted hostile, and every past crash) runs once through its harness
    under ASan + UBSan: no report, no crash, no leak."""
    files = sorted(str(p) for p in (CORPUS / harness).iterdir())
    assert files, f"empty corpus for {harness}"
    result = subprocess.run(
        _fresh_process(
            [str(fuzz_build / f"fuzz_{harness}"), "-rss_limit_mb=2048", "-malloc_limit_mb=1024", *files]
        ),
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0 and _no_sanitizer_report(output), output[-6000:]
    assert output.count("Executed ") == len(files), output[-3000:]


@pytest.mark.parametrize("harness", HARNESSES)
def test_fuzzer_runs_clean(fuzz_build, harness, tmp_path):
    """libFuzzer mutates the seed corpus for $MLP_FUZZ_SECONDS (default 30) under ASan + UBSan, with
    memory capped: any crash, sanitizer report, leak, timeout or oversized allocation fails.

    With $MLP_FUZZ_RUNS set (CI sets it) the run is the same every time: that many inputs from the
    fixed seed $MLP_FUZZ_SEED, still cut at the time limit, so a green run before a commit is the run
    CI makes (a faster machine does not explore further than what was checked)."""
    seconds = int(os.environ.get("MLP_FUZZ_SECONDS", "30"))
    run_count = os.environ.get("MLP_FUZZ_RUNS")
    repeatable = (
        [f"-runs={int(run_count)}", f"-seed={int(os.environ.get('MLP_FUZZ_SEED', '1'))}"] if run_count else []
    )
    work = tmp_path / "corpus"
    work.mkdir()
    command = [
        str(fuzz_build / f"fuzz_{harness}"),
        *repeatable,
        f"-max_total_time={seconds}",
        "-rss_limit_mb=2048",
        "-malloc_limit_mb=1024",
        "-timeout=20",
        "-max_len=65536",
        "-print_final_stats=1",
        f"-artifact_prefix={tmp_path}/",
        str(work),
        str(CORPUS / harness),
    ]
    dictionary = FUZZ / f"{harness}.dict"
    if dictionary.exists():
        command.insert(1, f"-dict={dictionary}")
    result = subprocess.run(_fresh_process(command), capture_output=True, text=True, timeout=seconds + 300)
    output = result.stdout + result.stderr
    crashes = sorted(
        p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "leak-", "oom-", "timeout-"))
    )
    assert result.returncode == 0 and not crashes, (
        f"fuzz_{harness} found a failing input: {crashes} in {tmp_path}; fix it, then copy the input to "
        f"cpp/fuzz/corpus/{harness}/crash-<name>\n" + output[-6000:]
    )
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", output)
    assert runs and int(runs.group(1)) > 0, output[-3000:]
    print(f"fuzz_{harness}: {runs.group(1)} executions in at most {seconds} s, clean")


# ---- the command line on hostile files ------------------------------------------------------------------


def _limit_memory(megabytes):
    def apply():
        limit = megabytes << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply


def run_cli(exe, *args, memory_mb=None, timeout=60, preexec=None):
    result = subprocess.run(
        [str(exe), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec or (_limit_memory(memory_mb) if memory_mb else None),
    )
    return result


def assert_clean_error(result, *fragments):
    """Exit status 1 and one line on stderr naming the problem (no abort, no sanitizer, no std::bad_alloc)."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, (
        f"exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    )
    assert len(lines) == 1 and lines[0].startswith("mlp-cpp: error: "), result.stderr[-4000:]
    assert "bad_alloc" not in lines[0] and "terminate" not in lines[0], lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in: {lines[0]}"


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """A test split of 2x2 images (4 features, labels 0 and 1) matching corpus.model_npz's 4-3-2 models."""
    folder = tmp_path_factory.mktemp("tiny_data")
    n, rows, cols = 6, 2, 2
    pixels = bytes((i * 41) % 256 for i in range(n * rows * cols))
    import struct

    (folder / "test.mlpd").write_bytes(
        b"MLPD" + struct.pack("<IIII", 1, n, rows, cols) + pixels + bytes([0, 1] * 3)
    )
    return folder


def _model(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_valid_models_evaluate(mlp_cpp, tiny_data, tmp_path):
    for name in (
        "valid_v1_nan_history.npz",
        "valid_v2.npz",
        "valid_v2_compressed.npz",
        "valid_v2_float64.npz",
        "valid_v2_no_preprocessing.npz",
        "valid_v2_null_preprocessing.npz",
        "valid_v3.npz",
        "valid_v3_batch_norm_before.npz",
        "valid_v3_batch_norm_after_compressed.npz",
        "valid_v3_batch_norm_float64.npz",
        "valid_v3_batch_norm_zero_var.npz",
        "bomb_extra_entry.npz",
    ):
        result = run_cli(
            mlp_cpp, "evaluate", _model(tmp_path, name, corpus.hostile_models()[name]), "--data", tiny_data
        )
        assert result.returncode == 0, f"{name}: {result.stderr}"
        assert "test accuracy" in result.stdout


def test_zip64_offsets_near_2_64_are_refused(mlp_cpp, tiny_data, tmp_path):
    """1. Memory safety: ZIP64 offsets near 2^64 once wrapped the bounds checks around."""
    models = corpus.hostile_models()
    for name in ("zip64_record_near_2_64.npz", "zip64_local_near_2_64.npz"):
        assert_clean_error(
            run_cli(mlp_cpp, "evaluate", _model(tmp_path, name, models[name]), "--data", tiny_data), name
        )


def test_sizes_are_checked_before_allocating(mlp_cpp, tiny_data, tmp_path):
    """2. Absurd sizes in the metadata (and in the archive's directory) are refused before the weights
    are allocated: the process stays under a 512 MiB address-space limit."""
    models = corpus.hostile_models()
    cases = {
        "absurd_sizes.npz": "parameters",  # 10^16 parameters
        "absurd_sizes_declared.npz": "cannot be",  # 3.6 GB declared, 100 bytes stored
    }
    for name, fragment in cases.items():
        result = run_cli(
            mlp_cpp, "evaluate", _model(tmp_path, name, models[name]), "--data", tiny_data, memory_mb=512
        )
        assert_clean_error(result, fragment)
    # metadata and directory agree on 30000 x 300 (36 MB) but the array is (4, 3): refused before reading
    meta = corpus.model_metadata((30000, 300, 2))
    result = run_cli(
        mlp_cpp,
        "evaluate",
        _model(tmp_path, "shape.npz", corpus.model_npz(meta=meta)),
        "--data",
        tiny_data,
        memory_mb=512,
    )
    assert_clean_error(result, "W0")


def _deflated_zeros(prefix, zeros):
    stream = corpus.zlib.compressobj(9, corpus.zlib.DEFLATED, -15)
    chunk = bytes(1 << 20)
    parts = (
        [stream.compress(prefix)] + [stream.compress(chunk) for _ in range(zeros >> 20)] + [stream.flush()]
    )
    return b"".join(parts)


def test_decompression_bombs_stop_at_the_declared_size(mlp_cpp, tiny_data, tmp_path):
    """3. With 256 MiB of address space: a W0 declaring its true 176 bytes whose DEFLATE stream goes
    on for 1 GiB is decoded up to those 176 bytes only (then CRC-checked, as Python's zipfile does);
    an unknown entry of 1 GiB (honestly declared) is never inflated; duplicates are refused."""
    models = corpus.hostile_models()
    sizes = (4, 3, 2)
    good = corpus.model_arrays(sizes)
    real = corpus.npy_bytes(good["W0"])
    rest = [(f"{k}.npy", corpus.npy_bytes(v)) for k, v in good.items() if k != "W0"]
    meta = [("metadata.npy", corpus.metadata_bytes(corpus.model_metadata(sizes)))]
    gib = 1 << 30
    stream = _deflated_zeros(real, gib)  # real + 1 GiB of zeros, about 1 MiB
    bomb = corpus.zip_archive(
        [{"name": "W0.npy", "data": real, "method": 8, "compressed": stream}, *rest, *meta]
    )
    result = run_cli(
        mlp_cpp, "evaluate", _model(tmp_path, "bomb.npz", bomb), "--data", tiny_data, memory_mb=256
    )
    assert result.returncode == 0 and "test accuracy" in result.stdout, result.stderr
    unknown = corpus.zip_archive(
        [
            ("W0.npy", real),
            *rest,
            *meta,
            {
                "name": "junk.npy",
                "data": b"",
                "method": 8,
                "compressed": stream,
                "usize": len(real) + gib,
                "crc": 0,
            },
        ]
    )
    result = run_cli(
        mlp_cpp, "evaluate", _model(tmp_path, "unknown.npz", unknown), "--data", tiny_data, memory_mb=256
    )
    assert result.returncode == 0 and "test accuracy" in result.stdout, result.stderr
    # W0 declared as 1 GiB: refused before inflating (the metadata's (4, 3) needs at most 4 KiB)
    declared = corpus.zip_archive(
        [
            {"name": "W0.npy", "data": real, "method": 8, "compressed": stream, "usize": len(real) + gib},
            *rest,
            *meta,
        ]
    )
    assert_clean_error(
        run_cli(
            mlp_cpp,
            "evaluate",
            _model(tmp_path, "declared.npz", declared),
            "--data",
            tiny_data,
            memory_mb=256,
        ),
        "W0",
    )
    for name in ("duplicate_W0.npz", "duplicate_metadata.npz"):
        assert_clean_error(
            run_cli(mlp_cpp, "evaluate", _model(tmp_path, name, models[name]), "--data", tiny_data),
            "two entries",
        )


def test_gzip_idx_bomb_stops_at_the_header_size(mlp_cpp, tmp_path):
    """3. An IDX .gz whose header announces 3 images followed by 1 GiB of zeros: refused with a
    message, under a 256 MiB address-space limit."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "t10k-images-idx3-ubyte.gz").write_bytes(corpus.gzip_zeros(corpus.idx_images(3, 2, 2), 1 << 30))
    (data / "t10k-labels-idx1-ubyte.gz").write_bytes(corpus.gzip_bytes(corpus.idx_labels([0, 1, 0])))
    model = _model(tmp_path, "m.npz", corpus.model_npz())
    result = run_cli(mlp_cpp, "evaluate", model, "--data", data, memory_mb=256)
    assert_clean_error(result, "t10k-images-idx3-ubyte.gz")
    # a header announcing 2^32 images of 4096x4096 is refused from the header alone
    (data / "t10k-images-idx3-ubyte.gz").write_bytes(
        corpus.gzip_bytes(b"\0\0\x08\x03\xff\xff\xff\xff\0\0\x10\0\0\0\x10\0")
    )
    assert_clean_error(run_cli(mlp_cpp, "evaluate", model, "--data", data, memory_mb=256), "limit")


def _dead_pid():
    pid_max = (
        int(Path("/proc/sys/kernel/pid_max").read_text())
        if Path("/proc/sys/kernel/pid_max").exists()
        else 32768
    )
    for pid in range(pid_max - 1, 1, -1):
        if not Path(f"/proc/{pid}").exists():
            return pid
    pytest.skip("no free process id found")


def _train_args(data, out):
    return [
        "train",
        "--data",
        data,
        "--hidden",
        "3",
        "--epochs",
        "1",
        "--batch-size",
        "2",
        "--quiet",
        "--out",
        out,
    ]


@pytest.fixture(scope="module")
def tiny_train_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny_train")
    import struct

    for split in ("train", "test"):
        n = 8
        pixels = bytes((i * 53) % 256 for i in range(n * 4))
        (folder / f"{split}.mlpd").write_bytes(
            b"MLPD" + struct.pack("<IIII", 1, n, 2, 2) + pixels + bytes([0, 1] * 4)
        )
    return folder


def test_save_never_follows_a_planted_symlink(mlp_cpp, tiny_train_data, tmp_path):
    """4. Symlinks planted at the names earlier versions used ("PATH.tmp-PID", "PATH.probe-PID", PID
    known in advance) are neither followed nor truncated: the victim file keeps its bytes."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "model.npz"

    def plant():  # runs in the child, after fork and before exec: the pid mlp-cpp will have
        pid = os.getpid()
        for suffix in (f".tmp-{pid}", f".probe-{pid}"):
            os.symlink(victim, f"{out}{suffix}")

    result = subprocess.run(
        [str(mlp_cpp), *map(str, _train_args(tiny_train_data, out))],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=plant,
    )
    assert result.returncode == 0, result.stderr
    assert victim.read_text() == "precious"
    assert out.is_file() and not out.is_symlink()
    mode = stat.S_IMODE(out.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask, oct(mode)
    leftovers = sorted(p.name for p in tmp_path.iterdir() if ".tmp-" in p.name and not p.is_symlink())
    assert leftovers == [], leftovers


def test_stale_temporaries_of_a_killed_save_are_removed(mlp_cpp, tiny_train_data, tmp_path):
    """4. Temporary files left by a save that was killed (its process is gone) are removed by the next
    save to the same path; a symlink with such a name and files of live processes are left alone."""
    out = tmp_path / "model.npz"
    dead = _dead_pid()
    stale = [tmp_path / f"model.npz.tmp-{dead}", tmp_path / f"model.npz.tmp-{dead}-0123456789ab"]
    for path in stale:
        path.write_bytes(b"half-written")
    alive = tmp_path / f"model.npz.tmp-{os.getpid()}-00ff"
    alive.write_bytes(b"someone is writing this")
    link = tmp_path / f"model.npz.tmp-{dead}-beef"
    link.symlink_to(tmp_path / "elsewhere")
    other = tmp_path / f"other.npz.tmp-{dead}"
    other.write_bytes(b"not ours")
    result = run_cli(mlp_cpp, *_train_args(tiny_train_data, out), timeout=120)
    assert result.returncode == 0, result.stderr
    assert not any(path.exists() for path in stale)
    assert alive.exists() and link.is_symlink() and other.exists()


def test_model_path_must_be_a_regular_file(mlp_cpp, tiny_data, tmp_path):
    """5. /dev/zero, a FIFO (no writer: must not block) and a folder given as a model are refused at once."""
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    for path, fragment in (
        ("/dev/zero", "not a regular file"),
        (fifo, "not a regular file"),
        (tmp_path, "folder"),
    ):
        assert_clean_error(
            run_cli(mlp_cpp, "evaluate", path, "--data", tiny_data, memory_mb=512, timeout=20), fragment
        )


def test_data_headers_are_checked_before_allocating(mlp_cpp, tmp_path):
    """5. Data files whose headers announce more than the file holds fail with a message, using
    little memory."""
    import struct

    data = tmp_path / "data"
    data.mkdir()
    model = _model(tmp_path, "m.npz", corpus.model_npz())
    (data / "test.mlpd").write_bytes(b"MLPD" + struct.pack("<IIII", 1, 0xFFFFFFFF, 4096, 4096))
    assert_clean_error(run_cli(mlp_cpp, "evaluate", model, "--data", data, memory_mb=256), "test.mlpd")
    (data / "test.mlpd").unlink()
    (data / "t10k-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 0x803, 0xFFFFFFFF, 28, 28))
    (data / "t10k-labels-idx1-ubyte").write_bytes(corpus.idx_labels([0]))
    assert_clean_error(
        run_cli(mlp_cpp, "evaluate", model, "--data", data, memory_mb=256), "t10k-images-idx3-ubyte"
    )


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
