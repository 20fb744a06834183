"""The baseline: Linux v6.5-rc7's x86 FPU functions, one Python function per kernel function.

Each function takes the kernel namespace ``k`` first and reaches everything else through it: other kernel
functions (``k.fpregs_activate(fpu)``), per-CPU variables (``k.this_cpu_read(fpu_fpregs_owner_ctx)``), thread
flags and the current task. A variant replaces a function by defining one of the same name; because every call
goes through ``k``, the replacement takes effect everywhere, and because these are module-level functions the
kernel's ``__`` spellings are not mangled (``k.__cpu_invalidate_fpregs_state()`` works as written).

Every read or write of FPU state through ``k`` is an *event*: a point where, if the CPU's context allows it, the
task can be preempted or a hard interrupt can arrive (see fpufuzz/runtime.py). No interleaving is placed by
hand.

Simplifications, said once here and again where they bite: only the XSAVE code paths are modeled (no FXSR;
FNSAVE only in ``save_fpregs_to_fpstate()``, with config ``fnsave=yes``); the CPU always has an FPU (``cpu_feature_enabled(X86_FEATURE_FPU)`` is true); tracing, PKRU, XFD and
AVX-512 timestamps are left out because they do not touch the state the invariants read.
"""

from __future__ import annotations

from fpufuzz.runtime import (
    KFPU_387,
    KFPU_DEFAULT,
    KFPU_MXCSR,
    PF_KTHREAD,
    PF_USER_WORKER,
    TIF_NEED_FPU_LOAD,
    X86_TRAP_PF,
    XFEATURE_MASK_FPSTATE,
    XSTATE_COPY_FX,
    XFEATURE_MASK_USER,
    fpu_fpregs_owner_ctx,
    in_kernel_fpu,
)

# ---------------------------------------------------------------- arch/x86/kernel/fpu/context.h


def __cpu_invalidate_fpregs_state(k):
    """Forget which fpu this CPU's registers hold. arch/x86/kernel/fpu/context.h (v6.5-rc7)."""
    k.__this_cpu_write(fpu_fpregs_owner_ctx, None)


def __fpu_invalidate_fpregs_state(k, fpu):
    """Mark ``fpu``'s registers as live on no CPU. arch/x86/kernel/fpu/context.h (v6.5-rc7)."""
    fpu.last_cpu = -1


def fpregs_state_valid(k, fpu, cpu):
    """The lazy-restore proof: this CPU's registers are ``fpu``'s and ``fpu`` was last live here.
    arch/x86/kernel/fpu/context.h (v6.5-rc7)."""
    return fpu == k.this_cpu_read(fpu_fpregs_owner_ctx) and cpu == fpu.last_cpu


def fpregs_deactivate(k, fpu):
    """Clear the owner tag, whoever owned it. arch/x86/kernel/fpu/context.h (v6.5-rc7)."""
    k.__this_cpu_write(fpu_fpregs_owner_ctx, None)


def fpregs_activate(k, fpu):
    """Tag this CPU's registers as ``fpu``'s. arch/x86/kernel/fpu/context.h (v6.5-rc7)."""
    k.__this_cpu_write(fpu_fpregs_owner_ctx, fpu)


def fpregs_restore_userregs(k):
    """Make the current task's registers live before it returns to user space, skipping the XRSTOR when
    ``fpregs_state_valid()`` proves they already are. arch/x86/kernel/fpu/context.h (v6.5-rc7)."""
    fpu = k.current.thread.fpu
    cpu = k.smp_processor_id()

    if k.WARN_ON_ONCE(k.current.flags & (PF_KTHREAD | PF_USER_WORKER)):
        return

    if not k.fpregs_state_valid(fpu, cpu):
        # This restores _all_ xstate, supervisor state included (the CET state of the seed's bug).
        k.restore_fpregs_from_fpstate(fpu.fpstate, XFEATURE_MASK_FPSTATE)
        k.fpregs_activate(fpu)
        fpu.last_cpu = cpu
    k.clear_thread_flag(TIF_NEED_FPU_LOAD)


# ---------------------------------------------------------------- arch/x86/include/asm/fpu/sched.h


