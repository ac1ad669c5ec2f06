//! Fuzzes the delivery-report readers of `hisp_mdn` (fed by the network: MDNs and DSNs
//! from other HISPs and MTAs): any input must give a value or a typed error, never a
//! panic, a crash or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hisp_mdn::parse_report(data);
    let _ = hisp_mdn::report_kind(data);
    let _ = hisp_mdn::requested(data);
});
