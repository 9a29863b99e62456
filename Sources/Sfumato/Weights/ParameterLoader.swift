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
        init(component: String) { mismatch = ParameterMismatch(component: component) }
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
    /// On a problem it records it and returns zeros so loading can go on.
    public func callAsFunction(_ name: String, shape: [Int]) -> Tensor {
        let fullName = prefix + name
        record.used.insert(fullName)
        guard let found = source.shape(of: fullName) else {
            record.mismatch.missing.append((fullName, shape))
            return Tensor(zeros: shape)
        }
        guard found == shape else {
            record.mismatch.misshaped.append((fullName, shape, found))
            return Tensor(zeros: shape)
        }
        do {
            return try source.tensor(fullName)
        } catch {
            record.mismatch.unreadable.append("  unreadable: \(error)")
            return Tensor(zeros: shape)
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