def switch_fpu_prepare(k, old_fpu, cpu):
    """Save the outgoing task's live registers; the owner tag stays, so it can skip the restore if it comes back
    to this CPU untouched. arch/x86/include/asm/fpu/sched.h (v6.5-rc7). Called from ``__switch_to`` only when
    ``TIF_NEED_FPU_LOAD`` is clear."""
    if not (k.current.flags & (PF_KTHREAD | PF_USER_WORKER)):
        k.save_fpregs_to_fpstate(old_fpu)
        # The save preserved the registers, so fpu_fpregs_owner_ctx is still old_fpu: record the CPU.
        old_fpu.last_cpu = cpu


def switch_fpu_finish(k):
    """Defer the incoming task's restore to its return to user space. arch/x86/include/asm/fpu/sched.h
    (v6.5-rc7): sets ``TIF_NEED_FPU_LOAD`` on the task being switched *in*, so a task switched out with live
    registers keeps it clear while it sleeps."""
    k.set_thread_flag(TIF_NEED_FPU_LOAD)


# ---------------------------------------------------------------- arch/x86/kernel/process_64.c


def __switch_to(k, prev_p, next_p):
    """The FPU lines of the context switch, run with interrupts off. arch/x86/kernel/process_64.c (v6.5-rc7).
    Simplification: segment, TLS and stack switching are left out; ``current_task`` is written here as the
    kernel does, so ``switch_fpu_finish()`` acts on the incoming task."""
    prev_fpu = prev_p.thread.fpu
    cpu = k.smp_processor_id()

    if not k.test_thread_flag(TIF_NEED_FPU_LOAD):
        k.switch_fpu_prepare(prev_fpu, cpu)

    k.this_cpu_write("current_task", next_p)

    k.switch_fpu_finish()


# ---------------------------------------------------------------- arch/x86/kernel/fpu/core.c


def save_fpregs_to_fpstate(k, fpu):
    """Save the registers into ``fpu``'s memory image; the registers keep their contents.
    arch/x86/kernel/fpu/core.c (v6.5-rc7). On a CPU without XSAVE or FXSR (config ``fnsave=yes``) FNSAVE clears
    the registers, so they are reloaded from the image at once: two events, with the init state in the registers
    between them. Simplifications: a CPU with FXSR but no XSAVE is not a separate configuration (FXSAVE preserves
    the registers, as XSAVE does); AVX-512 timestamps are not modeled."""
    if k.use_xsave():
        k.os_xsave(fpu.fpstate)
        return

    # Legacy FPU register saving: FNSAVE always clears the FPU registers, so they are reloaded from memory.
    k.fnsave(fpu.fpstate)
    k.frstor(fpu.fpstate)


def restore_fpregs_from_fpstate(k, fpstate, mask):
    """Load the registers from a memory image; owner, ``last_cpu`` and TIF are the caller's business.
    arch/x86/kernel/fpu/core.c (v6.5-rc7). Simplification: only the XSAVE path; XFD is not modeled."""
    k.os_xrstor(fpstate, mask)


def fpregs_mark_activate(k):
    """Declare the current task's registers live on this CPU. arch/x86/kernel/fpu/core.c (v6.5-rc7)."""
    fpu = k.current.thread.fpu

    k.fpregs_activate(fpu)
    fpu.last_cpu = k.smp_processor_id()
    k.clear_thread_flag(TIF_NEED_FPU_LOAD)


def switch_fpu_return(k):
    """Load the current task's registers on the way to user space. arch/x86/kernel/fpu/core.c (v6.5-rc7)."""
    k.fpregs_restore_userregs()


def fpregs_assert_state_consistent(k):
    """CONFIG_X86_DEBUG_FPU: a task with TIF clear must hold valid registers. arch/x86/kernel/fpu/core.c
    (v6.5-rc7)."""
    fpu = k.current.thread.fpu

    if k.test_thread_flag(TIF_NEED_FPU_LOAD):
        return

    k.WARN_ON_FPU(not k.fpregs_state_valid(fpu, k.smp_processor_id()))


def irq_fpu_usable(k):
    """May kernel code use the FPU in the current context? arch/x86/kernel/fpu/core.c (v6.5-rc7)."""
    if k.WARN_ON_ONCE(k.in_nmi()):
        return False

    # In kernel FPU usage already active?
    if k.this_cpu_read(in_kernel_fpu):
        return False

    # Task context outside fpregs_lock() sections, and softirq processing (which cannot run inside one).
    if not k.in_hardirq():
        return True

    # A hard interrupt is safe when it did not hit a fpregs_lock()'ed (bottom-half disabled) region.
    return not k.softirq_count()


