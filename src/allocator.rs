//! What belajar-sync asks of its allocator (mimalloc, set in `main.rs`): to give freed
//! memory back to the system at chosen moments. Both are no-ops under another allocator
//! (the library's tests).

use std::os::raw::c_long;

/// mimalloc's `mi_option_purge_delay` (the same number in its v2 and v3; the test below
/// checks it reads v3's default, the version the `mimalloc` crate builds).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Returns freed memory to the system now (mimalloc keeps it a while otherwise).
pub fn give_back_freed_memory() {
    // SAFETY: mi_collect only walks mimalloc's own heaps; it takes no pointers.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// While it lives, memory freed is given back at once instead of up to a second later. For
/// bulk work that frees as fast as it allocates (an import of 5M rows peaked at 349 MB
/// with the delay, 264–282 MB without); not for the rest, where giving back at once costs
/// system time (a plan of 1M accounts spent 1.2 s more in the kernel).
pub struct PromptRelease(c_long);

impl PromptRelease {
    pub fn start() -> PromptRelease {
        // SAFETY: reading and setting an option takes no pointers.
        let delay = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
        PromptRelease(delay)
    }
}

impl Drop for PromptRelease {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_is_set_for_the_work_and_put_back() {
        // SAFETY: reading an option.
        let get = || unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        // mimalloc v3's default is 1000 ms (unless MIMALLOC_PURGE_DELAY says else).
        let before = get();
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(before, 1000, "option {PURGE_DELAY} is not the purge delay");
        }
        {
            let _prompt = PromptRelease::start();
            assert_eq!(get(), 0);
        }
        assert_eq!(get(), before);
    }
}
