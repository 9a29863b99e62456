import Foundation

/// Why a CLIP tokenizer folder could not be loaded; every case names the file at fault.
public enum CLIPTokenizerError: Error, Equatable, CustomStringConvertible {
    case missingFile(path: String)
    case unreadableFile(path: String, reason: String)
    case invalidJSON(path: String, reason: String)
    case invalidVocabulary(path: String, reason: String)
    case invalidMerge(path: String, line: Int, reason: String)
    case invalidConfiguration(path: String, reason: String)

    public var description: String {
        switch self {
        case let .missingFile(path): "\(path): file not found (a CLIP tokenizer needs vocab.json and merges.txt)"
        case let .unreadableFile(path, reason): "\(path): cannot read: \(reason)"
        case let .invalidJSON(path, reason): "\(path): invalid JSON: \(reason)"
        case let .invalidVocabulary(path, reason): "\(path): invalid vocabulary: \(reason)"
        case let .invalidMerge(path, line, reason): "\(path):\(line): invalid merge: \(reason)"
        case let .invalidConfiguration(path, reason): "\(path): invalid tokenizer configuration: \(reason)"
        }
    }
}

/// The CLIP byte-level BPE tokenizer of Stable Diffusion's text encoder, equal to transformers 5.x
/// `CLIPTokenizer` (the `tokenizers`-backed one, the only kind transformers 5 has).
///
/// Text handling follows that tokenizer exactly, not OpenAI's `simple_tokenizer.py`: the exact
/// strings `<|startoftext|>` / `<|endoftext|>` in the raw text are their special ids; the rest is
/// NFC-normalised and lowercased scalar by scalar (no final-sigma rule), with no ftfy and no HTML
/// unescaping (`&amp;` stays three pieces), then split into letter runs, single digits,
/// contractions and runs of other non-space characters. The legacy transformers 4 "slow" tokenizer
/// without ftfy differed (spaces around CJK ideographs, dropped control characters); it is gone.
public struct CLIPTokenizer: Sendable {
    public static let startToken = "<|startoftext|>"
    public static let endToken = "<|endoftext|>"
    private static let endOfWord = "</w>"

    /// Length of every encoded sequence (77 for Stable Diffusion).
    public let maxLength: Int
    public let startID: Int32
    public let endID: Int32
    /// SD 1.x pads with `<|endoftext|>`; SD 2.x tokenizers declare `!` (id 0).
    public let padID: Int32

    private let vocabulary: [String: Int32]
    private let tokenStrings: [Int32: String]
    /// (left id, right id) packed into 64 bits -> merge rank and merged id.
    private let merges: [UInt64: Merge]
    /// Vocabulary id of each byte's symbol, without and with the end-of-word suffix (-1: absent).
    private let byteIDs: [Int32]
    private let finalByteIDs: [Int32]
    private let unknownID: Int32

    private struct Merge: Sendable {
        let rank: Int32
        let result: Int32
    }

    /// Loads `vocab.json` and `merges.txt` from `directory`, plus the pad token and
    /// `model_max_length` from `tokenizer_config.json` / `special_tokens_map.json` when present.
    /// `padToken`, when given, overrides the files' (a model family's own padding).
    public init(directory: URL, padToken: String? = nil) throws(CLIPTokenizerError) {
        try self.init(vocabularyURL: directory.appendingPathComponent("vocab.json"),
                      mergesURL: directory.appendingPathComponent("merges.txt"),
                      configurationDirectory: directory, padToken: padToken)
    }