def kernel_fpu_begin_mask(k, kfpu_mask):
    """Take the FPU for kernel use: save the interrupted or current user task's registers, invalidate this CPU.
    arch/x86/kernel/fpu/core.c (v6.5-rc7): preemption off, not fpregs_lock(); from softirq or hardirq context
    ``current`` is whatever task was interrupted."""
    k.preempt_disable()

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


def kernel_fpu_begin(k):
    """arch/x86/include/asm/fpu/api.h (v6.5-rc7)."""
    k.kernel_fpu_begin_mask(KFPU_DEFAULT)


def kernel_fpu_end(k):
    """Give the FPU back; the user registers are restored lazily on the way to user space.
    arch/x86/kernel/fpu/core.c (v6.5-rc7)."""
    k.WARN_ON_FPU(not k.this_cpu_read(in_kernel_fpu))

    k.this_cpu_write(in_kernel_fpu, False)
    k.preempt_enable()


def fpu__drop(k, fpu):
    """Drop ``fpu``'s register ownership on *this* CPU only; ``last_cpu`` and TIF are left alone.
    arch/x86/kernel/fpu/core.c (v6.5-rc7). Simplification: the ``fwait`` that swallows pending x87 exceptions
    has no modeled effect."""
    k.preempt_disable()

    if fpu == k.current.thread.fpu:
        k.fpregs_deactivate(fpu)

    k.preempt_enable()


def fpu_reset_fpregs(k):
    """Reset the current task's FPU to init state for exec: memory image only, loaded on return to user.
    arch/x86/kernel/fpu/core.c (v6.5-rc7, before 1f69383b203e): invalidates with ``fpu__drop()``."""
    fpu = k.current.thread.fpu

    k.fpregs_lock()
    k.fpu__drop(fpu)
    # This does not change the actual hardware registers. It just resets the memory image and sets
    # TIF_NEED_FPU_LOAD so a subsequent return to usermode will reload the registers from the memory image.
    fpu.fpstate.regs = k.init_fpstate.regs
    k.set_thread_flag(TIF_NEED_FPU_LOAD)
    k.fpregs_unlock()


def fpstate_reset(k, fpu):
    """Point ``fpu->fpstate`` back at the task's own buffer and reset permissions. arch/x86/kernel/fpu/core.c
    (v6.5-rc7). Simplification: its callers (fork, exec) never run inside KVM_RUN, so the pointer is already the
    task's own; the model has no permissions, so this touches nothing the model tracks."""


def restore_fpregs_from_init_fpstate(k, features_mask):
    """Load the init state into the components in ``features_mask``; the caller holds fpregs_lock().
    arch/x86/kernel/fpu/core.c (v6.5-rc7). Simplification: only the XSAVE path; PKRU is not modeled."""
    k.os_xrstor(k.init_fpstate, features_mask)


def fpu__clear_user_states(k, fpu):
    """Reset the current task's user FPU state to init in the registers, keep its supervisor state, and mark the
    registers live: the signal handler's start, and every sigreturn failure. The memory image is left stale on
    purpose (the registers are the task's now). arch/x86/kernel/fpu/core.c (v6.5-rc7). Simplifications: the
    CPU has an FPU and supervisor features (CET), so ``xfeatures_mask_supervisor()`` is true."""
    k.WARN_ON_FPU(fpu != k.current.thread.fpu)

    k.fpregs_lock()
    # Make sure the supervisor state in the registers is current's before only the user part is reset.
    if not k.fpregs_state_valid(fpu, k.smp_processor_id()):
        k.os_xrstor_supervisor(fpu.fpstate)

    k.restore_fpregs_from_init_fpstate(XFEATURE_MASK_USER)

    k.fpregs_mark_activate()
    k.fpregs_unlock()


