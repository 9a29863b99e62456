import ArgumentParser
import Foundation
import Sfumato

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Print the 77 CLIP token ids of a prompt, as the text encoder receives them."
    )

    @Argument(help: "The prompt.")
    var prompt: String

    @Option(help: "A diffusers model folder (its tokenizer/ subfolder is used) or a tokenizer folder.")
    var model: String

    @Flag(help: "Also print the token strings.")
    var verbose = false

    func run() throws {
        let folder = URL(fileURLWithPath: model)
        let nested = folder.appendingPathComponent("tokenizer")
        let directory = FileManager.default.fileExists(atPath: nested.appendingPathComponent("vocab.json").path) ? nested : folder
        let tokenizer = try CLIPTokenizer(directory: directory)
        print(tokenizer.encode(prompt).map(String.init).joined(separator: " "))
        if verbose {
            print(tokenizer.tokens(prompt).joined(separator: " "))
        }
    }
}
