"""Errors a user can cause, and the exit code the CLI gives each.

Every message names what is wrong: the file, the field, the layer or the node.
"""

from __future__ import annotations


class NNJoulesError(Exception):
    """Base of the errors nnjoules raises on purpose; the CLI prints them without traceback."""

    exit_code = 1


class InputError(NNJoulesError, ValueError):
    """Bad input from the user: a file, field, option or model that cannot be used (exit 2)."""

    exit_code = 2


class HardwareFileError(InputError):
    """A hardware YAML file that does not validate; the message names the file and field."""


class ModelLoadError(InputError):
    """A model name, path or factory that cannot be loaded, or an ONNX graph we cannot read."""


class MappingError(NNJoulesError):
    """A layer that cannot be mapped onto the hardware; names the layer and the constraint."""
