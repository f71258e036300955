//! The remote object table: object id -> skeleton.

use std::sync::Arc;

use dashmap::DashMap;
use rmi_core::{Dispatch, ObjectId};

/// The objects an endpoint exports. A sharded map: a lookup per call takes one shard's read lock.
#[derive(Default)]
pub(crate) struct ObjectTable {
    objects: DashMap<ObjectId, Arc<dyn Dispatch>>,
}

impl ObjectTable {
    pub(crate) fn insert(&self, object: ObjectId, skeleton: Arc<dyn Dispatch>) {
        self.objects.insert(object, skeleton);
    }

    /// Inserts unless the id is taken; returns whether it inserted.
    pub(crate) fn insert_new(&self, object: ObjectId, skeleton: Arc<dyn Dispatch>) -> bool {
        match self.objects.entry(object) {
            dashmap::Entry::Occupied(_) => false,
            dashmap::Entry::Vacant(slot) => {
                slot.insert(skeleton);
                true
            }
        }
    }

    pub(crate) fn get(&self, object: &ObjectId) -> Option<Arc<dyn Dispatch>> {
        self.objects.get(object).map(|entry| Arc::clone(entry.value()))
    }

    pub(crate) fn remove(&self, object: &ObjectId) -> bool {
        self.objects.remove(object).is_some()
    }

    pub(crate) fn len(&self) -> usize {
        self.objects.len()
    }
}
