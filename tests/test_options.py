"""One table of training options (mlp/options.py): fit, the estimator, the command line and the C++
port must agree with it on every name and default. Each check returns the disagreements it finds, and
a drifted copy of the table is shown to produce them, so these tests can fail."""

import dataclasses
import inspect
import re

import pytest

import mlp
from mlp import options
from mlp.cli import build_parser
from tests.helpers import REPO_ROOT, blobs

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
    estimator = getattr(
        pytest.importorskip("mlp.estimators", reason="the estimators need scikit-learn"), kind
    )
    parameters = inspect.signature(estimator.__init__).parameters
    names = set(parameters) - {"self"}
    expected = {o.estimator: o.estimator_value for o in table.values() if o.estimator}
    if kind == "MLPRegressor":
        expected.update(regressor_defaults)
    # fit's runtime keywords the estimators take as parameters (class_weight) are not in the table either
    runtime = set(options.RUNTIME_ONLY)
    found = [
        f"{kind} has {name} but the table does not"
        for name in sorted(names - set(expected) - ESTIMATOR_ONLY - runtime)
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
    ours = inspect.signature(getattr(pytest.importorskip("mlp.estimators"), kind).__init__).parameters
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


def trainconfig_fields():
    """{field: its declaration line} of the C++ TrainConfig (several fields may share a line)."""
    config = (REPO_ROOT / "cpp" / "src" / "model.hpp").read_text()
    struct = config[config.index("struct TrainConfig") :]
    struct = struct[struct.index("\n") + 1 : struct.index("\n};")]
    fields = {}
    for line in struct.splitlines():
        code = line.split("//")[0]
        for name in re.findall(r"(\w+)\s*(?:=|\{)", code):
            fields.setdefault(name, line)
    return fields


def cpp_disagreements(table=options.OPTIONS):
    """The generated header against the table, and the table's cpp column against the C++ TrainConfig:
    every field it names is declared there with its default from the header, and every field taking a
    default from the header is named by an option."""
    found = []
    if HEADER.read_text() != options.cpp_header():
        found.append(f"{HEADER} is stale: regenerate it with python -m mlp.options --cpp-header > {HEADER}")
    fields = trainconfig_fields()
    named = {option.cpp: name for name, option in table.items() if option.cpp}
    for field, name in named.items():
        if field not in fields:
            found.append(f"the C++ TrainConfig has no {field} (the cpp column of {name})")
        elif "defaults::" not in fields[field]:
            found.append(f"the C++ TrainConfig's {field} does not take its default from train_defaults.hpp")
    first_on_line = {line: field for field, line in reversed(fields.items())}
    found.extend(
        f"the C++ TrainConfig's {field} takes a default from train_defaults.hpp but no option names it"
        for line, field in first_on_line.items()
        if "defaults::" in line and field not in named
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
    assert cpp_disagreements(_drifted("epochs", cpp="n_epochs")) == [
        "the C++ TrainConfig has no n_epochs (the cpp column of epochs)",
        "the C++ TrainConfig's epochs takes a default from train_defaults.hpp but no option names it",
    ]


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


def test_fits_options_travel_as_one_frozen_object_holding_exactly_the_tables_options():
    assert [f.name for f in dataclasses.fields(options.TrainingOptions)] == list(options.OPTIONS)
    resolved = options.resolve({"batch_size": "full", "hidden_sizes": 64})
    expected = {**options.validate(options.defaults()), "batch_size": None, "hidden_sizes": [64]}
    assert resolved.as_dict() == expected
    with pytest.raises(dataclasses.FrozenInstanceError):
        resolved.epochs = 3
    with pytest.raises(TypeError, match=r"unknown training option.*epoch_count"):
        options.resolve({"epoch_count": 3})


def test_the_cpp_header_command_prints_the_header(capsys):
    assert options.main(["--cpp-header"]) == 0
    assert capsys.readouterr().out == options.cpp_header()


# ---- one check per option: fit, the estimators and `mlp train` all ask the table ---------------------
# A value each option with a check refuses, on every surface that takes the option (the command line
# is given str(value), or the text beside it).
BAD_VALUES = {
    "hidden_sizes": ([4, 0], "4,0"),
    "activation": "swish",
    "loss": "hinge",
    "init": "zeros",
    "batch_norm": "middle",
    "batch_norm_momentum": 0.0,
    "epochs": -1,
    "batch_size": 0,
    "optimizer": "newton",
    "learning_rate": -1.0,
    "momentum": 1.5,
    "weight_decay": -1.0,
    "dropout": 1.0,
    "clip_value": 0.0,
    "clip_norm": -1.0,
    "augment": "bogus",
    "max_norm": 0.0,
    "label_smoothing": 1.0,
    "schedule": "linear",
    "validation_split": 1.0,
    "early_stopping": "yes",
    "patience": -1,
    "min_delta": -1.0,
    "verbose": -1,
    "dtype": "float16",
    "seed": -1,
    "shuffle": "yes",
    "shuffle_block": 0,
    "resume": "yes",
    "log_gradients": "yes",
    "progress": "maybe",
    "engine": "gpu",
    "n_threads": 0,
    "deterministic": "yes",
}
CHECKED = sorted(name for name, option in options.OPTIONS.items() if option.check is not None)


def _refusal(call):
    with pytest.raises((ValueError, TypeError)) as caught:
        call()
    return str(caught.value)


def _refusals(name, capsys):
    """{surface: its message} for the bad value of option `name`: fit's, the estimator's (when it takes
    the option) and `mlp train`'s (when the option has a flag that takes a value)."""
    option = options.OPTIONS[name]
    value, text = BAD_VALUES[name] if isinstance(BAD_VALUES[name], tuple) else (BAD_VALUES[name], None)
    X, y = blobs(n=20)
    found = {"fit": _refusal(lambda: mlp.fit(X, y, **{name: value}))}
    if option.estimator:
        estimators = pytest.importorskip("mlp.estimators", reason="the estimators need scikit-learn")
        found["estimator"] = _refusal(lambda: estimators.MLPClassifier(**{option.estimator: value}).fit(X, y))
    train = _train_parser()
    if option.flag in {s for action in train._actions if action.type for s in action.option_strings}:
        with pytest.raises(SystemExit) as exit:
            train.parse_args([option.flag, str(value) if text is None else text])
        line = capsys.readouterr().err
        assert exit.value.code == 2 and line.endswith(" (see mlp train --help)\n"), line
        found["cli"] = line.removeprefix("mlp train: error: ").removesuffix(" (see mlp train --help)\n")
    return found


def test_every_checked_option_has_a_bad_value():
    assert sorted(BAD_VALUES) == CHECKED


@pytest.mark.parametrize("name", CHECKED)
def test_a_bad_value_gets_the_tables_message_on_every_surface(name, capsys):
    """fit's message is the table's; the estimator's is the table's under the scikit-learn name, and the
    command line's under the flag: fit's own with the name replaced, where the surface takes what fit
    takes (no estimator_check, no choices of its own)."""
    option = options.OPTIONS[name]
    value = BAD_VALUES[name][0] if isinstance(BAD_VALUES[name], tuple) else BAD_VALUES[name]
    found = _refusals(name, capsys)
    assert found["fit"] == _refusal(lambda: option.validate(value))
    if "estimator" in found:
        assert found["estimator"] == _refusal(lambda: options.validate_estimator({option.estimator: value}))
        if option.estimator_check is None:
            assert found["estimator"] == found["fit"].replace(name, option.estimator)
    if "cli" in found:
        assert found["cli"] == _refusal(lambda: option.validate_command_line(value))
        if not option.choices and name not in FLAG_WORDED:
            assert found["cli"] == found["fit"].replace(name, option.flag)
        assert option.flag in found["cli"] and name not in found["cli"].replace(option.flag, "")


# Options whose values the command line spells otherwise than Python (--batch-size full, --progress
# yes|no, --threads left out): the table words their message for the flag, without fit's None/True/False.
FLAG_WORDED = ("batch_size", "progress", "n_threads")


@pytest.mark.parametrize("name", CHECKED)
def test_no_surface_checks_an_option_before_the_table(name, capsys, monkeypatch):
    """With the table's check of `name` replaced by one refusing everything in its own words, fit, the
    estimator and the command line report those words: none of them refuses the value itself first
    (the command line's choices are the table's choices column, checked by its own helper)."""

    def refuse(reported, value):
        raise ValueError(f"{reported}: refused by the table")

    option = options.OPTIONS[name]
    replaced = dataclasses.replace(option, check=refuse, estimator_check=option.estimator_check and refuse)
    monkeypatch.setitem(options.OPTIONS, name, replaced)
    found = _refusals(name, capsys)
    assert found.pop("fit") == f"{name}: refused by the table"
    if "estimator" in found:
        assert found.pop("estimator") == f"{option.estimator}: refused by the table"
    if "cli" in found and not option.choices:
        assert found.pop("cli") == f"{option.flag}: refused by the table"
