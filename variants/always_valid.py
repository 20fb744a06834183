"""Control: fpregs_state_valid() always says the registers are valid

Author: fpufuzz developers
Date: 2026-11-26
Link: docs/variants.md#controls

As ``exec_invalidate_last_cpu``, but the lazy-restore proof always succeeds, so no return to user space ever
reloads the registers. Any task that sleeps while another uses its CPU sees the other's registers. The fuzzer
and every replay must catch it; a fuzzer that does not is broken.
"""

BASE = "exec_invalidate_last_cpu"
EXPECT = "violates user-regs"
FIXED_BY = "exec_invalidate_last_cpu"


def fpregs_state_valid(k, fpu, cpu):
    """arch/x86/kernel/fpu/context.h (v6.5-rc7), broken on purpose."""
    return True
