//! Pinning a test's thread and its server to chosen CPUs, for tests about
//! where replies come from (on loopback, the server's CPU delivers them).

/// Pins `pid` (0: the calling thread) to `cpu`.
///
/// # Panics
/// If the machine has fewer than two CPUs online (saying so), or the
/// kernel refuses (`cpu` not allowed here, say).
pub fn pin(pid: u32, cpu: usize) {
    // Online CPUs, not `available_parallelism`, which shrinks to one once
    // the thread is pinned.
    // SAFETY: sysconf reads a system value.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    assert!(
        online >= 2,
        "this test pins a server and a client to two different CPUs; this machine has {online}"
    );
    // SAFETY: a zeroed cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes within the set for any CPU below its size.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    let pid = libc::pid_t::try_from(pid).expect("a pid fits pid_t");
    // SAFETY: the set is live and its size is passed with it.
    let rc = unsafe { libc::sched_setaffinity(pid, size_of::<libc::cpu_set_t>(), &set) };
    assert_eq!(
        rc,
        0,
        "pinning {pid} to CPU {cpu}: {}",
        std::io::Error::last_os_error()
    );
}

/// Pins the calling thread to `cpu`; see [`pin`].
pub fn pin_this_thread(cpu: usize) {
    pin(0, cpu);
}
