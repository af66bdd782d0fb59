//! The guest's global allocator on `wasm32` (cargo feature `arena`, on by default): a bump
//! arena in linear memory, for a guest that lives for one call.
//!
//! weir instantiates a plugin in a fresh store for every call, so the guest's heap starts
//! empty each time and is thrown away after it. Rust's default allocator on
//! `wasm32-unknown-unknown` (dlmalloc) takes all its memory from `memory.grow`, in 64 KiB
//! steps, and never uses the free part of the initial memory after the data section. Every
//! call then grows memory (a host call and an `mprotect`, undone by the host when the
//! instance is recycled) and pays malloc/free bookkeeping for memory it is about to drop.
//!
//! The arena instead hands out memory from `__heap_base` (right after the data section)
//! up, by bumping a pointer: the initial memory first (plugins/.cargo/config.toml makes
//! that 2 MiB, room for the usual playlist without growing), then pages it grows as it
//! needs them. Freeing the most recent allocation gives it back, and reallocating it grows
//! it in place (how a `String` or `Vec` that is being filled grows); anything else freed
//! inside the arena stays used until the call ends. So that a call on a very large
//! playlist cannot waste memory without bound, the arena stops at [`ARENA_MAX`] of linear
//! memory; past that, allocations go to the standard allocator (`std::alloc::System`),
//! which reuses what is freed.
//!
//! A plugin that wants another allocator turns this one off:
//! `weir-guest = { ..., default-features = false }`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Bytes of a Wasm page.
const PAGE: usize = 65_536;
/// The most linear memory the arena uses, counted from `__heap_base`.
pub(crate) const ARENA_MAX: usize = 16 << 20;

/// The memory an arena bumps through: on wasm32, the module's linear memory.
pub(crate) trait Memory {
    /// Where the heap may start (after the data section).
    fn heap_base(&self) -> usize;
    /// The end of memory now, as an address.
    fn end(&self) -> usize;
    /// Grows memory by `pages`; the old end, or `None` if refused.
    fn grow(&self, pages: usize) -> Option<usize>;
}

/// The module's linear memory 0.
#[cfg(target_arch = "wasm32")]
pub(crate) struct LinearMemory;

#[cfg(target_arch = "wasm32")]
extern "C" {
    /// Set by wasm-ld: where the data section (and the stack, which comes first) ends.
    static __heap_base: u8;
}

#[cfg(target_arch = "wasm32")]
impl Memory for LinearMemory {
    fn heap_base(&self) -> usize {
        // Only the address of the linker-defined symbol is taken, never its contents.
        std::ptr::addr_of!(__heap_base) as usize
    }

    fn end(&self) -> usize {
        std::arch::wasm32::memory_size::<0>() * PAGE
    }

    fn grow(&self, pages: usize) -> Option<usize> {
        match std::arch::wasm32::memory_grow::<0>(pages) {
            usize::MAX => None,
            old => Some(old * PAGE),
        }
    }
}

/// A bump arena over a [`Memory`]. Single-threaded: `wasm32-unknown-unknown` without the
/// `atomics` feature has no threads.
pub(crate) struct Arena<M> {
    memory: M,
    /// `[base, end)` is the arena's memory; 0 until the first allocation.
    base: Cell<usize>,
    /// Where the next allocation starts.
    next: Cell<usize>,
    end: Cell<usize>,
    /// The most recent allocation, which can be freed or grown in place; 0 for none.
    last: Cell<usize>,
    /// Set once memory the arena did not grow lies after it: it can no longer grow, and
    /// what does not fit goes to `System`.
    full: Cell<bool>,
}

// SAFETY: only on targets without threads (the `cfg` on the `static` in lib.rs).
unsafe impl<M> Sync for Arena<M> {}

impl<M: Memory> Arena<M> {
    pub(crate) const fn new(memory: M) -> Self {
        Arena {
            memory,
            base: Cell::new(0),
            // Past `end`: the first allocation takes the slow path, which sets the arena up.
            next: Cell::new(1),
            end: Cell::new(0),
            last: Cell::new(0),
            full: Cell::new(false),
        }
    }

    fn contains(&self, ptr: *mut u8) -> bool {
        let p = ptr as usize;
        p >= self.base.get() && p < self.end.get()
    }

    /// Makes `[.., to)` part of the arena, growing memory; false if it cannot.
    #[inline]
    fn grow_to(&self, to: usize) -> bool {
        to <= self.end.get() || self.grow(to)
    }

