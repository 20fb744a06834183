"""Canonical forms of worlds: one stored state per class of worlds that behave alike.

Two worlds behave alike (reach the same verdicts by the same number of steps) when one is the other with

* **values renamed**: a fresh register value is a name, not a number; only which contents are equal matters;
* **fpu identities renamed**: the owner tag compares addresses, never orders them;
* **CPUs permuted**, each with its idle task: no modeled code treats one CPU differently from another;
* **user tasks permuted** among themselves, and **kernel threads** among themselves: tasks of one kind run the
  same code (a task's name is not part of its behaviour).

``key(world)`` encodes the world under every such permutation that could be the canonical one, renaming values
and fpu identities by first occurrence in the encoding's order, and keeps the least encoding. Permutations are
only tried within groups of CPUs or tasks whose local signatures are equal (a signature is invariant under
renaming, so sorting by it first is itself canonical); most states have one or two candidates.

CPU numbers, task indices and fpu identities inside a paused path's log are found by their types
(``CpuId``, ``TaskId``, ``FpuId``, set by fpufuzz/runtime.py); anything else in a log is kept as it is.

The stored key is a 16-byte BLAKE2b digest of the least encoding: a fingerprint, as TLC and Spin store. Two
distinct classes collide with probability about n² / 2¹²⁹ for n states (below 10⁻²⁴ for ten million); the explorer
reports the figure with every verdict.
"""

from __future__ import annotations

from hashlib import blake2b
from itertools import permutations, product

from fpufuzz.state import (DEAD_MODE, IDLE, INIT_PART, KDATA_PARTS, KERNEL_PART, USER, CpuId, FpuId, TaskId, Value,
                           World)

_FIXED_PARTS = {INIT_PART: "i", KERNEL_PART: "k", **{part: name[0] for name, part in KDATA_PARTS.items()}}

DIGEST_BYTES = 16


def key(world: World, symmetry: bool = True) -> bytes:
    """The fingerprint of ``world``'s class (with ``symmetry=False``: values and fpu identities renamed only)."""
    return blake2b(encoding(world, symmetry).encode(), digest_size=DIGEST_BYTES).digest()


def encoding(world: World, symmetry: bool = True) -> str:
    """The least encoding of ``world`` over the candidate permutations: the canonical form, readable."""
    if not symmetry:
        return _encode(world, list(range(len(world.cpus))), list(range(len(world.tasks))))
    return min(_encode(world, cpu_order, task_order) for cpu_order, task_order in _candidates(world))


def collision_probability(states: int) -> float:
    """Upper bound on the chance that two of ``states`` distinct classes share a fingerprint."""
    return states * states / 2.0 ** (8 * DIGEST_BYTES + 1)


# ---------------------------------------------------------------- which permutations to try


def _candidates(world: World):
    """(cpu order, task order) pairs: old indices listed in their new order."""
    cpu_groups = _groups(range(len(world.cpus)), lambda c: _cpu_signature(world, c))
    idle_of = {t.cpu: i for i, t in enumerate(world.tasks) if t.kind == IDLE}
    users = [i for i, t in enumerate(world.tasks) if t.kind == USER]
    others = [i for i, t in enumerate(world.tasks) if t.kind not in (USER, IDLE)]
    task_groups = (_groups(users, lambda i: _task_signature(world, i))
                   + _groups(others, lambda i: _task_signature(world, i)))
    for cpu_choice in product(*(permutations(g) for g in cpu_groups)):
        cpu_order = [c for group in cpu_choice for c in group]
        idles = [idle_of[c] for c in cpu_order]
        for task_choice in product(*(permutations(g) for g in task_groups)):
            yield cpu_order, idles + [i for group in task_choice for i in group]


def _groups(items, signature) -> list[list[int]]:
    """``items`` grouped by equal signature, groups in signature order."""
    by_signature: dict[str, list[int]] = {}
    for item in items:
        by_signature.setdefault(signature(item), []).append(item)
    return [by_signature[s] for s in sorted(by_signature)]


def _task_signature(world: World, index: int) -> str:
    t = world.tasks[index]
    cont = t.cont
    where = "-" if cont is None else f"{cont.path}{cont.args}{cont.label}{len(cont.log)}"
    running = world.cpus[t.cpu].current == index
    guest = _shape(world.expect_guest[index]) if world.expect_guest else "-"
    return (f"{t.kind}|{t.mode}|{t.tif}|{t.sigpending}|{t.stop}|{running}|{where}|{_shape(world.expect[index])}"
            f"|{guest}")


