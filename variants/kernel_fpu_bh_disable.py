"""x86/fpu: Improve crypto performance by making kernel-mode FPU reliably usable in softirqs

Author: Eric Biggers <ebiggers@google.com>
Date: 2025-03-04
Commit: d02198550423a0b695e7a24ec77153209ad45b09
Link: https://lore.kernel.org/r/20250304204954.3901-1-ebiggers@kernel.org

As ``exec_invalidate_last_cpu``, with the 2025 upstream shape of kernel-mode FPU: ``kernel_fpu_begin_mask()`` takes
``fpregs_lock()`` (bottom halves off) instead of only disabling preemption, whenever interrupts are enabled, and
``kernel_fpu_end()`` drops it. A softirq can then no longer nest inside a task's kernel-FPU section and find the
FPU busy: it is served when the section ends (``local_bh_enable()`` runs pending softirqs) and gets the FPU.
``irq_fpu_usable()`` now also warns when a context other than a hard interrupt finds the FPU in use, which would
be an explicitly nested use. Hard interrupts, which run with interrupts off, take no lock.
"""

from fpufuzz.runtime import KFPU_387, KFPU_MXCSR, PF_KTHREAD, PF_USER_WORKER, TIF_NEED_FPU_LOAD, in_kernel_fpu

BASE = "exec_invalidate_last_cpu"
FAMILIES = ("softirq",)  # the patch is about softirqs and kernel FPU: its fuzz test turns that family on
EXPECT = "clean"
UNREACHABLE = {
    "softirq-refused-in-kernel-fpu": "a task's kernel-FPU section keeps bottom halves off, so a softirq raised "
                                     "inside it waits for kernel_fpu_end() and then gets the FPU",
}


def irq_fpu_usable(k):
    """arch/x86/kernel/fpu/core.c (2025, d02198550423): as v6.5-rc7, plus the warning on a nested use outside hard
    interrupt context."""
    if k.WARN_ON_ONCE(k.in_nmi()):
        return False

    # In kernel FPU usage already active? Outside a hard interrupt this is an explicitly nested use.
    if k.this_cpu_read(in_kernel_fpu):
        k.WARN_ON_FPU(not k.in_hardirq())
        return False

    # Task context outside fpregs_lock() sections, and softirq processing (which cannot run inside one).
    if not k.in_hardirq():
        return True

    # A hard interrupt is safe when it did not hit a fpregs_lock()'ed (bottom-half disabled) region.
    return not k.softirq_count()


def kernel_fpu_begin_mask(k, kfpu_mask):
    """arch/x86/kernel/fpu/core.c (2025, d02198550423): ``fpregs_lock()`` when interrupts are enabled, instead of
    ``preempt_disable()``."""
    if not k.irqs_disabled():
        k.fpregs_lock()

    k.WARN_ON_FPU(not k.irq_fpu_usable())
    k.WARN_ON_FPU(k.this_cpu_read(in_kernel_fpu))

    k.this_cpu_write(in_kernel_fpu, True)

    if not (k.current.flags & (PF_KTHREAD | PF_USER_WORKER)) and not k.test_thread_flag(TIF_NEED_FPU_LOAD):
        k.set_thread_flag(TIF_NEED_FPU_LOAD)
        k.save_fpregs_to_fpstate(k.current.thread.fpu)
    k.__cpu_invalidate_fpregs_state()

    # Put sane initial values into the control registers.
    if kfpu_mask & KFPU_MXCSR:
        k.ldmxcsr()
    if kfpu_mask & KFPU_387:
        k.fninit()


def kernel_fpu_end(k):
    """arch/x86/kernel/fpu/core.c (2025, d02198550423): ``fpregs_unlock()`` when interrupts are enabled; pending
    softirqs run there."""
    k.WARN_ON_FPU(not k.this_cpu_read(in_kernel_fpu))

    k.this_cpu_write(in_kernel_fpu, False)
    if not k.irqs_disabled():
        k.fpregs_unlock()
