"""Turn a failing step list into a corpus case: canonical names, the smallest machine, a litmus-style name, and
the outcome on every variant."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fpufuzz import MODEL_VERSION, __version__, corpus, variant
from fpufuzz.config import Config
from fpufuzz.corpus import Case
from fpufuzz.ops import Step
from fpufuzz.errors import IllegalStep
from fpufuzz.replay import NA, replay


# What a case keeps of the machine its steps were found on, whatever the steps use: the kernel configuration and
# hardware options (a PREEMPT_NONE counterexample is not one on a fully preemptible kernel, and vice versa).
KERNEL_OPTIONS = ("preempt_rt", "preempt", "xrstor_fault", "fnsave")


def canonical(steps: list[Step], machine: Config | None = None) -> tuple[list[Step], Config]:
    """Rename CPUs and tasks by first appearance (u0, u1, ... k0, ...; idleN follows its CPU) and size the machine
    to what the steps use. Interchangeable CPUs and tasks start alike, so outcomes do not change. Fork children
    are named after the machine's own tasks (u<users>, ..., w0, ...), and the machine gets the operation
    families and free slots the steps need, and ``machine``'s kernel options (``KERNEL_OPTIONS``)."""
    cpus: dict[int, int] = {}
    tasks: dict[str, str] = {}
    counts = {"u": 0, "k": 0, "w": 0}
    children = [s.get("child") for s in steps if s.op == "fork"]
    # A name is a task's from the step that introduces it: an initial task's if the steps name it before any fork
    # does, a child's from its fork on (a child may take the name of a task that exited and whose slot was reused).
    initial, introduced = [], set()
    for step in steps:
        for key in ("task", "next", "target"):
            name = step.get(key)
            if name and not name.startswith("idle") and name not in introduced and name not in initial:
                initial.append(name)
        if step.op == "fork":
            introduced.add(step.get("child"))
    for name in initial:
        tasks[name] = f"{name[0]}{counts[name[0]]}"
        counts[name[0]] += 1
    users = counts["u"]

    def cpu(n: int) -> int:
        return cpus.setdefault(n, len(cpus))

    def task(name: str) -> str:
        if name.startswith("idle"):
            return f"idle{cpu(int(name[4:]))}"
        if name not in tasks:
            kind = name[0]
            tasks[name] = f"{kind}{counts[kind]}"
            counts[kind] += 1
        return tasks[name]

    renamed = []
    for step in steps:
        if step.op == "fork":  # the child's name names a new task from here on
            child = step.get("child")
            tasks[child] = f"{child[0]}{counts[child[0]]}"
            counts[child[0]] += 1
        args = []
        for key, value in step.args:
            if key == "cpu":
                value = cpu(value)
            elif key in ("task", "next", "child", "target"):
                value = task(value)
            args.append((key, value))
        renamed.append(Step(step.op, tuple(args)))
    lifecycle = any(s.op == "fork" or s.get("call") == "exit" or s.get("work") == "exit" for s in steps)
    signals = any(s.op in ("signal", "frame_write", "sigreturn") for s in steps)
    kvm = any(s.get("call") in ("kvm_create_vcpu", "kvm_run") for s in steps)
    # Softirqs, and the kernel-FPU section data whose result point a run may stop at.
    softirq = any(s.get("work") == "softirq" or str(s.get("until", "")).endswith(": simd result") for s in steps)
    ptrace = any(s.op in ("stop", "ptrace") or s.get("call") == "abort" for s in steps)
    options = {name: getattr(machine, name) for name in KERNEL_OPTIONS} if machine is not None else {}
    config = Config(cpus=max(len(cpus), 1), users=max(users, 1), kthreads=counts["k"], spare=max(len(children), 1),
                    lifecycle=lifecycle, signals=signals, kvm=kvm, softirq=softirq, ptrace=ptrace, **options)
    return renamed, config


def case_name(steps: list[Step], invariant: str) -> str:
    """``<invariant>+<ingredients>``: the syscalls made, interrupts, ptrace and core dumps, kernel threads,
    migration."""
    ingredients = []
    for call in ("execve", "simd"):
        if any(s.op == "syscall" and s.get("call") == call for s in steps):
            ingredients.append(call)
    if any(s.op == "syscall" and s.get("call") == "kvm_run" for s in steps):
        ingredients.append("kvm")
    if any(s.op == "irq" for s in steps):
        ingredients.append("irq")
    for op in ("ptrace", "abort"):
        if any(s.op == op or s.get("call") == op for s in steps):
            ingredients.append(op)
    if any(s.op == "kwork" or str(s.get("next", "")).startswith("k") for s in steps):
        ingredients.append("kthread")
    placed: dict[str, set[int]] = {}
    for s in steps:
        if s.op == "schedule":
            placed.setdefault(s.get("next"), set()).add(s.get("cpu"))
    if any(len(c) > 1 for t, c in placed.items() if not t.startswith("idle")):
        ingredients.append("migrate")
    return "+".join([invariant] + ingredients)


def build(steps: list[Step], invariant: str, found_on, provenance: str, machine: Config | None = None) -> Case:
    """A case for ``steps`` (found on ``machine``, whose kernel options the case keeps), with its outcome on
    ``found_on`` and every discovered variant as its expectations."""
    steps, config = canonical(steps, machine)
    if invariant == "kernel-fpu-data":  # only sections that carry their own data can see it
        config = replace(config, softirq=True)
    case = Case(name=case_name(steps, invariant), summary="", config=config, steps=steps,
                model=f"{MODEL_VERSION} fpufuzz-{__version__}", provenance=provenance, comments=[""] * len(steps))
    failing = replay(case, found_on).failing
    if failing is None:
        raise ValueError(f"the renamed steps no longer violate {invariant} on {found_on.name}")
    case.summary = f"Found by fpufuzz on {found_on.name}: {failing.violations[0].message}"
    variants = {v.name: v for v in [found_on] + [variant.load(name) for name in variant.names()]}
    case.expect = {name: _outcome(case, v) for name, v in sorted(variants.items())}
    return case


def _outcome(case: Case, v) -> str:
    """The case's outcome on another variant; ``n/a`` where that variant's code does not allow one of its steps
    (a mutant found it with a statement moved out of a lock; on the others the lock covers that point)."""
    try:
        return replay(case, v).outcome
    except IllegalStep:
        return NA


def existing_equivalent(case: Case, directory: Path) -> Path | None:
    """A case in ``directory`` identical to ``case`` up to renaming of tasks and CPUs (values are never written
    in steps), or None."""
    key = (case.config, canonical(case.steps, case.config)[0])
    for path in corpus.discover(directory):
        other = corpus.load(path)
        steps, config = canonical(other.steps, other.config)
        if (config, steps) == key or (other.config, steps) == key:
            return path
    return None


def save_new(case: Case, directory: Path) -> str:
    """Write ``case`` into ``directory`` unless an equivalent case is there already (atomic, never overwriting);
    where it went, in words."""
    same = existing_equivalent(case, directory)
    if same is not None:
        return f"{same} (already in the corpus)"
    return str(corpus.save(case, directory)[0])
