"""The C++ port (cpp/): build it, run its ctest suite, check the golden vectors are current, train and
evaluate with its command line, exchange model and data files with the Python package, and feed it
malformed flags and files.

Three builds:
- the main one, with the system libraries CMake finds (zlib, a CBLAS); when $CI is set both are
  required (-DMLP_USE_ZLIB=ON -DMLP_USE_CBLAS=ON), so CI cannot quietly test without them;
- the no-libraries configuration (-DMLP_USE_ZLIB=OFF -DMLP_USE_CBLAS=OFF: the own inflate and GEMM
  only), under AddressSanitizer + UndefinedBehaviorSanitizer when $MLP_CPP_SANITIZE is set (as in CI);
- with $MLP_CPP_SANITIZE, a ThreadSanitizer build of the unit tests that hammer the thread pool.

The main build goes to $MLP_CPP_BUILD_DIR if set, the others beside it (`-nolib`, `-tsan`); else to
folders in the pytest cache (reused between runs; cmake rebuilds only what changed). Without cmake or
a C++ compiler the tests skip, except when $CI is set: then they fail, so a CI image that lost its
compiler cannot pass silently.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
CPP = REPO / "cpp"
GOLDEN = REPO / "tests" / "golden"
BUILD_TIMEOUT = 600
# At most two compile jobs: CI machines and the development VM have two cores.
JOBS = str(min(2, max(1, os.cpu_count() or 1)))


def _missing_tools():
    missing = [tool for tool in ("cmake", "ctest") if shutil.which(tool) is None]
    if not any(shutil.which(cxx) for cxx in (os.environ.get("CXX", "c++"), "c++", "g++", "clang++")):
        missing.append("a C++ compiler (c++/g++/clang++)")
    return missing


def _unavailable(message):
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: these tests must run, not skip)")
    pytest.skip(message)


def _build_dir(request, suffix):
    """$MLP_CPP_BUILD_DIR + suffix, else a folder of that name in the pytest cache (or a temporary one)."""
    if os.environ.get("MLP_CPP_BUILD_DIR"):
        build = Path(os.environ["MLP_CPP_BUILD_DIR"] + suffix).resolve()
        build.mkdir(parents=True, exist_ok=True)
        return build
    if getattr(request.config, "cache", None) is not None:
        return Path(request.config.cache.mkdir("mlp_cpp_build" + suffix.replace("-", "_")))
    return request.getfixturevalue("tmp_path_factory").mktemp("mlp_cpp_build" + suffix.replace("-", "_"))


def _configure_and_build(build, options, targets=()):
    """cmake configure + build (at most two jobs); fails the test with the tail of the output."""
    missing = _missing_tools()
    if missing:
        _unavailable("cannot build the C++ port: missing " + ", ".join(missing))
    build_command = ["cmake", "--build", str(build), "-j", JOBS]
    for target in targets:
        build_command += ["--target", target]
    for command in (["cmake", "-S", str(CPP), "-B", str(build), *options], build_command):
        result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        if result.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return build


def _ctest(build, env=None):
    result = subprocess.run(
        ["ctest", "--test-dir", str(build), "--output-on-failure"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="session")
def cpp_build(request):
    """Configure and build cpp/ once per session, with the system libraries; returns the build folder."""
    # In CI the libraries must be there (.ci/run installs them): ON fails the configure step otherwise.
    # Elsewhere "ON when found" is CMake's own default, so options given earlier are not overridden.
    required = ["-DMLP_USE_ZLIB=ON", "-DMLP_USE_CBLAS=ON"] if os.environ.get("CI") else []
    return _configure_and_build(
        _build_dir(request, ""), ["-DCMAKE_BUILD_TYPE=Release", "-DMLP_SANITIZE=OFF", *required]
    )


def _runner(exe):
    assert exe.exists(), f"{exe} was not built"

    def run(*args, check=True, timeout=300):
        result = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                f"mlp-cpp {' '.join(map(str, args))} exited {result.returncode}:\n{result.stderr}"
            )
        return result

    run.exe = exe
    return run


@pytest.fixture(scope="session")
def cli(cpp_build):
    return _runner(cpp_build / "mlp-cpp")


def _test_accuracy(stdout):
    for line in stdout.splitlines():
        if line.startswith("test accuracy"):
            return float(line.split()[2])
    raise AssertionError(f"no 'test accuracy' line in:\n{stdout}")


# ---- the ctest suite and the golden vectors ----------------------------------------------------------


def test_ctest_suite(cpp_build):
    """Unit tests (GEMM, finite-difference gradients, gzip, npz, JSON, thread pool), the golden vectors
    (also through the CBLAS products when linked), the CLI script."""
    _ctest(cpp_build)


def test_version_names_the_libraries(cli):
    """`mlp-cpp version` says which GEMM and which inflate the build uses; in CI, zlib and a CBLAS."""
    line = cli("version").stdout
    assert line.startswith("mlp-cpp ") and "gemm own (" in line and "inflate " in line, line
    if os.environ.get("CI"):
        assert "inflate zlib" in line and "also blas (" in line, line


def test_gemm_choice(cli, tmp_path):
    """--gemm and $MLP_GEMM pick the product; an unknown name (or blas in a build without one) is a
    one-line usage error; both products train to the same accuracy on the tiny data set."""
    data = CPP / "tests" / "data" / "tiny"
    accuracies = {}
    for choice in ("own", "blas"):
        result = cli(
            "train",
            "--data",
            data,
            "--hidden",
            "16",
            "--epochs",
            "3",
            "--seed",
            "1",
            "--gemm",
            choice,
            "--dropout",
            "0",
            check=False,
        )
        if choice == "blas" and "also blas" not in cli("version").stdout:
            _assert_clean_failure(result, code=2)
            assert "no CBLAS" in result.stderr
            continue
        assert result.returncode == 0, result.stderr
        accuracies[choice] = _test_accuracy(result.stdout)
    if len(accuracies) == 2:
        assert accuracies["own"] == pytest.approx(accuracies["blas"], abs=0.02)
    _assert_clean_failure(cli("train", "--data", data, "--gemm", "mkl", check=False), code=2)
    exe = cli.exe
    result = subprocess.run(
        [str(exe), "train", "--data", str(data), "--epochs", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MLP_GEMM": "fast"},
    )
    _assert_clean_failure(result, code=2)
    assert "$MLP_GEMM" in result.stderr


def test_help_prints_the_defaults_of_the_one_table(cli):
    """Every default in `mlp-cpp train --help` comes from train_defaults.hpp (generated from
    mlp/options.py); spot-check those that once drifted (epochs, dropout)."""
    header = (CPP / "src" / "train_defaults.hpp").read_text()

    def constant(name):
        for line in header.splitlines():
            if f" {name} = " in line:
                return line.split("=", 1)[1].split(";")[0].strip().strip('"')
        raise AssertionError(f"{name} not in train_defaults.hpp")

    text = cli("train", "--help").stdout
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith("  --")}
    assert rows["--epochs"].rstrip().endswith(f"[{constant('kEpochs')}]")
    assert rows["--dropout"].rstrip().endswith(f"[{float(constant('kDropout')):g}]")
    assert rows["--optimizer"].rstrip().endswith(f"[{constant('kOptimizer')}]")
    assert rows["--schedule"].rstrip().endswith(f"[{constant('kSchedule')}]")
    for flag in (
        "--hidden",
        "--batch-size",
        "--lr",
        "--momentum",
        "--activation",
        "--loss",
        "--init",
        "--weight-decay",
        "--clip-value",
        "--clip-norm",
        "--seed",
    ):
        assert rows[flag].rstrip().endswith("]"), rows[flag]


def test_golden_vectors_are_current():
    """Regenerating the golden vectors from the Python implementation reproduces the committed files:
    byte for byte on the machine that wrote them; elsewhere a BLAS may round the last bit differently,
    which is accepted when the largest difference stays within a few eps."""
    result = subprocess.run(
        [sys.executable, str(GOLDEN / "generate.py"), "--check"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode in (0, 2), (
        "golden vectors are stale: run `python tests/golden/generate.py` and commit tests/golden/*.bin\n"
        + result.stdout
        + result.stderr
    )
    if result.returncode == 2:
        worst = max(
            float(line.split("difference")[1].split()[0])
            for line in result.stdout.splitlines()
            if "eps" in line
        )
        assert worst <= 64, result.stdout


# ---- training and model files on the real MNIST -----------------------------------------------------


@pytest.fixture(scope="session")
def trained_model(cli, mnist_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("cpp_model") / "model.npz"
    result = cli(
        "train",
        "--data",
        mnist_dir,
        "--hidden",
        "64",
        "--epochs",
        "2",
        "--limit",
        "10000",
        "--batch-size",
        "64",
        "--seed",
        "1",
        "--out",
        out,
    )
    return out, result.stdout


def test_train_on_mnist(trained_model):
    _out, stdout = trained_model
    epochs = [line for line in stdout.splitlines() if line.startswith("epoch")]
    assert len(epochs) == 2
    losses = [float(line.split("loss")[1].split()[0]) for line in epochs]
    assert losses[1] < losses[0]
    assert _test_accuracy(stdout) > 0.88  # 2 short epochs with the default dropout (0.1)


def test_cpp_model_loads_in_python(trained_model, mnist_dir):
    """The .npz the port writes is a plain NumPy archive; the network it holds gives, in Python, the
    accuracy the port reported."""
    import mlp

    out, stdout = trained_model
    with np.load(out, allow_pickle=False) as archive:
        assert sorted(archive.files) == ["W0", "W1", "b0", "b1", "metadata"]
        params = [(archive["W0"], archive["b0"]), (archive["W1"], archive["b1"])]
        text = bytes(archive["metadata"]).decode("utf-8")
    meta = json.loads(text, parse_constant=lambda token: pytest.fail(f"{token} in strict JSON metadata"))
    assert meta["format"] == "mlp-model" and meta["format_version"] == 3 and meta["batch_norm"] is None
    assert meta["hidden_sizes"] == [64] and meta["n_features"] == 784 and meta["classes"] == list(range(10))
    assert meta["dtype"] == "float32" and params[0][0].dtype == np.float32 and params[0][0].shape == (784, 64)
    assert meta["preprocessing"]["input"] == "pixels / 255" and meta["producer"].startswith("mlp-cpp")
    _, (X_test, y_test) = mlp.datasets.load_mnist(mnist_dir)
    model = mlp.MLP(
        params, activation=meta["activation"], loss=meta["loss"], classes=np.asarray(meta["classes"])
    )
    assert model.score(X_test, y_test) == pytest.approx(_test_accuracy(stdout), abs=1.5e-4)
    load = getattr(mlp, "load", None)
    if load is not None:  # the package's own loader accepts the file and its history
        loaded = load(out)
        assert loaded.score(X_test, y_test) == model.score(X_test, y_test)
        assert len(loaded.history["loss"]) == 2


def _save_python_model(model, path):
    """A Python-trained model in the README's "The math, precisely" file format (MLP.save when the package has it)."""
    if hasattr(model, "save"):
        model.save(path)
        return
    arrays = {}
    for index, (W, b) in enumerate(model.get_weights()):
        arrays[f"W{index}"], arrays[f"b{index}"] = W, b
    meta = {
        "format": "mlp-model",
        "format_version": 1,
        "library_version": "0.1.0",
        "hidden_sizes": model.hidden_sizes,
        "activation": model.activation,
        "loss": model.loss,
        "n_features": model.n_features_in_,
        "classes": [int(c) for c in np.asarray(model.classes_)],
        "dtype": model.dtype,
        "preprocessing": {"normalize": True},
    }
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    np.savez(path, **arrays)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cpp_evaluates_python_model(cli, mnist_dir, tmp_path, dtype):
    import mlp

    (X_train, y_train), (X_test, y_test) = mlp.datasets.load_mnist(mnist_dir, dtype=dtype)
    model = mlp.fit(
        X_train[:3000],
        y_train[:3000],
        hidden_sizes=[32, 16],
        activation="tanh",
        epochs=2,
        dtype=dtype,
        seed=0,
    )
    path = tmp_path / "python_model.npz"
    _save_python_model(model, path)
    result = cli("evaluate", path, "--data", mnist_dir)
    assert _test_accuracy(result.stdout) == pytest.approx(model.score(X_test, y_test), abs=1.5e-4)
    assert "32 tanh -> 16 tanh" in result.stdout


