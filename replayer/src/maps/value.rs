//! Shared value storage: the bytes of one map value (or ring-buffer record),
//! shared between the map model and every VM region that points at it.
//!
//! The kernel hands a BPF program a pointer straight into the map's element,
//! so a write through that pointer changes the map, and a later lookup sees
//! it. To keep that aliasing without `unsafe`, a value lives in a reference-
//! counted cell: the model keeps one handle, each VM region created for it
//! keeps another. When the map drops the element (delete, replace) the
//! region's handle keeps the old bytes alive, as RCU does in the kernel.

use std::cell::{Ref, RefCell, RefMut};
use std::rc::Rc;

/// The bytes of one map value, shared between the map and the VM.
#[derive(Clone, Debug, Default)]
pub struct ValueCell(Rc<RefCell<Vec<u8>>>);

impl ValueCell {
    pub fn new(bytes: Vec<u8>) -> Self {
        ValueCell(Rc::new(RefCell::new(bytes)))
    }

    /// A zero-filled value of `len` bytes.
    pub fn zeroed(len: usize) -> Self {
        Self::new(vec![0; len])
    }

    pub fn len(&self) -> usize {
        self.0.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the current bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.0.borrow().clone()
    }

    /// Overwrites the bytes in place (keeps every alias pointing at the new
    /// contents). `bytes` longer than the value are cut, shorter ones leave
    /// the tail as it was.
    pub fn store(&self, bytes: &[u8]) {
        let mut v = self.0.borrow_mut();
        let n = bytes.len().min(v.len());
        v[..n].copy_from_slice(&bytes[..n]);
    }

    /// Borrows the bytes for reading.
    pub fn bytes(&self) -> Ref<'_, Vec<u8>> {
        self.0.borrow()
    }

    /// Borrows the bytes for writing.
    pub fn bytes_mut(&self) -> RefMut<'_, Vec<u8>> {
        self.0.borrow_mut()
    }

    /// True when both handles share the same storage (the same element).
    pub fn same_storage(&self, other: &ValueCell) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// An identity for the storage, equal for handles of the same element
    /// (valid while any handle lives).
    pub fn id(&self) -> usize {
        Rc::as_ptr(&self.0) as *const u8 as usize
    }

    /// The shared storage itself, for a VM region that aliases this value.
    pub fn shared(&self) -> Rc<RefCell<Vec<u8>>> {
        Rc::clone(&self.0)
    }

    /// Wraps storage that a VM region already shares.
    pub fn from_shared(shared: Rc<RefCell<Vec<u8>>>) -> Self {
        ValueCell(shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_alias_the_same_bytes() {
        let a = ValueCell::new(vec![1, 2, 3, 4]);
        let b = a.clone();
        b.bytes_mut()[0] = 9;
        assert_eq!(a.to_vec(), vec![9, 2, 3, 4]);
        assert!(a.same_storage(&b));
        assert!(!a.same_storage(&ValueCell::new(vec![9, 2, 3, 4])));
    }

    #[test]
    fn store_keeps_length() {
        let a = ValueCell::zeroed(4);
        a.store(&[1, 2, 3, 4, 5, 6]);
        assert_eq!(a.to_vec(), vec![1, 2, 3, 4]);
        a.store(&[7]);
        assert_eq!(a.to_vec(), vec![7, 2, 3, 4]);
    }
}
