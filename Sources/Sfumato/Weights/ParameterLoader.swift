import Foundation

/// Where a network's named tensors come from: one safetensors file, several shards,
/// or a single-file checkpoint seen through the name mapping table.
public protocol TensorSource: Sendable {
    /// Every tensor name the source offers.
    var tensorNames: [String] { get }
    func shape(of name: String) -> [Int]?
    func tensor(_ name: String) throws(WeightError) -> Tensor
}

extension SafeTensorsFile: TensorSource {
    public var tensorNames: [String] { names }
    public func shape(of name: String) -> [Int]? { entries[name]?.shape }
}

/// Several files read as one (sharded checkpoints); names must not repeat across files.
public struct CombinedTensorSource: TensorSource {
    let sources: [any TensorSource]
    let owner: [String: Int]

    public init(_ sources: [any TensorSource]) {
        self.sources = sources
        var owner: [String: Int] = [:]
        for (index, source) in sources.enumerated() { for name in source.tensorNames where owner[name] == nil { owner[name] = index } }
        self.owner = owner
    }

    public var tensorNames: [String] { owner.keys.sorted() }
    public func shape(of name: String) -> [Int]? { owner[name].flatMap { sources[$0].shape(of: name) } }
    public func tensor(_ name: String) throws(WeightError) -> Tensor {
        guard let index = owner[name] else { throw .missingTensor(path: "(combined)", tensor: name) }
        return try sources[index].tensor(name)
    }
}

/// Missing, unexpected or mis-shaped tensors of one model component, reported together.
public struct ParameterMismatch: Error, Equatable, CustomStringConvertible {
    public var component: String
    public var missing: [(name: String, shape: [Int])] = []
    public var unexpected: [(name: String, shape: [Int])] = []
    public var misshaped: [(name: String, expected: [Int], found: [Int])] = []
    public var unreadable: [String] = []

    public var isEmpty: Bool { missing.isEmpty && unexpected.isEmpty && misshaped.isEmpty && unreadable.isEmpty }

    public static func == (lhs: ParameterMismatch, rhs: ParameterMismatch) -> Bool { lhs.description == rhs.description }

    public var description: String {
        var lines = ["\(component): the weights do not fit the configured model"]
        lines += misshaped.map { "  wrong shape: \($0.name) is \($0.found), expected \($0.expected)" }
        lines += missing.map { "  missing: \($0.name) \($0.shape)" }
        lines += unexpected.map { "  unexpected: \($0.name) \($0.shape)" }
        lines += unreadable
        return lines.joined(separator: "\n")
    }
}

/// Hands a network its parameters by their checkpoint names and shapes.
///
/// Problems are collected rather than thrown one by one, so a user sees every
/// missing or mis-shaped tensor of a component in one error from `finish()`.
public final class ParameterLoader {
    private final class Record {
        var used: Set<String> = []
        var mismatch: ParameterMismatch
        var placeholders: PlaceholderMemory?
        init(component: String) { mismatch = ParameterMismatch(component: component) }

        /// A stand-in of `shape` for a tensor that is missing or mis-shaped, so building goes on and every
        /// problem is reported. The network is never run (`finish()` throws), so large stand-ins share
        /// one mapping of untouched zero pages: a configuration that describes a far larger model than
        /// its weights (a config.json from elsewhere, a bare `{}` meaning full SD 1.5) commits no memory.
        func placeholder(_ shape: [Int]) -> Tensor {
            let count = shape.reduce(1, *)
            guard count >= 1 << 16 else { return Tensor(zeros: shape) }
            if placeholders.map({ $0.count < count }) ?? true { placeholders = PlaceholderMemory(count: count) ?? placeholders }
            guard let memory = placeholders, memory.count >= count else { return Tensor(zeros: shape) }
            return Tensor(shape: shape, storage: TensorStorage(borrowing: memory.pointer, count: count, owner: memory), offset: 0)
        }
    }

    /// Anonymous zero pages, address space only (MAP_NORESERVE) until something touches them.
    private final class PlaceholderMemory {
        let pointer: UnsafeMutablePointer<Float>
        let count: Int

        init?(count: Int) {
            guard let base = mmap(nil, count * MemoryLayout<Float>.stride, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), base != MAP_FAILED else { return nil }
            pointer = base.assumingMemoryBound(to: Float.self)
            self.count = count
        }

        deinit { munmap(pointer, count * MemoryLayout<Float>.stride) }
    }

    private let source: any TensorSource
    private let prefix: String
    private let record: Record

    public init(source: any TensorSource, component: String) {
        self.source = source
        self.prefix = ""
        self.record = Record(component: component)
    }

    private init(source: any TensorSource, prefix: String, record: Record) {
        self.source = source
        self.prefix = prefix
        self.record = record
    }

    /// A loader whose names are relative to `name` (e.g. "down_blocks.0").
    public func scoped(_ name: String) -> ParameterLoader {
        ParameterLoader(source: source, prefix: prefix + name + ".", record: record)
    }

    /// The tensor `name` (relative to this scope), which must have `shape`.
    /// On a problem it records it and returns zeros (see `Record.placeholder`) so loading can go on.
    public func callAsFunction(_ name: String, shape: [Int]) -> Tensor {
        let fullName = prefix + name
        record.used.insert(fullName)
        guard let found = source.shape(of: fullName) else {
            record.mismatch.missing.append((fullName, shape))
            return record.placeholder(shape)
        }
        guard found == shape else {
            record.mismatch.misshaped.append((fullName, shape, found))
            return record.placeholder(shape)
        }
        do {
            return try source.tensor(fullName)
        } catch {
            record.mismatch.unreadable.append("  unreadable: \(error)")
            return record.placeholder(shape)
        }
    }

    /// Whether the source has a tensor `name` in this scope (for optional parameters such as biases).
    public func contains(_ name: String) -> Bool { source.shape(of: prefix + name) != nil }

    /// Throws one error listing every problem; tensors whose names satisfy `ignoring` are not "unexpected".
    public func finish(ignoring isIgnorable: (String) -> Bool = { _ in false }) throws(ParameterMismatch) {
        for name in source.tensorNames where name.hasPrefix(prefix) && !record.used.contains(name) && !isIgnorable(name) {
            record.mismatch.unexpected.append((name, source.shape(of: name) ?? []))
        }
        guard record.mismatch.isEmpty else { throw record.mismatch }
    }
}