def test_mlpd_files_both_ways(cli, mnist_dir, tmp_path):
    """The port reads the .mlpd files the Python converter writes, and writes ones Python reads."""
    import mlp

    (X_train, y_train), (X_test, y_test) = mlp.datasets.load_mnist(mnist_dir, normalize=False, dtype="uint8")
    python_dir = tmp_path / "from_python"
    python_dir.mkdir()
    mlp.datasets.write_binary(python_dir / "train.mlpd", X_train[:2000], y_train[:2000])
    mlp.datasets.write_binary(python_dir / "test.mlpd", X_test[:500], y_test[:500])
    result = cli(
        "train", "--data", python_dir, "--hidden", "32", "--epochs", "5", "--lr", "0.005", "--seed", "0"
    )
    assert "2000 training images" in result.stdout and _test_accuracy(result.stdout) > 0.8

    cpp_dir = tmp_path / "from_cpp"
    cpp_dir.mkdir()
    cli("convert", "--data", python_dir, "--out", cpp_dir)
    X, y = mlp.datasets.read_binary(cpp_dir / "test.mlpd")
    np.testing.assert_array_equal(X.reshape(len(X), -1), X_test[:500].reshape(500, -1))
    np.testing.assert_array_equal(y, y_test[:500])


# ---- real-valued targets: regression (squared_error) and multilabel (binary_cross_entropy) -----------


