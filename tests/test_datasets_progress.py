"""mlp._progress: the one progress-bar helper (downloads use it here; training uses it too)."""

import sys

import pytest

from mlp._progress import progress_bar


class FakeTerminal:
    def __init__(self, tty=True):
        self.text = []
        self.tty = tty

    def isatty(self):
        return self.tty

    def write(self, text):
        self.text.append(text)

    def flush(self):
        pass


def test_auto_draws_only_on_a_terminal(monkeypatch):
    pytest.importorskip("tqdm")
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress_bar(10, "epoch 1") as bar:
        bar.update(4)
        bar.update(6)
    assert "epoch 1" in "".join(terminal.text) and "/10 " in "".join(terminal.text)
    pipe = FakeTerminal(tty=False)
    monkeypatch.setattr(sys, "stderr", pipe)
    with progress_bar(10, "epoch 2") as bar:
        bar.update(10)
    assert pipe.text == []


def test_bytes_are_scaled(monkeypatch):
    pytest.importorskip("tqdm")
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress_bar(3 << 20, "download", unit="B", enabled=True) as bar:
        bar.update(3 << 20)
    assert "3.00M" in "".join(terminal.text)


def test_disabled_or_without_tqdm_is_silent(monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with progress_bar(5, "quiet", enabled=False) as bar:
        bar.update(5)
        bar.set_postfix_str("loss 0.1")
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if tqdm were not installed
    with progress_bar(5, "auto without tqdm") as bar:
        bar.update(5)
    assert terminal.text == []


def test_enabled_without_tqdm_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    with pytest.raises(
        ImportError, match=r'progress bars need tqdm: pip install "mlp-from-scratch\[progress\]"'
    ):
        progress_bar(5, "x", enabled=True)


def test_enabled_must_be_true_false_or_auto():
    with pytest.raises(ValueError, match='enabled must be True, False or "auto"'):
        progress_bar(5, "x", enabled="yes")


def test_no_stderr_at_all(monkeypatch):
    monkeypatch.setattr(sys, "stderr", None)  # pythonw, some services
    with progress_bar(5, "x") as bar:
        bar.update(5)
