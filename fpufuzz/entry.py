"""The kernel paths around the FPU functions: syscall entry and exit, exec, the context switch, interrupts.

These are the generic kernel's code reduced to their FPU-relevant lines, with the kernel's names; like
fpufuzz/kernel.py they are part of the baseline a variant may override. Scheduling points that the real code
has for reasons outside the FPU (``sched_exec()`` balancing an exec'ing task onto another CPU, page faults while
mapping the new image, the ``need_resched`` check on the way out) appear as ``k.cond_resched()``.

A path that ends in user mode ends in ``syscall_exit_to_user_mode()`` or ``irqentry_exit_to_user_mode()``:
nothing else calls ``k.return_to_user_mode()``, so nothing else reaches user mode.
"""

from __future__ import annotations

from fpufuzz.runtime import (_TIF_NEED_FPU_LOAD, CLD_STOPPED, HARDIRQ_OFFSET, NET_RX_SOFTIRQ, PF_KTHREAD,
                             PF_USER_WORKER, PTRACE_CONT, PTRACE_GETFPREGS, PTRACE_SETFPREGS, REGSET_FP,
                             SIGABRT, SIGTRAP, SOFTIRQ_OFFSET, TASK_TRACED, TIF_NEED_FPU_LOAD)

MAX_SOFTIRQ_RESTART = 10  # kernel/softirq.c

# ---------------------------------------------------------------- arch/x86/entry/common.c


def do_syscall_64(k, nr, *args):
    """A system call from user mode. arch/x86/entry/common.c (v6.5-rc7). ``nr`` names the syscall's body,
    ``args`` are its arguments."""
    k.syscall_enter_from_user_mode()
    getattr(k, nr)(*args)
    k.syscall_exit_to_user_mode()


def ret_from_fork(k):
    """A new task's first return to user mode. arch/x86/entry/entry_64.S, kernel/entry/common.c (v6.5-rc7)."""
    k.syscall_exit_to_user_mode()


# ---------------------------------------------------------------- kernel/entry/common.c


def syscall_enter_from_user_mode(k):
    """kernel/entry/common.c (v6.5-rc7). No FPU action: since the 2019 deferred-restore series the registers
    stay as user space left them until something in the kernel needs them."""


def syscall_exit_to_user_mode(k):
    """kernel/entry/common.c (v6.5-rc7): exit work with interrupts off, then back to user mode."""
    k.exit_to_user_mode_loop()
    k.local_irq_disable()
    k.exit_to_user_mode_prepare()
    k.return_to_user_mode()


def irqentry_exit_to_user_mode(k):
    """The return to user mode of an interrupt or exception that came from user mode, and of a user task that
    was preempted there. kernel/entry/common.c (v6.5-rc7)."""
    k.exit_to_user_mode_loop()
    k.local_irq_disable()
    k.exit_to_user_mode_prepare()
    k.return_to_user_mode()


def exit_to_user_mode_loop(k):
    """kernel/entry/common.c (v6.5-rc7): with ``_TIF_NEED_RESCHED`` set, ``schedule()`` runs here with interrupts
    on; then a pending signal is delivered. Simplification: one pass, as a scheduling point and a signal check;
    the flags are read after it, as the kernel re-reads them after every pass."""
    k.cond_resched()
    if k.signal_pending():
        k.arch_do_signal_or_restart()


# ---------------------------------------------------------------- arch/x86/kernel/signal.c


def arch_do_signal_or_restart(k):
    """arch/x86/kernel/signal.c (v6.5-rc7): deliver the signal ``get_signal()`` dequeues. Simplification: every
    signal has a handler installed (no default actions, no syscall restart)."""
    if k.get_signal():
        k.handle_signal()


def handle_signal(k):
    """Set up the handler's frame; on success the handler starts with the init FPU state. arch/x86/kernel/signal.c
    (v6.5-rc7)."""
    failed = not k.setup_rt_frame()
    if not failed:
        # Ensure the signal handler starts with the new fpu state.
        k.fpu__clear_user_states(k.current.thread.fpu)
    k.signal_setup_done(failed)