def _value_data(path, *, outputs, loss="squared_error", n_train=600, n_test=200, seed=0):
    """A smooth synthetic problem in the .npz layout the port reads for real-valued targets."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_train + n_test, 5))
    Y = np.tanh(X @ rng.standard_normal((5, outputs))) + 0.05 * rng.standard_normal(
        (n_train + n_test, outputs)
    )
    if loss == "binary_cross_entropy":
        Y = (Y > 0).astype(np.float64)
    if loss == "poisson":  # counts whose log-mean is the smooth function
        Y = rng.poisson(np.exp(Y)).astype(np.float64)
    if outputs == 1:
        Y = Y[:, 0]
    np.savez(path, X_train=X[:n_train], y_train=Y[:n_train], X_test=X[n_train:], y_test=Y[n_train:])
    return X[n_train:], Y[n_train:]


def _value_scores(stdout):
    """(mse, r2) from 'test mse M  r2 R ...', or (None, accuracy) from the multilabel line."""
    for line in stdout.splitlines():
        if line.startswith("test mse"):
            words = line.split()
            return float(words[2]), float(words[4])
        if line.startswith("test accuracy"):
            return None, float(line.split()[2])
    raise AssertionError(f"no test score line in:\n{stdout}")


def _predictions(path):
    with np.load(path, allow_pickle=False) as archive:
        assert archive.files == ["predictions"]
        return archive["predictions"]


def _tolerance(dtype):
    return {"rtol": 2e-5, "atol": 2e-5} if dtype == "float32" else {"rtol": 1e-11, "atol": 1e-11}


@pytest.mark.parametrize(("dtype", "outputs"), [("float32", 1), ("float64", 3)])
def test_cpp_evaluates_python_regression_model(cli, tmp_path, dtype, outputs):
    """A regression model trained and saved by the Python package (classes null, n_outputs) gives,
    through the port, the predictions and the R^2 that Python gives."""
    import mlp

    data = tmp_path / "data.npz"
    X_test, Y_test = _value_data(data, outputs=outputs)
    with np.load(data) as archive:
        X_train, Y_train = archive["X_train"], archive["y_train"]
    model = mlp.fit(
        X_train,
        Y_train,
        loss="squared_error",
        hidden_sizes=[16, 8],
        activation="tanh",
        epochs=5,
        dtype=dtype,
        seed=0,
    )
    path = tmp_path / "python_regressor.npz"
    model.save(path)
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(bytes(archive["metadata"]).decode("utf-8"))
    assert meta["classes"] is None and meta["n_outputs"] == outputs and meta["format_version"] == 3

    result = cli("evaluate", path, "--data", data, "--predictions", tmp_path / "predictions.npz")
    assert f"-> {outputs} identity; loss=squared_error" in result.stdout
    got = _predictions(tmp_path / "predictions.npz")
    assert got.dtype == np.dtype(dtype) and got.shape == (len(X_test), outputs)
    expected = np.asarray(model.predict(X_test.astype(dtype))).reshape(len(X_test), outputs)
    np.testing.assert_allclose(got, expected, **_tolerance(dtype))
    mse, r2 = _value_scores(result.stdout)
    assert r2 == pytest.approx(model.score(X_test.astype(dtype), Y_test), abs=1e-4)
    assert mse == pytest.approx(float(np.mean((expected - Y_test.reshape(expected.shape)) ** 2)), rel=1e-4)


@pytest.mark.parametrize(("dtype", "outputs"), [("float32", 2), ("float64", 1)])
def test_cpp_regression_model_loads_in_python(cli, tmp_path, dtype, outputs):
    """The port learns a regression model from an .npz of real targets; mlp.load reads the file it
    writes, and the loaded model predicts what the port predicts and scores the R^2 it reported."""
    import mlp

    data = tmp_path / "data.npz"
    X_test, Y_test = _value_data(data, outputs=outputs)
    out = tmp_path / "cpp_regressor.npz"
    result = cli(
        "train",
        "--data",
        data,
        "--hidden",
        "32",
        "--epochs",
        "30",
        "--batch-size",
        "32",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--dropout",
        "0",
        "--seed",
        "3",
        "--dtype",
        dtype,
        "--out",
        out,
    )
    losses = [
        float(line.split("loss")[1].split()[0])
        for line in result.stdout.splitlines()
        if line.startswith("epoch")
    ]
    assert len(losses) == 30 and losses[-1] < 0.5 * losses[0]
    mse, r2 = _value_scores(result.stdout)
    assert r2 > 0.8, result.stdout

    with np.load(out, allow_pickle=False) as archive:
        meta = json.loads(bytes(archive["metadata"]).decode("utf-8"))
    assert meta["loss"] == "squared_error" and meta["classes"] is None and meta["n_outputs"] == outputs
    assert meta["format_version"] == 3 and meta["preprocessing"] is None and "accuracy" not in meta["history"]
    model = mlp.load(out)
    assert model.classes_ is None and model.n_outputs == outputs and model.dtype == dtype
    assert len(model.history["loss"]) == 30
    assert model.score(X_test.astype(dtype), Y_test) == pytest.approx(r2, abs=1e-4)

    cli("evaluate", out, "--data", data, "--predictions", tmp_path / "predictions.npz")
    expected = np.asarray(model.predict(X_test.astype(dtype))).reshape(len(X_test), outputs)
    np.testing.assert_allclose(_predictions(tmp_path / "predictions.npz"), expected, **_tolerance(dtype))
    assert mse == pytest.approx(float(np.mean((expected - Y_test.reshape(expected.shape)) ** 2)), rel=1e-4)


def test_multilabel_models_both_ways(cli, tmp_path):
    """binary_cross_entropy (one sigmoid per label): a port-trained model loads in Python with the same
    probabilities and score; a Python-trained one gives the same probabilities through the port."""
    import mlp

    data = tmp_path / "labels.npz"
    X_test, Y_test = _value_data(data, outputs=3, loss="binary_cross_entropy")
    out = tmp_path / "cpp_multilabel.npz"
    result = cli(
        "train",
        "--data",
        data,
        "--loss",
        "binary_cross_entropy",
        "--hidden",
        "16",
        "--epochs",
        "20",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--seed",
        "0",
        "--dtype",
        "float64",
        "--out",
        out,
    )
    _, accuracy = _value_scores(result.stdout)
    model = mlp.load(out)
    assert model.loss == "binary_cross_entropy" and model.classes_ is None and model.n_outputs == 3
    assert model.score(X_test, Y_test) == pytest.approx(accuracy, abs=1e-4) and accuracy > 0.6
    cli("evaluate", out, "--data", data, "--predictions", tmp_path / "p.npz")
    np.testing.assert_allclose(
        _predictions(tmp_path / "p.npz"), model.predict_proba(X_test), rtol=1e-11, atol=1e-12
    )

    with np.load(data) as archive:
        python_model = mlp.fit(
            archive["X_train"],
            archive["y_train"],
            loss="binary_cross_entropy",
            hidden_sizes=[8],
            epochs=3,
            seed=1,
        )
    python_model.save(tmp_path / "python_multilabel.npz")
    cli("evaluate", tmp_path / "python_multilabel.npz", "--data", data, "--predictions", tmp_path / "q.npz")
    np.testing.assert_allclose(
        _predictions(tmp_path / "q.npz"),
        python_model.predict_proba(X_test.astype(np.float32)),
        rtol=2e-5,
        atol=2e-6,
    )


def test_poisson_models_both_ways(cli, tmp_path):
    """poisson (exp outputs, counts): a port-trained model loads in Python with the same predicted
    means and R^2; a Python-trained one gives the same means through the port; negative counts are
    refused with one line."""
    import mlp

    data = tmp_path / "counts.npz"
    X_test, Y_test = _value_data(data, outputs=2, loss="poisson")
    out = tmp_path / "cpp_poisson.npz"
    result = cli(
        "train",
        "--data",
        data,
        "--loss",
        "poisson",
        "--hidden",
        "16",
        "--epochs",
        "20",
        "--optimizer",
        "adam",
        "--lr",
        "0.01",
        "--seed",
        "0",
        "--dtype",
        "float64",
        "--out",
        out,
    )
    assert "-> 2 exp; loss=poisson" in result.stdout
    _, r2 = _value_scores(result.stdout)
    model = mlp.load(out)
    assert model.loss == "poisson" and model.classes_ is None and model.n_outputs == 2
    # counts with means in [1/e, e]: the Poisson noise leaves little of the variance to explain
    assert model.score(X_test, Y_test) == pytest.approx(r2, abs=1e-4) and r2 > 0.1
    cli("evaluate", out, "--data", data, "--predictions", tmp_path / "p.npz")
    np.testing.assert_allclose(
        _predictions(tmp_path / "p.npz"), model.predict(X_test), rtol=1e-11, atol=1e-12
    )

    with np.load(data) as archive:
        python_model = mlp.fit(
            archive["X_train"], archive["y_train"], loss="poisson", hidden_sizes=[8], epochs=3, seed=1
        )
    python_model.save(tmp_path / "python_poisson.npz")
    cli("evaluate", tmp_path / "python_poisson.npz", "--data", data, "--predictions", tmp_path / "q.npz")
    np.testing.assert_allclose(
        _predictions(tmp_path / "q.npz"),
        python_model.predict(X_test.astype(np.float32)),
        rtol=2e-5,
        atol=2e-6,
    )

    negative = tmp_path / "negative.npz"
    np.savez(negative, X_train=X_test, y_train=-Y_test - 1.0)
    result = cli("train", "--data", negative, "--loss", "poisson", "--epochs", "1", check=False)
    _assert_clean_failure(result, code=1)
    assert "non-negative" in result.stderr


@pytest.mark.parametrize(("placement", "dtype"), [("before", "float32"), ("after", "float64")])
def test_batch_norm_models_both_ways(cli, tmp_path, placement, dtype):
    """Batch normalisation: a model the port trains (--batch-norm) loads in Python with its norms and
    predicts what the port predicts (the running statistics); one Python trains predicts the same
    through the port; the two training runs learn the problem alike."""
    import mlp

    data = tmp_path / "data.npz"
    X_test, Y_test = _value_data(data, outputs=2)
    X_test = X_test.astype(dtype)
    out = tmp_path / "cpp_bn.npz"
    args = [
        "--hidden",
        "16,8",
        "--activation",
        "tanh",
        "--epochs",
        "20",
        "--batch-size",
        "32",
        "--lr",
        "0.01",
    ]
    result = cli(
        "train",
        "--data",
        data,
        *args,
        "--dropout",
        "0",
        "--batch-norm",
        placement,
        "--batch-norm-momentum",
        "0.2",
        "--seed",
        "0",
        "--dtype",
        dtype,
        "--out",
        out,
    )
    hidden = "bn tanh" if placement == "before" else "tanh bn"
    assert f"5 -> 16 {hidden} -> 8 {hidden} -> 2 identity" in result.stdout
    _, cpp_r2 = _value_scores(result.stdout)
    with np.load(out, allow_pickle=False) as archive:
        meta = json.loads(bytes(archive["metadata"]).decode("utf-8"))
        assert {"gamma0", "beta0", "mean0", "var0", "gamma1", "beta1", "mean1", "var1"} <= set(archive.files)
    assert meta["format_version"] == 3 and meta["batch_norm"] == placement
    assert meta["config"]["batch_norm"] == placement and meta["config"]["batch_norm_momentum"] == 0.2
    model = mlp.load(out)
    assert model.batch_norm == placement and len(model.norms) == 2 and model.dtype == dtype
    assert not np.allclose(np.asarray(model.norms[0][2]), 0.0)  # the running mean moved
    assert model.n_parameters == 5 * 16 + 16 + 16 * 8 + 8 + 8 * 2 + 2 + 2 * (16 + 8)
    cli("evaluate", out, "--data", data, "--predictions", tmp_path / "p.npz")
    np.testing.assert_allclose(_predictions(tmp_path / "p.npz"), model.predict(X_test), **_tolerance(dtype))
    assert model.score(X_test, Y_test) == pytest.approx(cpp_r2, abs=1e-4)

    with np.load(data) as archive:
        python_model = mlp.fit(
            archive["X_train"],
            archive["y_train"],
            loss="squared_error",
            hidden_sizes=[16, 8],
            activation="tanh",
            epochs=20,
            batch_size=32,
            learning_rate=0.01,
            dropout=0.0,
            batch_norm=placement,
            seed=0,
            dtype=dtype,
        )
    python_model.save(tmp_path / "python_bn.npz")
    result = cli("evaluate", tmp_path / "python_bn.npz", "--data", data, "--predictions", tmp_path / "q.npz")
    assert f"5 -> 16 {hidden} -> 8 {hidden} -> 2 identity" in result.stdout
    np.testing.assert_allclose(
        _predictions(tmp_path / "q.npz"), python_model.predict(X_test), **_tolerance(dtype)
    )
    python_r2 = python_model.score(X_test, Y_test)
    assert _value_scores(result.stdout)[1] == pytest.approx(python_r2, abs=1e-4)
    assert cpp_r2 > 0.8 and python_r2 > 0.8, (cpp_r2, python_r2)


def test_bad_value_data(cli, tmp_path, trained_model):
    """Real-valued targets: wrong loss for the data, missing or malformed arrays, a regression model
    on images and a classifier on an .npz each fail with one line and a non-zero status."""
    data = tmp_path / "data.npz"
    X_test, Y_test = _value_data(data, outputs=2)
    tiny = CPP / "tests" / "data" / "tiny"
    usage = [
        ("train", "--data", data, "--loss", "cross_entropy"),
        ("train", "--data", tiny, "--loss", "squared_error"),
    ]
    for args in usage:
        _assert_clean_failure(cli(*args, "--epochs", "1", check=False), code=2)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 5))
    broken = {
        "no_targets": dict(X_train=X),
        "nan_inputs": dict(X_train=np.where(np.arange(100).reshape(20, 5) == 7, np.nan, X), y_train=X[:, 0]),
        "rows_differ": dict(X_train=X, y_train=X[:10, 0]),
        "integer_inputs": dict(X_train=np.ones((20, 5), np.int64), y_train=X[:, 0]),
        "three_d_targets": dict(X_train=X, y_train=np.zeros((20, 2, 2))),
    }
    for name, arrays in broken.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, **arrays)
        result = cli("train", "--data", path, "--epochs", "1", check=False)
        _assert_clean_failure(result, code=1)
        assert str(path) in result.stderr
    labels = tmp_path / "not_binary.npz"
    np.savez(labels, X_train=X, y_train=2.0 * np.ones((20, 2)))
    result = cli("train", "--data", labels, "--loss", "binary_cross_entropy", "--epochs", "1", check=False)
    _assert_clean_failure(result, code=1)
    assert "[0, 1]" in result.stderr

    regressor = tmp_path / "regressor.npz"
    cli("train", "--data", data, "--hidden", "4", "--epochs", "1", "--seed", "0", "--out", regressor)
    result = cli("evaluate", regressor, "--data", tiny, check=False)
    _assert_clean_failure(result, code=1)
    assert "FILE.npz" in result.stderr
    classifier, _ = trained_model
    _assert_clean_failure(cli("evaluate", classifier, "--data", data, check=False), code=1)
    wrong_width = tmp_path / "wrong_width.npz"
    np.savez(wrong_width, X_test=X_test[:, :4], y_test=Y_test)
    _assert_clean_failure(cli("evaluate", regressor, "--data", wrong_width, check=False), code=1)
    _assert_clean_failure(
        cli("evaluate", classifier, "--data", tiny, "--predictions", tmp_path / "p.npz", check=False), code=2
    )


# ---- malformed flags and files ----------------------------------------------------------------------


def _assert_clean_failure(result, code=None):
    assert result.returncode != 0, result.stdout
    if code is not None:
        assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlp-cpp: error: "), result.stderr
    assert "Traceback" not in result.stderr and "terminate called" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["fly"],
        ["train", "--epochs", "two"],
        ["train", "--hidden", "64,-3"],
        ["train", "--batch-size", "0"],
        ["train", "--lr", "-1"],
        ["train", "--optimizer", "adagrad"],
        ["train", "--loss", "hinge"],
        ["train", "--init", "zeros"],
        ["train", "--clip-norm", "0"],
        ["train", "--seed", "x"],
        ["train", "--unknown-flag"],
        ["evaluate"],
    ],
)
def test_bad_flags(cli, mnist_dir, args):
    if args[:1] == ["train"]:
        args = [*args, "--data", mnist_dir]
    _assert_clean_failure(cli(*args, check=False), code=2)


def _write(path, data):
    path.write_bytes(data)
    return path


def test_bad_data_files(cli, tmp_path):
    header = b"MLPD" + np.array([1, 100, 28, 28], dtype="<u4").tobytes()
    cases = {
        "truncated": header + bytes(1000),
        "bad_magic": b"MLPX" + header[4:] + bytes(100 * 784 + 100),
        "bad_version": b"MLPD" + np.array([7, 1, 28, 28], dtype="<u4").tobytes() + bytes(785),
        "empty": b"",
    }
    for name, train_bytes in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        _write(folder / "train.mlpd", train_bytes)
        _write(folder / "test.mlpd", header[:8] + np.array([1, 28, 28], dtype="<u4").tobytes() + bytes(785))
        result = cli("train", "--data", folder, "--epochs", "1", check=False)
        _assert_clean_failure(result, code=1)
        assert "train.mlpd" in result.stderr
    # A gzip IDX file cut short, and one with a flipped byte.
    folder = tmp_path / "gz"
    folder.mkdir()
    import gzip

    images = gzip.compress(
        np.array([2051, 10, 28, 28], dtype=">u4").tobytes() + bytes(range(256)) * 30, mtime=0
    )
    labels = gzip.compress(np.array([2049, 10], dtype=">u4").tobytes() + bytes(10), mtime=0)
    for prefix in ("train", "t10k"):
        _write(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    _write(folder / "t10k-images-idx3-ubyte.gz", images)
    for broken in (images[: len(images) // 2], images[:20] + bytes([images[20] ^ 0xFF]) + images[21:]):
        _write(folder / "train-images-idx3-ubyte.gz", broken)
        _assert_clean_failure(cli("train", "--data", folder, "--epochs", "1", check=False), code=1)


def test_bad_model_files(cli, tmp_path, trained_model, mnist_dir):
    good, _ = trained_model
    data_dir = CPP / "tests" / "data" / "tiny"
    with np.load(good, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    meta = json.loads(bytes(arrays["metadata"]).decode())

    def variant(name, **changes):
        new = dict(arrays)
        new_meta = dict(meta)
        for key, value in changes.items():
            if key.startswith("meta_"):
                new_meta[key[5:]] = value
            elif value is None:
                del new[key]
            else:
                new[key] = value
        new["metadata"] = np.frombuffer(json.dumps(new_meta).encode(), dtype=np.uint8)
        path = tmp_path / f"{name}.npz"
        np.savez(path, **new)
        return path

    bad = [
        variant("wrong_shape", W1=np.zeros((65, 10), np.float32)),
        variant("missing_array", b1=None),
        variant("wrong_dtype", W0=arrays["W0"].astype(np.float64)),
        variant("future_version", meta_format_version=4),
        variant("batch_norm_without_arrays", meta_batch_norm="before"),
        variant("bad_activation", meta_activation="gelu"),
        variant("too_few_hidden", meta_hidden_sizes=[]),
        variant("nan_weights", W0=np.full_like(arrays["W0"], np.nan)),
        variant("unknown_preprocessing", meta_preprocessing={"input": "(pixels - mean) / std"}),
        _write(tmp_path / "not_a_zip.npz", b"PK\x03\x04 but nothing else"),
        _write(tmp_path / "truncated.npz", good.read_bytes()[:5000]),
        _write(tmp_path / "bad_json.npz", b""),
    ]
    np.savez(bad[-1], W0=arrays["W0"], metadata=np.frombuffer(b"{not json", dtype=np.uint8))
    flipped = bytearray(good.read_bytes())
    flipped[len(flipped) // 2] ^= 0x10
    bad.append(_write(tmp_path / "flipped.npz", bytes(flipped)))
    for path in bad:
        result = cli("evaluate", path, "--data", data_dir, check=False)
        _assert_clean_failure(result, code=1)
    # The tiny data set has 64 features; the MNIST model wants 784: a clear refusal, not a crash.
    result = cli("evaluate", good, "--data", data_dir, check=False)
    _assert_clean_failure(result, code=1)
    assert "784" in result.stderr
    # A compressed archive (np.savez_compressed) is read too.
    compressed = tmp_path / "compressed.npz"
    np.savez_compressed(compressed, **arrays)
    assert (
        _test_accuracy(cli("evaluate", compressed, "--data", mnist_dir, "--test-limit", "1000").stdout) > 0.85
    )


# ---- the user's files: never replaced unless regular, never left half-written ----------------------

TINY = CPP / "tests" / "data" / "tiny"


def _train_tiny(*extra):
    return ("train", "--data", TINY, "--hidden", "4", "--epochs", "1", "--seed", "0", "--quiet", *extra)


def _train_width(width, *extra):
    """_train_tiny with `width` hidden units."""
    return (
        "train",
        "--data",
        TINY,
        "--hidden",
        str(width),
        "--epochs",
        "1",
        "--seed",
        "0",
        "--quiet",
        *extra,
    )


def _make_node(path, kind):
    """A file of `kind` at path: a private character device (1, 3) like /dev/null, a FIFO, a socket
    or a folder. Returns what keeps it alive (the socket), or None."""
    import socket
    import stat

    if kind == "device":
        if os.geteuid() != 0:
            pytest.skip("making a device node (mknod) needs root")
        try:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("this container does not allow mknod, even to root")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        if len(str(path)) >= 100:
            pytest.skip("the temporary path is too long for a Unix socket")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        return server
    else:
        path.mkdir()
    return None


def _kind_of(path):
    import stat

    mode = os.lstat(path).st_mode
    for kind, test in (("device", stat.S_ISCHR), ("fifo", stat.S_ISFIFO), ("socket", stat.S_ISSOCK)):
        if test(mode):
            return kind
    return "folder" if stat.S_ISDIR(mode) else "other"


def _temporaries(folder):
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def _python_refusal(check, *args):
    """The one line the Python package refuses with (`check(*args)` raising OutputPathError): what
    `mlp` prints after "mlp COMMAND: error: ", and what the port must print after "mlp-cpp: error: "."""
    from mlp._files import OutputPathError

    with pytest.raises(OutputPathError) as info:
        check(*args)
    return str(info.value)


def _assert_refused_as_python(result, message):
    _assert_clean_failure(result, code=1)
    assert result.stderr == f"mlp-cpp: error: {message}\n"


@pytest.mark.parametrize("kind", ["device", "fifo", "socket", "folder"])
def test_output_that_is_not_a_regular_file_is_refused(cli, tmp_path, kind):
    """`--out /dev/null` run as root used to replace the device with a regular file: every writer
    refuses an existing path that is not a regular file, before training, with one line (the words of
    mlp._files.check_writable, compared in full), and the node is still what it was. Tested on a
    private device node."""
    from mlp._files import check_writable

    target = tmp_path / f"{kind}.npz"
    keep = _make_node(target, kind)
    try:
        result = cli(*_train_tiny("--out", target), check=False)
        expected = {
            "folder": f"--out {target} is a folder; give a file name inside it",
            "fifo": f"--out {target} is not a regular file (it is a FIFO); give another path",
            "device": f"--out {target} is not a regular file (it is a device); give another path",
            "socket": f"--out {target} is not a regular file (it is a socket); give another path",
        }[kind]
        assert _python_refusal(check_writable, target, "--out") == expected  # what `mlp train` says
        _assert_refused_as_python(result, expected)
        assert "test accuracy" not in result.stdout  # refused before training
        assert _kind_of(target) == kind
        if kind == "fifo":  # evaluate --predictions and convert --out are held to the same rule
            values = tmp_path / "values.npz"
            _value_data(values, outputs=1, n_train=50, n_test=20)
            regressor = tmp_path / "regressor.npz"
            cli(
                "train", "--data", values, "--hidden", "4", "--epochs", "1", "--seed", "0", "--out", regressor
            )
            _assert_refused_as_python(
                cli("evaluate", regressor, "--data", values, "--predictions", target, check=False),
                _python_refusal(check_writable, target, "--predictions"),
            )
            folder = tmp_path / "converted"
            folder.mkdir()
            os.mkfifo(folder / "test.mlpd")
            _assert_refused_as_python(  # mlp convert's name for the path: "destination"
                cli("convert", "--data", TINY, "--out", folder, check=False),
                _python_refusal(check_writable, folder / "test.mlpd", "destination"),
            )
            assert not (folder / "train.mlpd").exists()  # checked before anything was written
            assert _kind_of(target) == _kind_of(folder / "test.mlpd") == "fifo"
        assert _temporaries(tmp_path) == []
    finally:
        if keep is not None:
            keep.close()


def test_a_file_of_another_kind_is_refused_and_one_of_the_writers_own_kind_replaced(cli, tmp_path):
    """`mlp-cpp train --out notes.npz` used to replace the user's text file, and `convert --out DIR` a
    text DIR/train.mlpd, where Python refuses both: each writer replaces only its own kind of file (a
    model file, an .mlpd file, an .npz of predictions), and refuses anything else before any work
    with Python's line, word for word, leaving it as it was."""
    import mlp
    from mlp._files import refuse_foreign
    from mlp.datasets.convert import _KINDS
    from mlp.model_file import check_replaceable

    notes = tmp_path / "notes.npz"
    notes.write_bytes(b"my notes, not to be overwritten\n")
    result = cli(*_train_tiny("--out", notes), check=False)
    message = f"--out {notes} exists and is not an mlp model file (it holds something else); give another path or delete it"
    assert _python_refusal(check_replaceable, notes, "--out") == message  # what `mlp train --out` says
    _assert_refused_as_python(result, message)
    assert notes.read_bytes() == b"my notes, not to be overwritten\n"

    checkpoint = tmp_path / "run.npz"  # a Python training checkpoint is not a model either
    X = np.random.default_rng(0).standard_normal((30, 3))
    mlp.fit(X, (X[:, 0] > 0).astype(int), hidden_sizes=[2], epochs=1, seed=0, checkpoint=checkpoint)
    before = checkpoint.read_bytes()
    _assert_refused_as_python(
        cli(*_train_tiny("--out", checkpoint), check=False),
        _python_refusal(check_replaceable, checkpoint, "--out"),
    )
    assert "(it holds an mlp training checkpoint)" in _python_refusal(check_replaceable, checkpoint, "--out")
    assert checkpoint.read_bytes() == before

    model = tmp_path / "model.npz"  # a model is replaced by a model
    cli(*_train_width(3, "--out", model))
    cli(*_train_width(5, "--out", model))
    assert mlp.load(model).hidden_sizes == [5]

    folder = tmp_path / "converted"
    folder.mkdir()
    user_file = folder / "train.mlpd"
    user_file.write_bytes(b"my notes\n")
    result = cli("convert", "--data", TINY, "--out", folder, check=False)
    message = f"destination {user_file} exists and is not an .mlpd file; give another path or delete it"
    assert _python_refusal(refuse_foreign, user_file, "destination", *_KINDS["binary"]) == message
    _assert_refused_as_python(result, message)
    assert user_file.read_bytes() == b"my notes\n" and not (folder / "test.mlpd").exists()
    user_file.unlink()
    cli("convert", "--data", TINY, "--out", folder)
    cli("convert", "--data", TINY, "--out", folder)  # a rerun replaces its own files
    assert user_file.read_bytes().startswith(b"MLPD")

    values = tmp_path / "values.npz"
    _value_data(values, outputs=1, n_train=50, n_test=20)
    regressor = tmp_path / "regressor.npz"
    cli("train", "--data", values, "--hidden", "4", "--epochs", "1", "--seed", "0", "--out", regressor)
    predictions = tmp_path / "predictions.npz"
    for other in (notes, regressor, values):  # a user's file, a model, a data set: never replaced
        before = other.read_bytes()
        result = cli("evaluate", regressor, "--data", values, "--predictions", other, check=False)
        _assert_refused_as_python(
            result,
            f"--predictions {other} exists and is not an .npz of predictions; give another path or delete it",
        )
        assert other.read_bytes() == before
    cli("evaluate", regressor, "--data", values, "--predictions", predictions)
    cli("evaluate", regressor, "--data", values, "--predictions", predictions)  # its own kind: replaced
    assert _predictions(predictions).shape == (20, 1)
    assert _temporaries(tmp_path) == [] and _temporaries(folder) == []


