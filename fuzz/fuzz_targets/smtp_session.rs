//! Fuzzes the server side of a whole SMTP session (`hisp_smtp::fuzzing::run`), fed by the
//! network: command lines, AUTH exchanges and the DATA stream. The first byte picks the
//! role (submission or backbone), the peer and the read chunk size; the rest is what the
//! client sends before it closes. Any input must end the session with well-formed replies,
//! never a panic, a crash or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let outcome = hisp_smtp::fuzzing::run(data);
    if let Err(e) = outcome.check() {
        panic!("{e}\n--- replies ---\n{}", String::from_utf8_lossy(&outcome.replies));
    }
});
