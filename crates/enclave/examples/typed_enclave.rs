//! An enclave with a typed interface (`examples/typed/interface`), for the host's tests of
//! typed calls through the platform daemon (`crates/host/tests/typed.rs`).

use coffer_enclave::Ocalls;
use typed_interface::{
    CALC_HOST_INTERFACE, CALC_INTERFACE, Calc, CalcHostProxy, DivError, calc_dispatch,
};

struct Enclave {
    host: CalcHostProxy<Ocalls>,
}

impl Calc for Enclave {
    fn add(&self, a: u64, b: u64) -> u64 {
        a.wrapping_add(b)
    }

    fn divide(&self, a: i64, b: i64) -> Result<i64, DivError> {
        if b == 0 {
            return Err(DivError::ByZero);
        }
        a.checked_div(b).ok_or(DivError::Overflow)
    }

    fn greet_and_sum(&self, name: String, xs: Vec<u64>) -> Result<(String, u64), String> {
        let greeting = self.host.decorate(name).map_err(|e| e.to_string())?;
        let mut sum = 0u64;
        for x in xs {
            sum += self.host.check(x).map_err(|e| e.to_string())??;
        }
        Ok((greeting, sum))
    }

    fn hold(&self) -> Result<(), String> {
        self.host.wait_for_release().map_err(|e| e.to_string())
    }

    fn panic(&self, message: String) {
        panic!("{message}");
    }

    fn mrenclave(&self) -> Option<[u8; 32]> {
        coffer_enclave::with_ctx(|ctx| ctx.identity().mrenclave)
    }

    fn ping(&self, x: u64) -> u64 {
        x
    }

    fn count_up(&self, mut x: u64, times: u32) -> Result<u64, String> {
        for _ in 0..times {
            x = self.host.add_one(x).map_err(|e| e.to_string())?;
        }
        Ok(x)
    }
}

coffer_enclave::entry_interface!(
    CALC_INTERFACE,
    calc_dispatch,
    Enclave {
        host: CalcHostProxy::new(coffer_enclave::ocalls()),
    },
    ocalls: CALC_HOST_INTERFACE,
);
