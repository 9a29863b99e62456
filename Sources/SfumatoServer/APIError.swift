import Foundation
import Hummingbird

/// A request the server refuses, as JSON naming the field at fault. A1111 routes answer
/// `{error, detail, field}`; OpenAI routes `{"error": {message, type, param}}` as OpenAI's clients parse it.
struct APIError: Error, HTTPResponseError {
    enum Style: Sendable { case a1111, openAI }

    let status: HTTPResponse.Status
    let field: String?
    let message: String
    var style: Style = .a1111
    var headers: HTTPFields = [:]

    static func invalid(_ field: String, _ message: String) -> APIError {
        APIError(status: .unprocessableContent, field: field, message: message)
    }

    static func notFound(_ field: String, _ message: String) -> APIError {
        APIError(status: .notFound, field: field, message: message)
    }

    func styled(_ style: Style) -> APIError {
        var copy = self
        copy.style = style
        return copy
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let body: [String: Any] = switch style {
        case .a1111:
            ["error": status.reasonPhrase, "detail": message, "field": field as Any? ?? NSNull()]
        case .openAI:
            ["error": ["message": message, "type": status.code >= 500 ? "server_error" : "invalid_request_error",
                       "param": field as Any? ?? NSNull(), "code": NSNull()] as [String: Any]]
        }
        var fields = headers
        fields[.contentType] = "application/json"
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// JSON bodies: malformed JSON is 400, a value of the wrong type 422 naming its path (`override_settings.sd_model_checkpoint`).
enum JSONBody {
    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        let data = Data(bytes)
        do {
            _ = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw APIError(status: .badRequest, field: "body", message: "the body is not valid JSON")
        }
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            switch error {
            case let .typeMismatch(expected, context), let .valueNotFound(expected, context):
                throw APIError.invalid(path(context.codingPath), "\(path(context.codingPath)) must be \(describe(expected))")
            case let .keyNotFound(key, context):
                let field = path(context.codingPath + [key])
                throw APIError.invalid(field, "\(field) is required")
            case let .dataCorrupted(context):
                let field = context.codingPath.isEmpty ? "body" : path(context.codingPath)
                throw APIError.invalid(field, "\(field): \(context.debugDescription)")
            @unknown default:
                throw APIError.invalid("body", "the body does not match the request's fields")
            }
        }
    }

    /// The object as sent, for echoing it back (A1111's `parameters`).
    static func object(_ bytes: [UInt8]) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:]
    }

    static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type: "an integer"
        case is Double.Type, is Float.Type: "a number"
        case is Bool.Type: "true or false"
        case is [String].Type: "a list of strings"
        default: "of type \(type)"
        }
    }

    static func response(_ object: Any, status: HTTPResponse.Status = .ok) throws -> Response {
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
