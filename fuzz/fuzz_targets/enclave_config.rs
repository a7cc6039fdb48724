//! `enclave.toml` and ELF images: the config parser and the layout planner never panic, whatever
//! the bytes (the first half of the input is the config text, the rest the image).
#![no_main]

use coffer_sign::config::EnclaveConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (text, image) = data.split_at(data.len() / 2);
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    if let Ok(config) = EnclaveConfig::from_toml(text) {
        let _ = coffer_sign::layout::plan(image, &config);
    }
});
