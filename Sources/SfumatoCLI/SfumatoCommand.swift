import ArgumentParser
import Foundation
import Sfumato

@main
struct SfumatoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sfumato",
        abstract: "Stable Diffusion on the CPU, through OpenBLAS.",
        version: SfumatoVersion.string,
        subcommands: [GenerateCommand.self, ImageToImageCommand.self, InpaintCommand.self, NoiseCommand.self, LatentsCommand.self, ScheduleCommand.self, TokenizeCommand.self, DoctorCommand.self, BenchCommand.self, BenchOpsCommand.self, VerifyCommand.self, ServeCommand.self]
    )

    /// Exit codes as scripts expect them: 0 success, 1 a failed run (bad model, unwritable output),
    /// 2 a bad command line (ArgumentParser's own default for those is 64).
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            guard code == .validationFailure else { exit(withError: error) }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(2)
        }
    }
}
