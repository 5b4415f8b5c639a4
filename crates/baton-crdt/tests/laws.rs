//! Every type: join is commutative, associative and idempotent on reachable states; joining
//! the deltas (in any order, duplicated) gives the same state as joining full states; replicas
//! that exchange everything converge; encoding round-trips.

use baton_crdt::*;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

const REPLICAS: usize = 3;

#[derive(Debug, Clone)]
enum Step<O> {
    Local(usize, O),
    Sync(usize, usize),
}

fn steps<O: std::fmt::Debug + Clone>(
    op: impl Strategy<Value = O> + Clone,
) -> impl Strategy<Value = Vec<Step<O>>> {
    let local = (0..REPLICAS, op).prop_map(|(r, o)| Step::Local(r, o));
    let sync = (0..REPLICAS, 0..REPLICAS).prop_map(|(a, b)| Step::Sync(a, b));
    prop::collection::vec(prop_oneof![3 => local, 1 => sync], 0..40)
}

fn replica(index: usize) -> ReplicaId {
    ReplicaId::new(index as u64 + 1, 1)
}

fn check<T, O>(
    steps: Vec<Step<O>>,
    seed: u64,
    apply: impl Fn(&mut T, ReplicaId, &O) -> T,
) -> Result<(), TestCaseError>
where
    T: Lattice + std::fmt::Debug + Serialize + DeserializeOwned,
{
    let mut states: Vec<T> = (0..REPLICAS).map(|_| T::default()).collect();
    let mut deltas: Vec<T> = Vec::new();
    for step in &steps {
        match step {
            Step::Local(r, op) => deltas.push(apply(&mut states[*r], replica(*r), op)),
            Step::Sync(from, to) => {
                let source = states[*from].clone();
                states[*to].join(&source);
            }
        }
    }
    let full = states.iter().fold(T::default(), |acc, s| acc.joined(s));
    let from_deltas = deltas.iter().fold(T::default(), |acc, d| acc.joined(d));
    prop_assert_eq!(&full, &from_deltas, "deltas join to the full-state join");

    let mut rng = fastrand_like(seed);
    let mut shuffled: Vec<&T> = deltas
        .iter()
        .chain(deltas.iter().take(deltas.len() / 2))
        .collect();
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, (rng() % (i as u64 + 1)) as usize);
    }
    let reordered = shuffled
        .into_iter()
        .fold(T::default(), |acc, d| acc.joined(d));
    prop_assert_eq!(&full, &reordered, "order and duplicates do not matter");

    let (a, b, c) = (&states[0], &states[1], &states[2]);
    prop_assert_eq!(a.clone().joined(b), b.clone().joined(a), "commutative");
    prop_assert_eq!(
        a.clone().joined(b).joined(c),
        a.clone().joined(&b.clone().joined(c)),
        "associative"
    );
    prop_assert_eq!(a.clone().joined(a), a.clone(), "idempotent");

    for state in &mut states {
        for delta in &deltas {
            state.join(delta);
        }
    }
    prop_assert!(states.iter().all(|s| *s == full), "replicas converge");

    let bytes = encode(&full);
    prop_assert_eq!(&decode::<T>(&bytes).unwrap(), &full, "encoding round-trips");
    if !bytes.is_empty() {
        prop_assert!(
            decode::<T>(&bytes[..bytes.len() - 1]).is_err() || bytes.len() == 1,
            "truncation is detected"
        );
    }
    Ok(())
}

