"""``--help`` that shows every option's default, as ``[default]`` at the end of its help.

Options whose help already states the default in brackets (``"batch size N [1]"``) keep
their text; others get ``[value]`` appended, ``[required]`` when the option must be given,
or ``[not set]`` when the default is None.
Flags (``--quiet``) are off unless given and show nothing.
"""

from __future__ import annotations

import argparse
from typing import Any


def default_text(action: argparse.Action) -> str | None:
    """The ``[...]`` to append to ``action``'s help, or None when none is due."""
    text = action.help or ""
    takes_value = action.nargs != 0
    optional = bool(action.option_strings) or action.nargs in ("?", "*")
    if text == argparse.SUPPRESS or not (takes_value and optional) or "[" in text:
        return None
    default: Any = action.default
    if default is argparse.SUPPRESS:
        return None
    if action.required:
        return "[required]"
    if default is None:
        return "[not set]"
    if isinstance(default, list | tuple):
        default = ",".join(str(v) for v in default)
    return f"[{default}]"


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """A `argparse.HelpFormatter` that appends `default_text` to each option's help."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        suffix = default_text(action)
        if suffix is None:
            return action.help
        return f"{action.help or ''} {suffix.replace('%', '%%')}".strip()


class RawDescriptionDefaultsHelpFormatter(DefaultsHelpFormatter,
                                          argparse.RawDescriptionHelpFormatter):
    """`DefaultsHelpFormatter` that keeps the description's line breaks."""
