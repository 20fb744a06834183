"""The fuzzer on variants that are not in the repository, written the way a user writes one: each known-buggy
patch must be caught under the ci profile, and a correct patch that changes the bookkeeping must stay clean."""

from __future__ import annotations

import textwrap

import pytest

from fpufuzz import variant
from fpufuzz.fuzz import fuzz

HEADER = '''"""{subject}

Author: A Reviewer <reviewer@example.org>
Date: 2026-11-26
Link: https://lore.kernel.org/lkml/example/
"""
from fpufuzz.runtime import KFPU_MXCSR, PF_KTHREAD, PF_USER_WORKER, TIF_NEED_FPU_LOAD, XFEATURE_MASK_FPSTATE, in_kernel_fpu
BASE = "exec_invalidate_last_cpu"
'''

USER_VARIANTS = {
    # kernel_fpu_begin_mask() forgets to invalidate the CPU: the owner tag survives the kernel's SIMD use.
    "kfpu_no_cpu_invalidate": ("x86/fpu: skip the owner reset in kernel_fpu_begin_mask()", '''
        EXPECT = "violates user-regs"

        def kernel_fpu_begin_mask(k, kfpu_mask):
            k.preempt_disable()
            k.this_cpu_write(in_kernel_fpu, True)
            if not (k.current.flags & (PF_KTHREAD | PF_USER_WORKER)) and not k.test_thread_flag(TIF_NEED_FPU_LOAD):
                k.set_thread_flag(TIF_NEED_FPU_LOAD)
                k.save_fpregs_to_fpstate(k.current.thread.fpu)
            if kfpu_mask & KFPU_MXCSR:
                k.ldmxcsr()
    '''),
    # switch_fpu_finish() no longer defers the restore: incoming tasks keep whatever the CPU holds.
    "finish_without_tif": ("x86/fpu: do not set TIF_NEED_FPU_LOAD on switch-in", '''
        EXPECT = "violates user-regs"

        def switch_fpu_finish(k):
            pass
    '''),
    # A correct patch with different bookkeeping: restore always, never tag the owner.
    "restore_without_owner": ("x86/fpu: do not record the owner on restore", '''
        EXPECT = "clean"
        UNREACHABLE = {"restore-skipped": "without an owner tag the restore is never skipped",
                       "switched-in-on-owner-cpu": "no CPU is ever tagged with a user task's fpu",
                       "kernel-fpu-over-sleeping-owner": "likewise: no owner tag to find",
                       "fork-reused-cached-fpu": "likewise: no owner tag can name a freed fpu",
                       "ptrace-write-cached-elsewhere": "likewise: only a signal handler's start tags a CPU"}

        def fpregs_restore_userregs(k):
            fpu = k.current.thread.fpu
            if k.WARN_ON_ONCE(k.current.flags & (PF_KTHREAD | PF_USER_WORKER)):
                return
            k.restore_fpregs_from_fpstate(fpu.fpstate, XFEATURE_MASK_FPSTATE)
            k.clear_thread_flag(TIF_NEED_FPU_LOAD)
    '''),
}


CLEAN_EXAMPLES = 150


@pytest.mark.parametrize("name", sorted(USER_VARIANTS))
def test_user_written_variant(name, tmp_path, fuzz_profile, fuzz_config):
    subject, body = USER_VARIANTS[name]
    path = tmp_path / f"{name}.py"
    path.write_text(HEADER.format(subject=subject) + textwrap.dedent(body))
    v = variant.load_file(str(path))
    if v.expect == "clean":
        # No false alarm on a correct patch. The full budget and the reachability a clean verdict needs are
        # tested on the shipped clean variants (tests/fuzz), always_restore among them.
        result = fuzz(v, fuzz_config, fuzz_profile, examples=CLEAN_EXAMPLES)
        assert result.outcome == "clean", f"{name}: a correct patch was flagged: {result.message}"
        return
    result = fuzz(v, fuzz_config, fuzz_profile)
    assert result.as_expected, f"{name}: expected {v.expect}, got {result.outcome}; missing {sorted(result.missing)}"
