"""The mutation operators: each takes a function's tree and yields ``(line, mutation, mutated tree)`` for every
site it applies to, never changing its input. Listed in ``OPERATORS`` in the order their names should win when
two produce the same source (fpufuzz/mutate.py generates each distinct mutant once)."""

from __future__ import annotations

import ast
import copy
from collections.abc import Iterator

from fpufuzz._astsites import blocks, call_name, edit_block, edit_node, is_docstring, nodes, replace, statement_call

# The two ways to break the lazy-restore proof: forget the CPU's owner tag, or the fpu's last_cpu.
INVALIDATIONS = ("__cpu_invalidate_fpregs_state", "__fpu_invalidate_fpregs_state")
FLAG_SWAPS = {"set_thread_flag": "clear_thread_flag", "clear_thread_flag": "set_thread_flag",
              "set_tsk_thread_flag": "clear_tsk_thread_flag", "clear_tsk_thread_flag": "set_tsk_thread_flag"}
# Calls that open a section, and the call that closes it: moving a statement out of one is a locking slip.
SECTIONS = {"fpregs_lock": "fpregs_unlock", "preempt_disable": "preempt_enable",
            "local_bh_disable": "local_bh_enable", "local_irq_disable": "local_irq_enable",
            "kernel_fpu_begin": "kernel_fpu_end"}
# Reads of state that a preemption, a migration or an interrupt can change: read early and used late, they go
# stale. Fields are read through ``fpu.last_cpu`` and ``fpstate.regs`` (``init_fpstate`` is a constant).
READS = {"smp_processor_id", "this_cpu_read", "__this_cpu_read", "test_thread_flag", "test_tsk_thread_flag",
         "read_thread_flags", "in_hardirq", "softirq_count", "fpregs_state_valid", "irq_fpu_usable"}
READ_FIELDS = {"last_cpu", "regs"}
EARLY = "_read_early"  # the local a hoisted read is kept in

Site = Iterator[tuple[int, str, ast.FunctionDef]]


def swap_invalidation(func) -> Site:
    """``__cpu_invalidate_fpregs_state()`` <-> ``__fpu_invalidate_fpregs_state(current's fpu)``: the right idea,
    the wrong side of the proof (the seed's bug was of this kind)."""
    wanted = lambda n: call_name(n) in INVALIDATIONS  # noqa: E731
    for i, call in enumerate(nodes(func, wanted)):
        yield call.lineno, "swap-invalidation", edit_node(func, wanted, i, _swapped_invalidation)


def _swapped_invalidation(call: ast.Call) -> None:
    k = call.func.value
    if call.func.attr == INVALIDATIONS[0]:
        call.func.attr = INVALIDATIONS[1]
        call.args = [ast.parse(f"{ast.unparse(k)}.current.thread.fpu", mode="eval").body]
    else:
        call.func.attr, call.args = INVALIDATIONS[0], []


def swap_flag(func) -> Site:
    """Set a thread flag where the kernel clears it, or clear it where it sets it."""
    wanted = lambda n: call_name(n) in FLAG_SWAPS  # noqa: E731
    for i, call in enumerate(nodes(func, wanted)):
        mutation = "set-to-clear" if call.func.attr.startswith("set") else "clear-to-set"
        yield call.lineno, mutation, edit_node(func, wanted, i, _swapped_flag)


def _swapped_flag(call: ast.Call) -> None:
    call.func.attr = FLAG_SWAPS[call.func.attr]


def delete(func) -> Site:
    """Delete one statement (``pass`` where a block would be empty); an invalidation's deletion is named
    ``drop-invalidation``. Assignments to locals that are used later are kept (see ``_binds_used_name``)."""
    for b, block in enumerate(blocks(func)):
        for i, stmt in enumerate(block):
            if is_docstring(stmt) or _binds_used_name(func, stmt):
                continue
            mutation = "drop-invalidation" if statement_call(stmt) in INVALIDATIONS else "delete"
            yield stmt.lineno, mutation, edit_block(func, b, lambda blk, i=i: blk.pop(i))


def _binds_used_name(func, stmt: ast.stmt) -> bool:
    """An assignment to a local the function reads: deleting it leaves the name unbound, which in C would not
    compile, so it is no plausible slip (and would only crash the model)."""
    if not isinstance(stmt, ast.Assign):
        return False
    bound = {n.id for t in stmt.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return any(isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in bound for n in ast.walk(func))


def condition(func) -> Site:
    """``if c:`` becomes ``if not c:`` (or ``if c:`` from ``if not c:``), ``if True:`` and ``if False:``."""
    wanted = lambda n: isinstance(n, ast.If)  # noqa: E731
    for i, node in enumerate(nodes(func, wanted)):
        for mutation, change in (("negate-condition", _negate), ("condition-true", _const(True)),
                                 ("condition-false", _const(False))):
            yield node.lineno, mutation, edit_node(func, wanted, i, change)


def _negate(node: ast.If) -> None:
    test = node.test
    negated = isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not)
    node.test = test.operand if negated else ast.UnaryOp(ast.Not(), test)


def _const(value: bool):
    def change(node: ast.If) -> None:
        node.test = ast.Constant(value)
    return change


