import Sfumato

/// A tensor source seen with every name changed by `rename`, and names for which `keep` is false left out.
struct RenamedTensorSource: TensorSource {
    let base: any TensorSource
    let mapping: [String: String]

    init(_ base: any TensorSource, rename: (String) -> String = { $0 }, keep: (String) -> Bool = { _ in true }) {
        self.base = base
        var mapping: [String: String] = [:]
        for name in base.tensorNames where keep(name) { mapping[rename(name)] = name }
        self.mapping = mapping
    }

    var tensorNames: [String] { mapping.keys.sorted() }
    func shape(of name: String) -> [Int]? { mapping[name].flatMap { base.shape(of: $0) } }
    func tensor(_ name: String) throws(WeightError) -> Tensor {
        guard let original = mapping[name] else { throw .missingTensor(path: "(renamed)", tensor: name) }
        return try base.tensor(original)
    }
}