def test_a_link_at_the_output_path_stays_and_its_file_is_replaced(cli, tmp_path):
    """`--out link.npz` (link.npz -> m.npz) used to leave a plain file where the link was. Now the
    link stays and the file it names is replaced (in its own folder); the own-kind and non-regular
    checks apply to that file; a dangling link gets the file it names written, as in Python."""
    import mlp

    real = tmp_path / "m.npz"
    cli(*_train_width(3, "--out", real))
    link = tmp_path / "link.npz"
    link.symlink_to("m.npz")
    cli(*_train_width(5, "--out", link))
    assert link.is_symlink() and os.readlink(link) == "m.npz"
    assert mlp.load(real).hidden_sizes == [5]

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to(elsewhere / "new.npz")
    cli(*_train_tiny("--out", dangling))
    assert dangling.is_symlink() and mlp.load(elsewhere / "new.npz").hidden_sizes == [4]

    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"my notes\n")
    to_notes = tmp_path / "notes.npz"
    to_notes.symlink_to(notes)
    _assert_refused_as_python(
        cli(*_train_tiny("--out", to_notes), check=False),
        f"--out {to_notes} exists and is not an mlp model file (it holds something else); give another path or delete it",
    )
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    to_fifo = tmp_path / "fifo.npz"
    to_fifo.symlink_to(fifo)
    _assert_refused_as_python(
        cli(*_train_tiny("--out", to_fifo), check=False),
        f"--out {to_fifo} is not a regular file (it is a FIFO); give another path",
    )
    assert notes.read_bytes() == b"my notes\n" and to_notes.is_symlink() and to_fifo.is_symlink()
    assert _kind_of(fifo) == "fifo"
    assert _temporaries(tmp_path) == [] and _temporaries(elsewhere) == []