def fpu_clone(k, dst, clone_flags, minimal, ssp):
    """Set up a new task's FPU at fork: never valid in any CPU's registers, a reload forced on its way to user
    space; a kernel thread or user worker (``minimal``) gets the init state, a user child a copy of the parent's
    *registers*, made live first if they were not. arch/x86/kernel/fpu/core.c (v6.5-rc7). Simplifications:
    permissions, PASID and the shadow-stack pointer update touch nothing the model tracks."""
    dst_fpu = dst.thread.fpu

    # The task_struct was copied from the parent, and its memory may be a freed task's: forget both.
    dst_fpu.last_cpu = -1

    k.fpstate_reset(dst_fpu)

    k.set_tsk_thread_flag(dst, TIF_NEED_FPU_LOAD)

    if minimal:
        dst_fpu.fpstate.regs = k.init_fpstate.regs
        return 0

    k.fpregs_lock()
    if k.test_thread_flag(TIF_NEED_FPU_LOAD):
        k.fpregs_restore_userregs()
    k.save_fpregs_to_fpstate(dst_fpu)
    k.fpregs_unlock()
    return 0


def fpu_alloc_guest_fpstate(k, gfpu):
    """Allocate a vCPU's guest buffer in the init state (``vzalloc()``, ``fpstate_init_user()``).
    arch/x86/kernel/fpu/core.c (v6.5-rc7). Simplifications: sizes, feature masks and guest permissions are not
    modeled."""
    k.vzalloc_guest_fpstate(gfpu)
    return True


def fpu_swap_kvm_fpstate(k, guest_fpu, enter_guest):
    """Swap the current task's FPU state with a vCPU's guest state around KVM_RUN: save whatever is live into the
    buffer attached now, point ``fpu->fpstate`` at the other buffer, load it and mark the registers live. While
    the guest buffer is attached every generic path (context switch, kernel_fpu_begin() in an interrupt, the
    restore on the way back) saves into and loads from it. arch/x86/kernel/fpu/core.c (v6.5-rc7).
    Simplifications: confidential guests (``is_confidential``: the firmware swaps their state, only XFD is
    updated) are left out; XFD is not modeled."""
    guest_fps = guest_fpu.fpstate
    fpu = k.current.thread.fpu
    cur_fps = fpu.fpstate

    k.fpregs_lock()
    if not cur_fps.is_confidential and not k.test_thread_flag(TIF_NEED_FPU_LOAD):
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


def fpu_flush_thread(k):
    """exec()'s FPU reset. arch/x86/kernel/fpu/core.c (v6.5-rc7)."""
    k.fpstate_reset(k.current.thread.fpu)
    k.fpu_reset_fpregs()


def fpu_sync_fpstate(k, fpu):
    """Bring the current task's memory image up to date with its registers, if they are live (TIF clear), and keep
    the registers: for a core dump (and ``math_error()``) reading the current task's own state.
    arch/x86/kernel/fpu/core.c (v6.5-rc7). Simplification: the tracepoints are left out."""
    k.WARN_ON_FPU(fpu != k.current.thread.fpu)

    k.fpregs_lock()
    if not k.test_thread_flag(TIF_NEED_FPU_LOAD):
        k.save_fpregs_to_fpstate(fpu)
    k.fpregs_unlock()


# ---------------------------------------------------------------- arch/x86/include/asm/fpu/api.h


def fpregs_lock(k):
    """Keep softirqs (and with them kernel-FPU users) and preemption off this CPU; hard interrupts stay on.
    arch/x86/include/asm/fpu/api.h (v6.5-rc7): ``local_bh_disable()``, or ``preempt_disable()`` on PREEMPT_RT."""
    if k.config.preempt_rt:
        k.preempt_disable()
    else:
        k.local_bh_disable()


def fpregs_unlock(k):
    """arch/x86/include/asm/fpu/api.h (v6.5-rc7)."""
    if k.config.preempt_rt:
        k.preempt_enable()
    else:
        k.local_bh_enable()


# ---------------------------------------------------------------- arch/x86/kernel/process.c


def arch_dup_task_struct(k, dst, src):
    """The child's task_struct starts as a byte copy of the parent's: thread flags, ``fpu->last_cpu`` and the
    embedded register image included. arch/x86/kernel/process.c (v6.5-rc7)."""
    k.memcpy_task_struct(dst, src)
    return 0


def copy_thread(k, p, clone_flags, minimal):
    """The FPU line of arch/x86/kernel/process.c ``copy_thread()`` (v6.5-rc7). Simplification: the kernel passes
    ``args``; ``minimal`` stands for ``args->fn`` being set (a kernel thread or user worker), and the
    shadow-stack pointer is not modeled."""
    return k.fpu_clone(p, clone_flags, minimal, 0)


