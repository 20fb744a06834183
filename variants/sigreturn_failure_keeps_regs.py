"""x86/fpu: Only reset the FPU state on sigreturn when the frame could not be read

Author: fpufuzz developers (a mistake as a patch author would make it)
Date: 2026-11-27
Link: https://lore.kernel.org/lkml/?q=%22x86%2Ffpu%3A+Reset+state+for+all+signal+restore+failures%22

As ``exec_invalidate_last_cpu``, but ``fpu__restore_sig()`` resets the task to the init state only for a NULL
frame and leaves a failed restore as it is, trusting the restore path to have left sane registers. It has not: a
faulting XRSTOR may have modified them, and a handler's registers are not the init state the failed sigreturn
owes the program. Before 2021 ("x86/fpu: Reset state for all signal restore failures", efa165504943) some failure
paths were left like this; the baseline resets on every failure.
"""

BASE = "exec_invalidate_last_cpu"
FAMILIES = ("signals",)  # the patch is to signal delivery and sigreturn
EXPECT = "violates user-regs"
FIXED_BY = "exec_invalidate_last_cpu"


def fpu__restore_sig(k, buf, ia32_frame):
    """arch/x86/kernel/fpu/signal.c (v6.5-rc7) without ``fpu__clear_user_states()`` on failure."""
    fpu = k.current.thread.fpu

    if buf is None:
        k.fpu__clear_user_states(fpu)
        return True

    return k.__fpu_restore_sig(buf, buf, bool(ia32_frame))