def test_the_version_is_the_python_packages(cli, cpp_build, tmp_path):
    """One version, mlp/_version.py: `mlp-cpp version`, the model files' library_version and
    producer, and CMake's project version (its numeric part) all read it."""
    import mlp

    assert cli("version").stdout.startswith(f"mlp-cpp {mlp.__version__} (")
    out = tmp_path / "model.npz"
    cli(*_train_tiny("--out", out))
    with np.load(out, allow_pickle=False) as archive:
        meta = json.loads(bytes(archive["metadata"]).decode("utf-8"))
    assert meta["library_version"] == mlp.__version__ and meta["producer"] == f"mlp-cpp {mlp.__version__}"
    cache = (cpp_build / "CMakeCache.txt").read_text()
    numeric = ".".join(mlp.__version__.split(".")[:3])
    assert f"CMAKE_PROJECT_VERSION:STATIC={numeric}\n" in cache


def test_file_size_limit_is_a_message_not_a_silent_death(cli, tmp_path):
    """Under `ulimit -f` a write past the limit used to kill mlp-cpp with SIGXFSZ, no message, its
    temporary file left behind: now one line ("cannot write PATH: File too large"), exit status 1,
    the temporary file removed and the file already at --out untouched."""
    import resource

    out = tmp_path / "model.npz"
    cli(*_train_width(40, "--out", out))  # the user's previous model, over the limit below
    previous = out.read_bytes()
    assert len(previous) > 1024

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    result = subprocess.run(
        [str(cli.exe), *map(str, _train_tiny("--out", out))],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
    )
    _assert_clean_failure(result, code=1)
    assert f"cannot write {out}: File too large" in result.stderr
    assert out.read_bytes() == previous
    assert _temporaries(tmp_path) == []


