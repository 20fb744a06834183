"""x86/fpu: Prevent FPU state corruption

Author: Thomas Gleixner <tglx@linutronix.de>
Date: 2022-05-01
Commit: 59f5ede3bc0f00eb856425f636dab0c10feb06d8
Link: https://lore.kernel.org/r/20220501193102.588689270@linutronix.de

The state *before* this fix, on top of ``exec_invalidate_last_cpu``: ``irq_fpu_usable()`` let kernel code use the FPU
when ``!in_interrupt() || interrupted_user_mode() || interrupted_kernel_fpu_idle()``. The last test only asks
whether another context is in a kernel-FPU section, so a hard interrupt that hits a task inside a ``fpregs_lock()``
section -- half-way through loading or saving its registers -- is allowed to save them, clobber them and mark
them for reload, under the feet of the code that holds the lock: the task's FPU state is corrupted. The fix
allows a hard interrupt the FPU only if bottom halves are enabled (``!softirq_count()``), the v6.5-rc7 code.
"""

from fpufuzz import new
from fpufuzz.runtime import in_kernel_fpu

BASE = "exec_invalidate_last_cpu"
FAMILIES = ("softirq",)  # the patch is to kernel FPU in interrupt context: its fuzz test turns that family on
EXPECT = "violates sigframe"
FIXED_BY = "exec_invalidate_last_cpu"


@new
def kernel_fpu_disabled(k):
    """arch/x86/kernel/fpu/core.c (before 59f5ede3bc0f)."""
    return k.this_cpu_read(in_kernel_fpu)


@new
def interrupted_kernel_fpu_idle(k):
    """arch/x86/kernel/fpu/core.c (before 59f5ede3bc0f)."""
    return not k.kernel_fpu_disabled()


@new
def interrupted_user_mode(k):
    """Were we in user mode when we were interrupted? arch/x86/kernel/fpu/core.c (before 59f5ede3bc0f)."""
    regs = k.get_irq_regs()
    return regs is not None and k.user_mode(regs)


def irq_fpu_usable(k):
    """arch/x86/kernel/fpu/core.c (before 59f5ede3bc0f): always fine outside interrupts, and sometimes inside."""
    return not k.in_interrupt() or k.interrupted_user_mode() or k.interrupted_kernel_fpu_idle()
