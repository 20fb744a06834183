"""``fpufuzz check``: exhaustive search per variant, with progress, a bound that is always stated, and Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, TextColumn, TimeElapsedColumn

from fpufuzz import casegen, variant
from fpufuzz.config import PREEMPTION_MODELS, XRSTOR_FAULTS, Config
from fpufuzz.errors import FpufuzzError
from fpufuzz.explore import Exploration, default_jobs, explore
from fpufuzz.ops import Model, op_names

EXIT_CLEAN, EXIT_VIOLATION = 0, 1

CHECK_EXAMPLES = """examples:
  fpufuzz check --variant original --save           shortest counterexample, written into corpus/
  fpufuzz check --variant exec_invalidate_last_cpu --cpus 2 --users 1 --kthreads 1
  fpufuzz check --ops user_write,syscall:execve,run,schedule --depth 14
  fpufuzz check --check                              every variant against its EXPECT (exit 0 iff all match)
"""


def add_arguments(p) -> None:
    p.add_argument("--variant", action="append", metavar="NAME", help="variant to check (repeatable; default all)")
    p.add_argument("--cpus", type=int, default=2)
    p.add_argument("--users", "--tasks", type=int, default=1, dest="users", help="user tasks (default 1)")
    p.add_argument("--kthreads", type=int, default=0, help="kernel threads (default 0)")
    p.add_argument("--lifecycle", action="store_true", help="tasks may fork and exit (free task slots: --spare)")
    p.add_argument("--signals", action="store_true", help="signals are delivered, frames written, sigreturn")
    p.add_argument("--kvm", action="store_true", help="user tasks create a vCPU and run it (KVM_RUN)")
    p.add_argument("--softirq", action="store_true", help="interrupts raise softirqs using kernel FPU; "
                                                         "kernel-FPU sections carry their own data")
    p.add_argument("--ptrace", action="store_true", help="tasks are stopped, read and written by a tracer; core dumps")
    p.add_argument("--spare", type=int, default=Config.spare, help="free task slots for forks (default 1)")
    add_kernel_config_arguments(p)
    p.add_argument("--depth", type=int, default=1000, help="stop after this many levels (default: no bound)")
    p.add_argument("--max-states", type=int, default=50_000_000, help="stop after this many states")
    p.add_argument("--max-seconds", type=float, default=None, help="stop after the level that passes this time")
    p.add_argument("--ops", help=f"comma-separated operations the world may do (default all): {', '.join(op_names())}")
    p.add_argument("--jobs", type=int, default=default_jobs(), help="worker processes (default: the CPUs here)")
    p.add_argument("--no-symmetry", action="store_true", help="store permuted worlds separately")
    p.add_argument("--save", action="store_true", help="write each counterexample into the corpus")
    p.add_argument("--corpus", type=Path, default=None, help="corpus folder for --save (default: ./corpus)")
    p.add_argument("--json", action="store_true", help="machine-readable results")
    p.add_argument("--check", action="store_true", help="exit 0 iff every variant's outcome matches its EXPECT")


def cmd_check(args, console: Console, default_corpus) -> int:
    config = machine_config(args)
    ops = tuple(o.strip() for o in args.ops.split(",") if o.strip()) if args.ops else None
    if args.depth < 0 or args.max_states < 1 or args.jobs < 1:
        raise FpufuzzError("--depth must be at least 0, --max-states and --jobs at least 1")
    variants = [variant.load(name) for name in (args.variant or variant.names())]
    results, saved = [], {}
    for v in variants:
        result = _explore(Model(v, config, ops), args, console)
        results.append((v, result))
        if args.save and result.steps:
            saved[v.name] = _save(v, result, args.corpus or default_corpus(), config)
        if result.stopped == "interrupted":
            break
    if args.json:
        print(json.dumps([as_json(v, config, r, saved.get(v.name)) for v, r in results], indent=2))
    else:
        for v, r in results:
            _print(v, config, r, console, saved.get(v.name))
    if args.check:
        return EXIT_CLEAN if all(as_expected(v, r) for v, r in results) else EXIT_VIOLATION
    return EXIT_VIOLATION if any(r.steps for _, r in results) else EXIT_CLEAN


def add_kernel_config_arguments(p) -> None:
    """The kernel configuration and hardware options of the machine (docs/model.md, "Configurations"), for
    ``check``, ``report`` and ``fuzz``: as in a case's ``config:`` header."""
    p.add_argument("--preempt", default=Config.preempt, choices=PREEMPTION_MODELS,
                   help="preemption model: where a task in the kernel can be switched out (default full)")
    p.add_argument("--preempt-rt", action="store_true", help="CONFIG_PREEMPT_RT: fpregs_lock() is preempt_disable()")
    p.add_argument("--xrstor-fault", default=Config.xrstor_fault, choices=XRSTOR_FAULTS,
                   help="what a faulting XRSTOR from a signal frame does to the registers (default either)")
    p.add_argument("--fnsave", action="store_true", help="a CPU without XSAVE/FXSR: saves are FNSAVE + FRSTOR")


