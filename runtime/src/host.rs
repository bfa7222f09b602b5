//! Facts about the host, probed once per invocation and passed around as values.

/// The kernel's Landlock ABI version, or `None` when Landlock is unavailable.
pub fn landlock_abi() -> Option<u8> {
    // landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION) returns the
    // ABI version; it takes no pointers we own.
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_long = 1 << 0;
    // SAFETY: a null attr pointer with size 0 and the VERSION flag is the documented
    // way to query the ABI; the call reads no memory and creates no fd.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u8::try_from(v).ok().filter(|v| *v > 0)
}
