"""KVM: x86: Handle TIF_NEED_FPU_LOAD in kvm_{load,put}_guest_fpu()

Author: Sean Christopherson <sean.j.christopherson@intel.com>
Date: 2020-01 (merged for v5.6; in 5.4 and 5.5 stable on 2020-02-10)
Commit: c9aef3b85f425d1f6635382ec210ee5a7ef55d7d
Link: https://lore.kernel.org/stable/20200210122427.883826991@linuxfoundation.org/
Fixes: 5f409e20b794 ("x86/fpu: Defer FPU state load until return to userspace", 2019, v5.2)

The state *before* this fix, on top of ``exec_invalidate_last_cpu``: KVM's FPU swap around KVM_RUN saved the
CPU's registers into the buffer being swapped out unconditionally (``copy_fpregs_to_fpstate()``), as it had
when the registers were always live. Since the deferred restore, ``TIF_NEED_FPU_LOAD`` can be set whenever
control left KVM -- a preemption, a softirq's kernel FPU after an interrupt -- and then the registers hold
someone else's state or kernel garbage: ``kvm_put_guest_fpu()`` overwrites the guest's saved state with them
(the guest's registers are lost across KVM_RUN's return to the VMM), and ``kvm_load_guest_fpu()`` overwrites the
VMM's: the program finds other registers than its own when KVM_RUN returns. The fuzzer meets the second first
(``user-regs``) on most seeds, the first (``guest-regs``) on others.
Seen as FPU state corruption with KVM from v5.2 on; first papered over by e751732486eb ("KVM: X86: Fix fpu
state crash in kvm guest", 2019), which reloaded the registers at vcpu_load() and sched-in, and reverted with
this fix (2620fe268e80, Reported-by: Derek Yerger). The fix saves only if TIF is clear, as
``fpu__copy()`` did; v6.5-rc7's ``fpu_swap_kvm_fpstate()`` keeps that test.

Adapted to v6.5-rc7, where ``kvm_load_guest_fpu()`` and ``kvm_put_guest_fpu()`` are one
``fpu_swap_kvm_fpstate()`` (2021) that swaps the ``fpu->fpstate`` pointer instead of copying between two
``struct fpu``: the variant is that function without the TIF test. The 2019 code restored the guest's PKRU
separately, which is not modeled.
"""

from fpufuzz.runtime import XFEATURE_MASK_FPSTATE

BASE = "exec_invalidate_last_cpu"
FAMILIES = ("kvm",)  # the patch is to the KVM swap: its fuzz test turns that family on
EXPECT = "violates user-regs"  # the VMM's registers; the guest's (guest-regs) are the other half
FIXED_BY = "exec_invalidate_last_cpu"


def fpu_swap_kvm_fpstate(k, guest_fpu, enter_guest):
    """arch/x86/kernel/fpu/core.c (v6.5-rc7) saving the registers whether or not ``TIF_NEED_FPU_LOAD`` says they
    are the current task's."""
    guest_fps = guest_fpu.fpstate
    fpu = k.current.thread.fpu
    cur_fps = fpu.fpstate

    k.fpregs_lock()
    if not cur_fps.is_confidential:
        k.save_fpregs_to_fpstate(fpu)

    # Attach the other buffer; the task's own is parked in __task_fpstate while the guest's is attached.
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
