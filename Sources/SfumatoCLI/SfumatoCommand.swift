import ArgumentParser
import Sfumato

@main
struct SfumatoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sfumato",
        abstract: "Stable Diffusion on the CPU, through OpenBLAS.",
        subcommands: [GenerateCommand.self, TokenizeCommand.self, DoctorCommand.self, BenchOpsCommand.self, VerifyCommand.self]
    )
}
