"""Pictures of a replay: state tables per step, a numbered explanation, and JSON for tools."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from fpufuzz.oracle import owner_of
from fpufuzz.replay import Run, StepRecord
from fpufuzz.state import INIT_PART, NEW_MODE, USER, Value, World

CHANGED = "bold yellow"
FAILED = "bold red"


# ---------------------------------------------------------------- rows: one source for tables, JSON and diffs


def cpu_rows(world: World) -> list[dict[str, str]]:
    rows = []
    for c, cpu in enumerate(world.cpus):
        ctx = cpu.ctx
        context = ", ".join(f"{name}={value}" for name, value in
                            (("preempt", ctx.preempt), ("softirq", ctx.softirq), ("hardirq", ctx.hardirq),
                             ("softirq pending", int(ctx.pending)))
                            if value) or "-"
        rows.append({"cpu": f"CPU{c}", "current": world.tasks[cpu.current].name,
                     "owner_ctx": "NULL" if cpu.owner is None else owner_of(world, cpu.owner),
                     "regs": str(cpu.regs), "in_kernel_fpu": "yes" if cpu.in_kernel_fpu else "no",
                     "context": context})
    return rows


def task_rows(world: World) -> list[dict[str, str]]:
    rows = []
    for index, task in enumerate(world.tasks):
        if task.kind == "idle":
            continue
        fpu = world.fpus[task.fpu]
        running = world.running_on(index)
        where = task.mode if task.cont is None else f"kernel @ {task.cont.label}"
        if task.kind != USER and task.cont is None:
            where = "sleeping" if running is None else "idle loop"
        if not task.alive:
            where = "free slot" if not task.name else "exited (free slot)"
        elif task.mode == NEW_MODE:
            where = "being forked"
        if task.sigpending:
            where += ", signal pending"
        if task.stop:
            where += ", ptrace stop pending" if task.stop == "trap" else ", stopped for its tracer"
        rows.append({"task": task.name or f"slot{index}", "kind": task.kind, "where": where,
                     "cpu": f"CPU{task.cpu}" + ("" if running is not None else " (off)"),
                     "TIF": str(int(task.tif)), "last_cpu": str(fpu.last_cpu), "fpstate": _fpstate(fpu),
                     "frame": _frame(world, index), "expects": _expects(world, index)})
    return rows


def _fpstate(fpu) -> str:
    """The task's own image; with a vCPU, the guest's too, and which one ``fpu->fpstate`` points at."""
    if fpu.guest is None:
        return str(fpu.fpstate)
    return f"{fpu.fpstate}; guest {fpu.guest}" + (" (attached)" if fpu.in_guest else "")


def _user(part) -> str:
    return str(Value(part, INIT_PART)).split("/")[0]


def _frame(world: World, index: int) -> str:
    frame = world.frames[index] if index < len(world.frames) else None
    return "-" if frame is None else f"{_user(frame.value)} ({frame.page})"


def _expects(world: World, index: int) -> str:
    text = "-" if world.expect[index] is None else str(world.expect[index])
    if index < len(world.expect_frame) and world.expect_frame[index] is not None:
        text += f", frame {_user(world.expect_frame[index])}"
    if index < len(world.expect_guest) and world.expect_guest[index] is not None:
        text += f", guest {world.expect_guest[index]}"
    return text


def _table(title: str, before: list[dict], after: list[dict], failing: set[tuple[int, str]]) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for column in after[0]:
        table.add_column(column)
    for i, row in enumerate(after):
        cells = []
        for column, value in row.items():
            style = ""
            if (i, column) in failing:
                style = FAILED
            elif before and before[i][column] != value:
                style = CHANGED
            cells.append(Text(value, style=style))
        table.add_row(*cells)
    return table


# ---------------------------------------------------------------- the step-by-step view


def print_run(run: Run, console: Console) -> None:
    console.print(f"[bold]{run.case.name}[/] on [bold]{run.variant.name}[/]  ({run.case.config.header()})")
    console.print(_table("initial state: CPUs", [], cpu_rows(run.records[0].before), set()) if run.records
                  else "(no steps ran)")
    for record in run.records:
        print_record(record, console)
    console.print(verdict_line(run))


def print_record(record: StepRecord, console: Console) -> None:
    comment = f"  [dim]# {record.comment}[/]" if record.comment else ""
    console.rule(f"step {record.number}: {record.step}", align="left")
    if comment:
        console.print(comment)
    failing_cpus, failing_tasks = _failing_cells(record)
    console.print(_table("CPUs", cpu_rows(record.before), cpu_rows(record.after), failing_cpus))
    console.print(_table("tasks", task_rows(record.before), task_rows(record.after), failing_tasks))
    for finding in record.findings + record.diagnostics:
        style = FAILED if finding.kind == "violation" else "magenta"
        console.print(Text(f"{'✗' if finding.kind == 'violation' else '•'} {finding}", style=style))


def _failing_cells(record: StepRecord):
    cpus, tasks = set(), set()
    names = [row["task"] for row in task_rows(record.after)]
    for finding in record.violations:
        if finding.cpu is not None:
            cpus.add((finding.cpu, "regs"))
        if finding.task in names:
            tasks.add((names.index(finding.task), "expects"))
    return cpus, tasks


def verdict_line(run: Run) -> str:
    if run.outcome.startswith("violates"):
        failing = run.failing
        return (f"[{FAILED}]{run.variant.name}: {run.outcome} at step {failing.number} ({failing.step}): "
                f"{failing.violations[0].message}[/]")
    if run.outcome == "n/a":
        return f"[yellow]{run.variant.name}: n/a: {run.reason}[/]"
    return f"[green]{run.variant.name}: clean ({len(run.records)} steps)[/]"


# ---------------------------------------------------------------- the explanation


def explain(run: Run) -> list[str]:
    """A numbered account of the run in the style of the seed's commit message: per step, what the kernel did
    and what changed; last, why the failing check failed."""
    lines = []
    for record in run.records:
        text = f"{record.number}. {record.step}"
        if record.comment:
            text += f" — {record.comment}"
        called = _functions(record)
        if called:
            text += f"\n   kernel code: {', '.join(called)}"
        changes = _changes(record.before, record.after)
        text += f"\n   {'; '.join(changes) if changes else 'no FPU state changed'}"
        if _restore_skipped(record):
            text += f"\n   {_why_skipped(record)}"
        for finding in record.violations:
            text += f"\n   ✗ {finding}"
            text += "".join(f"\n     {line}" for line in _provenance(run, record, finding))
        lines.append(text)
    if run.outcome == "n/a":
        lines.append(f"n/a: {run.reason}")
    return lines


def _functions(record: StepRecord) -> list[str]:
    seen: list[str] = []
    for label, _ in record.trace:
        name = label.split(":")[0]
        if name not in seen:
            seen.append(name)
    return seen


def _restore_skipped(record: StepRecord) -> bool:
    names = [label for label, _ in record.trace]
    return any(n.startswith("fpregs_restore_userregs") for n in names) and not any(
        n.endswith(": xrstor") for n in names)


def _why_skipped(record: StepRecord) -> str:
    task = record.before.tasks[record.before.cpus[_cpu_of(record)].current]
    cpu = _cpu_of(record)
    owner = record.after.cpus[cpu].owner
    return (f"fpregs_restore_userregs() skipped the restore: fpregs_state_valid() was true (CPU{cpu}'s "
            f"fpu_fpregs_owner_ctx is {'NULL' if owner is None else owner_of(record.after, owner)}, "
            f"{task.name}'s fpu->last_cpu is {record.after.fpus[task.fpu].last_cpu})")


def _cpu_of(record: StepRecord) -> int:
    name = record.step.get("task")
    return record.before.tasks[record.before.task_index(name)].cpu if name else record.step.get("cpu")


def _provenance(run: Run, failing: StepRecord, finding) -> list[str]:
    """Where the expected and the observed values came from, in earlier steps."""
    index = failing.before.task_index(finding.task)
    ghost, whose = ("expect_guest", "guest") if finding.name == "guest-regs" else ("expect", "program")
    notes = []
    for record in run.records[:failing.number]:
        before, after = getattr(record.before, ghost)[index], getattr(record.after, ghost)[index]
        if after != before and after == finding.expected:
            notes.append(f"{finding.task}'s {whose} must see {after} since step {record.number} ({record.step})")
        if after != before and before == finding.actual:
            notes.append(f"{finding.actual} is {finding.task}'s own value from before step {record.number} "
                         f"({record.step}): stale")
    return notes


def _changes(before: World, after: World) -> list[str]:
    changes = []
    for old, new in zip(cpu_rows(before), cpu_rows(after)):
        changes += [f"{new['cpu']} {key} {old[key]} → {new[key]}" for key in new if old[key] != new[key]]
    for old, new in zip(task_rows(before), task_rows(after)):
        changes += [f"{new['task']} {key} {old[key]} → {new[key]}" for key in new if old[key] != new[key]]
    return changes


# ---------------------------------------------------------------- JSON


def run_json(run: Run) -> dict:
    return {
        "case": run.case.name, "file": str(run.case.path) if run.case.path else None,
        "variant": run.variant.name, "outcome": run.outcome, "reason": run.reason or None,
        "config": run.case.config.header(),
        "steps": [{"number": r.number, "step": str(r.step), "comment": r.comment,
                   "cpus": cpu_rows(r.after), "tasks": task_rows(r.after),
                   "findings": [f._asdict() | {"expected": str(f.expected), "actual": str(f.actual)}
                                for f in r.findings + r.diagnostics]}
                  for r in run.records],
    }
