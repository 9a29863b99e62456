import Foundation

/// An AUTOMATIC1111 extra-network tag of a prompt, such as `<lora:watercolor:0.8>`: its kind
/// ("lora") and its `:`-separated arguments (["watercolor", "0.8"]).
public struct ExtraNetworkTag: Equatable, Sendable {
    public let kind: String
    public let arguments: [String]

    public init(kind: String, arguments: [String]) {
        self.kind = kind
        self.arguments = arguments
    }
}

/// Why a `<lora:...>` tag cannot be used.
public enum ExtraNetworkError: Error, Equatable, CustomStringConvertible {
    case unsupportedKind(String)
    case badLoRATag(String)

    public var description: String {
        switch self {
        case let .unsupportedKind(kind): "prompt: <\(kind):...> networks are not supported (only <lora:NAME:WEIGHT>)"
        case let .badLoRATag(reason): "prompt: \(reason)"
        }
    }
}

/// A1111 reads `<kind:arguments>` tags (a word, a colon, then anything up to `>`) out of the prompt
/// before the attention syntax: they are removed from the text and name networks to apply.
public enum ExtraNetworks {
    public static func parse(_ prompt: String) -> (prompt: String, tags: [ExtraNetworkTag]) {
        let scalars = Array(prompt.unicodeScalars)
        var text = String.UnicodeScalarView()
        var tags: [ExtraNetworkTag] = []
        var index = 0
        while index < scalars.count {
            if scalars[index] == "<", let (tag, end) = tag(in: scalars, at: index) {
                tags.append(tag)
                index = end
            } else {
                text.append(scalars[index])
                index += 1
            }
        }
        return (String(text), tags)
    }

    public static func removingTags(from prompt: String) -> String { parse(prompt).prompt }

    /// `<lora:NAME>`, `<lora:NAME:WEIGHT>`, `<lora:NAME:TE:UNET>`, with `te=` / `unet=` as named
    /// arguments, as A1111's LoRA network reads them: the UNet weight defaults to the text encoder's.
    public static func loraReference(_ tag: ExtraNetworkTag) throws(ExtraNetworkError) -> (name: String, textEncoderWeight: Float, unetWeight: Float) {
        guard tag.kind == "lora" else { throw .unsupportedKind(tag.kind) }
        let positional = tag.arguments.filter { !$0.contains("=") }
        var named: [String: String] = [:]
        for argument in tag.arguments where argument.contains("=") {
            let parts = argument.split(separator: "=", maxSplits: 1).map(String.init)
            named[parts[0]] = parts.count > 1 ? parts[1] : ""
        }
        let tagText = "<lora:\(tag.arguments.joined(separator: ":"))>"
        guard let name = positional.first, !name.isEmpty else { throw .badLoRATag("\(tagText) names no LoRA") }
        if let key = named.keys.first(where: { $0 != "te" && $0 != "unet" }) {
            throw .badLoRATag("\(tagText): \(key)= is not supported (te= and unet= are)")
        }
        func number(_ text: String) throws(ExtraNetworkError) -> Float {
            guard let value = Float(text.trimmingCharacters(in: .whitespaces)), value.isFinite else {
                throw .badLoRATag("\(tagText): \"\(text)\" is not a weight")
            }
            return value
        }
        var textEncoder: Float = positional.count > 1 ? try number(positional[1]) : 1
        if let value = named["te"] { textEncoder = try number(value) }
        var unet = positional.count > 2 ? try number(positional[2]) : textEncoder
        if let value = named["unet"] { unet = try number(value) }
        return (name, textEncoder, unet)
    }

    /// `<` word `:` one or more non-`>` `>` at `start`: the tag and the index after `>`.
    private static func tag(in scalars: [Unicode.Scalar], at start: Int) -> (ExtraNetworkTag, Int)? {
        var index = start + 1
        while index < scalars.count, PromptParser.isWordCharacter(scalars[index]) { index += 1 }
        guard index > start + 1, index < scalars.count, scalars[index] == ":" else { return nil }
        let kindEnd = index
        index += 1
        let argumentsStart = index
        while index < scalars.count, scalars[index] != ">" { index += 1 }
        guard index > argumentsStart, index < scalars.count else { return nil }
        let kind = string(scalars[(start + 1)..<kindEnd])
        let arguments = string(scalars[argumentsStart..<index]).split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        return (ExtraNetworkTag(kind: kind, arguments: arguments), index + 1)
    }

    private static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