/// A tiny deterministic generator for shuffles (the seed comes from proptest).
fn fastrand_like(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

proptest! {
    #[test]
    fn gcounter(steps in steps(0u64..10), seed in 1u64..u64::MAX) {
        check(steps, seed, |s: &mut GCounter, r, n| s.increment(r, *n))?;
    }

    #[test]
    fn pncounter(steps in steps(-10i64..10), seed in 1u64..u64::MAX) {
        check(steps, seed, |s: &mut PNCounter, r, n| s.add(r, *n))?;
    }

    #[test]
    fn lww_register(steps in steps((0u64..20, 0u8..5)), seed in 1u64..u64::MAX) {
        check(steps, seed, |s: &mut LwwRegister<u8>, r, (t, v)| s.set(*t, r, *v))?;
    }

    #[test]
    fn mv_register(steps in steps(0u8..5), seed in 1u64..u64::MAX) {
        check(steps, seed, |s: &mut MvRegister<u8>, r, v| s.write(r, *v))?;
    }

    #[test]
    fn ew_flag(steps in steps(any::<bool>()), seed in 1u64..u64::MAX) {
        check(steps, seed, |s: &mut EwFlag, r, on| if *on { s.enable(r) } else { s.disable() })?;
    }

    #[test]
    fn gset(steps in steps(0u8..8), seed in 1u64..u64::MAX) {
        check(steps, seed, |s: &mut GSet<u8>, _, v| s.add(*v))?;
    }

    #[test]
    fn aw_set(steps in steps((any::<bool>(), 0u8..4)), seed in 1u64..u64::MAX) {
        check(steps, seed, |s: &mut AwSet<u8>, r, (add, v)| if *add { s.add(r, *v) } else { s.remove(v) })?;
    }

    #[test]
    fn add_vector(steps in steps((0usize..3000, prop::collection::vec(-5i32..5, 1..40))), seed in 1u64..u64::MAX) {
        check(steps, seed, |s: &mut AddVector, r, (offset, values)| {
            let values: Vec<f64> = values.iter().map(|v| f64::from(*v)).collect();
            s.add(r, *offset, &values).unwrap()
        })?;
    }

    #[test]
    fn or_map_of_sets(steps in steps((0u8..3, 0u8..3, 0u8..3)), seed in 1u64..u64::MAX) {
        check(steps, seed, |s: &mut OrMap<u8, AwSet<u8>>, r, (kind, key, v)| match kind {
            0 => s.update(*key, |set| set.add(r, *v)),
            1 => s.update(*key, |set| set.remove(v)),
            _ => s.remove(key),
        })?;
    }

    #[test]
    fn or_map_of_registers(steps in steps((0u8..3, 0u8..4, 0u8..3)), seed in 1u64..u64::MAX) {
        check(steps, seed, |s: &mut OrMap<u8, MvRegister<u8>>, r, (kind, key, v)| match kind {
            0 | 1 => s.update(*key, |register| register.write(r, *v)),
            _ => s.remove(key),
        })?;
    }

    #[test]
    fn or_map_of_flags(steps in steps((0u8..3, 0u8..3)), seed in 1u64..u64::MAX) {
        check(steps, seed, |s: &mut OrMap<u8, EwFlag>, r, (kind, key)| match kind {
            0 => s.update(*key, |flag| flag.enable(r)),
            1 => s.update(*key, |flag| flag.disable()),
            _ => s.remove(key),
        })?;
    }
}

/// Found by the fuzz target `crdt_join` (`fuzz/regressions/crdt_join/`): a map state with a key
/// whose store is empty, as a peer may send it, was not equal to itself joined with itself,
/// so replicas holding the same state disagreed on it. Decoding now drops such keys and
/// compacts causal contexts.
#[test]
fn decoded_states_are_normalised_as_joins_leave_them() {
    let crash = include_bytes!(
        "../../../fuzz/regressions/crdt_join/crash-37d925176990f5d7e5f61a51e17e162447cc8c79"
    );
    let (a, b) = crash[1..].split_at((crash.len() - 1) / 2);
    for half in [a, b] {
        if let Ok(state) = decode::<OrMap<String, MvRegister<String>>>(half) {
            assert_eq!(state.clone().joined(&state), state);
        }
    }
    // The same, built: a key with an empty store.
    let mut map = std::collections::BTreeMap::new();
    map.insert("gone".to_string(), DotSet::default());
    let written = encode(&Causal {
        store: DotMap(map),
        context: CausalContext::default(),
    });
    let read: Causal<DotMap<String, DotSet>> = decode(&written).unwrap();
    assert!(read.store.0.is_empty());
    assert_eq!(read.clone().joined(&read), read);
}

/// Found by the fuzz target `crdt_join` (`fuzz/regressions/crdt_join/crash-414afdbe…` and
/// `crash-7b271972…`): two registers holding different values for the same write (the same
/// stamp, or the same dot), as a peer may send them, joined differently in either order, so
/// replicas could keep different values for ever.
#[test]
fn registers_tied_on_their_stamp_join_the_same_either_way() {
    commutes_on::<MvRegister<String>>(include_bytes!(
        "../../../fuzz/regressions/crdt_join/crash-7b27197229be9effb9a7f8d371ef17786b7fc367"
    ));
    commutes_on::<LwwRegister<String>>(include_bytes!(
        "../../../fuzz/regressions/crdt_join/crash-414afdbe1fa1678e0244af1027755463205db83e"
    ));
}

/// The two states a `crdt_join` input holds (after its selector byte, split in halves)
/// join the same either way.
fn commutes_on<T: Lattice + DeserializeOwned + std::fmt::Debug>(input: &[u8]) {
    let (a, b) = input[1..].split_at((input.len() - 1) / 2);
    let (a, b) = (decode::<T>(a).unwrap(), decode::<T>(b).unwrap());
    assert_eq!(a.clone().joined(&b), b.clone().joined(&a));
}
