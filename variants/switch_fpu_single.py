"""x86/fpu: Simplify the switch_fpu_prepare() + switch_fpu_finish() logic

Author: Oleg Nesterov <oleg@redhat.com>
Date: 2025-05-03
Commit: 730faa15a069f4025a0f8c2a5244c3067da7ecbe
Link: https://lore.kernel.org/r/20250503143830.GA8982@redhat.com

The upstream shape of the context switch since May 2025 (v6.16), on top of the exec fix: the
``switch_fpu_prepare()`` / ``switch_fpu_finish()`` pair becomes one ``switch_fpu()``, which tests
``TIF_NEED_FPU_LOAD`` of the task being switched *out* and, when its registers were live, sets the flag on it
before saving them. Nothing is done for the incoming task any more: a task switched out with live registers has
TIF set while it sleeps, so "TIF clear means the task is current and its registers are live" holds (the
reference's I2/I3). A new task never went through a switch-out: ``fpu_clone()`` must set TIF for it, which it
already does in v6.5-rc7 (the baseline's ``fpu_clone()`` is kept). Expected clean.
"""

from fpufuzz import new
from fpufuzz.runtime import PF_KTHREAD, PF_USER_WORKER, TIF_NEED_FPU_LOAD

BASE = "exec_invalidate_last_cpu"
UNREACHABLE = {
    "ptrace-write-tif-clear": "switch_fpu() sets TIF_NEED_FPU_LOAD whenever a user task is switched out, so a task "
                              "stopped for its tracer always has it set",
}
EXPECT = "clean"


@new
def switch_fpu(k, old, cpu):
    """arch/x86/include/asm/fpu/sched.h (730faa15a069, 2025): save the outgoing task's live registers and set
    its ``TIF_NEED_FPU_LOAD``; the owner tag stays, so it can skip the restore if it comes back to this CPU
    untouched. Simplifications: the CPU has an FPU; tracing is not modeled."""
    if not k.test_tsk_thread_flag(old, TIF_NEED_FPU_LOAD) and not (old.flags & (PF_KTHREAD | PF_USER_WORKER)):
        old_fpu = old.thread.fpu

        k.set_tsk_thread_flag(old, TIF_NEED_FPU_LOAD)
        k.save_fpregs_to_fpstate(old_fpu)
        # The save preserved the registers, so fpu_fpregs_owner_ctx is still old_fpu: record the CPU so the next
        # return to user space can skip the restore here. See fpregs_restore_userregs().
        old_fpu.last_cpu = cpu


def __switch_to(k, prev_p, next_p):
    """arch/x86/kernel/process_64.c (730faa15a069, 2025), FPU lines: ``switch_fpu(prev_p, cpu)`` and no
    ``switch_fpu_finish()``. Simplification as in the baseline: segment, TLS and stack switching left out."""
    cpu = k.smp_processor_id()

    k.switch_fpu(prev_p, cpu)

    k.this_cpu_write("current_task", next_p)
