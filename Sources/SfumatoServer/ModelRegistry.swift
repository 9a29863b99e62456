import Foundation
import Sfumato
import Synchronization

/// The loaded models, selectable per request by name, and the one A1111's `sd_model_checkpoint` option points at.
public final class ModelRegistry: Sendable {
    public struct Model: Sendable {
        public let name: String
        public let path: String
        public let pipeline: StableDiffusionPipeline
        let loadedAt: Int
    }

    public let models: [Model]
    private let current = Mutex(0)

    /// `models` is not empty; names are the pipelines' model names (a folder or file name), made unique.
    public init(pipelines: [(path: String, pipeline: StableDiffusionPipeline)]) {
        var seen: [String: Int] = [:]
        let now = Int(Date().timeIntervalSince1970)
        models = pipelines.map { entry in
            let base = entry.pipeline.modelName
            seen[base, default: 0] += 1
            let name = seen[base]! == 1 ? base : "\(base)-\(seen[base]!)"
            return Model(name: name, path: entry.path, pipeline: entry.pipeline, loadedAt: now)
        }
    }

    public var currentModel: Model { models[current.withLock { $0 }] }

    /// A model by its name, its path or its file name (A1111 titles may carry " [hash]").
    func find(_ name: String) -> Int? {
        let plain = name.replacingOccurrences(of: #"\s*\[[0-9a-fA-F]+\]$"#, with: "", options: .regularExpression)
        return models.firstIndex { [$0.name, $0.path, URL(fileURLWithPath: $0.path).lastPathComponent].contains(plain) }
    }

    func model(named name: String?, field: String) throws -> Model {
        guard let name else { return currentModel }
        guard let index = find(name) else {
            throw APIError.notFound(field, "model \(name) not found; loaded: " + models.map(\.name).joined(separator: ", "))
        }
        return models[index]
    }

    func select(_ name: String, field: String) throws {
        guard let index = find(name) else {
            throw APIError.notFound(field, "model \(name) not found; loaded: " + models.map(\.name).joined(separator: ", "))
        }
        current.withLock { $0 = index }
    }
}