    #[cold]
    #[inline(never)]
    fn grow(&self, to: usize) -> bool {
        let end = self.end.get();
        if self.base.get() == 0 || self.full.get() || to - self.base.get() > ARENA_MAX {
            return false;
        }
        // Only what is needed, as dlmalloc does: the host counts a refused growth as the
        // call hitting its memory cap, so the arena never asks for more on speculation.
        let pages = (to - end).div_ceil(PAGE);
        let Some(old) = self.memory.grow(pages) else {
            return false;
        };
        if old != end {
            // Someone else grew memory since (`System`, for an allocation the arena could
            // not take): what was just grown does not follow the arena. Leave it.
            self.full.set(true);
            return false;
        }
        self.end.set(end + pages * PAGE);
        true
    }

    #[inline]
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        let at = self.next.get().checked_next_multiple_of(layout.align())?;
        let next = at.checked_add(layout.size())?;
        if next > self.end.get() {
            return self.bump_slow(layout);
        }
        self.next.set(next);
        self.last.set(at);
        Some(at as *mut u8)
    }

    /// [`Self::bump`] when memory must grow first, or on the first allocation. Out of
    /// line, so that every allocation site stays small.
    #[cold]
    #[inline(never)]
    fn bump_slow(&self, layout: Layout) -> Option<*mut u8> {
        if self.base.get() == 0 {
            let base = self.memory.heap_base().next_multiple_of(16);
            self.base.set(base);
            self.next.set(base);
            self.end.set(self.memory.end().max(base));
        }
        let at = self.next.get().checked_next_multiple_of(layout.align())?;
        let next = at.checked_add(layout.size())?;
        if !self.grow_to(next) {
            return None;
        }
        self.next.set(next);
        self.last.set(at);
        Some(at as *mut u8)
    }
}

