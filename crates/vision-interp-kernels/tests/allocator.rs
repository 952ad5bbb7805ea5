//! `keep_freed_memory` sets mimalloc's purge delay. Its own test binary, because the option is
//! global to the process: in the engine's unit tests (`crates/vision-interp`), `Session::start`
//! in another thread sets it first.

#[test]
fn the_purge_delay_option_is_the_one_set() {
    // mimalloc 3's default purge delay is 1,000 ms (`options.c`; its neighbours, options
    // 14 and 16, default to 0): option 15 is the purge delay.
    let get = |o| unsafe { libmimalloc_sys::mi_option_get(o) };
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        assert_eq!(get(15), 1000, "option 15 is not mimalloc's purge delay (default 1,000 ms)");
    }
    vision_interp_kernels::keep_freed_memory();
    assert_eq!(get(15), -1);
}
