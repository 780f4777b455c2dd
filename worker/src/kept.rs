//! Each subject's state after its last usage charge in this isolate: a head start for
//! the next charge (see [`crate::consume`]).

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::state::{Subject, SubjectState};

/// How many subjects' states an isolate keeps; past it, all are dropped (they are only a
/// head start: a missing state costs one more store call).
pub const KEPT_STATES: usize = 1024;

/// Each subject's state after its last charge in this isolate, to plan the next charge
/// without loading it first. Concurrent charges of one subject each plan from their own
/// copy: a copy holds more remaining units than the store (charges take), so a plan from
/// it either takes what a fresh plan would take or finds a lot short and is planned again
/// from the fresh state the store sends back; the last charge's copy stays. A released
/// hold gives units back, so its isolate forgets the copy, and the release moves the
/// state's stamp (each lot's `released` count), so a copy kept elsewhere is answered
/// `stale` by the store and its charge planned again from the fresh state.
#[derive(Default)]
pub struct UsageStates(RefCell<BTreeMap<String, SubjectState>>);

impl UsageStates {
    pub fn get(&self, subject: &Subject) -> Option<SubjectState> {
        self.0.borrow().get(&subject.key()).cloned()
    }

    /// Drops the subject's state (its lots changed other than by a charge).
    pub fn forget(&self, subject: &Subject) {
        self.0.borrow_mut().remove(&subject.key());
    }

    /// Keeps `st` (without ledger entries: the next charge has its own key) when the store
    /// gave it a stamp to check plans against.
    pub fn keep(&self, mut st: SubjectState) {
        if st.stamp.is_none() {
            return;
        }
        st.wallet.ledger.clear();
        let mut map = self.0.borrow_mut();
        if map.len() >= KEPT_STATES {
            map.clear();
        }
        map.insert(st.subject.key(), st);
    }
}

