// Overlapping hashing with HDF5 I/O. Hashing is CPU work that needs no lock; HDF5 reads and writes
// are disk work behind the process-wide HDF5 lock. Run side by side, a store is written or verified
// at about the speed of the slower of the two instead of their sum.

import Dispatch
import Tensor

/// Runs `background` on another thread while `foreground` runs on this one; returns `background`'s
/// result once both are done (also when `foreground` throws, so nothing outlives the call).
func concurrently<A: Sendable>(_ background: () -> A, _ foreground: () throws -> Void) throws -> A {
    let slot = ResultSlot<A>()
    let group = DispatchGroup()
    try withoutActuallyEscaping(background) { background in
        // The closure never escapes this call: we wait for it before returning or rethrowing.
        let work = UncheckedSendableBox(background)
        DispatchQueue.global().async(group: group) { slot.value = work.value() }
        defer { group.wait() }
        try foreground()
    }
    return slot.value!
}

/// Holds a result written by one thread and read by another after a join (`DispatchGroup.wait`),
/// which orders the write before the read.
private final class ResultSlot<A>: @unchecked Sendable {
    var value: A?
}
