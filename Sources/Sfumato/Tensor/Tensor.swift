import Foundation

/// Float32 memory shared by a tensor and its views: 64-byte aligned memory of its own, or memory
/// borrowed from an owner that outlives it (a memory-mapped weights file).
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    /// Keeps borrowed memory alive; nil when the storage owns (and frees) its memory.
    private let owner: AnyObject?

    /// Uninitialised storage; callers write every element before reading.
    public init(count: Int) {
        precondition(count >= 0, "negative element count")
        pointer = BufferCache.shared.take(count: max(count, 1))
        self.count = count
        owner = nil
    }

    /// `count` floats at `pointer`, valid while `owner` lives; never written by convention.
    init(borrowing pointer: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject) {
        self.pointer = pointer
        self.count = count
        self.owner = owner
    }

    deinit { if owner == nil { BufferCache.shared.give(pointer, count: max(count, 1)) } }

    /// For weights used in place from a mapped file: lets the kernel take their pages out of this
    /// process's resident memory until they are next read (they stay in the page cache, so that read
    /// is a minor fault, not disk I/O). Memory of its own is never touched.
    func releaseResidentPages() {
        guard let file = owner as? MappedFile else { return }
        file.advise(UnsafeRawBufferPointer(start: pointer, count: count * MemoryLayout<Float>.stride), MADV_DONTNEED, wholePagesOnly: true)
    }
}

/// Large freed buffers kept for the next tensor of the same size. A denoising step allocates the
/// same shapes as the one before it, so from the second step on its activations reuse memory that
/// is already mapped: no page faults, no kernel zeroing. The cache holds at most `limit` bytes and
/// gives memory back, oldest first, when a new size needs room.
final class BufferCache: @unchecked Sendable {
    static let shared = BufferCache(limit: 128 << 20)

    /// Below this, malloc's own free lists already reuse memory without faults.
    static let minimumBytes = 1 << 20

    private let limit: Int
    private let lock = NSLock()
    /// Cached (count, pointer) pairs, oldest first (a few dozen at most: the limit over 1 MB).
    private var cached: [(count: Int, pointer: UnsafeMutablePointer<Float>)] = []
    private var cachedBytes = 0

    init(limit: Int) { self.limit = limit }

    func take(count: Int) -> UnsafeMutablePointer<Float> {
        let bytes = count * MemoryLayout<Float>.stride
        if bytes >= Self.minimumBytes {
            let reused: UnsafeMutablePointer<Float>? = lock.withLock {
                guard let index = cached.lastIndex(where: { $0.count == count }) else {
                    // A new size: make room for it so cache plus live memory stays bounded.
                    evict(toFit: bytes)
                    return nil
                }
                cachedBytes -= bytes
                return cached.remove(at: index).pointer
            }
            if let reused { return reused }
        }
        var raw: UnsafeMutableRawPointer?
        // posix_memalign gives the alignment AVX-512 loads like.
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else { fatalError("out of memory allocating \(count) floats") }
        return raw.bindMemory(to: Float.self, capacity: count)
    }

    func give(_ pointer: UnsafeMutablePointer<Float>, count: Int) {
        let bytes = count * MemoryLayout<Float>.stride
        guard bytes >= Self.minimumBytes, bytes <= limit else {
            Foundation.free(pointer)
            return
        }
        lock.withLock {
            evict(toFit: bytes)
            cached.append((count, pointer))
            cachedBytes += bytes
        }
    }

    /// Frees the oldest cached buffers until `bytes` more fit under the limit. Caller holds the lock.
    private func evict(toFit bytes: Int) {
        while cachedBytes + bytes > limit, !cached.isEmpty {
            let (count, pointer) = cached.removeFirst()
            cachedBytes -= count * MemoryLayout<Float>.stride
            Foundation.free(pointer)
        }
    }
}

/// A contiguous, row-major (NCHW for images) Float32 tensor.
///
/// Tensors share storage with their views (`reshaped`, `slice`), so by
/// convention a tensor is not written after the op that produced it returns;
/// ops write only into freshly allocated outputs.
public struct Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let storage: TensorStorage
    /// Element offset of this tensor inside `storage`.
    public let offset: Int

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
    /// First element; the tensor's `count` elements follow contiguously.
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer + offset }
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    /// A tensor with uninitialised contents, for ops that overwrite every element.
    public init(uninitializedShape shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *))
        self.offset = 0
    }

    public init(zeros shape: [Int]) {
        self.init(uninitializedShape: shape)
        pointer.initialize(repeating: 0, count: count)
    }

    public init(repeating value: Float, shape: [Int]) {
        self.init(uninitializedShape: shape)
        pointer.initialize(repeating: value, count: count)
    }

    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        self.init(uninitializedShape: shape)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    init(shape: [Int], storage: TensorStorage, offset: Int) {
        self.shape = shape
        self.storage = storage
        self.offset = offset
    }

    /// The same elements seen with another shape (no copy). One dimension may be -1.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var resolved = newShape
        if let hole = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != hole }.reduce(1) { $0 * $1.element }
            resolved[hole] = known == 0 ? 0 : count / known
        }
        precondition(resolved.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(shape: resolved, storage: storage, offset: offset)
    }

    /// Elements `range` along the first axis (no copy).
    public func slice(_ range: Range<Int>) -> Tensor {
        precondition(rank >= 1 && range.lowerBound >= 0 && range.upperBound <= shape[0], "slice \(range) out of \(shape)")
        let inner = shape.dropFirst().reduce(1, *)
        return Tensor(shape: [range.count] + shape.dropFirst(), storage: storage, offset: offset + range.lowerBound * inner)
    }

    /// A fresh copy that owns its storage.
    public func copy() -> Tensor {
        let result = Tensor(uninitializedShape: shape)
        result.pointer.update(from: pointer, count: count)
        return result
    }

    public func toArray() -> [Float] { Array(buffer) }

    public subscript(flat index: Int) -> Float {
        get { pointer[index] }
        nonmutating set { pointer[index] = newValue }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor\(shape)" }
}
