"""x86/fpu: Save only the host's registers in fpu_swap_kvm_fpstate()

Author: fpufuzz developers (a mistake as a patch author would make it)
Date: 2026-11-28
Link: https://lore.kernel.org/kvm/?q=%22fpu_swap_kvm_fpstate%22

A hypothetical patch. As ``exec_invalidate_last_cpu``, but ``fpu_swap_kvm_fpstate()`` saves the live registers
only on the way into the guest, on the reasoning that on the way out they are the guest's, which KVM keeps in
``vcpu->arch.guest_fpu`` anyway and reloads at the next KVM_RUN. It does not keep them anywhere else: the guest
buffer is the only copy, and it is updated only by a save. A guest whose last registers were live when KVM_RUN
returned to the VMM comes back at its next entry with what the buffer held before (unless a preemption or an
interrupt's kernel FPU use happened to save them in between).
"""

from fpufuzz.runtime import TIF_NEED_FPU_LOAD, XFEATURE_MASK_FPSTATE

BASE = "exec_invalidate_last_cpu"
FAMILIES = ("kvm",)  # the patch is to the KVM swap: its fuzz test turns that family on
EXPECT = "violates guest-regs"
FIXED_BY = "exec_invalidate_last_cpu"


def fpu_swap_kvm_fpstate(k, guest_fpu, enter_guest):
    """arch/x86/kernel/fpu/core.c (v6.5-rc7) with the save made conditional on ``enter_guest``."""
    guest_fps = guest_fpu.fpstate
    fpu = k.current.thread.fpu
    cur_fps = fpu.fpstate

    k.fpregs_lock()
    if enter_guest and not cur_fps.is_confidential and not k.test_thread_flag(TIF_NEED_FPU_LOAD):
        k.save_fpregs_to_fpstate(fpu)

    if enter_guest:
        fpu.__task_fpstate = cur_fps
        fpu.fpstate = guest_fps
        guest_fps.in_use = True
    else:
        guest_fps.in_use = False
        fpu.fpstate = fpu.__task_fpstate
        fpu.__task_fpstate = None

    cur_fps = fpu.fpstate
    if not cur_fps.is_confidential:
        k.restore_fpregs_from_fpstate(cur_fps, XFEATURE_MASK_FPSTATE)

    k.fpregs_mark_activate()
    k.fpregs_unlock()
    return 0
