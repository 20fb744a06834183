"""Variants: one module per patch, checked when loaded, found in ``variants/`` and the ``fpufuzz.variants``
entry-point group.

A variant module (docs/variants.md is the contract third-party variants rely on):

* has a docstring whose first line is the patch subject, followed by ``Author:``, ``Date:`` and ``Link:`` or
  ``Commit:`` lines;
* may set ``BASE`` (the variant it applies on top of; default: the v6.5-rc7 baseline), ``EXPECT`` (``"clean"``
  or ``"violates <invariant>"``), ``FIXED_BY`` (the variant that fixes it) and ``UNREACHABLE`` (reachability
  properties it cannot reach, with the reason);
* defines kernel functions under their kernel names. Each must replace a known function with the same
  parameters, or be marked ``@new`` (a function the patch adds). Anything else is refused at load time.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import inspect
import pkgutil
import re
import types
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from fpufuzz import entry, kernel
from fpufuzz.errors import InvalidVariant, UnknownVariant
from fpufuzz.config import FAMILIES
from fpufuzz.oracle import VIOLATIONS
from fpufuzz.reach import SOMETIMES
from fpufuzz.runtime import Kernel

ENTRY_POINT_GROUP = "fpufuzz.variants"
_NEW_MARKER = "__fpufuzz_new__"
_loading: list[str] = []  # variants whose BASE chain is being loaded, to refuse cycles
_HEADER = re.compile(r"^(Author|Date|Link|Commit|Fixes):\s*(.+?)\s*$", re.MULTILINE)


def new(function):
    """Mark a function as added by the patch (it replaces nothing in the base)::

        @new
        def switch_fpu(k, old, cpu):
            ...
    """
    setattr(function, _NEW_MARKER, True)
    return function


def baseline_functions() -> dict[str, types.FunctionType]:
    """The v6.5-rc7 baseline: every function defined in fpufuzz/kernel.py and fpufuzz/entry.py."""
    return {name: fn for module in (kernel, entry) for name, fn in _defined_functions(module).items()}


def _defined_functions(module: types.ModuleType) -> dict[str, types.FunctionType]:
    return {name: value for name, value in vars(module).items()
            if inspect.isfunction(value) and value.__module__ == module.__name__}


@dataclass
class Variant:
    """A loaded, checked variant: its metadata, the functions it overrides or adds, and its kernel class."""

    name: str
    module: types.ModuleType
    subject: str
    headers: dict[str, str]
    base: str | None
    expect: str
    fixed_by: str | None
    overrides: dict[str, types.FunctionType]
    added: dict[str, types.FunctionType]
    unreachable: dict[str, str]
    functions: dict[str, types.FunctionType] = field(repr=False)
    kernel_class: type = field(repr=False)
    families: tuple[str, ...] = ()  # operation families its fuzz test turns on (FAMILIES; its BASE's too)

    @property
    def expected_violation(self) -> str | None:
        return self.expect.split()[1] if self.expect.startswith("violates ") else None

    @property
    def source(self) -> str:
        return getattr(self.module, "__file__", None) or self.module.__name__


# ---------------------------------------------------------------- discovery


def discover() -> dict[str, str]:
    """Variant name -> module name, from the ``variants`` package (sorted) and the entry-point group."""
    import variants as package

    found = {info.name: f"{package.__name__}.{info.name}"
             for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name)
             if not info.name.startswith("_")}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def names() -> list[str]:
    return sorted(discover())


@cache
def load(name: str) -> Variant:
    """Load and check the variant ``name`` (and its bases), or a variant file if ``name`` ends in ``.py``.
    Raises InvalidVariant or UnknownVariant."""
    if name.endswith(".py"):
        return load_file(name)
    found = discover()
    if name not in found:
        close = difflib.get_close_matches(name, found, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(found))}"
        raise UnknownVariant(f"no variant named {name!r}{hint}")
    module = _import(name, found[name])
    return check_module(name, module)


def load_file(path: str) -> Variant:
    """Load a variant from a file that is not in ``variants/`` (a patch under review, say)."""
    file = Path(path)
    if not file.is_file():
        raise UnknownVariant(f"{path}: no such variant file")
    name = file.stem
    spec = importlib.util.spec_from_file_location(f"fpufuzz_variant_file_{name}", file)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        raise InvalidVariant(f"{e.filename}:{e.lineno}: variant {name!r} does not parse: {e.msg}") from None
    except Exception as e:
        raise InvalidVariant(f"{path}: variant {name!r} failed to import: {type(e).__name__}: {e}") from None
    return check_module(name, module)


def load_all() -> list[Variant]:
    return [load(name) for name in names()]


def _import(name: str, module_name: str) -> types.ModuleType:
    try:
        return importlib.import_module(module_name)
    except SyntaxError as e:
        raise InvalidVariant(f"{e.filename}:{e.lineno}: variant {name!r} does not parse: {e.msg}") from None
    except Exception as e:  # a variant's import error is the user's input, not our bug
        raise InvalidVariant(f"variant {name!r} ({module_name}) failed to import: "
                             f"{type(e).__name__}: {e}") from None


# ---------------------------------------------------------------- checking


def check_module(name: str, module: types.ModuleType) -> Variant:
    """Check a variant module against the contract and build its kernel."""
    where = getattr(module, "__file__", None) or module.__name__
    subject, headers = _metadata(name, where, module)
    base = getattr(module, "BASE", None)
    if base is not None and not isinstance(base, str):
        raise InvalidVariant(f"{where}: BASE must be a variant name, not {base!r}")
    if base in _loading or base == name:
        raise InvalidVariant(f"{where}: BASE = {base!r} makes a cycle ({' -> '.join([*_loading, name, base])})")
    _loading.append(name)
    try:
        inherited = load(base).functions if base else baseline_functions()
    finally:
        _loading.remove(name)
    overrides, added = _functions(name, where, module, inherited)
    functions = {**inherited, **added, **overrides}
    expect, fixed_by = _expectation(where, module)
    unreachable = _unreachable(where, module)
    families = tuple(sorted(set(_families(where, module)) | set(load(base).families if base else ())))
    return Variant(name, module, subject, headers, base, expect, fixed_by, overrides, added, unreachable,
                   functions, kernel_class(name, functions), families)


def _metadata(name: str, where: str, module) -> tuple[str, dict[str, str]]:
    doc = inspect.getdoc(module) or ""
    subject = doc.splitlines()[0].strip() if doc else ""
    headers = dict(_HEADER.findall(doc))
    missing = [h for h in ("Author", "Date") if h not in headers]
    if "Link" not in headers and "Commit" not in headers:
        missing.append("Link or Commit")
    if not subject or missing:
        what = ", ".join((["the patch subject as its first line"] if not subject else []) + missing)
        raise InvalidVariant(f"{where}: variant {name!r} docstring lacks {what} (see docs/variants.md)")
    return subject, headers


def _functions(name, where, module, inherited):
    overrides, added = {}, {}
    for fname, fn in _defined_functions(module).items():
        if getattr(fn, _NEW_MARKER, False):
            if fname in inherited:
                raise InvalidVariant(f"{where}: {fname} is marked @new but already exists; drop @new to override it")
            added[fname] = fn
        elif fname in inherited:
            _check_signature(where, fname, fn, inherited[fname])
            overrides[fname] = fn
        else:
            close = difflib.get_close_matches(fname, inherited, n=3, cutoff=0.6)
            hint = f"closest kernel functions: {', '.join(close)}" if close else "no similar kernel function"
            raise InvalidVariant(f"{where}: {fname}{inspect.signature(fn)} overrides no known function "
                                 f"({hint}); mark it @new if the patch adds it")
    return overrides, added


def _check_signature(where, fname, fn, base_fn) -> None:
    found, expected = inspect.signature(fn), inspect.signature(base_fn)
    if list(found.parameters) != list(expected.parameters):
        raise InvalidVariant(f"{where}: {fname}{found} does not match the kernel's {fname}{expected}")


def _expectation(where, module) -> tuple[str, str | None]:
    expect = getattr(module, "EXPECT", "clean")
    fixed_by = getattr(module, "FIXED_BY", None)
    words = expect.split() if isinstance(expect, str) else []
    if words == ["clean"]:
        return "clean", fixed_by
    if len(words) == 2 and words[0] == "violates" and words[1] in VIOLATIONS:
        return expect, fixed_by
    raise InvalidVariant(f"{where}: EXPECT = {expect!r}: write 'clean' or 'violates <invariant>' with one of "
                         f"{', '.join(sorted(VIOLATIONS))}")


def _unreachable(where, module) -> dict[str, str]:
    declared = getattr(module, "UNREACHABLE", {})
    if not isinstance(declared, dict) or not all(isinstance(r, str) for r in declared.values()):
        raise InvalidVariant(f"{where}: UNREACHABLE must map reachability properties to reasons (strings)")
    unknown = sorted(set(declared) - set(SOMETIMES))
    if unknown:
        raise InvalidVariant(f"{where}: UNREACHABLE names unknown properties {', '.join(unknown)}; known: "
                             f"{', '.join(sorted(SOMETIMES))}")
    return dict(declared)


def _families(where, module) -> tuple[str, ...]:
    declared = getattr(module, "FAMILIES", ())
    if isinstance(declared, str) or not all(f in FAMILIES for f in declared):
        raise InvalidVariant(f"{where}: FAMILIES = {declared!r}: a tuple of operation families among "
                             f"{', '.join(FAMILIES)}")
    return tuple(declared)


def derived(name: str, base: Variant | None, overrides: dict[str, types.FunctionType], subject: str,
            expect: str = "unknown") -> Variant:
    """A variant built in memory rather than loaded from a module (a generated mutant, say): ``base``'s functions
    (the v6.5-rc7 baseline if None) with ``overrides``, each checked as a loaded module's override is: it must
    replace a known function with the same parameters. ``expect`` is not checked against the EXPECT vocabulary:
    a generated variant's verdict is what is being measured, so ``"unknown"`` is allowed here."""
    where = f"<generated variant {name}>"
    inherited = base.functions if base else baseline_functions()
    for fname, fn in overrides.items():
        if fname not in inherited:
            raise InvalidVariant(f"{where}: {fname} overrides no known function")
        _check_signature(where, fname, fn, inherited[fname])
    functions = {**inherited, **overrides}
    module = types.ModuleType(name, subject)
    return Variant(name, module, subject, {}, base.name if base else None, expect, None, dict(overrides), {}, {},
                   functions, kernel_class(name, functions))


def kernel_class(name: str, functions: dict[str, types.FunctionType]) -> type:
    """A ``Kernel`` subclass whose attributes are the variant's kernel functions. Built with ``type()``, whose
    namespace is a dict, so ``__switch_to`` keeps its name (a class body would mangle it)."""
    return type(f"Kernel[{name}]", (Kernel,), dict(functions))
