/// A prompt that the attention syntax cannot read; the message names the bad text.
public enum PromptError: Error, Equatable, CustomStringConvertible {
    /// `(text:1.2.3)`: the number after the colon is not one.
    case invalidWeight(String)

    public var description: String {
        switch self {
        case let .invalidWeight(text): "prompt: \"\(text)\" in (text:weight) is not a number"
        }
    }
}

/// A run of prompt text with its attention weight, as AUTOMATIC1111's `parse_prompt_attention` returns it.
public struct PromptSegment: Equatable, Sendable, CustomStringConvertible {
    public var text: String
    public var weight: Double

    public init(_ text: String, _ weight: Double) {
        self.text = text
        self.weight = weight
    }

    /// A `BREAK` keyword outside any bracket: the next text starts a new 75-token chunk. Inside
    /// brackets its weight is multiplied too and it is plain text, as in AUTOMATIC1111.
    public var isBreak: Bool { text == "BREAK" && weight == -1 }

    public var description: String { "(\"\(text)\", \(weight))" }
}

/// AUTOMATIC1111's prompt attention syntax:
///
/// - `(text)` multiplies the attention to `text` by 1.1, `[text]` divides it by 1.1; they nest.
/// - `(text:1.5)` multiplies it by 1.5 (a signed decimal number).
/// - `\(`, `\)`, `\[`, `\]`, `\\` are the literal characters; a backslash before anything else is dropped.
/// - A bracket that is never closed applies to the rest of the prompt; a closing one that was never
///   opened, and a `:` that does not end `(text:weight)`, are plain text.
/// - `BREAK` (upper case, as a word) outside brackets ends the current chunk.
///
/// Adjacent runs of equal weight are merged, so `a (b)(c)` gives `a ` at 1 and `bc` at 1.1.
/// Text is read scalar by scalar like Python's `re` reads a `str`.
public enum PromptParser {
    static let roundMultiplier = 1.1
    static let squareMultiplier = 1 / 1.1

    public static func parseAttention(_ prompt: String) throws(PromptError) -> [PromptSegment] {
        let scalars = Array(prompt.unicodeScalars)
        var result: [PromptSegment] = []
        var roundOpen: [Int] = []
        var squareOpen: [Int] = []

        func multiply(from start: Int, by factor: Double) {
            for index in start..<result.count { result[index].weight *= factor }
        }
        func appendPlain(_ text: ArraySlice<Unicode.Scalar>) {
            for (index, part) in splitAtBreaks(text).enumerated() {
                if index > 0 { result.append(PromptSegment("BREAK", -1)) }
                result.append(PromptSegment(string(part), 1))
            }
        }

        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            switch scalar {
            case "\\":
                // An escaped bracket or backslash is that character; a lone backslash is an empty match.
                if index + 1 < scalars.count, "()[]\\".unicodeScalars.contains(scalars[index + 1]) {
                    result.append(PromptSegment(String(Character(scalars[index + 1])), 1))
                    index += 2
                } else {
                    result.append(PromptSegment("", 1))
                    index += 1
                }
            case "(":
                roundOpen.append(result.count)
                index += 1
            case "[":
                squareOpen.append(result.count)
                index += 1
            case ":":
                if let (number, end) = weightSuffix(scalars, colon: index) {
                    if let start = roundOpen.popLast() {
                        guard let weight = pythonFloat(number) else { throw .invalidWeight(string(number)) }
                        multiply(from: start, by: weight)
                    } else {
                        appendPlain(scalars[index..<end])
                    }
                    index = end
                } else {
                    appendPlain(scalars[index..<index + 1])
                    index += 1
                }
            case ")":
                if let start = roundOpen.popLast() { multiply(from: start, by: roundMultiplier) } else { appendPlain(scalars[index..<index + 1]) }
                index += 1
            case "]":
                if let start = squareOpen.popLast() { multiply(from: start, by: squareMultiplier) } else { appendPlain(scalars[index..<index + 1]) }
                index += 1
            default:
                let start = index
                while index < scalars.count, !"\\()[]:".unicodeScalars.contains(scalars[index]) { index += 1 }
                appendPlain(scalars[start..<index])
            }
        }
        for start in roundOpen { multiply(from: start, by: roundMultiplier) }
        for start in squareOpen { multiply(from: start, by: squareMultiplier) }
        if result.isEmpty { return [PromptSegment("", 1)] }

        var merged: [PromptSegment] = [result[0]]
        for segment in result.dropFirst() {
            if merged[merged.count - 1].weight == segment.weight {
                merged[merged.count - 1].text += segment.text
            } else {
                merged.append(segment)
            }
        }
        return merged
    }

    /// `:` + optional sign + digits and dots + `)`, starting at `colon`: the number and the index after `)`.
    private static func weightSuffix(_ scalars: [Unicode.Scalar], colon: Int) -> (ArraySlice<Unicode.Scalar>, Int)? {
        var end = colon + 1
        if end < scalars.count, scalars[end] == "+" || scalars[end] == "-" { end += 1 }
        let digitsStart = end
        while end < scalars.count, scalars[end] == "." || isDecimalDigit(scalars[end]) { end += 1 }
        guard end > digitsStart, end < scalars.count, scalars[end] == ")" else { return nil }
        return (scalars[(colon + 1)..<end], end + 1)
    }

    /// Python's `float()` of a sign, decimal digits (any script, as `\d` matches) and dots.
    private static func pythonFloat(_ text: ArraySlice<Unicode.Scalar>) -> Double? {
        var ascii = ""
        for scalar in text {
            if scalar.isASCII {
                ascii.unicodeScalars.append(scalar)
            } else if let value = scalar.properties.numericValue {
                ascii += String(Int(value))
            }
        }
        // Double("1.") and Double(".5") parse as Python does; a lone "." or a second dot does not.
        return Double(ascii)
    }

    private static func isDecimalDigit(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.numericType == .decimal
    }

    /// `re.split(r"\s*\bBREAK\b\s*", text)`: the whitespace around each BREAK goes with it.
    private static func splitAtBreaks(_ text: ArraySlice<Unicode.Scalar>) -> [ArraySlice<Unicode.Scalar>] {
        let keyword = Array("BREAK".unicodeScalars)
        var parts: [ArraySlice<Unicode.Scalar>] = []
        var partStart = text.startIndex
        var search = text.startIndex
        while search + keyword.count <= text.endIndex {
            let candidate = search
            let isWordStart = candidate == text.startIndex || !isWordCharacter(text[candidate - 1])
            let after = candidate + keyword.count
            let isWordEnd = after == text.endIndex || !isWordCharacter(text[after])
            guard isWordStart, isWordEnd, text[candidate..<after].elementsEqual(keyword) else {
                search += 1
                continue
            }
            var matchStart = candidate
            while matchStart > partStart, isPythonSpace(text[matchStart - 1]) { matchStart -= 1 }
            var matchEnd = after
            while matchEnd < text.endIndex, isPythonSpace(text[matchEnd]) { matchEnd += 1 }
            parts.append(text[partStart..<matchStart])
            partStart = matchEnd
            search = matchEnd
        }
        parts.append(text[partStart..<text.endIndex])
        return parts
    }

    /// Python's `\w` for `str`: letters, numbers and the underscore (A1111's tag and BREAK rules use it).
    static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "_" { return true }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// Python's `\s` for `str`: Unicode white space plus the information separators U+001C-U+001F.
    private static func isPythonSpace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace || (0x1C...0x1F).contains(scalar.value)
    }

    private static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