def test_network_limits_are_the_model_files(cli, tmp_path):
    """--hidden is held to the model file's limits (mlp.options MAX_WIDTH, MAX_HIDDEN_LAYERS, through
    the generated header) before any data is read: mlp-cpp used to write a 1,001-layer network that no
    reader accepts, and called a 10^8-plus width a format error. 1,000 layers save and read back."""
    from mlp.options import MAX_HIDDEN_LAYERS, MAX_WIDTH

    too_deep = ",".join(["1"] * (MAX_HIDDEN_LAYERS + 1))
    for hidden, words in (
        (str(MAX_WIDTH + 1), f"layer widths at most {MAX_WIDTH:,}"),
        ("4," + str(10**30), f"layer widths at most {MAX_WIDTH:,}"),
        (too_deep, f"at most {MAX_HIDDEN_LAYERS} hidden layers"),
    ):
        result = cli(
            "train", "--data", tmp_path / "never-read", "--hidden", hidden, "--epochs", "1", check=False
        )
        _assert_clean_failure(result, code=2)
        assert words in result.stderr
    deepest = tmp_path / "deepest.npz"
    deep = ",".join(["2"] * MAX_HIDDEN_LAYERS)
    cli(
        "train", "--data", TINY, "--hidden", deep, "--epochs", "1", "--seed", "0", "--quiet", "--out", deepest
    )
    import mlp

    assert mlp.load(deepest).hidden_sizes == [2] * MAX_HIDDEN_LAYERS
    cli("evaluate", deepest, "--data", TINY)