    /// `configurationDirectory`, when given, is searched for `tokenizer_config.json` and
    /// `special_tokens_map.json` (both optional; later files override earlier ones).
    public init(vocabularyURL: URL, mergesURL: URL, configurationDirectory: URL? = nil,
                padToken padTokenOverride: String? = nil) throws(CLIPTokenizerError) {
        let vocabulary = try Self.readVocabulary(vocabularyURL.path)
        var tokenStrings: [Int32: String] = [:]
        for (token, id) in vocabulary { tokenStrings[id] = token }

        var padToken = Self.endToken
        var maxLength = 77
        if let directory = configurationDirectory {
            for name in ["tokenizer_config.json", "special_tokens_map.json"] {
                let path = directory.appendingPathComponent(name).path
                guard FileManager.default.fileExists(atPath: path) else { continue }
                let settings = try Self.readConfiguration(path)
                if let token = settings.padToken { padToken = token }
                if let length = settings.maxLength { maxLength = length }
            }
        }
        if let padTokenOverride { padToken = padTokenOverride }

        func id(of token: String, _ role: String) throws(CLIPTokenizerError) -> Int32 {
            guard let id = vocabulary[token] else {
                throw .invalidVocabulary(path: vocabularyURL.path, reason: "\(role) token '\(token)' is not in the vocabulary")
            }
            return id
        }
        startID = try id(of: Self.startToken, "start")
        endID = try id(of: Self.endToken, "end")
        padID = try id(of: padToken, "pad")
        unknownID = endID
        self.maxLength = maxLength
        self.vocabulary = vocabulary
        self.tokenStrings = tokenStrings
        merges = try Self.readMerges(mergesURL.path, vocabulary: vocabulary)
        let symbols = Self.byteSymbols()
        byteIDs = symbols.map { vocabulary[$0] ?? -1 }
        finalByteIDs = symbols.map { vocabulary[$0 + Self.endOfWord] ?? -1 }
    }

    /// Exactly `maxLength` ids: start, at most `maxLength - 2` text tokens, end, then padding.
    public func encode(_ text: String) -> [Int32] {
        var ids = [startID]
        ids.reserveCapacity(maxLength)
        appendTextTokens(of: text, to: &ids, limit: maxLength - 2)
        ids.append(endID)
        while ids.count < maxLength { ids.append(padID) }
        return ids
    }

    /// The text's tokens without start, end or padding, however many there are (for prompt chunking).
    public func textTokens(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        appendTextTokens(of: text, to: &ids, limit: .max)
        return ids
    }

    /// The id of `,</w>`, where AUTOMATIC1111 prefers to end a long prompt's chunk.
    public var commaID: Int32? { vocabulary[",</w>"] }

    /// The vocabulary strings of `encode(text)` (byte symbols, `</w>` marking word ends), for display.
    public func tokens(_ text: String) -> [String] {
        encode(text).map(tokenString)
    }

    /// The vocabulary string of one id ("" for an id outside the vocabulary).
    public func tokenString(_ id: Int32) -> String { tokenStrings[id] ?? "" }

    // MARK: Text to pieces

    private func appendTextTokens(of text: String, to ids: inout [Int32], limit: Int) {
        var produced = 0
        // Special-token strings are matched in the raw text, case-sensitively, before any cleanup.
        var rest = Substring(text)
        while produced < limit, !rest.isEmpty {
            let special = [Self.startToken, Self.endToken]
                .compactMap { token in rest.range(of: token).map { (token, $0) } }
                .min { $0.1.lowerBound < $1.1.lowerBound }
            let plain = special.map { rest[..<$0.1.lowerBound] } ?? rest
            appendPlainTokens(of: plain, to: &ids, produced: &produced, limit: limit)
            guard let (token, range) = special else { break }
            if produced < limit {
                ids.append(token == Self.startToken ? startID : endID)
                produced += 1
            }
            rest = rest[range.upperBound...]
        }
    }

    private func appendPlainTokens(of text: Substring, to ids: inout [Int32], produced: inout Int, limit: Int) {
        var scalars: [Unicode.Scalar] = []
        for scalar in String(text).precomposedStringWithCanonicalMapping.unicodeScalars {
            scalars.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
        }
        var index = 0
        while index < scalars.count, produced < limit {
            let start = index
            let first = scalars[index]
            let properties = first.properties
            if properties.isWhitespace {
                index += 1
                continue
            }
            if first == "'", let length = Self.contractionLength(scalars, after: index) {
                index += 1 + length
            } else if Self.isLetter(properties) {
                while index < scalars.count, Self.isLetter(scalars[index].properties) { index += 1 }
            } else if Self.isNumber(properties) {
                index += 1
            } else {
                while index < scalars.count {
                    let next = scalars[index].properties
                    if next.isWhitespace || Self.isLetter(next) || Self.isNumber(next) { break }
                    index += 1
                }
            }
            var word = String.UnicodeScalarView()
            word.append(contentsOf: scalars[start..<index])
            appendWordTokens(Array(String(word).utf8), to: &ids, produced: &produced, limit: limit)
        }
    }