def setup_rt_frame(k):
    """arch/x86/kernel/signal_64.c (v6.5-rc7) ``x64_setup_rt_frame()``, FPU part: the frame is where
    ``get_sigframe()`` says, with the FPU state saved into it."""
    return k.get_sigframe() is not None


def get_sigframe(k):
    """arch/x86/kernel/signal.c (v6.5-rc7): find the frame on the user stack and save the FPU state into it; None
    (the kernel's ``(void __user *)-1L``) if that fails. Simplification: the stack arithmetic is the
    ``k.user_sigframe()`` primitive; 64-bit frames only."""
    buf = k.user_sigframe()
    if not k.copy_fpstate_to_sigframe(buf, buf, 0, 0):
        return None
    return buf


def signal_setup_done(k, failed):
    """kernel/signal.c (v6.5-rc7): a frame that could not be written forces SIGSEGV. Simplification: its default
    action, taken on the next pass of the exit loop, is modeled at once: the task exits."""
    if failed:
        k.do_exit()


def sys_rt_sigreturn(k):
    """rt_sigreturn(2) of a 64-bit frame: arch/x86/kernel/signal_64.c (v6.5-rc7), FPU part."""
    k.restore_sigcontext(0)


def sys32_rt_sigreturn(k):
    """rt_sigreturn of an ia32 frame on a 64-bit kernel (IA32 emulation): arch/x86/ia32/ia32_signal.c
    (v6.5-rc7), FPU part."""
    k.restore_sigcontext(1)


def restore_sigcontext(k, ia32_frame):
    """arch/x86/kernel/signal_64.c (v6.5-rc7): the general registers come back from the frame (not modeled),
    then the FPU state from ``sc->fpstate``."""
    k.fpu__restore_sig(k.user_sigframe(), ia32_frame)


# ---------------------------------------------------------------- kernel/fork.c and kernel/exit.c


def sys_clone(k, child):
    """clone(2)/fork(2): kernel/fork.c (v6.5-rc7). ``child`` names the new task (the model's name for it; its
    kind too: ``u<N>`` a user task, ``w<N>`` a user worker as io_uring creates them)."""
    k.kernel_clone(child)


def kernel_clone(k, child):
    """kernel/fork.c (v6.5-rc7), reduced to ``copy_process()`` and the new task's wake-up."""
    p = k.copy_process(child)
    if p is not None:
        k.wake_up_new_task(p)


def copy_process(k, child):
    """kernel/fork.c (v6.5-rc7) ``copy_process()`` → ``dup_task_struct()`` (allocate, then
    ``arch_dup_task_struct()``), then ``copy_thread()``. The allocation may sleep first, so the task_struct it
    hands out can be one freed meanwhile. A kernel thread or user worker gets the minimal FPU state."""
    k.cond_resched()
    p = k.alloc_task_struct_node(child)
    if p is None:
        return None
    k.arch_dup_task_struct(p, k.current)
    minimal = bool(p.flags & (PF_KTHREAD | PF_USER_WORKER))
    k.copy_thread(p, 0, minimal)
    return p


def sys_exit(k):
    """exit(2): kernel/exit.c (v6.5-rc7)."""
    k.do_exit()


def do_exit(k):
    """kernel/exit.c (v6.5-rc7), reduced to ``exit_thread()`` and the final schedule. Releasing the mm and files
    may sleep first."""
    k.cond_resched()
    k.exit_thread(k.current)
    k.do_task_dead()


def exit_to_user_mode_prepare(k):
    """kernel/entry/common.c (v6.5-rc7), interrupts off."""
    ti_work = k.read_thread_flags()
    k.arch_exit_to_user_mode_prepare(ti_work)


def arch_exit_to_user_mode_prepare(k, ti_work):
    """The FPU lines of arch/x86/include/asm/entry-common.h (v6.5-rc7): load the user registers if
    ``TIF_NEED_FPU_LOAD`` says the task's memory image is the one to use."""
    k.fpregs_assert_state_consistent()
    if ti_work & _TIF_NEED_FPU_LOAD:
        k.switch_fpu_return()


# ---------------------------------------------------------------- fs/exec.c and kernel/sched/core.c


