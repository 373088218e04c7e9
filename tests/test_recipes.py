"""Named recipes (mlp/recipes.py, mlp train --recipe) and the regularisers they use: max-norm and label
smoothing against their formulas, with a finite-difference check of the smoothed gradient."""

import itertools

import numpy as np
import pytest

import mlp
from mlp import layers, losses, options, recipes
from mlp.cli import main
from tests.helpers import host_backends, mnist_folder, put

npx = pytest.importorskip("array_api_compat.numpy")
needs_mnist = pytest.mark.skipif(
    mnist_folder() is None, reason="needs the real MNIST (MLP_DATA_DIR or ../shared/data/mnist)"
)


# ---- the recipes ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", recipes.names())
def test_every_recipe_is_a_complete_set_of_valid_fit_options(name):
    settings = recipes.get(name)
    assert set(settings) == set(recipes.RECIPE_OPTIONS)
    checked = options.validate(settings)  # raises on any invalid value
    assert set(checked) == set(settings)
    assert recipes.describe(name).startswith(f"{name}: ")
    settings["hidden_sizes"].append(7)  # a copy: the table stays as it was
    assert recipes.get(name)["hidden_sizes"] != settings["hidden_sizes"]


def test_the_default_recipe_is_fits_defaults_and_the_others_differ_where_they_say():
    defaults = {name: options.OPTIONS[name].default for name in recipes.RECIPE_OPTIONS}
    assert recipes.get("default") == {**defaults, "hidden_sizes": list(defaults["hidden_sizes"])}
    best = recipes.get("best")
    assert best["hidden_sizes"] == [1024, 1024] and best["augment"] is not None
    assert best["max_norm"] == 3.0 and best["label_smoothing"] == 0.1
    assert recipes.get("classic_fullbatch")["batch_size"] == "full"
    assert recipes.get("classic_sigmoid_mse")["loss"] == "mse"
    for run_setting in ("seed", "verbose", "checkpoint", "engine", "n_threads", "validation_split"):
        assert run_setting not in best


def test_an_unknown_recipe_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown recipe 'fastest'; choose one of 'default', 'best'"):
        recipes.get("fastest")


def subset(n=1500):
    (X, y), (X_test, y_test) = mlp.datasets.load_mnist(mnist_folder())
    return X[:n], y[:n], X_test[:2000], y_test[:2000]


@needs_mnist
@pytest.mark.parametrize(
    "name, layers_, activation, chance",
    [
        ("classic_fullbatch", [784, 128, 10], "relu", 0.3),
        ("classic_sigmoid_mse", [784, 64, 10], "sigmoid", 0.5),
    ],
)
def test_the_classic_recipes_train_a_few_epochs_on_a_subset(name, layers_, activation, chance):
    X, y, X_test, y_test = subset()
    model = mlp.fit(X, y, **{**recipes.get(name), "epochs": 4}, seed=0)
    assert model.layer_sizes == layers_ and model.activation == activation
    assert model.history["loss"][-1] < model.history["loss"][0]
    assert model.score(X_test, y_test) > chance


@needs_mnist
def test_the_best_recipe_trains_an_epoch_on_a_subset():
    X, y, X_test, y_test = subset(600)
    model = mlp.fit(X, y, **{**recipes.get("best"), "epochs": 1}, seed=0)
    assert model.layer_sizes == [784, 1024, 1024, 10]
    assert model.config["augment"]["elastic_alpha"] == 36.0 and model.config["max_norm"] == 3.0
    for W, _ in model.get_weights()[:-1]:
        assert np.sqrt((W.astype(np.float64) ** 2).sum(axis=0)).max() <= 3.0 * (1 + 1e-5)
    assert model.score(X_test, y_test) > 0.5


