//! What each type promises under concurrency.

use baton_crdt::*;

fn a() -> ReplicaId {
    ReplicaId::new(1, 1)
}
fn b() -> ReplicaId {
    ReplicaId::new(2, 1)
}

#[test]
fn counters_add_across_replicas() {
    let (mut x, mut y) = (PNCounter::default(), PNCounter::default());
    let d1 = x.add(a(), 5);
    let d2 = y.add(b(), -2);
    x.join(&d2);
    y.join(&d1);
    assert_eq!((x.value(), y.value()), (3, 3));
    assert!(encode(&d1).len() < 16, "a counter delta is a few bytes");
}

#[test]
fn a_concurrent_add_wins_over_a_remove() {
    let mut x = AwSet::default();
    let added = x.add(a(), "k");
    let mut y = AwSet::default();
    y.join(&added);
    let removed = y.remove(&"k");
    let re_added = x.add(a(), "k");
    x.join(&removed);
    y.join(&re_added);
    assert!(x.contains(&"k") && y.contains(&"k"));
    // A remove that has seen every add wins.
    let gone = x.remove(&"k");
    y.join(&gone);
    assert!(!y.contains(&"k"));
}

#[test]
fn a_concurrent_enable_wins_over_a_disable() {
    let mut x = EwFlag::default();
    let on = x.enable(a());
    let mut y = EwFlag::default();
    y.join(&on);
    let off = y.disable();
    let on_again = x.enable(a());
    y.join(&on_again);
    x.join(&off);
    assert!(x.value() && y.value());
}

#[test]
fn multi_value_register_keeps_concurrent_writes_until_overwritten() {
    let (mut x, mut y) = (MvRegister::default(), MvRegister::default());
    let dx = x.write(a(), 1);
    let dy = y.write(b(), 2);
    x.join(&dy);
    y.join(&dx);
    let mut values: Vec<i32> = x.values().into_iter().copied().collect();
    values.sort();
    assert_eq!(values, [1, 2]);
    let overwrite = x.write(a(), 3);
    y.join(&overwrite);
    assert_eq!(y.values(), [&3]);
}

#[test]
fn lww_register_breaks_ties_by_replica() {
    let (mut x, mut y) = (LwwRegister::default(), LwwRegister::default());
    let dx = x.set(10, a(), "from a");
    let dy = y.set(10, b(), "from b");
    x.join(&dy);
    y.join(&dx);
    assert_eq!((x.get(), y.get()), (Some(&"from b"), Some(&"from b")));
}

#[test]
fn a_map_update_survives_a_concurrent_remove_of_its_key() {
    let mut x: OrMap<&str, AwSet<u32>> = OrMap::default();
    let first = x.update("k", |set| set.add(a(), 1));
    let mut y = OrMap::default();
    y.join(&first);
    let removed = y.remove(&"k");
    let updated = x.update("k", |set| set.add(a(), 2));
    x.join(&removed);
    y.join(&updated);
    assert_eq!(x, y);
    let members: Vec<u32> = x.get(&"k").unwrap().members().copied().collect();
    assert_eq!(
        members,
        [2],
        "the remove took the element it saw, the concurrent add stays"
    );
}

#[test]
fn malformed_bytes_are_an_error_not_a_panic() {
    assert!(decode::<AwSet<String>>(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
    assert!(decode::<PNCounter>(b"garbage").is_err());
}

#[test]
fn a_map_page_is_a_key_range_either_way_and_skips_removed_keys() {
    let mut x: OrMap<u32, MvRegister<u32>> = OrMap::default();
    for k in 0..10 {
        x.update(k, |r| r.write(a(), k * 10));
    }
    x.remove(&7);
    let page = |start, stop, reverse| -> Vec<(u32, Vec<u32>)> {
        x.page(start, stop, reverse)
            .into_iter()
            .map(|(k, r)| (*k, r.values().into_iter().copied().collect()))
            .collect()
    };
    assert_eq!(
        page(0, 3, false),
        [(0, vec![0]), (1, vec![10]), (2, vec![20])]
    );
    assert_eq!(
        page(0, 3, true),
        [(9, vec![90]), (8, vec![80]), (6, vec![60])]
    );
    assert_eq!(page(2, 4, true), [(6, vec![60]), (5, vec![50])]);
    assert_eq!(page(8, 20, false), [(9, vec![90])]);
    assert!(page(9, 20, false).is_empty() && page(3, 3, false).is_empty());
    assert!(page(5, 2, false).is_empty(), "an empty range");
}