def sys_execve(k):
    """exec(): fs/exec.c (v6.5-rc7) ``do_execveat_common()`` → ``bprm_execve()`` → ``load_elf_binary()``, reduced
    to the FPU reset and the scheduling points around it."""
    k.sched_exec()
    k.begin_new_exec()
    k.setup_new_exec()


def sys_getpid(k):
    """A system call that does not touch the FPU (kernel/sys.c): the common case, where the task returns to user
    space with ``TIF_NEED_FPU_LOAD`` still clear and its registers live."""


def sched_exec(k):
    """kernel/sched/core.c (v6.5-rc7): exec is a load-balancing point; the task may move to another CPU here."""
    k.cond_resched()


def begin_new_exec(k):
    """fs/exec.c (v6.5-rc7): the point of no return; ``flush_thread()`` resets the thread's FPU."""
    k.flush_thread()


def flush_thread(k):
    """arch/x86/kernel/process.c (v6.5-rc7), FPU line only."""
    k.fpu_flush_thread()


def setup_new_exec(k):
    """fs/exec.c (v6.5-rc7), then the rest of ``load_elf_binary()``: mapping the new image may sleep."""
    k.cond_resched()


def context_switch(k, prev, next):
    """kernel/sched/core.c (v6.5-rc7) ``context_switch()`` → ``switch_to()`` → ``__switch_to()``, with interrupts
    off until ``finish_task_switch()``."""
    k.local_irq_disable()
    k.__switch_to(prev, next)
    k.local_irq_enable()


# ---------------------------------------------------------------- kernel-mode FPU users


def simd_work(k):
    """Model path: kernel code that uses SIMD when it may (crypto, RAID, checksums), asking first as real callers
    do (``may_use_simd()`` is ``irq_fpu_usable()`` on x86). Used from a syscall, a kernel thread and an
    interrupt handler."""
    if k.irq_fpu_usable():
        k.kernel_fpu_begin()
        k.kernel_fpu_use()
        k.kernel_fpu_end()


def kthread_work(k, work):
    """Model path: one round of a kernel thread's (or user worker's) loop (kernel/kthread.c), doing ``work``:
    ``simd_work`` or ``do_exit``."""
    getattr(k, work)()


def handle_irq(k, work):
    """Model path: a hard interrupt's handler doing ``work``; it runs to completion with interrupts off."""
    getattr(k, work)()


# ---------------------------------------------------------------- virt/kvm/kvm_main.c and arch/x86/kvm/x86.c


def kvm_vm_ioctl(k, ioctl):
    """An ioctl on a VM file descriptor: virt/kvm/kvm_main.c (v6.5-rc7), reduced to ``KVM_CREATE_VCPU``."""
    if ioctl == "KVM_CREATE_VCPU":
        k.kvm_vm_ioctl_create_vcpu()


def kvm_vm_ioctl_create_vcpu(k):
    """virt/kvm/kvm_main.c (v6.5-rc7): allocate the vCPU (which may sleep), then ``kvm_arch_vcpu_create()``.
    Simplification: one vCPU per program; the VM itself (``KVM_CREATE_VM``) holds no FPU state."""
    k.cond_resched()
    k.kvm_arch_vcpu_create(k.filp_vcpu())


def kvm_arch_vcpu_create(k, vcpu):
    """arch/x86/kvm/x86.c (v6.5-rc7), FPU line only: the guest's buffer."""
    k.fpu_alloc_guest_fpstate(vcpu.arch.guest_fpu)


def kvm_vcpu_ioctl(k, ioctl):
    """An ioctl on a vCPU file descriptor: virt/kvm/kvm_main.c (v6.5-rc7), reduced to ``KVM_RUN``. Taking
    ``vcpu->mutex`` may sleep: a scheduling point."""
    vcpu = k.filp_vcpu()
    k.cond_resched()
    if ioctl == "KVM_RUN":
        k.kvm_arch_vcpu_ioctl_run(vcpu)


