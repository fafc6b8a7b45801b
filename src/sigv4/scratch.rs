//! Small buffers for the per-request hot path, so that building a canonical
//! request or a header list does not allocate.

use std::cell::RefCell;

/// Up to `N` items inline, more on the heap.
pub(crate) struct SmallVec<T: Copy, const N: usize> {
    inline: [T; N],
    len: usize,
    /// Holds every item once there are more than `N`.
    heap: Option<Vec<T>>,
}

impl<T: Copy, const N: usize> SmallVec<T, N> {
    /// `fill` only initializes the unused inline slots.
    pub fn new(fill: T) -> Self {
        Self { inline: [fill; N], len: 0, heap: None }
    }

    #[inline]
    pub fn push(&mut self, item: T) {
        match &mut self.heap {
            Some(heap) => heap.push(item),
            None if self.len < N => {
                self.inline[self.len] = item;
                self.len += 1;
            }
            None => {
                let mut heap = Vec::with_capacity(2 * N);
                heap.extend_from_slice(&self.inline[..self.len]);
                heap.push(item);
                self.heap = Some(heap);
            }
        }
    }

    pub fn as_slice(&self) -> &[T] {
        match &self.heap {
            Some(heap) => heap,
            None => &self.inline[..self.len],
        }
    }

    /// Keeps the first of each run of equal items (`Vec::dedup`).
    pub fn dedup(&mut self)
    where
        T: PartialEq,
    {
        match &mut self.heap {
            Some(heap) => heap.dedup(),
            None => {
                let items = &mut self.inline[..self.len];
                let mut kept = usize::from(!items.is_empty());
                for i in 1..items.len() {
                    if items[i] != items[kept - 1] {
                        items[kept] = items[i];
                        kept += 1;
                    }
                }
                self.len = kept;
            }
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        match &mut self.heap {
            Some(heap) => heap,
            None => &mut self.inline[..self.len],
        }
    }
}

impl<T: Copy, const N: usize> Extend<T> for SmallVec<T, N> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        iter.into_iter().for_each(|item| self.push(item));
    }
}

/// Where text is written: a `String`, or bytes only ever given whole `str`s
/// (hence UTF-8), for text that is hashed rather than kept.
pub(crate) trait Text {
    fn push_str(&mut self, s: &str);

    /// Appends `ascii`, which the caller has checked is ASCII (checked again,
    /// where that costs nothing, as it does for bytes).
    fn push_ascii(&mut self, ascii: &[u8]);

    /// Appends raw bytes. A `Vec<u8>` (what is hashed and signed) keeps them
    /// as they are; a `String` (display only) shows non-UTF-8 as U+FFFD.
    fn push_bytes(&mut self, bytes: &[u8]);
}

impl Text for String {
    #[inline]
    fn push_str(&mut self, s: &str) {
        String::push_str(self, s);
    }

    fn push_ascii(&mut self, ascii: &[u8]) {
        String::push_str(self, &String::from_utf8_lossy(ascii));
    }

    fn push_bytes(&mut self, bytes: &[u8]) {
        String::push_str(self, &String::from_utf8_lossy(bytes));
    }
}

impl Text for Vec<u8> {
    #[inline]
    fn push_str(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }

    #[inline]
    fn push_ascii(&mut self, ascii: &[u8]) {
        debug_assert!(ascii.is_ascii());
        self.extend_from_slice(ascii);
    }

    #[inline]
    fn push_bytes(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

thread_local! {
    static TEXT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with an empty buffer that is reused from call to call on this
/// thread (a fresh one if the thread's is in use).
pub(crate) fn with_text<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    TEXT.with(|cell| match cell.try_borrow_mut() {
        Ok(mut text) => {
            text.clear();
            let r = f(&mut text);
            if text.capacity() > 16 << 10 {
                // Do not keep the memory of an outsized request.
                *text = Vec::new();
            }
            r
        }
        Err(_) => f(&mut Vec::new()),
    })
}

/// Text built from whole `str`s back into a `String`.
pub(crate) fn into_string(text: Vec<u8>) -> String {
    String::from_utf8(text).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_vec_spills_in_order() {
        let mut v = SmallVec::<u32, 3>::new(0);
        assert!(v.as_slice().is_empty());
        for i in 1..=7 {
            v.push(i);
            assert_eq!(v.as_slice(), (1..=i).collect::<Vec<_>>());
        }
        v.as_mut_slice().reverse();
        assert_eq!(v.as_slice(), [7, 6, 5, 4, 3, 2, 1]);
    }

    #[test]
    fn small_vec_dedups_inline_and_spilled() {
        let cases: [(&[u32], &[u32]); 3] = [(&[], &[]), (&[5], &[5]), (&[1, 1, 2, 3, 3, 3, 1], &[1, 2, 3, 1])];
        for (items, want) in cases {
            let mut inline = SmallVec::<u32, 8>::new(0);
            inline.extend(items.iter().copied());
            inline.dedup();
            assert_eq!(inline.as_slice(), want);
            let mut spilled = SmallVec::<u32, 2>::new(0);
            spilled.extend(items.iter().copied());
            spilled.dedup();
            assert_eq!(spilled.as_slice(), want);
        }
    }

    #[test]
    fn text_is_empty_each_time_and_nests() {
        with_text(|t| {
            t.extend_from_slice(b"outer");
            with_text(|inner| {
                assert!(inner.is_empty());
                inner.extend_from_slice(b"inner");
            });
            assert_eq!(t, b"outer");
        });
        with_text(|t| assert!(t.is_empty()));
    }
}
