//! Compile-time tests of `#[remote]`: every rejected shape reports a precise error at the user's own
//! tokens (`ui/fail`), and every supported shape compiles (`ui/pass`).
//!
//! Refresh the expected `.stderr` files with `TRYBUILD=overwrite cargo test -p rmi-tests --test ui`,
//! then review their diff like code.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