def kvm_arch_vcpu_ioctl_run(k, vcpu):
    """KVM_RUN: swap the guest's FPU state in, run the vCPU until an exit needs the VMM, swap the task's back.
    arch/x86/kvm/x86.c (v6.5-rc7), FPU lines. Simplifications: ``vcpu_load()`` / ``vcpu_put()`` and the
    sigset swap carry no FPU state; a pending signal does not cut KVM_RUN short (signals reach tasks in user
    mode only)."""
    k.kvm_load_guest_fpu(vcpu)
    r = k.vcpu_run(vcpu)
    k.kvm_put_guest_fpu(vcpu)
    return r


def kvm_load_guest_fpu(k, vcpu):
    """Swap the VMM's user FPU state out and the guest's in. arch/x86/kvm/x86.c (v6.5-rc7). PKRU, switched
    separately around VM entry, is not modeled."""
    k.fpu_swap_kvm_fpstate(vcpu.arch.guest_fpu, True)


def kvm_put_guest_fpu(k, vcpu):
    """Swap the guest's FPU state out and the VMM's back in when KVM_RUN ends. arch/x86/kvm/x86.c (v6.5-rc7)."""
    k.fpu_swap_kvm_fpstate(vcpu.arch.guest_fpu, False)


def vcpu_run(k, vcpu):
    """arch/x86/kvm/x86.c (v6.5-rc7): enter the guest until an exit needs the VMM; between entries, pending work
    (``xfer_to_guest_mode_handle_work()``: rescheduling) is done. Simplification: the vCPU is always runnable
    (a halted vCPU's ``vcpu_block()`` is another scheduling point, as the loop's). ``for (;;)``: a pass carries
    nothing to the next (``r`` is assigned in each), so a paused path forgets its finished passes."""
    for _ in k.iterations():
        r = k.vcpu_enter_guest(vcpu)
        if r <= 0:
            return r
        k.xfer_to_guest_mode_handle_work(vcpu)


def xfer_to_guest_mode_handle_work(k, vcpu):
    """kernel/entry/kvm.c (v6.5-rc7): with ``TIF_NEED_RESCHED`` set, ``schedule()`` before the next entry."""
    k.cond_resched()


def vcpu_enter_guest(k, vcpu):
    """One VM entry and exit with preemption and then interrupts off, the guest's registers loaded first if
    ``TIF_NEED_FPU_LOAD`` says they are not live (the vCPU was preempted, or kernel FPU ran, since the last
    entry); interrupts pending from the guest's run are taken when they are enabled again. Returns 1 to enter
    again, 0 to return to the VMM. arch/x86/kvm/x86.c (v6.5-rc7). Simplifications: requests, event injection,
    debug registers and the fastpath re-entry loop carry no FPU state."""
    k.preempt_disable()
    k.local_irq_disable()

    k.fpregs_assert_state_consistent()
    if k.test_thread_flag(TIF_NEED_FPU_LOAD):
        k.switch_fpu_return()

    r = k.vmx_vcpu_run(vcpu)

    k.local_irq_enable()
    k.preempt_enable()
    return r


def vmx_vcpu_run(k, vcpu):
    """``static_call(kvm_x86_vcpu_run)``: arch/x86/kvm/vmx/vmx.c (v6.5-rc7; SVM's ``svm_vcpu_run()`` alike) with
    the exit handling: the guest runs, and the exit is handled in the kernel (1) or needs the VMM (0)."""
    return k.vmenter()


def raise_simd_softirq(k):
    """Model path: a hard interrupt's handler that defers its work to a softirq, as a network driver schedules NAPI
    (the packets are then decrypted with SIMD in ``NET_RX_SOFTIRQ``, as IPsec and WireGuard do)."""
    k.raise_softirq_irqoff(NET_RX_SOFTIRQ)


def softirq_work(k):
    """Model path: the action of the modeled softirq vector, which uses SIMD when it may (``simd_work``)."""
    k.simd_work()


# ---------------------------------------------------------------- kernel/softirq.c


def raise_softirq_irqoff(k, nr):
    """Mark softirq ``nr`` pending on this CPU, interrupts off. kernel/softirq.c (v6.5-rc7). Outside interrupt
    context the kernel also wakes ksoftirqd; the model raises softirqs only from hard interrupts, where it does
    not."""
    k.__raise_softirq_irqoff(nr)


