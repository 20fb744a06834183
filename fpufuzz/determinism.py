"""Fixed-seed campaigns that do not depend on what else the process imported.

Hypothesis (since 6.13x) mixes literal constants of every *local* module loaded in the process into its integer
draws (``hypothesis.internal.conjecture.providers._get_local_constants``: about one draw in twenty). Which
fpufuzz, variant and test modules a process has loaded then changes what a fixed seed draws, so the ``ci``
verdict of one variant would depend on which tests ran before it in the same pytest-xdist worker, and a
``fpufuzz fuzz --seed N`` run on the command line would differ from the same seed under pytest. A campaign
therefore draws with the local pool empty (Hypothesis's global constants still apply): same seed, same run.

This reaches into a private part of Hypothesis; if a later version moves it, campaigns run as they are (the
test ``tests/fuzz/test_database.py::test_a_seed_draws_the_same_whatever_was_imported`` says so).
"""

from __future__ import annotations

from contextlib import contextmanager

try:
    from hypothesis.internal.conjecture import providers as _providers
    _EMPTY = _providers.Constants()
    _HOOKED = hasattr(_providers, "_get_local_constants") and hasattr(_providers, "CONSTANTS_CACHE")
except (ImportError, AttributeError):  # another Hypothesis: nothing to hold still
    _providers, _HOOKED = None, False


@contextmanager
def without_local_constants():
    """Run a campaign with Hypothesis's pool of local-module constants empty."""
    if not _HOOKED:
        yield
        return
    original = _providers._get_local_constants
    _providers.CONSTANTS_CACHE.cache.clear()
    _providers._get_local_constants = lambda: _EMPTY
    try:
        yield
    finally:
        _providers._get_local_constants = original
        _providers.CONSTANTS_CACHE.cache.clear()


def holds() -> bool:
    """Whether this Hypothesis lets a campaign hold its draws still."""
    return _HOOKED