def boolean(func) -> Site:
    """``and`` <-> ``or``, drop one operand of either, drop a ``not``, ``==`` <-> ``!=``, flip a returned bool."""
    ops = lambda n: isinstance(n, ast.BoolOp)  # noqa: E731
    for i, node in enumerate(nodes(func, ops)):
        yield node.lineno, "and-to-or" if isinstance(node.op, ast.And) else "or-to-and", edit_node(
            func, ops, i, _swapped_boolop)
        for j in range(len(node.values)):
            yield node.lineno, f"drop-operand{j + 1}", edit_node(func, ops, i, lambda n, j=j: _without(n, j))
    nots = lambda n: isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.Not)  # noqa: E731
    for i, node in enumerate(nodes(func, nots)):
        yield node.lineno, "drop-not", edit_node(func, nots, i, lambda n: n.operand)
    eqs = lambda n: isinstance(n, ast.Compare) and len(n.ops) == 1 and type(n.ops[0]) in _FLIPPED  # noqa: E731
    for i, node in enumerate(nodes(func, eqs)):
        mutation = "eq-to-ne" if isinstance(node.ops[0], ast.Eq) else "ne-to-eq"
        yield node.lineno, mutation, edit_node(func, eqs, i, _flipped_compare)
    rets = lambda n: isinstance(n, ast.Return) and isinstance(n.value, ast.Constant) and isinstance(  # noqa: E731
        n.value.value, bool)
    for i, node in enumerate(nodes(func, rets)):
        yield node.lineno, "flip-return", edit_node(func, rets, i, _flipped_return)


_FLIPPED = {ast.Eq: ast.NotEq, ast.NotEq: ast.Eq}


def _swapped_boolop(node: ast.BoolOp) -> None:
    node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()


def _without(node: ast.BoolOp, j: int):
    rest = node.values[:j] + node.values[j + 1:]
    if len(rest) == 1:
        return rest[0]
    node.values = rest
    return None


def _flipped_compare(node: ast.Compare) -> None:
    node.ops = [_FLIPPED[type(node.ops[0])]()]


def _flipped_return(node: ast.Return) -> None:
    node.value = ast.Constant(not node.value.value)


def out_of_section(func) -> Site:
    """Move a statement of a critical section (``fpregs_lock()`` ... ``fpregs_unlock()``, preemption, bottom
    halves or interrupts off, kernel FPU) to just before its opening call, or just after its closing call."""
    for b, block in enumerate(blocks(func)):
        for i, stmt in enumerate(block):
            opener = statement_call(stmt)
            if opener not in SECTIONS:
                continue
            closer = next((j for j in range(i + 1, len(block)) if statement_call(block[j]) == SECTIONS[opener]), None)
            if closer is None:
                continue
            for m in range(i + 1, closer):
                yield block[m].lineno, f"before-{opener}", edit_block(
                    func, b, lambda blk, m=m, i=i: blk.insert(i, blk.pop(m)))
                yield block[m].lineno, f"after-{SECTIONS[opener]}", edit_block(
                    func, b, lambda blk, m=m, c=closer: blk.insert(c, blk.pop(m)))


def read_early(func) -> Site:
    """Read a value before the nearest earlier statement that calls anything (a possible preemption, migration
    or interrupt point) and use it where it was read: ``x = k.smp_processor_id()`` hoisted above a
    ``cond_resched()``, a flag tested before a ``preempt_enable()``."""
    for b, block in enumerate(blocks(func)):
        for m, stmt in enumerate(block):
            for r, read in enumerate(_reads(stmt)):
                p = _hoist_point(block, m, read)
                if p is not None:
                    yield read.lineno, "read-early", edit_block(
                        func, b, lambda blk, m=m, r=r, p=p: _hoist(blk, m, r, p))


def _reads(stmt: ast.stmt) -> list[ast.expr]:
    """The state reads a statement makes itself (an ``if``'s test, not its body, which is a block of its own)."""
    scope = stmt.test if isinstance(stmt, (ast.If, ast.While)) else stmt
    if isinstance(stmt, (ast.For, ast.With, ast.Try, ast.FunctionDef)):
        return []
    return [n for n in ast.walk(scope) if call_name(n) in READS or (
        isinstance(n, ast.Attribute) and n.attr in READ_FIELDS and isinstance(n.ctx, ast.Load)
        and not (isinstance(n.value, ast.Attribute) and n.value.attr == "init_fpstate"))]


def _hoist_point(block: list, m: int, read: ast.expr) -> int | None:
    """The nearest earlier statement that makes a call, if the read's variables are already bound there."""
    for p in range(m - 1, -1, -1):
        if any(isinstance(n, ast.Call) for n in ast.walk(block[p])):
            used = {n.id for n in ast.walk(read) if isinstance(n, ast.Name)}
            bound_later = {n.id for s in block[p:m] for n in ast.walk(s)
                           if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            return None if used & bound_later else p
    return None


def _hoist(block: list, m: int, r: int, p: int) -> None:
    read = _reads(block[m])[r]
    early = ast.Assign(targets=[ast.Name(EARLY, ast.Store())], value=copy.deepcopy(read), lineno=read.lineno)
    replace(block[m], read, ast.Name(EARLY, ast.Load()))
    block.insert(p, early)


OPERATORS = (swap_invalidation, swap_flag, delete, condition, boolean, out_of_section, read_early)