def __raise_softirq_irqoff(k, nr):
    """kernel/softirq.c (v6.5-rc7)."""
    k.or_softirq_pending(1 << nr)


def irq_exit_rcu(k):
    """The end of a hard interrupt: kernel/softirq.c (v6.5-rc7), interrupts still off."""
    k.__irq_exit_rcu()


def __irq_exit_rcu(k):
    """Leave hard interrupt context and serve pending softirqs if the interrupted context allows it: not in
    interrupt context any more -- not nested in another interrupt, not serving a softirq, bottom halves not
    disabled. The preemption count does not matter. kernel/softirq.c (v6.5-rc7)."""
    k.preempt_count_sub(HARDIRQ_OFFSET)
    if not k.in_interrupt() and k.local_softirq_pending():
        k.invoke_softirq()


def invoke_softirq(k):
    """kernel/softirq.c (v6.5-rc7). Simplification: ksoftirqd is never running and interrupts are not forced into
    threads, so the softirqs are served here, on the interrupt's way out."""
    k.__do_softirq()


def do_softirq(k):
    """Serve pending softirqs from task context (``local_bh_enable()``). kernel/softirq.c (v6.5-rc7)."""
    if k.in_interrupt():
        return

    flags = k.local_irq_save()

    if k.local_softirq_pending():
        k.do_softirq_own_stack()

    k.local_irq_restore(flags)


def do_softirq_own_stack(k):
    """arch/x86/include/asm/irq_stack.h (v6.5-rc7): ``__do_softirq()`` on the softirq stack."""
    k.__do_softirq()


def __do_softirq(k):
    """Serve the pending softirqs with interrupts enabled and ``SOFTIRQ_OFFSET`` in the preemption count.
    kernel/softirq.c (v6.5-rc7). Simplifications: one vector (``NET_RX_SOFTIRQ``, whose action is
    ``softirq_work``); a softirq runs to completion in the model (a hard interrupt nested in it would find
    ``softirq_count()`` set and get no FPU in a correct kernel), so nothing raises a softirq meanwhile and the
    restart loop never repeats; ksoftirqd is not modeled."""
    max_restart = MAX_SOFTIRQ_RESTART
    pending = k.local_softirq_pending()

    k.softirq_handle_begin()

    while True:
        # Reset the pending bitmask before enabling irqs.
        k.set_softirq_pending(0)

        k.local_irq_enable()

        if pending & (1 << NET_RX_SOFTIRQ):
            k.softirq_work()

        k.local_irq_disable()

        pending = k.local_softirq_pending()
        max_restart -= 1
        if not pending or not max_restart:
            break

    k.softirq_handle_end()


def softirq_handle_begin(k):
    """kernel/softirq.c (v6.5-rc7)."""
    k.__local_bh_disable_ip(0, SOFTIRQ_OFFSET)


def softirq_handle_end(k):
    """kernel/softirq.c (v6.5-rc7)."""
    k.__local_bh_enable(SOFTIRQ_OFFSET)
    k.WARN_ON_ONCE(k.in_interrupt())


# ---------------------------------------------------------------- kernel/ptrace.c, kernel/signal.c: ptrace


def do_jobctl_trap(k):
    """kernel/signal.c (v6.5-rc7): a trap its tracer asked for (PTRACE_INTERRUPT of a PTRACE_SEIZE'd task) is
    reported with ``ptrace_do_notify()`` → ``ptrace_stop()``. Simplification: the siginfo is not modeled."""
    k.ptrace_stop(SIGTRAP, CLD_STOPPED, 0, None)


def ptrace_stop(k, exit_code, why, message, info):
    """kernel/signal.c (v6.5-rc7): stop for the tracer -- ``set_special_state(TASK_TRACED)``, notify it, and
    ``schedule()`` until its PTRACE_CONT wakes the task. The switch-out is the ordinary one, so the tracee sleeps
    with whatever it left: in v6.5-rc7, if its registers were live, they are saved to its memory image,
    ``TIF_NEED_FPU_LOAD`` stays clear and its CPU's owner tag still names it. Simplifications: the siglock, the
    tracer's notification (``do_notify_parent_cldstop()``) and the cgroup freezer touch no FPU state."""
    k.set_special_state(TASK_TRACED)
    k.schedule()
    return exit_code


