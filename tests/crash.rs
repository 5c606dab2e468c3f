//! Crash safety with the real binary: killed with SIGKILL at seeded points of a sync while
//! the emulator loses answers, then run to convergence. A few seeds here; many in
//! `cargo bench --bench crash`.

mod support;

#[test]
fn killed_syncs_converge_with_every_account_exactly_once() {
    for seed in [1, 2] {
        let outcome = support::crash::run(seed, 120, 4);
        assert!(outcome.active_accounts > 50, "{outcome:?}");
        assert!(
            outcome.kills_mid_push > 0,
            "some run was killed in the middle of its push, after calls were answered: {outcome:?}"
        );
    }
}
