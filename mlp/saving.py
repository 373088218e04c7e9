"""Deprecated location, kept while callers move: model files are `mlp.model_file` (arrays and
metadata), `mlp.model` (`MLP.save`, `load`), checkpoints `mlp.engines.checkpoints`."""
from ._array_api import resolve_namespace
from .engines.checkpoints import load_checkpoint, same_options, save_checkpoint
from .model import load as load_model
from .model_file import ModelFileError

__all__ = ["ModelFileError", "load_checkpoint", "load_model", "resolve_namespace", "same_options",
           "save_checkpoint"]
