//! Stores on one database: what one commits the next one opened sees, and
//! several of them, in threads or processes, work at once.

use std::sync::Arc;

use super::{domain, Backend};
use crate::Store;

pub(crate) fn data_survives_reopening<B: Backend>(db: &B) {
    db.open().add_domain(&domain("a.example"), &[]).unwrap();
    assert_eq!(db.open().domains().unwrap().len(), 1);
}

pub(crate) fn the_store_is_shareable_between_threads_as_a_trait_object<B: Backend>(db: &B) {
    fn shareable<T: Send + Sync + ?Sized>(_: &T) {}
    let store: Arc<dyn Store> = Arc::new(db.open());
    shareable(&*store);
    let s2 = store.clone();
    std::thread::spawn(move || s2.add_domain(&domain("a.example"), &[]).unwrap())
        .join()
        .unwrap();
    assert_eq!(store.domains().unwrap().len(), 1);
}

pub(crate) fn two_processes_writing_at_once_both_succeed<B: Backend>(db: &B) {
    drop(db.open());
    std::thread::scope(|s| {
        for prefix in ["a", "b"] {
            s.spawn(move || {
                // Separate connections, as separate processes would have.
                let store = db.open();
                for i in 0..25 {
                    store
                        .add_domain(&domain(&format!("{prefix}{i}.example")), &[])
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(db.open().domains().unwrap().len(), 50);
}