def sys_ptrace(k, request, pid, data):
    """ptrace(2): kernel/ptrace.c (v6.5-rc7). The child must be stopped for its tracer and off its CPU
    (``ptrace_check_attach()`` → ``ptrace_freeze_traced()``, ``wait_task_inactive()``): the step's legality
    (fpufuzz/ops.py), which also serializes requests on one tracee, as the single tracer and the freeze do.
    Simplifications: the tracer relationship (PTRACE_ATTACH/SEIZE) is not tracked -- any other user task may act as
    the tracer of a stopped task; ``data`` is the contents of the tracer's buffer, passed by value."""
    child = k.task(pid)
    return k.arch_ptrace(child, request, 0, data)


def arch_ptrace(k, child, request, addr, data):
    """arch/x86/kernel/ptrace.c (v6.5-rc7): the FPU requests go through the FPU regset of the tracer's view
    (x86_64: ``REGSET_FP``, ``xfpregs_get()`` / ``xfpregs_set()``); the others to ``ptrace_request()``."""
    if request == PTRACE_GETFPREGS:
        return k.copy_regset_to_user(child, None, REGSET_FP, 0, 512, data)
    if request == PTRACE_SETFPREGS:
        return k.copy_regset_from_user(child, None, REGSET_FP, 0, 512, data)
    return k.ptrace_request(child, request, addr, data)


def ptrace_request(k, child, request, addr, data):
    """kernel/ptrace.c (v6.5-rc7), PTRACE_CONT only."""
    if request == PTRACE_CONT:
        return k.ptrace_resume(child, request, data)
    return -5  # -EIO


def ptrace_resume(k, child, request, data):
    """kernel/ptrace.c (v6.5-rc7): wake the tracee from its ``ptrace_stop()``. Simplification: no signal is
    injected (``data`` 0) and no syscall or single-step tracing is set."""
    k.wake_up_state(child, TASK_TRACED)
    return 0


def copy_regset_to_user(k, target, view, setno, offset, size, data):
    """include/linux/regset.h (v6.5-rc7): ``regset_get_alloc()`` runs the regset's get() into a kernel buffer,
    which ``copy_to_user()`` hands to the tracer as it is. Simplification: the FPU regset only."""
    to = k.membuf_for(k.current, target)
    return k.xfpregs_get(target, setno, to)


def copy_regset_from_user(k, target, view, setno, offset, size, data):
    """include/linux/regset.h (v6.5-rc7): the regset's set() from the tracer's buffer ``data``. Simplification:
    the FPU regset only."""
    return k.xfpregs_set(target, setno, offset, size, None, data)


# ---------------------------------------------------------------- fs/coredump.c


def sys_tgkill(k):
    """tgkill(2) of the calling task itself with SIGABRT, as abort(3) does: kernel/signal.c (v6.5-rc7). SIGABRT's
    default action dumps core and kills the thread group, taken on the way out (``exit_to_user_mode_loop()`` →
    ``get_signal()`` → ``do_coredump()``, ``do_group_exit()``). Simplifications: taken here, at the end of the
    syscall's body, one scheduling point earlier; the process is this one task."""
    k.do_coredump(SIGABRT)
    k.do_exit()


def do_coredump(k, signr):
    """fs/coredump.c (v6.5-rc7), reduced to the FPU note: ``coredump_wait()`` stops the other threads, then
    ``elf_core_dump()`` → ``fill_thread_core_info()`` runs each thread's regsets, for the dumping task its FPU
    regset ``xfpregs_get(current)``, and the notes are written to the core file. Simplifications: one thread; the
    core file holds the note as written into its buffer (the oracle checks it there); waiting for the threads and
    writing the file may sleep, shown as scheduling points."""
    k.cond_resched()
    to = k.membuf_for(k.current, k.current)
    k.xfpregs_get(k.current, REGSET_FP, to)
    k.cond_resched()
