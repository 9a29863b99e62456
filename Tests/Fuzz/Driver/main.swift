import Foundation
import SfumatoFuzzTargets

// libFuzzer's driver behind our own entry point (SwiftPM gives an executable its own main, so the
// library's main is not linked): SFUMATO_FUZZ_TARGET names the target, libFuzzer reads the rest of
// the command line (corpus folders, -max_total_time=..., or input files to replay).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<CInt>,
                     _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
guard let name = ProcessInfo.processInfo.environment["SFUMATO_FUZZ_TARGET"], let target = FuzzTarget(rawValue: name) else {
    FileHandle.standardError.write(Data("set SFUMATO_FUZZ_TARGET to one of: \(names)\n".utf8))
    exit(2)
}
// The callback is a C function pointer and cannot capture: the target lives in a global.
nonisolated(unsafe) var selected = target
var argc = CommandLine.argc
var argv = CommandLine.unsafeArgv
exit(runFuzzerDriver(&argc, &argv) { data, size in
    selected.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
})