def _cpu_signature(world: World, cpu: int) -> str:
    c = world.cpus[cpu]
    current = world.tasks[c.current]
    where = "-" if current.cont is None else current.cont.label
    return f"{c.owner is None}|{c.in_kernel_fpu}|{tuple(c.ctx)}|{current.kind}|{current.mode}|{where}|{_shape(c.regs)}"


def _shape(value) -> str:
    """A value's renaming-invariant shape: which parts are INIT, K or some fresh value."""
    if value is None:
        return "-"
    return "".join(_FIXED_PARTS.get(p, "v") for p in value)


# ---------------------------------------------------------------- one encoding


def _encode(world: World, cpu_order: list[int], task_order: list[int]) -> str:
    cpu_new = {old: new for new, old in enumerate(cpu_order)}
    cpu_new[-1] = -1
    task_new = {old: new for new, old in enumerate(task_order)}
    fpu_new: dict[int, int] = {}
    value_new: dict[int, int] = {part: part for part in _FIXED_PARTS}  # INIT, K and kernel-FPU data: not names

    def fpu(f) -> str:
        return "N" if f is None else str(fpu_new.setdefault(f, len(fpu_new)))

    def part(p) -> int:
        return value_new.setdefault(p, len(value_new) - len(_FIXED_PARTS) + 1)  # fresh values: 1, 2, ...

    def value(v) -> str:
        if v is None:
            return "-"
        return f"{part(v.user)}/{part(v.sup)}"

    def item(x) -> str:
        kind = type(x)
        if kind is CpuId:
            return f"c{cpu_new[x]}"
        if kind is TaskId:
            return f"t{task_new[x]}"
        if kind is FpuId:
            return f"f{fpu(x)}"
        if kind is Value:
            return value(x)
        if isinstance(x, tuple):
            return "(" + ",".join(item(y) for y in x) + ")"
        return repr(x)

    def vcpu(f) -> str:
        """The guest buffer beside an fpu and which buffer ``fpu->fpstate`` points at (nothing without a vCPU)."""
        return "" if f.guest is None else f",{value(f.guest)},{f.in_guest:d}"

    def frame(index: int) -> str:
        """A task slot's signal frame and the ghost's expectation of it (value parts renamed)."""
        if not world.frames:
            return ""
        f, expected = world.frames[index], world.expect_frame[index]
        shown = "-" if f is None else f"{part(f.value)}:{f.page}:{f.xrstor_modifies:d}"
        return f",{shown},{'-' if expected is None else part(expected)}"

    out = []
    for old in cpu_order:
        c = world.cpus[old]
        out.append(f"C{task_new[c.current]},{fpu(c.owner)},{value(c.regs)},{c.in_kernel_fpu:d},"
                   f"{c.ctx.preempt},{c.ctx.softirq},{c.ctx.hardirq},{c.ctx.irqs_off:d}"
                   + (",p" if c.ctx.pending else ""))
    for old in task_order:
        t = world.tasks[old]
        cont = "" if t.cont is None else f"{t.cont.path}{item(t.cont.args)}@{t.cont.label}:{item(t.cont.log)}"
        # A free slot's CPU is overwritten when fork allocates it: not part of its behaviour.
        where = "-" if t.mode == DEAD_MODE else cpu_new[t.cpu]
        guest = f",{value(world.expect_guest[old])}" if world.expect_guest else ""
        stop = f"{t.stop}," if t.stop else ""  # ptrace (absent from the other machines' encodings)
        out.append(f"T{t.kind},{t.mode},{where},{t.tif:d},{t.sigpending:d},{stop}{fpu(t.fpu)},"
                   f"{value(world.expect[old])}{frame(old)}{guest},{cont}")
    referenced = sorted(fpu_new, key=fpu_new.get)
    for old in referenced:
        f = world.fpus[old]
        out.append(f"F{cpu_new[f.last_cpu]},{value(f.fpstate)}{vcpu(f)}")
    # Identities no task or CPU refers to (none while every task slot keeps its own fpu): as a sorted set.
    spare = sorted(f"{cpu_new[f.last_cpu]},{value(f.fpstate)}{vcpu(f)}" for i, f in enumerate(world.fpus)
                   if i not in fpu_new)
    free = ",".join(str(task_new[i]) for i in world.free)  # the allocator's order matters: it is LIFO
    return ";".join(out) + "|" + ";".join(spare) + "|" + free