def exit_thread(k, tsk):
    """arch/x86/kernel/process.c (v6.5-rc7), FPU line only: drop the exiting task's registers on this CPU."""
    k.fpu__drop(tsk.thread.fpu)


# ---------------------------------------------------------------- arch/x86/kernel/fpu/xstate.c


def copy_xstate_to_uabi_buf(k, to, tsk, copy_mode):
    """Copy a task's memory image out in the user ABI format. arch/x86/kernel/fpu/xstate.c (v6.5-rc7).
    Simplification: only ``XSTATE_COPY_FX``, the legacy FXSAVE area (the model's user part; the oracle reads only
    that part); the XSAVE header, PKRU and the init-state filling of absent components are left out."""
    k.membuf_write(to, tsk.thread.fpu.fpstate.regs)


def copy_sigframe_from_user_to_xstate(k, tsk, ubuf):
    """Copy a signal frame into the task's memory image. arch/x86/kernel/fpu/xstate.c (v6.5-rc7).
    Simplification: the frame's header is always well formed; only faults can make it fail."""
    return k.__copy_from_user(tsk.thread.fpu.fpstate, ubuf)


# ---------------------------------------------------------------- arch/x86/kernel/fpu/signal.c


def copy_fpregs_to_sigframe(k, buf, pkru):
    """arch/x86/kernel/fpu/signal.c (v6.5-rc7). Simplification: only the XSAVE path; PKRU is not modeled."""
    return k.xsave_to_user_sigframe(buf)


def copy_fpstate_to_sigframe(k, buf, buf_fx, size, pkru):
    """Save the current task's FPU state into its signal frame, straight from the registers (made live first).
    If the XSAVE faults, the page is faulted in by clearing the frame -- with the lock dropped, so the task may
    be preempted or moved -- and the whole sequence is retried. arch/x86/kernel/fpu/signal.c (v6.5-rc7).
    Simplifications: 64-bit frames only (no fsave header); ``access_ok()`` and the xsave header clearing always
    succeed; the sw_reserved/magic epilogue carries no FPU state and is left out."""
    while True:
        k.fpregs_lock()
        if k.test_thread_flag(TIF_NEED_FPU_LOAD):
            k.fpregs_restore_userregs()

        k.pagefault_disable()
        ret = k.copy_fpregs_to_sigframe(buf_fx, pkru)
        k.pagefault_enable()
        k.fpregs_unlock()

        if not ret:
            return True
        if k.__clear_user(buf_fx, size):
            return False


def __restore_fpregs_from_user(k, buf, ufeatures, xrestore, fx_only):
    """arch/x86/kernel/fpu/signal.c (v6.5-rc7). Simplification: the frame holds every user feature, so no
    component needs its init state loaded separately."""
    return k.xrstor_from_user_sigframe(buf, xrestore)


def restore_fpregs_from_user(k, buf, xrestore, fx_only):
    """Restore the registers straight from the signal frame; on a page fault, fault the page in with the lock
    dropped and retry. A faulting XRSTOR may have modified the registers, so if they were someone else's cached
    state (TIF set) this CPU's cache tag is dropped. arch/x86/kernel/fpu/signal.c (v6.5-rc7)."""
    fpu = k.current.thread.fpu

    while True:
        k.fpregs_lock()
        k.pagefault_disable()
        ret = k.__restore_fpregs_from_user(buf, XFEATURE_MASK_USER, xrestore, fx_only)
        k.pagefault_enable()

        if ret:
            if k.test_thread_flag(TIF_NEED_FPU_LOAD):
                k.__cpu_invalidate_fpregs_state()
            k.fpregs_unlock()

            # Only a page fault can be resolved.
            if ret != X86_TRAP_PF:
                return False
            if not k.fault_in_readable(buf, 0):
                continue
            return False

        # The supervisor state was saved by whatever set TIF; the user part came from the frame.
        if k.test_thread_flag(TIF_NEED_FPU_LOAD):
            k.os_xrstor_supervisor(fpu.fpstate)

        k.fpregs_mark_activate()
        k.fpregs_unlock()
        return True


