import Foundation
import Sfumato
import Testing

/// The real vocabulary is derived by `make vocab` into .cache/clip-vocab (not committed).
private let realVocabulary = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent(".cache/clip-vocab")

/// Thrown (so the test fails, never skips) when the real vocabulary has not been derived.
private struct VocabularyMissing: Error, CustomStringConvertible {
    let path: String
    var description: String { "\(path) is missing: run `make vocab`" }
}

/// Loaded once: parsing 49408 tokens and 48894 merges is the slow part in debug builds.
private let sharedRealTokenizer = Result { try realTokenizer(configuration: nil) }

private func realTokenizer() throws -> CLIPTokenizer {
    try sharedRealTokenizer.get()
}

private func realTokenizer(configuration: URL?) throws -> CLIPTokenizer {
    let vocab = realVocabulary.appendingPathComponent("vocab.json")
    guard FileManager.default.fileExists(atPath: vocab.path) else { throw VocabularyMissing(path: vocab.path) }
    return try CLIPTokenizer(vocabularyURL: vocab, mergesURL: realVocabulary.appendingPathComponent("merges.txt"),
                             configurationDirectory: configuration)
}

private struct ReferenceCase: Decodable {
    let prompt: String
    let ids: [Int32]
}

private struct Reference: Decodable {
    let cases: [ReferenceCase]
    let pad_token_bang: [ReferenceCase]
}

private func reference() throws -> Reference {
    try JSONDecoder().decode(Reference.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tokenizer/ids.json"))))
}

/// A fresh directory holding the given files.
private func folder(_ files: [String: String]) throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sfumato-tokenizer-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    for (name, contents) in files {
        try contents.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }
    return directory
}

@Suite struct CLIPTokenizerTests {
    @Test func knownVector() throws {
        let ids = try realTokenizer().encode("a photo of an astronaut riding a horse on mars")
        #expect(ids.count == 77)
        #expect(Array(ids.prefix(12)) == [49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496, 49407])
        #expect(ids.dropFirst(12).allSatisfy { $0 == 49407 }, "SD 1.x pads with <|endoftext|>")
    }

    @Test func matchesTransformers() throws {
        let tokenizer = try realTokenizer()
        let cases = try reference().cases
        #expect(cases.count >= 20)
        for item in cases {
            let ids = tokenizer.encode(item.prompt)
            #expect(ids == item.ids, "prompt \(item.prompt.debugDescription)")
        }
    }

    @Test func padTokenFromConfiguration() throws {
        let configuration = try folder(["tokenizer_config.json": #"{"pad_token": {"content": "!", "lstrip": false}, "model_max_length": 77}"#])
        defer { try? FileManager.default.removeItem(at: configuration) }
        let tokenizer = try realTokenizer(configuration: configuration)
        #expect(tokenizer.padID == 0)
        for item in try reference().pad_token_bang {
            #expect(tokenizer.encode(item.prompt) == item.ids, "prompt \(item.prompt.debugDescription)")
        }
    }

    @Test func tokensForDisplay() throws {
        let tokens = try realTokenizer().tokens("Astronaut café")
        #expect(Array(tokens.prefix(4)) == ["<|startoftext|>", "astronaut</w>", "cafÃ©</w>", "<|endoftext|>"])
        #expect(tokens.count == 77)
    }

    @Test func concurrentUse() async throws {
        let tokenizer = try realTokenizer()
        let expected = tokenizer.encode("a photo of an astronaut")
        let results = await withTaskGroup(of: [Int32].self) { group in
            for _ in 0..<8 { group.addTask { tokenizer.encode("a photo of an astronaut") } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0 == expected })
    }

    // MARK: Hand-made vocabulary, independent of the real one

    /// ids: a 0, b 1, c 2, a</w> 3, b</w> 4, c</w> 5, ab 6, bc</w> 7, abc</w> 8, start 9, end 10.
    private static let tinyVocabulary = #"{"a": 0, "b": 1, "c": 2, "a</w>": 3, "b</w>": 4, "c</w>": 5, "ab": 6, "bc</w>": 7, "abc</w>": 8, "<|startoftext|>": 9, "<|endoftext|>": 10}"#

    private func tiny(merges: [String], config: String? = nil) throws -> (CLIPTokenizer, URL) {
        var files = ["vocab.json": Self.tinyVocabulary, "merges.txt": (["#version: 0.2"] + merges).joined(separator: "\n") + "\n"]
        files["tokenizer_config.json"] = config
        let directory = try folder(files)
        return (try CLIPTokenizer(directory: directory), directory)
    }

    @Test func mergeRankOrder() throws {
        // "b c</w>" ranked first: abc -> a + bc</w> -> abc</w>.
        let (first, firstFolder) = try tiny(merges: ["b c</w>", "a b", "a bc</w>"])
        defer { try? FileManager.default.removeItem(at: firstFolder) }
        #expect(Array(first.encode("ABC").prefix(3)) == [9, 8, 10])
        // "a b" ranked first: abc -> ab + c</w>, and no merge joins those.
        let (second, secondFolder) = try tiny(merges: ["a b", "b c</w>", "a bc</w>"])
        defer { try? FileManager.default.removeItem(at: secondFolder) }
        #expect(Array(second.encode("abc").prefix(4)) == [9, 6, 5, 10])
        // Bytes missing from the vocabulary become the unknown token (<|endoftext|>).
        #expect(Array(second.encode("d b").prefix(4)) == [9, 10, 4, 10])
    }

    @Test func truncationKeepsEnd() throws {
        let (tokenizer, directory) = try tiny(merges: [], config: #"{"model_max_length": 6}"#)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(tokenizer.maxLength == 6)
        #expect(tokenizer.encode("a b c a b c a") == [9, 3, 4, 5, 3, 10])
        #expect(tokenizer.encode("") == [9, 10, 10, 10, 10, 10])
    }

    @Test func fileErrorsNameTheFile() throws {
        let vocab = #"{"a": 0, "<|startoftext|>": 1, "<|endoftext|>": 2}"#
        let cases: [([String: String], (String) -> CLIPTokenizerError)] = [
            (["merges.txt": ""], { .missingFile(path: "\($0)/vocab.json") }),
            (["vocab.json": vocab], { .missingFile(path: "\($0)/merges.txt") }),
            (["vocab.json": "{\"a\": 0,", "merges.txt": ""], { .invalidJSON(path: "\($0)/vocab.json", reason: "expected a member name at byte 8") }),
            (["vocab.json": vocab, "merges.txt": "#version: 0.2\n\nonly\n"],
             { .invalidMerge(path: "\($0)/merges.txt", line: 3, reason: "expected two symbols separated by one space, got 'only'") }),
            (["vocab.json": vocab, "merges.txt": "a a\n"],
             { .invalidMerge(path: "\($0)/merges.txt", line: 1, reason: "'a a' uses or makes a symbol that is not in the vocabulary") }),
            (["vocab.json": vocab, "merges.txt": "", "tokenizer_config.json": #"{"pad_token": "!"}"#],
             { .invalidVocabulary(path: "\($0)/vocab.json", reason: "pad token '!' is not in the vocabulary") }),
            (["vocab.json": vocab, "merges.txt": "", "special_tokens_map.json": #"{"model_max_length": 1.5}"#],
             { .invalidConfiguration(path: "\($0)/special_tokens_map.json", reason: "model_max_length 1.5 is not an integer in 2...4096") }),
        ]
        for (files, expected) in cases {
            let directory = try folder(files)
            defer { try? FileManager.default.removeItem(at: directory) }
            #expect(throws: expected(directory.path)) { try CLIPTokenizer(directory: directory) }
        }
    }
}
