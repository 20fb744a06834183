"""Mutants of the kernel functions, generated from their source: the small slips a patch can make.

Each kernel function of the base variant is parsed with ``ast`` (``inspect.getsource``), changed in one place by
one operator, compiled in the namespace of the module it came from, and wrapped into an in-memory variant
(``fpufuzz.variant.derived``) that overrides that one function. A mutant is named ``function:line:mutation``
with ``line`` the line of the changed node in the function's source file. Mutants whose mutated source is the
same as another's (or as the original's) are generated once, under the first operator that produced them, so
the more specific names (``drop-invalidation`` before ``delete``) win.

The operators know the kernel's vocabulary (which calls invalidate, which set flags, which open a critical
section, which read state) but not the functions: they apply to whatever functions the base variant has, so a
model that grows new functions grows new mutants.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import inspect
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fpufuzz import variant as variants
from fpufuzz._mutators import OPERATORS
from fpufuzz.errors import FpufuzzError
from fpufuzz.variant import Variant

# The variant whose functions are mutated: the v6.5-rc7 baseline with the upstream exec() fix, i.e. the kernel as
# it should be. The unpatched baseline (``original``) already violates, so a mutant of it tells nothing.
BASE = "exec_invalidate_last_cpu"


@dataclass
class Mutant:
    """One generated mutant: where it changes the base, the mutated function's source, and its variant."""

    name: str  # function:line:mutation
    function: str
    line: int
    mutation: str
    source: str = field(repr=False)
    variant: Variant = field(repr=False)

    @property
    def digest(self) -> str:
        """The mutated function's source, hashed: a name (function:line:mutation) names another mutant once the
        base's lines move, so a saved verdict is matched by name and digest (``bench/bench_mutate.py --classified``)."""
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]


def digests(mutants: list[Mutant]) -> dict[str, str]:
    """Each mutant's digest by its name: what a saved verdict is matched against."""
    return {m.name: m.digest for m in mutants}


def base_variant() -> Variant:
    return variants.load(BASE)


def mutable_functions(base: Variant | None = None) -> list[str]:
    """The functions mutants are made of: every function of the base, sorted by name."""
    return sorted((base or base_variant()).functions)


def generate(functions: list[str] | None = None, base: Variant | None = None) -> list[Mutant]:
    """Every distinct mutant of ``functions`` (default all) of ``base``, in a stable order: by function name,
    then operator, then position. Raises FpufuzzError naming an unknown function."""
    base = base or base_variant()
    known = mutable_functions(base)
    for name in functions or []:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise FpufuzzError(f"--function {name}: no such kernel function in {base.name}{hint}")
    mutants = []
    for name in sorted(set(functions or known)):
        mutants.extend(_mutants_of(base, name))
    return mutants


def _mutants_of(base: Variant, name: str) -> Iterator[Mutant]:
    fn = base.functions[name]
    func = _parse(fn)
    seen = {ast.unparse(func)}  # the original: a mutation that changes nothing is no mutant
    names: dict[str, int] = {}
    for operator in OPERATORS:
        for line, mutation, mutated in operator(func):
            source = ast.unparse(mutated)
            if source in seen:
                continue
            seen.add(source)
            label = f"{name}:{line}:{mutation}"
            names[label] = names.get(label, 0) + 1
            if names[label] > 1:  # two sites on one line: number them in order
                label = f"{label}#{names[label]}"
            compiled = _compile(fn, mutated)
            yield Mutant(label, name, line, mutation, source,
                         variants.derived(label, base, {name: compiled}, f"mutant {label} of {base.name}"))


def _parse(fn) -> ast.FunctionDef:
    """The function's tree with line numbers as in its source file."""
    lines, first = inspect.getsourcelines(fn)
    tree = ast.parse("".join(lines))
    ast.increment_lineno(tree, first - 1)
    return tree.body[0]


def _compile(original, func: ast.FunctionDef):
    """Compile at module level (so the kernel's ``__`` names stay unmangled) in a copy of the namespace of the
    original's module: constants resolve as in the original, and the module itself is left untouched."""
    module = ast.fix_missing_locations(ast.Module(body=[func], type_ignores=[]))
    code = compile(module, inspect.getsourcefile(original) or "<mutant>", "exec")
    namespace = dict(original.__globals__)
    exec(code, namespace)
    return namespace[func.name]


# ---------------------------------------------------------------- writing mutants as variant modules


def write(mutant: Mutant, directory: Path) -> Path:
    """Write ``mutant`` as a variant module into ``directory`` (a scratch folder, never the ``variants``
    package: a generated mutant is not a patch anyone proposed). It loads with ``--variant PATH``."""
    import variants as package

    directory = Path(directory)
    if any(directory.resolve() == Path(p).resolve() for p in package.__path__):
        raise FpufuzzError(f"--write {directory}: that is the variants package; write mutants into a scratch folder")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (re.sub(r"\W+", "_", mutant.name) + ".py")
    path.write_text(module_text(mutant))
    return path


def module_text(mutant: Mutant) -> str:
    base = mutant.variant.base
    original = variants.load(base).functions[mutant.function]
    imports = sorted(_globals_used(mutant.source, original))
    header = (f'"""mutant {mutant.name} of {base}\n\nAuthor: fpufuzz mutate (generated)\nDate: generated\n'
              f"Commit: none; {base} with {mutant.function}() changed at line {mutant.line} ({mutant.mutation})\n\n"
              "Generated by `fpufuzz mutate`. EXPECT is left unset (so: clean) because nobody has judged this\n"
              f'mutant; `fpufuzz check --variant <this file>` does.\n"""\n\nBASE = {base!r}\n')
    if imports:
        header += f"\nfrom {original.__module__} import {', '.join(imports)}\n"
    return header + "\n\n" + mutant.source + "\n"


def _globals_used(source: str, original) -> set[str]:
    """Module-level names the mutated function reads (the kernel's constants), to import from its module."""
    tree = ast.parse(source)
    local = {a.arg for a in tree.body[0].args.args} | {
        n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
            and n.id not in local and n.id in original.__globals__}
