import Foundation

/// Progress and messages on stderr: a redrawn bar on a terminal, plain lines otherwise, nothing when quiet.
final class StatusLine {
    let quiet: Bool
    let isTerminal = isatty(STDERR_FILENO) != 0
    private var drawing = false

    init(quiet: Bool) { self.quiet = quiet }

    func message(_ text: String) {
        guard !quiet else { return }
        finishProgress()
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    func progress(step: Int, total: Int, elapsed: Double, label: String) {
        guard !quiet else { return }
        let perStep = elapsed / Double(step)
        let eta = perStep * Double(total - step)
        let stats = String(format: "%d/%d  %.2f s/it  ETA %.0f s", step, total, perStep, eta)
        if isTerminal {
            let width = 30
            let filled = width * step / total
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            FileHandle.standardError.write(Data("\r\(label)[\(bar)] \(stats)\u{1B}[K".utf8))
            drawing = true
        } else {
            FileHandle.standardError.write(Data("\(label)step \(stats)\n".utf8))
        }
    }

    func finishProgress() {
        if drawing { FileHandle.standardError.write(Data("\n".utf8)) }
        drawing = false
    }
}