def test_class_labels_beyond_2_53_read_as_python_reads_them(cli, tmp_path):
    """Python keeps class labels as int64 (JSON integers, every digit); the port read them as doubles,
    so 2^53 and 2^53 + 1 became one class (the file refused as listing a class twice) and 2^63 - 1
    overflowed. Now both accept the same file; the port's own round trip is in test_units."""
    import mlp

    classes = [-(2**63), 2**53, 2**53 + 1, 2**63 - 1]
    rng = np.random.default_rng(0)
    X = rng.random((40, 64)).astype(np.float32)
    model = mlp.fit(X, np.array(classes * 10, np.int64), hidden_sizes=[4], epochs=1, seed=0, verbose=False)
    path = tmp_path / "big_labels.npz"
    _save_python_model(model, path)
    assert [int(c) for c in mlp.load(path).classes_] == classes
    result = cli("evaluate", path, "--data", TINY)  # (the tiny set's labels 0..9 are none of these)
    assert "64 -> 4 relu -> 4 softmax" in result.stdout


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_loss_the_dtype_cannot_hold_stops_training_as_in_python(cli, tmp_path, dtype):
    """Targets near 1e38: Python computes the float32 loss, finds inf and stops (TrainingError); the
    port summed in double and trained on at a loss of 5e75. Now it stops with the same words, exit
    status 1 and nothing written. In float64 both train (5e75 is finite there)."""
    import mlp
    from mlp.engines.generic import TrainingError

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((100, 3)), np.full(100, 1e38)
    data = tmp_path / "huge_targets.npz"
    np.savez(data, X_train=X, y_train=y)
    out = tmp_path / "model.npz"
    result = cli(
        "train",
        "--data",
        data,
        "--hidden",
        "4",
        "--epochs",
        "2",
        "--seed",
        "0",
        "--dtype",
        dtype,
        "--out",
        out,
        check=False,
    )
    if dtype == "float32":
        with pytest.raises(TrainingError, match="the loss became inf at epoch 1, step 1"):
            mlp.fit(
                X, y, loss="squared_error", hidden_sizes=[4], epochs=2, seed=0, dtype=dtype, verbose=False
            )
        _assert_clean_failure(result, code=1)
        assert "the loss became inf at epoch 1, step 1 of" in result.stderr
        assert not out.exists() and _temporaries(tmp_path) == []
    else:
        mlp.fit(X, y, loss="squared_error", hidden_sizes=[4], epochs=2, seed=0, dtype=dtype, verbose=False)
        assert result.returncode == 0, result.stderr
        assert out.exists()


