//! The host id range allocator under contention: many allocators (each its own lock
//! fd, as separate `stockade create` processes have) on one database never hand out
//! overlapping ranges, and releasing everything empties the pool.

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};

use stockade::userns::{HostRange, RangeAllocator};

const BLOCK: u32 = 65536;
const THREADS: usize = 12;
const PER_THREAD: usize = 5;

fn allocator(db: &std::path::Path) -> RangeAllocator {
    RangeAllocator::new(db.to_path_buf(), 100_000, BLOCK * 128, BLOCK)
}

#[test]
fn concurrent_allocators_never_overlap_and_release_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(dir.path().join("ranges.json"));
    let start = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (db, start) = (Arc::clone(&db), Arc::clone(&start));
            std::thread::spawn(move || {
                let a = allocator(&db);
                start.wait();
                (0..PER_THREAD)
                    .map(|i| {
                        let id = format!("t{t}-{i}");
                        // Containers 1.. of a thread join sandbox t{t}-0.
                        let sandbox = (i > 0).then(|| format!("t{t}-0"));
                        let r = a.allocate(&id, sandbox.as_deref()).unwrap();
                        (id, format!("t{t}-0"), r)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let all: Vec<(String, String, HostRange)> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();

    let mut by_sandbox: BTreeMap<&str, HostRange> = BTreeMap::new();
    for (id, sandbox, r) in &all {
        assert_ne!(r.start, 0, "{id} got host id 0");
        if let Some(prev) = by_sandbox.insert(sandbox, *r) {
            assert_eq!(prev, *r, "{id} does not share its sandbox's range");
        }
    }
    let ranges: Vec<_> = by_sandbox.into_iter().collect();
    assert_eq!(ranges.len(), THREADS);
    for (i, (a_id, a)) in ranges.iter().enumerate() {
        for (b_id, b) in &ranges[i + 1..] {
            assert!(!a.overlaps(b), "{a_id} {a:?} overlaps {b_id} {b:?}");
        }
    }

    // Concurrent release, then the whole pool is free again: the first block comes back.
    let handles: Vec<_> = all
        .chunks(PER_THREAD)
        .map(|chunk| {
            let ids: Vec<String> = chunk.iter().map(|(id, _, _)| id.clone()).collect();
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                let a = allocator(&db);
                for id in ids {
                    a.release(&id).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let a = allocator(&db);
    for (id, _, _) in &all {
        assert_eq!(a.lookup(id).unwrap(), None, "{id} still holds a range");
    }
    assert_eq!(a.allocate("after", None).unwrap().start, 100_000);
}
