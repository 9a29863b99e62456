import ArgumentParser
import Foundation
import Sfumato

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the CLIP token ids of a prompt, as the text encoder receives them.",
        discussion: """
        The prompt is read in AUTOMATIC1111's syntax, as generate reads it: one line of 77 ids per chunk \
        of 75 tokens (a long prompt or BREAK makes more). --verbose adds each chunk's token strings and \
        the weights that (word:1.2), (word) and [word] give them.
        """
    )

    @Argument(help: "The prompt.")
    var prompt: String

    @Option(help: "A diffusers model folder (its tokenizer/ subfolder is used) or a tokenizer folder.")
    var model: String

    @Flag(help: "Also print the token strings and their weights.")
    var verbose = false

    func run() throws {
        let folder = URL(fileURLWithPath: model)
        let nested = folder.appendingPathComponent("tokenizer")
        let directory = FileManager.default.fileExists(atPath: nested.appendingPathComponent("vocab.json").path) ? nested : folder
        let tokenizer = try CLIPTokenizer(directory: directory)
        for chunk in try tokenizer.chunks(prompt) {
            print(chunk.ids.map(String.init).joined(separator: " "))
            if verbose {
                print(chunk.ids.map(tokenizer.tokenString).joined(separator: " "))
                print(chunk.weights.map { String(format: "%.4g", $0) }.joined(separator: " "))
            }
        }
    }
}
