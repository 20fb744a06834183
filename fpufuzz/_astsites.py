"""Finding and editing sites in a function's syntax tree, on deep copies, by position: the mutation operators'
common ground. Positions are stable because ``ast.walk`` visits a deep copy in the same order as the original."""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable


def blocks(func: ast.FunctionDef) -> list[list[ast.stmt]]:
    """Every non-empty statement list in the function, in a deterministic order (the same on a deep copy)."""
    found = []
    for node in ast.walk(func):
        for name in ("body", "orelse", "finalbody"):
            block = getattr(node, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                found.append(block)
    return found


def nodes(func: ast.FunctionDef, wanted: Callable[[ast.AST], bool]) -> list[ast.AST]:
    return [node for node in ast.walk(func) if wanted(node)]


def edit_block(func, b: int, change: Callable[[list], None]) -> ast.FunctionDef:
    mutated = copy.deepcopy(func)
    block = blocks(mutated)[b]
    change(block)
    if not block:
        block.append(ast.Pass())
    return mutated


def edit_node(func, wanted, i: int, change: Callable[[ast.AST], ast.AST | None]) -> ast.FunctionDef:
    """Apply ``change`` to the ``i``-th node ``wanted`` in a copy; a returned node replaces it in its parent."""
    mutated = copy.deepcopy(func)
    target = nodes(mutated, wanted)[i]
    replacement = change(target)
    if replacement is not None and replacement is not target:
        replace(mutated, target, replacement)
    return mutated


def replace(root: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(root):
        for name, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, name, new)
                return
            if isinstance(value, list) and any(item is old for item in value):
                value[[id(item) for item in value].index(id(old))] = new
                return


def call_name(node: ast.AST) -> str | None:
    """``f`` for a call ``k.f(...)`` (any receiver), else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def statement_call(stmt: ast.stmt) -> str | None:
    return call_name(stmt.value) if isinstance(stmt, ast.Expr) else None


def is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)

