"""Linux v6.5-rc7, unpatched: exec() resets the FPU with fpu__drop()

Author: the Linux kernel (arch/x86/kernel/fpu/, as of v6.5-rc7)
Date: 2023-08-20
Commit: 706a741595047797872e669b3101429ab8d378ef
Link: https://lore.kernel.org/lkml/20230818170305.502891-1-rick.p.edgecombe@intel.com/

The baseline kernel as the seed found it, with no function replaced. ``fpu_reset_fpregs()`` calls
``fpu__drop()``, which clears only the *current* CPU's ``fpu_fpregs_owner_ctx``. A task that moves
CPU0 -> CPU1 -> CPU0 inside exec() comes back to a CPU whose owner tag and its own ``last_cpu`` still both
point at it, skips the restore, and enters user space with its pre-exec registers.
"""

EXPECT = "violates user-regs"
FIXED_BY = "exec_invalidate_last_cpu"