def __fpu_restore_sig(k, buf, buf_fx, ia32_fxstate):
    """The 64-bit path restores the registers from the frame directly; the ia32 (FXSR) path copies the frame
    into the memory image first, with the task's registers invalidated on both sides so a preemption during the
    copy cannot save over or restore from it, then loads the image. arch/x86/kernel/fpu/signal.c (v6.5-rc7).
    Simplification: the frame's sw_reserved header is always valid (no fx_only frames)."""
    fpu = k.current.thread.fpu

    if not ia32_fxstate:
        return k.restore_fpregs_from_user(buf_fx, XFEATURE_MASK_USER, False)

    # The legacy environment is read first; it may fault.
    if k.__copy_from_user(None, buf):
        return False

    k.fpregs_lock()
    if not k.test_thread_flag(TIF_NEED_FPU_LOAD):
        # Keep the supervisor state: save it all, it is ia32.
        k.os_xsave(fpu.fpstate)
        k.set_thread_flag(TIF_NEED_FPU_LOAD)
    k.__fpu_invalidate_fpregs_state(fpu)
    k.__cpu_invalidate_fpregs_state()
    k.fpregs_unlock()

    if k.copy_sigframe_from_user_to_xstate(k.current, buf_fx):
        return False

    k.fpregs_lock()
    success = not k.os_xrstor_safe(fpu.fpstate, XFEATURE_MASK_FPSTATE)
    if success:
        k.fpregs_mark_activate()
    k.fpregs_unlock()
    return success


def fpu__restore_sig(k, buf, ia32_frame):
    """sigreturn's FPU part: the frame's state on success; on any failure, and for a NULL frame, the init state
    (``fpu__clear_user_states()``). arch/x86/kernel/fpu/signal.c (v6.5-rc7). Simplifications: ``access_ok()``
    always holds (a bad frame shows as a fault); the CPU has an FPU."""
    fpu = k.current.thread.fpu

    if buf is None:
        k.fpu__clear_user_states(fpu)
        return True

    success = k.__fpu_restore_sig(buf, buf, bool(ia32_frame))
    if not success:
        k.fpu__clear_user_states(fpu)
    return success


# ---------------------------------------------------------------- arch/x86/kernel/fpu/regset.c


def sync_fpstate(k, fpu):
    """Before a regset get(): a core dump reads the current task, whose registers may be live, so its memory image
    is synchronized; a tracer reads a stopped tracee, whose registers its switch-out already saved.
    arch/x86/kernel/fpu/regset.c (v6.5-rc7)."""
    if fpu == k.current.thread.fpu:
        k.fpu_sync_fpstate(fpu)


def fpu_force_restore(k, fpu):
    """Before a tracer writes a stopped tracee's memory image: invalidate the registers cached for it, wherever
    they are, so it reloads the image on its way back to user space. arch/x86/kernel/fpu/regset.c (v6.5-rc7): the
    cross-CPU ``__fpu_invalidate_fpregs_state()``, since the tracee's registers may still be valid on the CPU it
    stopped on (in v6.5-rc7 it may even sleep with ``TIF_NEED_FPU_LOAD`` clear)."""
    # Only stopped child tasks can be used to modify the FPU state in the fpstate buffer.
    k.WARN_ON_FPU(fpu == k.current.thread.fpu)

    k.__fpu_invalidate_fpregs_state(fpu)


def xfpregs_get(k, target, regset, to):
    """The FPU regset's get() (PTRACE_GETFPREGS, the core dump's NT_PRFPREG note). arch/x86/kernel/fpu/regset.c
    (v6.5-rc7). Simplification: FXSR and XSAVE are present."""
    k.sync_fpstate(target.thread.fpu)

    k.copy_xstate_to_uabi_buf(to, target, XSTATE_COPY_FX)
    return 0


def xfpregs_set(k, target, regset, pos, count, kbuf, ubuf):
    """The FPU regset's set() (PTRACE_SETFPREGS): copy the new FXSAVE image in from the tracer, force the tracee to
    reload, then write the image. arch/x86/kernel/fpu/regset.c (v6.5-rc7). Simplifications: the image is always
    well formed (full size, a valid MXCSR), so the -EINVAL checks never fire; the xmm8-15 clearing for ia32
    tracers and the XSAVE header's FP/SSE bits touch nothing the model tracks."""
    fpu = target.thread.fpu

    newstate = k.user_regset_copyin(ubuf)

    k.fpu_force_restore(fpu)

    # Copy the state.
    k.memcpy_fxsave(fpu.fpstate, newstate)
    return 0