@needs_mnist
def test_mlp_train_takes_a_recipe_and_explicit_flags_override_it(capsys, tmp_path):
    folder = str(mnist_folder())
    args = ["train", "--data", folder, "--limit", "500", "--no-save", "--progress", "no", "--seed", "0"]
    assert main([*args, "--recipe", "classic_fullbatch", "--epochs", "2"]) == 0
    text = capsys.readouterr().out
    assert "recipe classic_fullbatch with --epochs: 784-128-10 relu" in text and "2 epochs" in text
    assert "784 -> 128 relu" in text and "epoch 2/2" in text
    out_file = tmp_path / "m.npz"
    assert (
        main(
            [
                "train",
                "--data",
                folder,
                "--limit",
                "500",
                "--seed",
                "0",
                "--recipe",
                "classic_sigmoid_mse",
                "--epochs",
                "1",
                "--hidden",
                "32",
                "--progress",
                "no",
                "--out",
                str(out_file),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "recipe classic_sigmoid_mse with --epochs, --hidden: 784-32-10 sigmoid, loss mse" in text
    assert "784 -> 32 sigmoid -> 10 sigmoid" in text  # the recipe's activation and loss, the flag's width
    model = mlp.load(out_file)
    assert (
        model.config["epochs"] == 1
        and model.config["learning_rate"] == 3.0
        and model.config["batch_size"] == 32
    )


def test_mlp_train_refuses_an_unknown_recipe(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--recipe", "fastest"])
    assert exit_.value.code == 2
    assert "invalid choice: 'fastest'" in capsys.readouterr().err


def test_a_bad_augment_flag_is_one_line(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--augment", "spin=3"])
    err = capsys.readouterr().err
    assert "--augment" in err and "known:" in err and len(err.strip().splitlines()) == 1


# ---- max-norm ---------------------------------------------------------------------------------------
def test_max_norm_caps_each_hidden_units_incoming_weights_and_leaves_the_rest():
    rng = np.random.default_rng(0)
    W1 = rng.normal(size=(6, 5)) * np.array([0.1, 1.0, 3.0, 0.2, 5.0])  # some columns over the limit
    W2 = rng.normal(size=(5, 3)) * 10  # the output layer: never constrained
    for xp, device in host_backends():
        params = [  # copies: NumPy's would otherwise share W1's memory and constrain it in place
            (put(W1.copy(), xp, device), put(np.zeros(5), xp, device)),
            (put(W2.copy(), xp, device), put(np.zeros(3), xp, device)),
        ]
        params = layers.max_norm(params, 1.5, xp=xp)  # new arrays where they are immutable (JAX)
        got = np.asarray(mlp._array_api.to_numpy(params[0][0]))
        norms = np.linalg.norm(W1, axis=0)
        expected = W1 * np.where(norms > 1.5, 1.5 / norms, 1.0)
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        np.testing.assert_array_equal(got[:, norms <= 1.5], W1[:, norms <= 1.5])  # exactly unchanged
        np.testing.assert_allclose(np.linalg.norm(got, axis=0)[norms > 1.5], 1.5, rtol=1e-12)
        np.testing.assert_array_equal(mlp._array_api.to_numpy(params[1][0]), W2)


def test_both_engines_keep_hidden_units_within_the_max_norm_after_training():
    pytest.importorskip("numba")
    rng = np.random.default_rng(1)
    X, y = rng.random((64, 6)), np.arange(64) % 3
    for engine in ("numba", "xp"):
        model = mlp.fit(
            X,
            y,
            hidden_sizes=[5],
            epochs=3,
            batch_size=16,
            learning_rate=0.5,
            optimizer="sgd",
            max_norm=0.3,
            engine=engine,
            seed=0,
            dtype="float64",
        )
        W = np.asarray(model.params[0][0])
        assert np.linalg.norm(W, axis=0).max() <= 0.3 * (1 + 1e-12), engine


# ---- label smoothing --------------------------------------------------------------------------------
def test_label_smoothing_is_cross_entropy_against_the_smoothed_targets():
    rng = np.random.default_rng(2)
    Z, y, e = rng.normal(size=(7, 4)) * 3, rng.integers(0, 4, 7), 0.2
    value, dZ = losses.softmax_cross_entropy(Z, y, xp=npx, label_smoothing=e)
    target = np.full((7, 4), e / 4) + (1 - e) * np.eye(4)[y]
    logp = Z - Z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    np.testing.assert_allclose(value, -(target * logp).sum() / 7, rtol=1e-12)
    np.testing.assert_allclose(dZ, (np.exp(logp) - target) / 7, rtol=1e-12, atol=1e-15)
    plain, _ = losses.softmax_cross_entropy(Z, y, xp=npx)
    assert losses.softmax_cross_entropy(Z, y, xp=npx, label_smoothing=0.0)[0] == plain


def relative_error(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-3))


def test_the_smoothed_gradient_matches_central_differences_through_the_network():
    """float64, tanh (smooth): the fourth-order stencil, threshold 1e-7 (CS231n, as tests/test_gradients.py)."""
    rng = np.random.default_rng(3)
    sizes = [5, 4, 3]
    params = [(rng.normal(size=(a, b)), rng.normal(size=b) * 0.1) for a, b in itertools.pairwise(sizes)]
    X, y = rng.normal(size=(6, 5)), rng.integers(0, 3, 6)

    def value():
        return float(
            layers.loss_and_gradients(
                params, X, y, activation="tanh", loss="cross_entropy", l2=0.01, xp=npx, label_smoothing=0.15
            )[0]
        )

    _, grads, _ = layers.loss_and_gradients(
        params, X, y, activation="tanh", loss="cross_entropy", l2=0.01, xp=npx, label_smoothing=0.15
    )
    h = 1e-4
    for (W, b), analytic in zip(params, grads, strict=True):
        for p, g in zip((W, b), analytic, strict=True):
            flat, numeric = p.reshape(-1), np.zeros(p.size)
            for i in range(flat.size):
                x0 = flat[i]
                samples = []
                for step in (2 * h, h, -h, -2 * h):
                    flat[i] = x0 + step
                    samples.append(value())
                flat[i] = x0
                numeric[i] = (-samples[0] + 8 * samples[1] - 8 * samples[2] + samples[3]) / (12 * h)
            assert relative_error(g.reshape(-1), numeric) < 1e-7


def test_smoothing_the_kernels_results_equals_the_generic_smoothed_loss():
    mlp_kernels = pytest.importorskip("mlp_kernels")
    rng = np.random.default_rng(4)
    Z, y, e = rng.normal(size=(9, 5)), rng.integers(0, 5, 9).astype(np.int64), 0.1
    dZ = np.empty_like(Z)
    loss_sum, _ = mlp_kernels.softmax_cross_entropy_sum(Z, y, 1 / 9, dZ)
    loss_sum, dZ = losses.smooth_labels(Z, y, loss_sum, dZ, e, 1 / 9, xp=npx)
    value, expected = losses.softmax_cross_entropy(Z, y, xp=npx, label_smoothing=e)
    np.testing.assert_allclose(loss_sum / 9, value, rtol=1e-12)
    np.testing.assert_allclose(dZ, expected, rtol=1e-10, atol=1e-15)


def test_label_smoothing_needs_cross_entropy():
    X, y = np.random.default_rng(5).random((20, 4)), np.arange(20) % 2
    with pytest.raises(ValueError, match="label_smoothing works with loss='cross_entropy' only, not 'mse'"):
        mlp.fit(X, y, loss="mse", label_smoothing=0.1, epochs=1)
    with pytest.raises(ValueError, match="label_smoothing"):
        mlp.fit(X, y, label_smoothing=1.5, epochs=1)
    with pytest.raises(ValueError, match="max_norm"):
        mlp.fit(X, y, max_norm=0.0, epochs=1)
