import Foundation

/// A model configuration file (config.json) that cannot be read or describes something we do not run.
public struct ModelConfigError: Error, Equatable, CustomStringConvertible {
    /// The file at fault, when the configuration came from one.
    public var path: String?
    public var message: String

    public init(path: String? = nil, _ message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.map { "\($0): \(message)" } ?? message }
}

/// Bad input handed to a network (token ids, image or latent shapes), found before any work starts.
public enum ModelInputError: Error, Equatable, CustomStringConvertible {
    case emptyBatch(model: String)
    case sequenceLength(model: String, row: Int, length: Int, maximum: Int)
    case raggedBatch(model: String, row: Int, length: Int, expected: Int)
    case tokenOutOfRange(model: String, row: Int, position: Int, id: Int32, vocabularySize: Int)
    case shape(model: String, input: String, expected: String, found: [Int])
    case componentNotLoaded(model: String, component: String)
    case clipSkip(model: String, value: Int, layers: Int)
    /// SDXL counts clip skip from the penultimate layer, so at most `layers - 1` (one layer left).
    case penultimateClipSkip(model: String, value: Int, layers: Int)

    public var description: String {
        switch self {
        case let .emptyBatch(model): "\(model): the batch is empty"
        case let .sequenceLength(model, row, length, maximum): "\(model): sequence \(row) has \(length) tokens; it must have 1 to \(maximum)"
        case let .raggedBatch(model, row, length, expected): "\(model): sequence \(row) has \(length) tokens, sequence 0 has \(expected); all must have the same length"
        case let .tokenOutOfRange(model, row, position, id, vocabularySize): "\(model): token id \(id) at sequence \(row), position \(position) is outside the vocabulary 0..<\(vocabularySize)"
        case let .shape(model, input, expected, found): "\(model): \(input) has shape \(found), expected \(expected)"
        case let .componentNotLoaded(model, component): "\(model): the \(component) was not loaded"
        case let .clipSkip(model, value, layers): "\(model): clip skip \(value) is outside 1...\(layers) (the model has \(layers) layers)"
        case let .penultimateClipSkip(model, value, layers):
            "\(model): clip skip \(value) is outside 1...\(layers - 1) (SDXL conditions on the output of layer \(layers) - clip skip of \(layers))"
        }
    }
}

enum ModelConfigFile {
    /// Configuration files are a few kB; anything far larger is not one.
    static let maximumSize = 1 << 20

    /// Decodes `T` from the JSON file at `path`; decoding and validation errors name the file.
    static func load<T: Decodable>(_ type: T.Type, path: String) throws(ModelConfigError) -> T {
        let data: Data
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: path)
            if let size = attributes[.size] as? Int, size > maximumSize {
                throw ModelConfigError(path: path, "\(size) bytes is too large for a configuration file")
            }
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch let error as ModelConfigError {
            throw error
        } catch {
            throw ModelConfigError(path: path, "cannot read: \(error.localizedDescription)")
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch var error as ModelConfigError {
            error.path = path
            throw error
        } catch let DecodingError.keyNotFound(key, _) {
            throw ModelConfigError(path: path, "missing key \"\(key.stringValue)\"")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ModelConfigError(path: path, "key \"\(key)\" has the wrong type or is null")
        } catch {
            throw ModelConfigError(path: path, "not a valid configuration: \(error)")
        }
    }

    /// A validation failure when `condition` is false.
    static func require(_ condition: Bool, _ message: @autoclosure () -> String) throws(ModelConfigError) {
        guard condition else { throw ModelConfigError(message()) }
    }
}
