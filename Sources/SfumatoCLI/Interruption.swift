import ArgumentParser
import Foundation
import Synchronization

/// Ctrl-C (SIGINT) or SIGTERM during a drawing command: the run stops after the current step and
/// exits with 130 without writing the image it was drawing, and removes its preview, so an interrupted
/// run leaves neither a partial output nor a temporary file. A second signal ends the process at once.
enum Interruption {
    private static let requested = Atomic<Bool>(false)

    static var isRequested: Bool { requested.load(ordering: .relaxed) }

    static func install() {
        for signal in [SIGINT, SIGTERM] {
            var action = sigaction()
            // Only an atomic store: all that is safe in a signal handler. SA_RESETHAND makes the next signal fatal.
            action.__sigaction_handler.sa_handler = { _ in Interruption.requested.store(true, ordering: .relaxed) }
            action.sa_flags = Int32(truncatingIfNeeded: SA_RESETHAND)
            sigemptyset(&action.sa_mask)
            sigaction(signal, &action, nil)
        }
    }

    /// The error a drawing command ends with once interrupted: exit code 130, as shells report SIGINT.
    static func stop(_ what: String) -> ExitCode {
        FileHandle.standardError.write(Data("interrupted: \(what)\n".utf8))
        return ExitCode(130)
    }
}