// SAFETY: `bump` hands out disjoint, aligned ranges of memory that nothing else uses
// (below the arena's `end`, above the data section and the stack); everything the arena
// does not take goes to `System` and comes back to it.
unsafe impl<M: Memory> GlobalAlloc for Arena<M> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(ptr) => ptr,
            // SAFETY: the caller's contract, passed on.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.contains(ptr) {
            if ptr as usize == self.last.get() {
                self.next.set(ptr as usize);
                self.last.set(0);
            }
        } else {
            // SAFETY: not the arena's, so `System` gave it out.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.contains(ptr) {
            // SAFETY: not the arena's, so `System` gave it out.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        if ptr as usize == self.last.get() {
            if let Some(end) = (ptr as usize).checked_add(new_size) {
                if self.grow_to(end) {
                    self.next.set(end);
                    return ptr;
                }
            }
        } else if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `realloc`'s contract makes this a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: `new_size` is not zero (the caller's contract).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both are valid for the smaller size, and distinct allocations.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake linear memory: `[heap_base, end)` of a buffer, growable to its capacity.
    struct Fake {
        buf: Box<[u8]>,
        heap_base: usize,
        len: Cell<usize>,
        /// Pretends someone else grew memory first.
        stolen: Cell<usize>,
    }

    impl Fake {
        fn new(initial: usize, capacity: usize) -> Self {
            Fake {
                buf: vec![0xAA; capacity].into_boxed_slice(),
                heap_base: 1000,
                len: Cell::new(initial),
                stolen: Cell::new(0),
            }
        }

        fn start(&self) -> usize {
            self.buf.as_ptr() as usize
        }
    }

    impl Memory for Fake {
        fn heap_base(&self) -> usize {
            self.start() + self.heap_base
        }

        fn end(&self) -> usize {
            self.start() + self.len.get()
        }

        fn grow(&self, pages: usize) -> Option<usize> {
            let stolen = self.stolen.replace(0);
            let old = self.len.get() + stolen;
            let new = old + pages * PAGE;
            if new > self.buf.len() {
                return None;
            }
            self.len.set(new);
            Some(self.start() + old)
        }
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn bumps_reuses_the_last_and_grows_in_place() {
        let arena = Arena::new(Fake::new(PAGE, 8 * PAGE));
        unsafe {
            let a = arena.alloc(layout(10, 1));
            let b = arena.alloc(layout(8, 8));
            assert_eq!(a as usize, arena.memory.heap_base().next_multiple_of(16));
            assert_eq!(b as usize % 8, 0);
            assert!(b as usize >= a as usize + 10);
            // Freeing the last allocation gives it back; freeing another keeps it.
            arena.dealloc(b, layout(8, 8));
            let c = arena.alloc(layout(8, 8));
            assert_eq!(c, b);
            arena.dealloc(a, layout(10, 1));
            let d = arena.alloc(layout(1, 1));
            assert!(d as usize > c as usize);
            // The last allocation grows in place, past the initial memory too.
            c.write_bytes(7, 8);
            let e = arena.alloc(layout(4, 4));
            e.write_bytes(9, 4);
            let grown = arena.realloc(e, layout(4, 4), 3 * PAGE);
            assert_eq!(grown, e);
            assert_eq!(*grown.add(3), 9);
            grown.add(3 * PAGE - 1).write(1);
            assert!(arena.memory.len.get() >= 3 * PAGE);
            // Another one moves, keeping its contents.
            let moved = arena.realloc(c, layout(8, 8), 100);
            assert_ne!(moved, c);
            assert_eq!(std::slice::from_raw_parts(moved, 8), &[7; 8]);
            // Shrinking never moves.
            assert_eq!(arena.realloc(moved, layout(100, 8), 50), moved);
        }
    }

    #[test]
    fn falls_back_to_system_when_memory_is_refused_or_not_its_own() {
        let arena = Arena::new(Fake::new(PAGE, 2 * PAGE));
        unsafe {
            let a = arena.alloc(layout(PAGE / 2, 1));
            assert!(arena.contains(a));
            // More than memory can grow to: System.
            let big = arena.alloc(layout(4 * PAGE, 8));
            assert!(!big.is_null() && !arena.contains(big));
            big.write_bytes(3, 4 * PAGE);
            // The arena still serves what fits.
            let small = arena.alloc(layout(16, 8));
            assert!(arena.contains(small));
            // Moving an arena allocation out to System keeps its contents.
            small.write_bytes(5, 16);
            let out = arena.realloc(small, layout(16, 8), 8 * PAGE);
            assert!(!arena.contains(out));
            assert_eq!(std::slice::from_raw_parts(out, 16), &[5; 16]);
            arena.dealloc(out, layout(8 * PAGE, 8));
            arena.dealloc(big, layout(4 * PAGE, 8));
        }
        // Memory someone else grew in between: the arena stops growing.
        let arena = Arena::new(Fake::new(PAGE, 8 * PAGE));
        unsafe {
            arena.alloc(layout(PAGE / 2, 1));
            arena.memory.stolen.set(PAGE);
            let p = arena.alloc(layout(PAGE, 1));
            assert!(!arena.contains(p));
            assert!(arena.full.get());
            let q = arena.alloc(layout(PAGE, 1));
            assert!(!arena.contains(q));
            arena.dealloc(p, layout(PAGE, 1));
            arena.dealloc(q, layout(PAGE, 1));
            // What still fits below its end is still served.
            assert!(arena.contains(arena.alloc(layout(8, 8))));
        }
    }

    #[test]
    fn many_vectors_and_strings_keep_their_contents() {
        let arena = Arena::new(Fake::new(PAGE, 64 * PAGE));
        let mut live: Vec<(*mut u8, usize, usize, u8)> = Vec::new();
        let mut seed = 12345u32;
        let mut rand = || {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (seed >> 8) as usize
        };
        unsafe {
            for round in 0..5000 {
                let tag = (round % 251) as u8;
                match rand() % 4 {
                    0 | 1 => {
                        let size = 1 + rand() % 300;
                        let align = 1 << (rand() % 4);
                        let p = arena.alloc(layout(size, align));
                        assert_eq!(p as usize % align, 0);
                        p.write_bytes(tag, size);
                        live.push((p, size, align, tag));
                    }
                    2 if !live.is_empty() => {
                        let i = rand() % live.len();
                        let (p, size, align, tag) = live.swap_remove(i);
                        assert!(std::slice::from_raw_parts(p, size)
                            .iter()
                            .all(|b| *b == tag));
                        arena.dealloc(p, layout(size, align));
                    }
                    _ if !live.is_empty() => {
                        let i = rand() % live.len();
                        let (p, size, align, old) = live[i];
                        let new_size = 1 + rand() % 600;
                        let q = arena.realloc(p, layout(size, align), new_size);
                        assert_eq!(q as usize % align, 0);
                        let kept = size.min(new_size);
                        assert!(std::slice::from_raw_parts(q, kept)
                            .iter()
                            .all(|b| *b == old));
                        q.write_bytes(tag, new_size);
                        live[i] = (q, new_size, align, tag);
                    }
                    _ => {}
                }
            }
            for (p, size, _, tag) in live {
                assert!(std::slice::from_raw_parts(p, size)
                    .iter()
                    .all(|b| *b == tag));
            }
        }
    }
}
