"""x86/fpu/regset: Invalidate this CPU's FPU registers in fpu_force_restore()

Author: fpufuzz developers (a mistake as a patch author would make it)
Date: 2026-11-27
Link: https://lore.kernel.org/lkml/?q=%22fpu_force_restore%22

As ``exec_invalidate_last_cpu``, but ``fpu_force_restore()`` forgets the registers with the per-CPU
``__cpu_invalidate_fpregs_state()`` instead of the cross-CPU ``__fpu_invalidate_fpregs_state()``, on the
reasoning that either one defeats ``fpregs_state_valid()`` (the context.h comment that 1f69383b203e deleted said
so). It clears the owner tag of the *tracer's* CPU. A tracee stopped on another CPU still has its registers valid
there -- owner tag and ``last_cpu`` both name it -- so when it resumes on that CPU the restore is skipped, and the
registers the tracer wrote never reach it. The same mistake in exec() was the seed's bug; a hypothetical patch,
not one posted to the list.
"""

BASE = "exec_invalidate_last_cpu"
FAMILIES = ("ptrace",)  # the patch is to the FPU regset: its fuzz test turns ptrace on
EXPECT = "violates user-regs"
FIXED_BY = "exec_invalidate_last_cpu"


def fpu_force_restore(k, fpu):
    """arch/x86/kernel/fpu/regset.c (v6.5-rc7) with the per-CPU invalidation."""
    k.WARN_ON_FPU(fpu == k.current.thread.fpu)

    k.__cpu_invalidate_fpregs_state()
