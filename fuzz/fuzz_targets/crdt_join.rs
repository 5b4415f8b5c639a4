//! CRDT states as peers send them: any two that decode as the same type join without a panic,
//! and the join is commutative and idempotent, as every peer's convergence relies on.
#![no_main]

use baton_crdt::{
    AddVector, AwSet, EwFlag, GCounter, Lattice, LwwRegister, MvRegister, OrMap, PNCounter, decode,
};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;

fn laws<T: Lattice + DeserializeOwned + std::fmt::Debug>(a: &[u8], b: &[u8]) {
    let (Ok(a), Ok(b)) = (decode::<T>(a), decode::<T>(b)) else {
        return;
    };
    let ab = a.clone().joined(&b);
    let ba = b.clone().joined(&a);
    assert_eq!(ab, ba, "join is not commutative");
    assert_eq!(ab.clone().joined(&b), ab, "join is not idempotent");
    assert_eq!(
        a.clone().joined(&a),
        a,
        "a state joined with itself changed"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let cut = rest.len() / 2;
    let (a, b) = rest.split_at(cut);
    match selector % 9 {
        0 => laws::<GCounter>(a, b),
        1 => laws::<PNCounter>(a, b),
        2 => laws::<MvRegister<String>>(a, b),
        3 => laws::<LwwRegister<String>>(a, b),
        4 => laws::<EwFlag>(a, b),
        5 => laws::<AwSet<String>>(a, b),
        6 => laws::<OrMap<String, MvRegister<String>>>(a, b),
        7 => laws::<OrMap<String, AwSet<String>>>(a, b),
        _ => laws::<AddVector>(a, b),
    }
});
