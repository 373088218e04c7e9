"""Golden vectors for the C++ port, computed by the Python implementation: the library's own training
step (mlp.engines' Trainer.train_step, which runs mlp.layers, mlp.losses and mlp.optimizers) and its
initializers. The format is described in tests/golden/README.md.

    python tests/golden/generate.py            # rewrite tests/golden/golden_float{32,64}.bin
    python tests/golden/generate.py --check    # regenerate in memory and compare with the files

Deterministic: fixed seeds, single-threaded BLAS, fixed case list; regenerating on the same machine
reproduces the files byte for byte. (Another CPU's BLAS kernel may round float matmuls differently in
the last bit; `--check` then reports the largest difference in units of the dtype's epsilon.)
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads BLAS
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import struct
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # the repository root, for `import mlp` from a checkout

from mlp import initializers, layers, losses, optimizers  # noqa: E402
from mlp._array_api import get_namespace  # noqa: E402
from mlp.engines import make_trainer  # noqa: E402
from mlp.model import MLP  # noqa: E402
from mlp.schedules import make_schedule  # noqa: E402

MAGIC = b"MLPGOLD\0"
VERSION = 3
ACTIVATIONS = [
    "identity",
    "relu",
    "leaky_relu",
    "sigmoid",
    "tanh",
]  # codes 0..4, as the README's "The math, precisely"
LOSSES = ["cross_entropy", "mse", "squared_error", "binary_cross_entropy", "poisson"]  # codes 0..4
OPTIMIZERS = ["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw"]
BATCH_NORMS = [None, "before", "after"]  # codes 0..2
LEARNING_RATES = {
    "sgd": 0.1,
    "momentum": 0.05,
    "nesterov": 0.05,
    "rmsprop": 0.01,
    "adam": 0.01,
    "adamw": 0.01,
}
NORM_NAMES = ("gamma", "beta", "mean", "var")  # a hidden layer's norm, as the model file names them
KIND_FLOAT, KIND_INT32 = 0, 1
N_STEPS = 3

# name, layer sizes, batch rows, activation, loss, optimizer,
# options (l2, weight_decay, clip_value, clip_norm, dropout, batch_norm, batch_norm_momentum)
CASES = [
    ("relu_ce_adam", [6, 5, 4, 3], 8, "relu", "cross_entropy", "adam", {}),
    ("leaky_relu_ce_sgd", [6, 5, 3], 8, "leaky_relu", "cross_entropy", "sgd", {}),
    ("sigmoid_mse_momentum", [6, 7, 3], 8, "sigmoid", "mse", "momentum", {}),
    ("tanh_ce_nesterov", [6, 5, 4, 3], 8, "tanh", "cross_entropy", "nesterov", {}),
    ("identity_mse_rmsprop", [6, 4, 3], 8, "identity", "mse", "rmsprop", {}),
    ("relu_mse_adamw", [6, 8, 5, 4], 8, "relu", "mse", "adamw", {"weight_decay": 0.05}),
    ("tanh_mse_sgd_l2", [6, 5, 3], 8, "tanh", "mse", "sgd", {"l2": 0.05}),
    ("sigmoid_ce_adam_clipvalue", [6, 5, 4, 3], 8, "sigmoid", "cross_entropy", "adam", {"clip_value": 0.05}),
    ("leaky_relu_mse_rmsprop_clipnorm", [6, 6, 3], 8, "leaky_relu", "mse", "rmsprop", {"clip_norm": 0.1}),
    (
        "relu_ce_momentum_all",
        [6, 5, 4, 3],
        8,
        "relu",
        "cross_entropy",
        "momentum",
        {"l2": 0.01, "clip_value": 0.5, "clip_norm": 0.2},
    ),
    ("linear_softmax_adam", [6, 3], 8, "relu", "cross_entropy", "adam", {"l2": 0.02}),
    ("deep_tanh_ce_adamw", [6, 5, 5, 5, 5, 3], 8, "tanh", "cross_entropy", "adamw", {"weight_decay": 0.01}),
    ("identity_ce_nesterov_l2", [6, 4, 3], 8, "identity", "cross_entropy", "nesterov", {"l2": 0.1}),
    ("odd_shapes_relu_ce_adam", [13, 33, 17, 4], 25, "relu", "cross_entropy", "adam", {}),
    ("batch_of_one_sigmoid_ce_sgd", [6, 5, 3], 1, "sigmoid", "cross_entropy", "sgd", {}),
    ("wide_tanh_mse_adam", [20, 40, 10], 30, "tanh", "mse", "adam", {"clip_norm": 1.0}),
    ("relu_ce_adam_dropout", [6, 7, 5, 3], 8, "relu", "cross_entropy", "adam", {"dropout": 0.3}),
    (
        "tanh_mse_momentum_dropout_l2_clip",
        [6, 9, 3],
        9,
        "tanh",
        "mse",
        "momentum",
        {"dropout": 0.5, "l2": 0.01, "clip_norm": 0.3},
    ),
    # Targets as a matrix (mlp.losses.VALUE_LOSSES): regression (identity outputs) and multilabel.
    ("tanh_squared_error_adam_one_output", [6, 5, 1], 8, "tanh", "squared_error", "adam", {}),
    (
        "relu_squared_error_momentum_l2_clip",
        [6, 7, 3],
        8,
        "relu",
        "squared_error",
        "momentum",
        {"l2": 0.02, "clip_value": 0.2, "clip_norm": 0.5},
    ),
    ("linear_regression_sgd", [6, 2], 8, "identity", "squared_error", "sgd", {}),
    (
        "leaky_relu_squared_error_adamw_dropout",
        [6, 8, 2],
        9,
        "leaky_relu",
        "squared_error",
        "adamw",
        {"dropout": 0.25, "weight_decay": 0.05},
    ),
    ("sigmoid_binary_cross_entropy_rmsprop", [6, 5, 4], 8, "sigmoid", "binary_cross_entropy", "rmsprop", {}),
    (
        "relu_binary_cross_entropy_nesterov_l2_clip",
        [6, 7, 3],
        8,
        "relu",
        "binary_cross_entropy",
        "nesterov",
        {"l2": 0.01, "clip_norm": 0.2},
    ),
    # Counts (exp outputs, half Poisson deviance), zeros among them; last, so the cases above keep
    # their seeds and bytes.
    ("tanh_poisson_adam_l2_clip", [6, 5, 3], 8, "tanh", "poisson", "adam", {"l2": 0.01, "clip_norm": 0.5}),
    # Batch normalisation (its initial gamma, beta and running statistics drawn away from 1, 0, 0, 1).
    # "before" makes the bias gradient zero up to rounding, so those cases take optimizers whose step
    # stays at the rounding level there (not Adam or RMSProp, whose step is about lr * sign(g)).
    (
        "relu_ce_momentum_bn_before",
        [6, 7, 5, 3],
        8,
        "relu",
        "cross_entropy",
        "momentum",
        {"batch_norm": "before"},
    ),
    (
        "tanh_ce_adam_bn_after",
        [6, 7, 5, 3],
        8,
        "tanh",
        "cross_entropy",
        "adam",
        {"batch_norm": "after", "batch_norm_momentum": 0.3},
    ),
    (
        "sigmoid_mse_sgd_bn_after_dropout_l2_clip",
        [6, 9, 4, 3],
        9,
        "sigmoid",
        "mse",
        "sgd",
        {"batch_norm": "after", "dropout": 0.3, "l2": 0.01, "clip_norm": 0.3},
    ),
    (
        "identity_squared_error_nesterov_bn_before",
        [6, 8, 2],
        10,
        "identity",
        "squared_error",
        "nesterov",
        {"batch_norm": "before", "clip_value": 0.5},
    ),
    # A batch of one row: the running statistics, not updated.
    (
        "batch_of_one_tanh_ce_adam_bn_before",
        [6, 5, 4, 3],
        1,
        "tanh",
        "cross_entropy",
        "adam",
        {"batch_norm": "before"},
    ),
]


def _tensor(tag, array, dtype):
    array = np.asarray(array)
    kind = KIND_INT32 if array.dtype.kind in "iu" else KIND_FLOAT
    data = array.astype("<i4" if kind == KIND_INT32 else np.dtype(dtype).newbyteorder("<"))
    name = tag.encode("ascii")
    head = struct.pack("<I", len(name)) + name + struct.pack("<II", kind, array.ndim)
    head += struct.pack(f"<{array.ndim}I", *array.shape)
    return head + np.ascontiguousarray(data).tobytes()


def dropout_masks(rng, n, sizes, dropout, dtype):
    """N_STEPS lists of inverted-dropout masks (0 or 1/keep, one (n, width) array per hidden layer),
    drawn as the Trainer draws them; None per step without dropout."""
    if not dropout:
        return [None] * N_STEPS
    keep = 1.0 - dropout
    return [
        [((rng.random((n, width)) < keep) / keep).astype(dtype) for width in sizes[1:-1]]
        for _ in range(N_STEPS)
    ]


def initial_norms(rng, sizes, batch_norm, dtype):
    """(gamma, beta, running_mean, running_var) per hidden layer, away from their initial 1, 0, 0, 1 so
    that every term shows; [] without batch normalisation (and nothing drawn: the other cases keep
    their numbers)."""
    if batch_norm is None:
        return []
    return [
        tuple(
            a.astype(dtype)
            for a in (
                1.0 + 0.2 * rng.standard_normal(k),
                0.1 * rng.standard_normal(k),
                0.2 * rng.standard_normal(k),
                0.5 + rng.random(k),
            )
        )
        for k in sizes[1:-1]
    ]


def run_case(case, dtype, seed):
    """All tensors of one case, in the file order: a list of (tag, array)."""
    _name, sizes, n, activation, loss, opt_name, options = case
    batch_norm = options.get("batch_norm")
    momentum = options.get("batch_norm_momentum", layers.BATCH_NORM_MOMENTUM)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, sizes[0])).astype(dtype)
    if losses.takes_class_indices(loss):
        y = rng.integers(0, sizes[-1], size=n).astype(np.int64)
    elif loss == "squared_error":  # real targets (n, k), away from zero so the outputs have work to do
        y = (2.0 * rng.standard_normal((n, sizes[-1])) + 0.5).astype(dtype)
    elif loss == "poisson":  # counts (n, k) >= 0, zeros included
        y = rng.poisson(1.5, size=(n, sizes[-1])).astype(dtype)
    else:  # multilabel 0/1 rows
        y = rng.integers(0, 2, size=(n, sizes[-1])).astype(dtype)
    init = initializers.default_init(activation)
    params = [
        (W.astype(dtype), b.astype(dtype)) for W, b in initializers.initial_parameters(sizes, init, rng)
    ]
    dropout = options.get("dropout", 0.0)
    masks = dropout_masks(rng, n, sizes, dropout, dtype)
    norms = initial_norms(rng, sizes, batch_norm, dtype)
    statistics = layers.BatchStatistics(n, momentum=momentum) if batch_norm else None
    bn = {"batch_norm": batch_norm, "norms": norms, "statistics": statistics}
    xp, _ = get_namespace(X)
    l2 = options.get("l2", 0.0)
    clip_value, clip_norm = options.get("clip_value"), options.get("clip_norm")
    out = [("X", X), ("y", y)]
    for index, (W, b) in enumerate(params):
        out += [(f"W{index}", W.copy()), (f"b{index}", b.copy())]
    for index, norm in enumerate(norms):
        out += [(f"{name}{index}", array.copy()) for name, array in zip(NORM_NAMES, norm, strict=True)]
    if dropout:
        for layer in range(len(sizes) - 2):
            out.append((f"mask{layer + 1}", np.stack([step[layer] for step in masks])))

    # The first step's forward and backward pass, tensor by tensor (with the first step's masks).
    done = layers.forward_pass(params, X, activation, xp=xp, dropout_masks=masks[0], **bn)
    for index, A in enumerate(done.outputs):
        out.append((f"A{index + 1}", A))
    for index, cache in enumerate(done.normalised):
        out.append((f"hat{index}", cache.normalised))
    out.append(("logits", done.logits))
    _, dlogits = losses.get_loss(loss)(done.logits, y, xp=xp)
    value, grads, _ = layers.loss_and_gradients(
        params, X, y, activation=activation, loss=loss, l2=l2, xp=xp, dropout_masks=masks[0], **bn
    )
    out += [("loss", np.asarray(value, dtype=dtype)), ("dlogits", dlogits)]
    for index, (dW, db) in enumerate(grads[: len(params)]):
        out += [(f"dW{index}", dW), (f"db{index}", db)]
    for index, (dgamma, dbeta) in enumerate(grads[len(params) :]):
        out += [(f"dgamma{index}", dgamma), (f"dbeta{index}", dbeta)]

    # N_STEPS steps on the same batch through the library's own training step (constant learning
    # rate); the clipped gradients it applied at the first step are gW, gb.
    classes = np.arange(sizes[-1]) if losses.takes_class_indices(loss) else None
    model = MLP(
        [(W.copy(), b.copy()) for W, b in params],
        activation=activation,
        loss=loss,
        classes=classes,
        l2=l2,
        batch_norm=batch_norm,
        norms=[tuple(a.copy() for a in norm) for norm in norms] if batch_norm else None,
    )
    trainer = make_trainer(
        model,
        X,
        engine="xp",
        optimizer=make_optimizer(opt_name, options),
        learning_rate=LEARNING_RATES[opt_name],
        schedule=make_schedule("constant"),
        epochs=1,
        batch_size=n,
        dropout=dropout,
        clip_value=clip_value,
        clip_norm=clip_norm,
        shuffle=False,
        rng=np.random.default_rng(seed),
        batch_norm_momentum=momentum,
    )
    step_losses = []
    for t in range(N_STEPS):
        value, applied, _ = trainer.train_step(X, y, lr=LEARNING_RATES[opt_name], dropout_masks=masks[t])
        if t == 0:
            for index in range(len(params)):
                out += [
                    (f"gW{index}", np.array(applied[2 * index])),
                    (f"gb{index}", np.array(applied[2 * index + 1])),
                ]
            for index in range(len(norms)):
                at = 2 * len(params) + 2 * index
                out += [
                    (f"ggamma{index}", np.array(applied[at])),
                    (f"gbeta{index}", np.array(applied[at + 1])),
                ]
        step_losses.append(float(value))
    out.append(("step_losses", np.asarray(step_losses, dtype=dtype)))
    for index, (W, b) in enumerate(model.params):
        out += [(f"final_W{index}", W), (f"final_b{index}", b)]
    for index, norm in enumerate(model.norms):
        out += [(f"final_{name}{index}", array) for name, array in zip(NORM_NAMES, norm, strict=True)]
    if batch_norm:  # what predict computes after the steps: the running statistics
        inference = layers.forward(
            model.params, X, activation, xp=xp, batch_norm=batch_norm, norms=model.norms
        )
        out.append(("inference_logits", inference[0]))
    return out


def make_optimizer(opt_name, options):
    return optimizers.make_optimizer(opt_name, weight_decay=options.get("weight_decay"))


def build(dtype):
    """The bytes of the golden file for one dtype."""
    size = np.dtype(dtype).itemsize
    blob = bytearray(MAGIC + struct.pack("<III", VERSION, size, len(CASES)))
    for seed, case in enumerate(CASES):
        name, sizes, n, activation, loss, opt_name, options = case
        encoded = name.encode("ascii")
        blob += struct.pack("<I", len(encoded)) + encoded
        blob += struct.pack("<II", n, len(sizes) - 1) + struct.pack(f"<{len(sizes)}I", *sizes)
        blob += struct.pack(
            "<IIIII",
            ACTIVATIONS.index(activation),
            LOSSES.index(loss),
            OPTIMIZERS.index(opt_name),
            N_STEPS,
            BATCH_NORMS.index(options.get("batch_norm")),
        )
        opt = make_optimizer(opt_name, options)
        blob += struct.pack(
            "<12d",
            LEARNING_RATES[opt_name],
            options.get("l2", 0.0),
            getattr(opt, "weight_decay", 0.0),
            options.get("clip_value") or 0.0,
            options.get("clip_norm") or 0.0,
            getattr(opt, "momentum", 0.9),
            getattr(opt, "rho", 0.9),
            getattr(opt, "beta1", 0.9),
            getattr(opt, "beta2", 0.999),
            getattr(opt, "eps", 1e-8),
            options.get("dropout", 0.0),
            options.get("batch_norm_momentum", layers.BATCH_NORM_MOMENTUM),
        )
        tensors = run_case(case, dtype, seed=1000 + seed)
        blob += struct.pack("<I", len(tensors))
        for tag, array in tensors:
            blob += _tensor(tag, array, dtype)
    return bytes(blob)


def read(blob):
    """Parse a golden file into {case name: {tag: array}} (for --check and tests/test_cpp.py)."""
    if blob[:8] != MAGIC:
        raise ValueError("not a golden-vector file (bad magic)")
    version, size, n_cases = struct.unpack_from("<III", blob, 8)
    if version != VERSION:
        raise ValueError(f"format version {version}, this reader knows {VERSION}")
    dtype = {4: "<f4", 8: "<f8"}[size]
    pos, cases = 20, {}

    def take(fmt):
        nonlocal pos
        values = struct.unpack_from(fmt, blob, pos)
        pos += struct.calcsize(fmt)
        return values

    for _ in range(n_cases):
        (length,) = take("<I")
        name = blob[pos : pos + length].decode("ascii")
        pos += length
        _, n_layers = take("<II")
        take(f"<{n_layers + 1}I")
        take("<IIIII")
        take("<12d")
        (n_tensors,) = take("<I")
        tensors = {}
        for _ in range(n_tensors):
            (length,) = take("<I")
            tag = blob[pos : pos + length].decode("ascii")
            pos += length
            kind, ndim = take("<II")
            shape = take(f"<{ndim}I")
            item = np.dtype("<i4" if kind == KIND_INT32 else dtype)
            count = int(np.prod(shape, dtype=np.int64))
            tensors[tag] = np.frombuffer(blob, dtype=item, count=count, offset=pos).reshape(shape)
            pos += count * item.itemsize
        cases[name] = tensors
    if pos != len(blob):
        raise ValueError(f"{len(blob) - pos} trailing bytes")
    return cases


def compare(new, old, dtype):
    """Largest difference between two parsed files in units of eps * max(1, |value|); None if the
    structure (cases, tags, shapes) differs."""
    a, b = read(new), read(old)
    if a.keys() != b.keys():
        return None
    eps, worst = float(np.finfo(dtype).eps), 0.0
    for name in a:
        if a[name].keys() != b[name].keys():
            return None
        for tag in a[name]:
            x, z = a[name][tag].astype(np.float64), b[name][tag].astype(np.float64)
            if x.shape != z.shape:
                return None
            if x.size:
                worst = max(worst, float(np.max(np.abs(x - z) / (eps * np.maximum(1.0, np.abs(z))))))
    return worst


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed files instead of writing"
    )
    parser.add_argument("--out", type=Path, default=HERE, help="folder of the golden files")
    args = parser.parse_args(argv)
    status = 0
    if not args.check:
        args.out.mkdir(parents=True, exist_ok=True)
    for dtype in ("float32", "float64"):
        path = args.out / f"golden_{dtype}.bin"
        blob = build(dtype)
        if not args.check:
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(blob)
            os.replace(tmp, path)
            print(f"wrote {path} ({len(blob)} bytes, {len(CASES)} cases)")
            continue
        if not path.exists():
            print(f"{path}: missing")
            status = 1
        elif path.read_bytes() == blob:
            print(f"{path}: identical")
        else:
            worst = compare(blob, path.read_bytes(), dtype)
            if worst is None:
                print(f"{path}: DIFFERENT structure (cases, tensors or shapes); regenerate and commit")
                status = 1
            else:
                print(f"{path}: not byte-identical; largest difference {worst:.1f} eps (BLAS rounding?)")
                status = 2
    return status


if __name__ == "__main__":
    sys.exit(main())