def test_a_history_too_long_for_the_file_loses_its_oldest_epochs_not_the_model(cli, tmp_path):
    """300,000 epochs make about 18 MB of history, over the 16 MiB metadata limit every reader
    enforces: as mlp.model_file.fit_metadata does, the oldest epochs are left out, the newest that fit
    kept, with one warning in Python's words (the port used to write a file no reader accepts)."""
    import mlp
    from mlp.options import MAX_METADATA_BYTES

    out = tmp_path / "long.npz"
    epochs = 300_000
    result = cli(
        "train", "--data", TINY, "--hidden", "none", "--limit", "2", "--test-limit", "0",
        "--batch-size", "full", "--epochs", epochs, "--seed", "0", "--threads", "1", "--quiet",
        "--out", out, timeout=600,
    )  # fmt: skip
    warning = result.stderr.splitlines()
    assert len(warning) == 1, result.stderr
    assert warning[0].startswith(f"mlp-cpp: warning: model file {out}: the metadata was over the ")
    assert f"{MAX_METADATA_BYTES:,}-byte limit of the file format; written without the oldest" in warning[0]
    with zipfile.ZipFile(out) as archive:
        raw = archive.read("metadata.npy")
    assert MAX_METADATA_BYTES - 200 < len(raw) - raw.index(b"\n") - 1 <= MAX_METADATA_BYTES  # as full as fits
    history = mlp.load(out).history
    kept = len(history["epoch"])
    assert 0 < kept < epochs and f"of {epochs:,} epochs of history (the last {kept:,} kept)" in warning[0]
    assert history["epoch"][-1] == epochs and history["epoch"][0] == epochs - kept + 1
    assert all(len(values) == kept for values in history.values())
    cli("evaluate", out, "--data", TINY)


# ---- the no-libraries configuration and the sanitizers ---------------------------------------------


def test_no_libraries_build(request, mnist_dir, tmp_path):
    """The port with no library beyond the C++ standard one: the own inflate reads the gzip MNIST
    files and a np.savez_compressed model, the own GEMM trains; ctest passes (unit, golden, CLI).
    With $MLP_CPP_SANITIZE (CI) under AddressSanitizer + UndefinedBehaviorSanitizer."""
    sanitize = bool(os.environ.get("MLP_CPP_SANITIZE"))
    options = ["-DMLP_USE_ZLIB=OFF", "-DMLP_USE_CBLAS=OFF"]
    options += (
        ["-DMLP_SANITIZE=ON", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"]
        if sanitize
        else ["-DMLP_SANITIZE=OFF", "-DCMAKE_BUILD_TYPE=Release"]
    )
    build = _configure_and_build(_build_dir(request, "-nolib"), options)
    output = _ctest(build)
    assert "golden_blas" not in output
    cli = _runner(build / "mlp-cpp")
    version = cli("version").stdout
    assert "inflate built-in" in version and "blas" not in version, version
    out = tmp_path / "model.npz"
    result = cli(
        "train",
        "--data",
        mnist_dir,
        "--hidden",
        "32",
        "--epochs",
        "2",
        "--lr",
        "0.005",
        "--limit",
        "3000",
        "--test-limit",
        "1000",
        "--seed",
        "2",
        "--out",
        out,
    )
    assert "3000 training images" in result.stdout and _test_accuracy(result.stdout) > 0.7
    with np.load(out, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    compressed = tmp_path / "compressed.npz"
    np.savez_compressed(compressed, **arrays)
    evaluated = cli("evaluate", compressed, "--data", mnist_dir, "--test-limit", "1000").stdout
    assert _test_accuracy(evaluated) == pytest.approx(_test_accuracy(result.stdout), abs=1e-4)


@pytest.mark.skipif(
    not os.environ.get("MLP_CPP_SANITIZE"), reason="set MLP_CPP_SANITIZE=1 to build with TSan"
)
def test_thread_sanitizer(request):
    """ThreadSanitizer over the thread pool: thousands of small jobs, nested and concurrent dispatch,
    shutdowns and restarts (test_units `parallel`), the threaded GEMM and training runs. Any data
    race makes TSan exit non-zero with a report."""
    build = _configure_and_build(
        _build_dir(request, "-tsan"),
        ["-DMLP_SANITIZE=thread", "-DMLP_USE_CBLAS=OFF", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
        targets=["test_units"],
    )
    result = subprocess.run(
        [str(build / "test_units"), str(CPP / "tests" / "data"), "parallel", "gemm", "training"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TSAN_OPTIONS": "halt_on_error=1 second_deadlock_stack=1"},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-6000:]
    assert "[ok] parallel" in result.stdout and "ThreadSanitizer" not in result.stderr
