"""fpufuzz's errors: one small hierarchy, each class says when it is raised.

Every message is meant for a kernel developer at a terminal: it names the file, line or field at fault and
what to do about it. The CLI prints ``str(error)`` on one line and exits 2.
"""

from __future__ import annotations


class FpufuzzError(Exception):
    """Base of every error fpufuzz raises on purpose (bad input, never a bug of the tool)."""


class InvalidVariant(FpufuzzError, TypeError):
    """Raised when a variant module cannot be loaded: import error, unknown override, wrong signature, bad EXPECT."""


class UnknownVariant(FpufuzzError, LookupError):
    """Raised when a variant is asked for by a name that discovery did not find."""


class CorpusFormatError(FpufuzzError, ValueError):
    """Raised when a corpus case file is malformed, of an unknown format version, or names unknown things."""


class IllegalStep(FpufuzzError, ValueError):
    """Raised when a step is not legal in the current state (the kernel could not take it)."""


class ModelError(FpufuzzError, RuntimeError):
    """Raised when a variant breaks the model's own machinery (e.g. touches state outside the kernel namespace)."""