    /// Length of `s|t|re|ve|m|ll|d` following the apostrophe at `index`, or nil.
    private static func contractionLength(_ scalars: [Unicode.Scalar], after index: Int) -> Int? {
        func at(_ offset: Int) -> Unicode.Scalar? {
            index + offset < scalars.count ? scalars[index + offset] : nil
        }
        switch at(1) {
        case "s", "t", "m", "d": return 1
        case "r": return at(2) == "e" ? 2 : nil
        case "v": return at(2) == "e" ? 2 : nil
        case "l": return at(2) == "l" ? 2 : nil
        default: return nil
        }
    }

    private static func isLetter(_ properties: Unicode.Scalar.Properties) -> Bool {
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: true
        default: false
        }
    }

    private static func isNumber(_ properties: Unicode.Scalar.Properties) -> Bool {
        switch properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: true
        default: false
        }
    }

    // MARK: BPE

    /// Byte-level BPE of one word: lowest-ranked adjacent pair first, leftmost on ties.
    private func appendWordTokens(_ bytes: [UInt8], to ids: inout [Int32], produced: inout Int, limit: Int) {
        guard !bytes.isEmpty else { return }
        var symbols = bytes.indices.map { index in
            let id = index == bytes.count - 1 ? finalByteIDs[Int(bytes[index])] : byteIDs[Int(bytes[index])]
            return id >= 0 ? id : unknownID
        }
        var next = Array(1...symbols.count)
        var previous = Array(-1..<(symbols.count - 1))
        var alive = [Bool](repeating: true, count: symbols.count)
        var queue = MergeQueue()
        for left in 0..<(symbols.count - 1) { queue.push(candidate(left, symbols[left], symbols[left + 1])) }

        while let entry = queue.pop() {
            let left = entry.position
            let right = next[left]
            // Stale entries: either side changed since this pair was queued.
            guard alive[left], right < symbols.count, symbols[left] == entry.left, symbols[right] == entry.right else { continue }
            symbols[left] = entry.result
            alive[right] = false
            next[left] = next[right]
            if next[right] < symbols.count { previous[next[right]] = left }
            if previous[left] >= 0 { queue.push(candidate(previous[left], symbols[previous[left]], symbols[left])) }
            if next[left] < symbols.count { queue.push(candidate(left, symbols[left], symbols[next[left]])) }
        }
        var index = 0
        while index < symbols.count, produced < limit {
            ids.append(symbols[index])
            produced += 1
            index = next[index]
        }
    }

    private func candidate(_ position: Int, _ left: Int32, _ right: Int32) -> MergeQueue.Entry? {
        guard let merge = merges[Self.pairKey(left, right)] else { return nil }
        return MergeQueue.Entry(rank: merge.rank, position: position, left: left, right: right, result: merge.result)
    }

    private static func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// Binary min-heap ordered by (rank, position).
    private struct MergeQueue {
        struct Entry {
            let rank: Int32
            let position: Int
            let left: Int32
            let right: Int32
            let result: Int32

            func precedes(_ other: Entry) -> Bool {
                rank != other.rank ? rank < other.rank : position < other.position
            }
        }

        private var heap: [Entry] = []

        mutating func push(_ entry: Entry?) {
            guard let entry else { return }
            heap.append(entry)
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard heap[child].precedes(heap[parent]) else { break }
                heap.swapAt(child, parent)
                child = parent
            }
        }

        mutating func pop() -> Entry? {
            guard let top = heap.first else { return nil }
            let last = heap.removeLast()
            if heap.isEmpty { return top }
            heap[0] = last
            var parent = 0
            while true {
                var best = parent
                for child in [2 * parent + 1, 2 * parent + 2] where child < heap.count && heap[child].precedes(heap[best]) {
                    best = child
                }
                if best == parent { return top }
                heap.swapAt(parent, best)
                parent = best
            }
        }
    }

    // MARK: Files

    /// GPT-2's reversible map from bytes to printable characters: printable Latin-1 bytes map to
    /// themselves, the other 68 bytes to U+0100 onwards in byte order.
    static func byteSymbols() -> [String] {
        var symbols: [String] = []
        var shifted: UInt32 = 256
        for byte in UInt32(0)...255 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            let code = printable ? byte : shifted
            if !printable { shifted += 1 }
            symbols.append(String(Character(Unicode.Scalar(code)!)))
        }
        return symbols
    }

    private static func readFile(_ path: String) throws(CLIPTokenizerError) -> Data {
        guard FileManager.default.fileExists(atPath: path) else { throw .missingFile(path: path) }
        do {
            return try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .unreadableFile(path: path, reason: error.localizedDescription)
        }
    }

    private static func readJSON(_ path: String) throws(CLIPTokenizerError) -> JSONValue {
        let data = try readFile(path)
        let result = data.withUnsafeBytes { raw in
            Result { () throws(JSONValue.ParseError) in try JSONValue.parse(raw.bindMemory(to: UInt8.self)) }
        }
        switch result {
        case let .success(value): return value
        case let .failure(error): throw .invalidJSON(path: path, reason: error.description)
        }
    }

    private static func readVocabulary(_ path: String) throws(CLIPTokenizerError) -> [String: Int32] {
        guard case let .object(members) = try readJSON(path) else {
            throw .invalidVocabulary(path: path, reason: "expected an object mapping tokens to ids")
        }
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(members.count)
        for (token, value) in members {
            guard case let .number(number) = value, number >= 0, number < Double(Int32.max), number.rounded() == number else {
                throw .invalidVocabulary(path: path, reason: "token '\(token)' has an id that is not a non-negative integer")
            }
            guard vocabulary.updateValue(Int32(number), forKey: token) == nil else {
                throw .invalidVocabulary(path: path, reason: "token '\(token)' appears more than once")
            }
        }
        return vocabulary
    }

    private static func readMerges(_ path: String, vocabulary: [String: Int32]) throws(CLIPTokenizerError) -> [UInt64: Merge] {
        let data = try readFile(path)
        guard let text = String(data: data, encoding: .utf8) else {
            throw .unreadableFile(path: path, reason: "not UTF-8 text")
        }
        var merges: [UInt64: Merge] = [:]
        var rank: Int32 = 0
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.isEmpty || (offset == 0 && line.hasPrefix("#version")) { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw .invalidMerge(path: path, line: offset + 1, reason: "expected two symbols separated by one space, got '\(line)'")
            }
            let merged = String(parts[0] + parts[1])
            guard let left = vocabulary[String(parts[0])], let right = vocabulary[String(parts[1])], let result = vocabulary[merged] else {
                throw .invalidMerge(path: path, line: offset + 1, reason: "'\(line)' uses or makes a symbol that is not in the vocabulary")
            }
            let key = pairKey(left, right)
            // A repeated pair keeps its first (best) rank.
            if merges[key] == nil { merges[key] = Merge(rank: rank, result: result) }
            rank += 1
        }
        return merges
    }

    private static func readConfiguration(_ path: String) throws(CLIPTokenizerError) -> (padToken: String?, maxLength: Int?) {
        guard case let .object(members) = try readJSON(path) else {
            throw .invalidConfiguration(path: path, reason: "expected a JSON object")
        }
        var padToken: String?
        var maxLength: Int?
        for (key, value) in members {
            switch (key, value) {
            case let ("pad_token", .string(token)):
                padToken = token
            case let ("pad_token", .object(fields)):
                guard let content = fields.first(where: { $0.key == "content" }), case let .string(token) = content.value else {
                    throw .invalidConfiguration(path: path, reason: "pad_token object has no string 'content'")
                }
                padToken = token
            case ("pad_token", .null):
                break
            case ("pad_token", _):
                throw .invalidConfiguration(path: path, reason: "pad_token must be a string")
            case let ("model_max_length", .number(number)):
                // transformers writes a huge sentinel when no limit is known; CLIP has 77 positions.
                if number >= 1e20 { continue }
                guard number.rounded() == number, (2...4096).contains(number) else {
                    throw .invalidConfiguration(path: path, reason: "model_max_length \(number) is not an integer in 2...4096")
                }
                maxLength = Int(number)
            default:
                continue
            }
        }
        return (padToken, maxLength)
    }
}
