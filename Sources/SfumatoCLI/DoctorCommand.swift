import ArgumentParser
import Foundation
import Sfumato

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Print the version, the default model found, the BLAS core, threads and this machine's measured sgemm GFLOP/s."
    )

    @Option(help: "Matrix size of the sgemm probe (m = n = k).")
    var size = 2048

    func validate() throws {
        guard (64...8192).contains(size) else { throw ValidationError("--size must be between 64 and 8192") }
    }

    func run() throws {
        let info = BLASInfo.current()
        print("Sfumato:         \(SfumatoVersion.string)")
        print("Default model:   \((try? DefaultModel.path()) ?? "none found (searched \(DefaultModel.candidates().joined(separator: ", ")))")")
        print("OpenBLAS config: \(info.config)")
        print("OpenBLAS core:   \(info.coreName)\(info.coreNote)")
        print("CPU AVX-512:     \(info.cpuHasAVX512 ? "yes" : "no")")
        print("Threads:         \(info.threads) (GEMMs split over them; OpenBLAS runs single-threaded in each)")
        if let warning = info.warning { print(warning) }
        let gflops = SgemmProbe.gflops(size: size)
        print(String(format: "sgemm %dx%dx%d: %.1f GFLOP/s", size, size, size, gflops))
    }
}
