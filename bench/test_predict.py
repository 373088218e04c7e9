"""Prediction speed: `MLP.predict` of a trained 784-128-64-10 float32 model against onnxruntime and
PyTorch CPU running the same network (run: see RESULTS.md, "Prediction").

Two cases: throughput on the first 10 000 MNIST test images (one call), and the latency of one row.
Each implementation is a pytest-benchmark case (group "predict 10000 rows" / "predict 1 row"); on a
shared machine the load moves between cases, so `test_same_run_ratios` also times them interleaved,
round by round, and records the medians and the ratios to onnxruntime in its extra_info (printed
with -s). "mlp, before" is predict as it was before the NumPy path: `check_features`, then the
array-API forward pass (`mlp.layers.forward`) in passes of at most 8192 rows, for the before/after
in the same run.

onnxruntime runs an ONNX graph built here with the `onnx` helper API (MatMul, Add, Relu, ..., ArgMax),
not `MLP.to_onnx` (which needs ndonnx); PyTorch runs nn.Linear layers holding the same weights under
inference_mode. Both skip when not installed.
"""

import os
import statistics
import time

import numpy as np
import pytest

HIDDEN = [128, 64]
ROWS = 10_000
CASES = {"10000 rows": (ROWS, 15, 1), "1 row": (1, 15, 2000)}  # rows, rounds, calls per round
IMPLEMENTATIONS = ["mlp", "mlp_generic", "onnxruntime", "torch"]
# Seconds of rest before each timed block of the interleaved test: worker threads that spin after a
# call (PyTorch's OpenMP pool, onnxruntime's) would otherwise take a core from whoever runs next
# (seen: mlp's 10 000 rows at 85 ms right after the others against 56 ms alone, same load).
PAUSE = 0.3
LABELS = {
    "mlp": "mlp, predict",
    "mlp_generic": "mlp, before (generic path)",
    "onnxruntime": "onnxruntime",
    "torch": "PyTorch CPU",
    "products": "(its 3 BLAS products alone)",
}


@pytest.fixture(scope="session")
def trained(mnist):
    """A 784-128-64-10 float32 model trained for 2 epochs (seed 0) and the first 10 000 test images."""
    import mlp

    X, y = mnist
    model = mlp.fit(X, y, hidden_sizes=HIDDEN, epochs=2, seed=0)
    folder = os.environ.get("MLP_DATA_DIR")
    (_, _), (X_test, _) = mlp.datasets.load_mnist(folder) if folder else mlp.datasets.load_mnist()
    return model, np.ascontiguousarray(X_test[:ROWS], dtype=np.float32)