def kernel_config(args) -> dict:
    return dict(preempt=args.preempt, preempt_rt=args.preempt_rt, xrstor_fault=args.xrstor_fault, fnsave=args.fnsave)


def machine_config(args) -> Config:
    return Config(cpus=args.cpus, users=args.users, kthreads=args.kthreads, spare=args.spare,
                  lifecycle=args.lifecycle, signals=args.signals, kvm=args.kvm, softirq=args.softirq,
                  ptrace=args.ptrace, **kernel_config(args))


def _explore(model: Model, args, console: Console) -> Exploration:
    columns = [TextColumn("{task.description:28}"), TextColumn("{task.fields[status]}"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True, disable=args.json) as progress:
        task = progress.add_task(model.variant.name, status="")

        def report(p) -> None:
            rate = p.states / p.seconds if p.seconds else 0
            progress.update(task, status=f"depth {p.depth}  frontier {p.expanded:,}/{p.frontier:,}  "
                                         f"{p.states:,} states  {rate:,.0f} states/s")

        return explore(model, max_depth=args.depth, max_states=args.max_states, symmetry=not args.no_symmetry,
                       jobs=args.jobs, progress=report, max_seconds=args.max_seconds)


def as_expected(v, result: Exploration) -> bool:
    """A clean variant stays clean within the bound; a buggy one is caught with the violation it expects."""
    if v.expected_violation is None:
        return result.outcome == "clean"
    return result.outcome == f"violates {v.expected_violation}"


def machine(config: Config) -> str:
    def count(n: int, what: str) -> str:
        return f"{n} {what}{'' if n == 1 else 's'}"
    options = [name for name, on in (("fork/exit", config.lifecycle), ("signals", config.signals),
                                                 ("KVM", config.kvm), ("softirqs", config.softirq),
                                                 ("ptrace", config.ptrace)) if on]
    options += [setting for setting in config.header().split()[3:] if setting.split("=")[0] not in (
        "lifecycle", "signals", "kvm", "softirq", "ptrace", "spare")]
    return (f"{count(config.cpus, 'CPU')} × {count(config.users, 'user task')} + "
            f"{count(config.kthreads, 'kernel thread')}" + (f" ({', '.join(options)})" if options else ""))


def bound(result: Exploration) -> str:
    """What a clean verdict covers, in words."""
    how = {None: "complete", "depth": f"stopped at the depth bound {result.depth}",
           "states": "stopped at the state bound", "time": "stopped at the time bound",
           "interrupted": f"interrupted after depth {result.depth}"}
    return (f"{how[result.stopped] if not result.complete else 'complete'}; depth {result.depth}, "
            f"{result.transitions:,} transitions, {result.seconds:.1f} s, {result.bytes_per_state:,.0f} B/state, "
            f"symmetry {'on' if result.symmetry else 'off'}, {result.jobs} job{'s' if result.jobs > 1 else ''}")


def summary(v, config: Config, result: Exploration) -> str:
    if result.steps:
        return (f"{result.outcome}: shortest counterexample {len(result.steps)} steps on {machine(config)} "
                f"({result.states:,} states searched, {result.seconds:.1f} s)")
    scope = "all" if result.complete else "the first"
    return (f"no violation: {scope} {result.states:,} reachable states of {machine(config)} explored "
            f"({bound(result)})")


def _print(v, config: Config, result: Exploration, console: Console, saved: str | None) -> None:
    ok = as_expected(v, result)
    mark = "" if ok else f"  [red](expected {v.expect})[/]"
    console.print(f"[bold]{v.name}[/]: {summary(v, config, result)}{mark}")
    if result.steps:
        for number, step in enumerate(result.steps, 1):
            console.print(f"  {number:2}. {step}", markup=False, highlight=False)
        if saved:
            console.print(f"  saved: {saved}")


def _save(v, result: Exploration, directory: Path, config: Config | None = None) -> str:
    case = casegen.build(result.steps, result.outcome.split()[-1], v,
                         provenance=f"fpufuzz check (shortest counterexample) on {v.name}", machine=config)
    return casegen.save_new(case, directory)


def as_json(v, config: Config, r: Exploration, saved: str | None) -> dict:
    return {"variant": v.name, "expect": v.expect, "outcome": r.outcome, "as_expected": as_expected(v, r),
            "config": config.header(), "states": r.states, "transitions": r.transitions, "depth": r.depth,
            "complete": r.complete, "stopped": r.stopped, "seconds": round(r.seconds, 3),
            "levels": r.levels, "symmetry": r.symmetry, "jobs": r.jobs,
            "bytes_per_state": round(r.bytes_per_state), "fingerprint_collision_probability": r.collision_probability,
            "counterexample": [str(s) for s in r.steps] if r.steps else None, "saved": saved}
