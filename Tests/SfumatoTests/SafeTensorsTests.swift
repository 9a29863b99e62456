import Foundation
import Sfumato
import Testing

/// Hand-made files: every malformed header must end in its own typed error, never a trap.
@Suite struct SafeTensorsTests {
    static func write(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sfumato-\(UUID().uuidString).safetensors").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A file with the given header text and `dataBytes` bytes of data.
    static func file(header: String, dataBytes: [UInt8]) throws -> String {
        let json = Array(header.utf8)
        var bytes: [UInt8] = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(json.count) >> (8 * UInt64($0))) }
        bytes += json + dataBytes
        return try write(bytes)
    }

    static func open(_ path: String) -> Result<SafeTensorsFile, WeightError> {
        Result { () throws(WeightError) in try SafeTensorsFile(path: path) }
    }

    static func float32Bytes(_ values: [Float]) -> [UInt8] { values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }

    @Test func readsF32F16AndBF16() throws {
        let f32 = Self.float32Bytes([1, -2.5])
        let f16: [UInt8] = [0x00, 0x3C, 0x00, 0xC1]  // 1.0, -2.5
        let bf16: [UInt8] = [0x80, 0x3F, 0x20, 0xC0]  // 1.0, -2.5
        let header = #"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[1,2],"data_offsets":[8,12]},"c":{"dtype":"BF16","shape":[2],"data_offsets":[12,16]}}"#
        let file = try SafeTensorsFile(path: try Self.file(header: header, dataBytes: f32 + f16 + bf16))
        #expect(file.metadata == ["format": "pt"])
        #expect(file.names == ["a", "b", "c"])
        for name in ["a", "b", "c"] {
            #expect(try file.tensor(name).toArray() == [1, -2.5])
        }
        #expect(try file.tensor("b").shape == [1, 2])
    }

    @Test func rejectsFileShorterThanHeaderLength() throws {
        guard case .failure(.fileTooShort(_, 3)) = Self.open(try Self.write([1, 2, 3])) else { Issue.record("expected fileTooShort"); return }
    }

    @Test func rejectsHeaderLengthBeyondFile() throws {
        let path = try Self.write([200, 0, 0, 0, 0, 0, 0, 0] + Array("{}".utf8))
        guard case .failure(.headerBeyondFile) = Self.open(path) else { Issue.record("expected headerBeyondFile"); return }
    }

    @Test func rejectsHugeHeaderLength() throws {
        let path = try Self.write([0, 0, 0, 0, 0, 0, 0, 0x10] + Array("{}".utf8))
        guard case .failure(.headerTooLarge) = Self.open(path) else { Issue.record("expected headerTooLarge"); return }
    }

    @Test(arguments: [#"{"a":"#, #"[1,2]"#, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", String(repeating: "[", count: 10_000), "\u{0}"])
    func rejectsInvalidJSON(header: String) throws {
        guard case .failure(.invalidHeader) = Self.open(try Self.file(header: header, dataBytes: [0, 0, 0, 0])) else {
            Issue.record("expected invalidHeader for \(header.prefix(20))"); return
        }
    }

    @Test func rejectsUnknownDType() throws {
        let header = #"{"a":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}}"#
        guard case .failure(.unknownDType(_, "a", "F12")) = Self.open(try Self.file(header: header, dataBytes: [0, 0, 0, 0])) else {
            Issue.record("expected unknownDType"); return
        }
    }

    @Test func rejectsOffsetsOutsideBuffer() throws {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        guard case .failure(.offsetsOutOfBounds(_, "a", 0, 8, 4)) = Self.open(try Self.file(header: header, dataBytes: [0, 0, 0, 0])) else {
            Issue.record("expected offsetsOutOfBounds"); return
        }
    }

    /// A header that claims a 40 GB tensor in a small file is refused when the file is opened, before
    /// any tensor is read or memory set aside for it.
    @Test func refusesHugeTensorClaims() throws {
        let header = #"{"w":{"dtype":"F32","shape":[100000,100000],"data_offsets":[0,40000000000]}}"#
        guard case .failure(.offsetsOutOfBounds(_, "w", 0, 40_000_000_000, 16)) = Self.open(try Self.file(header: header, dataBytes: Array(repeating: 0, count: 16))) else {
            Issue.record("expected offsetsOutOfBounds"); return
        }
    }

    @Test func rejectsOverlappingTensors() throws {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        guard case .failure(.overlappingTensors) = Self.open(try Self.file(header: header, dataBytes: Array(repeating: 0, count: 8))) else {
            Issue.record("expected overlappingTensors"); return
        }
    }

    @Test func rejectsByteLengthMismatch() throws {
        let header = #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#
        guard case .failure(.byteLengthMismatch(_, "a", [3], "F32", 8)) = Self.open(try Self.file(header: header, dataBytes: Array(repeating: 0, count: 8))) else {
            Issue.record("expected byteLengthMismatch"); return
        }
        let overflowing = #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#
        guard case .failure(.byteLengthMismatch) = Self.open(try Self.file(header: overflowing, dataBytes: Array(repeating: 0, count: 8))) else {
            Issue.record("expected byteLengthMismatch on overflow"); return
        }
    }

    @Test func rejectsDuplicateNames() throws {
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        guard case .failure(.duplicateName(_, "a")) = Self.open(try Self.file(header: header, dataBytes: Array(repeating: 0, count: 8))) else {
            Issue.record("expected duplicateName"); return
        }
    }

    @Test func refusesIntegerTensorsAsWeights() throws {
        let header = #"{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#
        let file = try SafeTensorsFile(path: try Self.file(header: header, dataBytes: Array(repeating: 0, count: 8)))
        #expect(throws: WeightError.unsupportedDType(path: file.path, tensor: "ids", dtype: "I64")) { try file.tensor("ids") }
        #expect(throws: WeightError.missingTensor(path: file.path, tensor: "nope")) { try file.tensor("nope") }
    }

    @Test func missingFileIsAnError() {
        guard case .failure(.cannotOpen) = Self.open("/nonexistent/model.safetensors") else { Issue.record("expected cannotOpen"); return }
    }

    /// Random byte strings and random truncations of a valid file: errors allowed, traps not.
    @Test func survivesRandomBytes() throws {
        var generator = SystemRandomNumberGenerator()
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let valid = try Data(contentsOf: URL(fileURLWithPath: try Self.file(header: header, dataBytes: Self.float32Bytes([1, 2]))))
        for _ in 0..<300 {
            var bytes = Array(valid)
            bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator)))
            if !bytes.isEmpty, Bool.random(using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            if case let .success(file) = Self.open(try Self.write(bytes)) {
                for name in file.names { _ = try? file.tensor(name) }
            }
        }
    }
}