def onnx_graph(params):
    """The network as ONNX bytes: MatMul + Add per layer, Relu between, ArgMax (the labels 0..9)."""
    onnx = pytest.importorskip("onnx")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    nodes, weights, previous = [], [], "X"
    for i, (W, b) in enumerate(params):
        weights += [numpy_helper.from_array(W, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes += [
            helper.make_node("MatMul", [previous, f"W{i}"], [f"z{i}"]),
            helper.make_node("Add", [f"z{i}", f"b{i}"], [f"a{i}"]),
        ]
        previous = f"a{i}"
        if i < len(params) - 1:
            nodes.append(helper.make_node("Relu", [previous], [f"h{i}"]))
            previous = f"h{i}"
    nodes.append(helper.make_node("ArgMax", [previous], ["label"], axis=1, keepdims=0))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("X", onnx.TensorProto.FLOAT, [None, params[0][0].shape[0]])],
        [helper.make_tensor_value_info("label", onnx.TensorProto.INT64, [None])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model.SerializeToString()


def predictor(name, model, threads):
    """f(X) -> labels for implementation `name` (skips when its library is missing)."""
    if name == "mlp":
        return model.predict
    if name == "mlp_generic":
        from mlp import layers
        from mlp import model as model_module

        xp = model._xp

        def generic(X):
            X = model._check_X(X)
            chunks = model_module.row_chunks(X.shape[0], model._chunk_rows())
            indices = [
                xp.argmax(layers.forward(model.params, X[r, ...], model.activation, xp=xp)[0], axis=1)
                for r in chunks
            ]
            return xp.take(model.classes_, xp.concat(indices, axis=0))

        return generic
    if name == "onnxruntime":
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(onnx_graph(model.get_weights()), providers=["CPUExecutionProvider"])
        return lambda X: session.run(None, {"X": X})[0]
    torch = pytest.importorskip("torch")
    torch.set_num_threads(threads)
    layers = []
    for i, (W, b) in enumerate(model.get_weights()):
        linear = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear, torch.nn.ReLU()] if i < len(model.params) - 1 else [linear]
    network = torch.nn.Sequential(*layers).eval()

    def torch_predict(X):
        with torch.inference_mode():
            return network(torch.from_numpy(X)).argmax(dim=1).numpy()

    return torch_predict


def _available(name, model, threads):
    """`predictor`, or None where its library is missing."""
    try:
        return predictor(name, model, threads)
    except pytest.skip.Exception:
        return None


def _calls(f, X, calls):
    start = time.perf_counter()
    for _ in range(calls):
        f(X)
    return (time.perf_counter() - start) / calls


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("name", IMPLEMENTATIONS)
def test_predict(benchmark, trained, threads, name, case):
    model, X_test = trained
    rows, rounds, calls = CASES[case]
    X = X_test[:rows]
    f = predictor(name, model, threads)
    labels = np.asarray(f(X))
    assert labels.shape == (rows,)
    assert np.mean(labels == model.predict(X)) >= 0.999  # the same network
    benchmark.group = f"predict {case}"
    benchmark.extra_info.update(implementation=LABELS[name], rows=rows)
    benchmark.pedantic(f, args=(X,), rounds=rounds, iterations=calls, warmup_rounds=2)


def test_same_run_ratios(benchmark, trained, threads):
    """Every implementation in turn, round by round (the order rotated, a PAUSE before each), so all
        see the same load;
        medians per call and each one's ratio to onnxruntime's median, in extra_info; beside them the
    network's three matrix products alone (NumPy's BLAS, no bias, activation or checks), the floor of
    mlp's predict. Results of the
        NumPy path and of the generic path are the same bits."""
    model, X_test = trained
    found = {name: f for name in IMPLEMENTATIONS if (f := _available(name, model, threads))}
    weights = [W for W, _ in model.params]
    found["products"] = lambda X: ((X @ weights[0]) @ weights[1]) @ weights[2]  # the floor of ours
    from mlp import layers

    generic = layers.forward(model.params, X_test, model.activation, xp=model._xp)[0]  # one pass, as ours
    assert model.decision_function(X_test).tobytes() == generic.tobytes()
    report = {}
    for case, (rows, rounds, calls) in CASES.items():
        X = X_test[:rows]
        times = {name: [] for name in found}
        for f in found.values():  # warm up
            _calls(f, X, max(1, calls // 10))
        for round_ in range(2 * rounds):
            names = list(found)
            names = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in names:
                time.sleep(PAUSE)
                times[name].append(_calls(found[name], X, calls))
        medians = {name: statistics.median(values) for name, values in times.items()}
        base = medians.get("onnxruntime")
        report[case] = {
            name: {"median_s": median, "vs_onnxruntime": median / base if base else None}
            for name, median in medians.items()
        }
        for name, entry in report[case].items():
            ratio = entry["vs_onnxruntime"]
            ratio_text = f"{ratio:.2f}x onnxruntime" if ratio is not None else ""
            print(f"{case:>10}  {LABELS[name]:<28} {entry['median_s'] * 1e6:10.1f} us  {ratio_text}")
    benchmark.group = "predict ratios"
    benchmark.extra_info.update(ratios=report)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
