//! The remote object table: object id -> skeleton.

use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use rmi_core::{Dispatch, ObjectId};

use crate::dgc::DGC_OBJECT;

/// The objects an endpoint exports. A sharded map: a lookup per call takes one shard's read lock.
///
/// The endpoint's garbage collector ([`DGC_OBJECT`]) is kept apart: every endpoint serves it, and
/// it is not one of the objects the application exported.
///
/// Object ids come from peers: they are hashed with a seed of the process's own (foldhash), so a
/// peer cannot choose colliding ones.
#[derive(Default)]
pub(crate) struct ObjectTable {
    objects: DashMap<ObjectId, Arc<dyn Dispatch>, foldhash::fast::RandomState>,
    collector: OnceLock<Arc<dyn Dispatch>>,
}

impl ObjectTable {
    pub(crate) fn insert(&self, object: ObjectId, skeleton: Arc<dyn Dispatch>) {
        self.objects.insert(object, skeleton);
    }

    /// Sets the skeleton of the endpoint's garbage collector.
    pub(crate) fn set_collector(&self, skeleton: Arc<dyn Dispatch>) {
        let _ = self.collector.set(skeleton);
    }

    /// Inserts unless the id is taken; returns whether it inserted.
    pub(crate) fn insert_new(&self, object: ObjectId, skeleton: Arc<dyn Dispatch>) -> bool {
        if object == DGC_OBJECT {
            return false;
        }
        match self.objects.entry(object) {
            dashmap::Entry::Occupied(_) => false,
            dashmap::Entry::Vacant(slot) => {
                slot.insert(skeleton);
                true
            }
        }
    }

    pub(crate) fn get(&self, object: &ObjectId) -> Option<Arc<dyn Dispatch>> {
        match self.objects.get(object) {
            Some(entry) => Some(Arc::clone(entry.value())),
            None if *object == DGC_OBJECT => self.collector.get().cloned(),
            None => None,
        }
    }

    pub(crate) fn contains(&self, object: &ObjectId) -> bool {
        self.objects.contains_key(object)
    }

    pub(crate) fn remove(&self, object: &ObjectId) -> bool {
        self.objects.remove(object).is_some()
    }

    /// How many objects the application exported (the collector not counted).
    pub(crate) fn len(&self) -> usize {
        self.objects.len()
    }
}
