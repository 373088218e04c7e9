"""One table of training options (mlp/options.py): fit, the estimator, the command line and the C++
port must agree with it on every name and default. Each check returns the disagreements it finds, and
a drifted copy of the table is shown to produce them, so these tests can fail."""

import dataclasses
import inspect

import pytest

import mlp
from mlp import options
from mlp.cli import build_parser
from tests.helpers import REPO_ROOT

HEADER = REPO_ROOT / "cpp" / "src" / "train_defaults.hpp"
# The estimators' parameters with no fit keyword: scikit-learn's warm starts, and its solvers' settings
# that fit takes as an optimizer or schedule instance instead (nesterovs_momentum: optimizer="nesterov";
# beta_1, beta_2, epsilon: mlp.optimizers.Adam(beta1=, beta2=, eps=); power_t: the "invscaling"
# schedule; max_fun: the L-BFGS solver's most loss evaluations). Anything else must be in the table.
ESTIMATOR_ONLY = {"warm_start", "nesterovs_momentum", "beta_1", "beta_2", "epsilon", "power_t", "max_fun"}


def fit_disagreements(table):
    parameters = inspect.signature(mlp.fit).parameters
    keywords = {name for name, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    found = [
        f"fit has {name} but the table does not"
        for name in sorted(keywords - set(table) - set(options.RUNTIME_ONLY))
    ]
    found += [f"the table has {name} but fit does not" for name in sorted(set(table) - keywords)]
    for name, option in table.items():
        if name in parameters and parameters[name].default != option.default:
            found.append(
                f"fit's {name} defaults to {parameters[name].default!r}, the table says {option.default!r}"
            )
    return found


def estimator_disagreements(table, kind="MLPClassifier", regressor_defaults=options.REGRESSOR_DEFAULTS):
    estimator = getattr(pytest.importorskip("mlp.estimator", reason="the estimators need scikit-learn"), kind)
    parameters = inspect.signature(estimator.__init__).parameters
    names = set(parameters) - {"self"}
    expected = {o.estimator: o.estimator_value for o in table.values() if o.estimator}
    if kind == "MLPRegressor":
        expected.update(regressor_defaults)
    found = [
        f"{kind} has {name} but the table does not" for name in sorted(names - set(expected) - ESTIMATOR_ONLY)
    ]
    found += [f"the table has {name} but {kind} does not" for name in sorted(set(expected) - names)]
    for name, value in expected.items():
        if name in parameters and parameters[name].default != value:
            found.append(
                f"{kind}'s {name} defaults to {parameters[name].default!r}, the table says {value!r}"
            )
    return found


def sklearn_disagreements(kind):
    """The estimator against scikit-learn's own: every parameter of scikit-learn's, with its default."""
    neural_network = pytest.importorskip("sklearn.neural_network", reason="needs scikit-learn")
    ours = inspect.signature(getattr(pytest.importorskip("mlp.estimator"), kind).__init__).parameters
    theirs = inspect.signature(getattr(neural_network, kind).__init__).parameters
    found = [f"{kind} lacks scikit-learn's {name}" for name in theirs if name not in ours]
    found += [
        f"{kind}'s {name} defaults to {ours[name].default!r}, scikit-learn's to {p.default!r}"
        for name, p in theirs.items()
        if name in ours and ours[name].default != p.default
    ]
    return found


def _train_parser():
    _, subcommands = build_parser()
    return subcommands["train"]


def cli_disagreements(table):
    parser = _train_parser()
    actions = {action.dest: action for action in parser._actions}
    found = []
    for name, option in table.items():
        if option.flag is None:
            continue
        action = actions.get(name)
        if action is None or option.flag not in action.option_strings:
            found.append(f"mlp train has no {option.flag} for {name}")
            continue
        default = action.default
        if isinstance(default, str) and action.type is not None:
            default = action.type(default)
        if default != option.command_line_default and not (
            isinstance(default, (list, tuple)) and list(default) == list(option.command_line_default)
        ):
            found.append(
                f"{option.flag} defaults to {default!r}, the table says {option.command_line_default!r}"
            )
    return found


def cpp_disagreements():
    found = []
    if HEADER.read_text() != options.cpp_header():
        found.append(f"{HEADER} is stale: regenerate it with python -m mlp.options --cpp-header > {HEADER}")
    config = (REPO_ROOT / "cpp" / "src" / "model.hpp").read_text()
    struct = config[config.index("struct TrainConfig") :]
    struct = struct[: struct.index("\n};")]
    fields = (
        "kEpochs",
        "kBatchSize",
        "kDropout",
        "kOptimizer",
        "kSchedule",
        "kShuffle",
        "kSeed",
        "kHiddenSizes",
    )
    found.extend(
        f"the C++ TrainConfig does not take {field} from train_defaults.hpp"
        for field in fields
        if f"defaults::{field}" not in struct
    )
    return found


def test_fit_takes_every_option_with_the_table_default():
    assert fit_disagreements(options.OPTIONS) == []


@pytest.mark.parametrize("kind", ["MLPClassifier", "MLPRegressor"])
def test_the_estimators_take_the_table_names_and_defaults(kind):
    assert estimator_disagreements(options.OPTIONS, kind) == []


@pytest.mark.parametrize("kind", ["MLPClassifier", "MLPRegressor"])
def test_the_estimators_take_every_scikit_learn_parameter_with_its_default(kind):
    assert sklearn_disagreements(kind) == []


def test_every_option_has_a_train_flag_with_the_table_default():
    assert cli_disagreements(options.OPTIONS) == []


def test_the_cpp_port_takes_its_defaults_from_the_generated_header():
    assert cpp_disagreements() == []


def _drifted(name, **changes):
    table = dict(options.OPTIONS)
    table[name] = dataclasses.replace(table[name], **changes)
    return table


def test_a_drifted_default_or_name_is_caught():
    assert fit_disagreements(_drifted("epochs", default=24)) == [
        "fit's epochs defaults to 25, the table says 24"
    ]
    assert any(
        "dropout" in line for line in estimator_disagreements(_drifted("dropout", estimator_default=0.5))
    )
    assert "the table has max_epochs but MLPRegressor does not" in estimator_disagreements(
        _drifted("epochs", estimator="max_epochs"), "MLPRegressor"
    )
    assert any(
        "loss" in line for line in estimator_disagreements(options.OPTIONS, "MLPRegressor", {"loss": "mse"})
    )
    assert any("--lr" in line for line in cli_disagreements(_drifted("learning_rate", cli_default=0.1)))
    assert any("--speed" in line for line in cli_disagreements(_drifted("engine", cli="--speed")))
    renamed = dict(options.OPTIONS)
    renamed["epochz"] = dataclasses.replace(renamed.pop("epochs"), name="epochz")
    assert "the table has epochz but fit does not" in fit_disagreements(renamed)


def test_help_shows_every_default():
    text = _train_parser().format_help()
    for option in options.OPTIONS.values():
        if option.flag is not None:
            assert option.flag in text
    assert "(default: 25)" in text and "(default: 0.1)" in text and "(default: cosine)" in text


def test_validate_normalises_and_refuses_unknown_names():
    assert options.validate({"batch_size": "full", "hidden_sizes": 64}) == {
        "batch_size": None,
        "hidden_sizes": [64],
    }
    with pytest.raises(TypeError, match=r"unknown training option.*epoch_count"):
        options.validate({"epoch_count": 3})
    with pytest.raises(ValueError, match="unknown schedule 'linear'; choose one of"):
        options.validate({"schedule": "linear"})


def test_the_cpp_header_command_prints_the_header(capsys):
    assert options.main(["--cpp-header"]) == 0
    assert capsys.readouterr().out == options.cpp_header()
