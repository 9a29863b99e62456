import Foundation
import Sfumato
import Testing

@Suite struct PNGTests {
    /// A fresh empty directory for one test.
    static func scratchDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sfumato-png-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func gradient(width: Int, height: Int) throws -> RGBImage {
        var pixels: [UInt8] = []
        for y in 0..<height {
            for x in 0..<width {
                pixels += [UInt8(x * 255 / (width - 1)), UInt8(y * 255 / (height - 1)), UInt8((x * 7 + y * 13) % 256)]
            }
        }
        return try RGBImage(width: width, height: height, pixels: pixels)
    }

    @Test func roundTripKeepsPixelsAndText() throws {
        let directory = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/out.png"
        let image = try Self.gradient(width: 37, height: 23)
        let text = [(key: "parameters", value: "a cat, 猫, 🐱\nSteps: 20"), (key: "Software", value: "Sfumato"),
                    (key: "latin", value: "café ×"), (key: "empty", value: "")]
        try writePNG(image, to: path, text: text)
        #expect(try readPNG(path: path) == image)
        #expect(try readPNGText(path: path) == Dictionary(uniqueKeysWithValues: text.map { ($0.key, $0.value) }))
        // Latin-1 values go in tEXt (one byte per character), others in iTXt as UTF-8.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(bytes.range(of: Data("tEXtlatin\0caf\u{E9} \u{D7}".unicodeScalars.map { UInt8($0.value) })) != nil)
        #expect(bytes.range(of: Data("iTXtparameters\0\0\0\0\0".utf8) + Data("a cat, 猫".utf8)) != nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["out.png"])
        // Writing again replaces the file.
        let second = try Self.gradient(width: 4, height: 3)
        try writePNG(second, to: path)
        #expect(try readPNG(path: path) == second)
        #expect(try readPNGText(path: path).isEmpty)
    }

    /// Gray, gray + alpha, palette (with tRNS, 4-bit), 2/8/16-bit, RGBA, interlaced: RGB with transparency over white.
    @Test func readsOtherColourTypesAsRGB() throws {
        let json = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("png/expected.json")))
        let expected = try #require(try JSONSerialization.jsonObject(with: json) as? [String: [String: Any]])
        #expect(expected.count == 11)
        for (name, entry) in expected.sorted(by: { $0.key < $1.key }) {
            let rgb = try #require(entry["rgb"] as? [Int]).map(UInt8.init)
            let reference = try RGBImage(width: try #require(entry["width"] as? Int), height: try #require(entry["height"] as? Int), pixels: rgb)
            let image = try readPNG(path: Fixtures.path("png/\(name)"))
            #expect(image == reference, "\(name)")
        }
    }

    /// `--resize`: Pillow's Lanczos resize (diffusers' VaeImageProcessor.resize) byte for byte, for both
    /// axes and each alone (Tests/Reference/fixtures_img2img.py).
    @Test func resizesAsPillowLanczos() throws {
        let source = try readPNG(path: Fixtures.path("img2img/resize_source.png"))
        #expect(source.width == 61 && source.height == 45)
        for (width, height) in [(56, 40), (56, 45), (61, 40)] {
            let expected = try readPNG(path: Fixtures.path("img2img/resize_\(width)x\(height).png"))
            let resized = try source.resized(width: width, height: height)
            let differing = zip(resized.pixels, expected.pixels).filter { $0 != $1 }.count
            #expect(resized.width == width && resized.height == height && differing == 0, "\(width)x\(height): \(differing) bytes differ from Pillow")
        }
        #expect(try source.resized(width: 61, height: 45) == source)
        #expect(throws: ImageError.badSize(width: 0, height: 8)) { try source.resized(width: 0, height: 8) }
    }

    static func readError(_ path: String) -> PNGError? {
        do {
            _ = try readPNG(path: path)
            return nil
        } catch {
            return error
        }
    }

    @Test func badFilesGiveErrors() throws {
        let directory = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = FileManager.default.createFile(atPath: directory + "/empty.png", contents: Data())
        _ = FileManager.default.createFile(atPath: directory + "/garbage.png", contents: Data((0..<500).map { UInt8($0 * 37 % 256) }))
        var signatureOnly = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        signatureOnly.append(contentsOf: [0, 0, 0, 13])
        _ = FileManager.default.createFile(atPath: directory + "/header.png", contents: signatureOnly)

        for name in ["empty.png", "garbage.png", "header.png"] {
            let error = Self.readError(directory + "/" + name)
            guard case .invalidPNG(let path, _) = error else {
                Issue.record("\(name): expected invalidPNG, got \(String(describing: error))")
                continue
            }
            #expect(path.hasSuffix(name))
        }
        for name in ["truncated.png", "bad_crc.png"] {
            let error = Self.readError(Fixtures.path("png/\(name)"))
            guard case .invalidPNG = error else {
                Issue.record("\(name): expected invalidPNG, got \(String(describing: error))")
                continue
            }
        }
        #expect(Self.readError(Fixtures.path("png/huge.png")) == .tooLarge(path: Fixtures.path("png/huge.png"), width: 100_000, height: 100_000))
        #expect(Self.readError(directory + "/missing.png") == .cannotRead(path: directory + "/missing.png", reason: "No such file or directory"))
        #expect(Self.readError(directory) == .cannotRead(path: directory, reason: "not a regular file"))
        #expect(throws: PNGError.self) { try readPNGText(path: directory + "/garbage.png") }
        #expect(throws: PNGError.self) { try readPNGText(path: Fixtures.path("png/bad_crc.png")) }
    }

    @Test func failedWritesLeaveNothing() throws {
        let directory = try Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let image = try Self.gradient(width: 8, height: 8)
        let missing = directory + "/no/such/dir/out.png"
        #expect(throws: PNGError.cannotWrite(path: missing, reason: "No such file or directory")) {
            try writePNG(image, to: missing)
        }
        // The target is a directory: the rename fails after the data was written.
        try FileManager.default.createDirectory(atPath: directory + "/taken.png", withIntermediateDirectories: false)
        #expect(throws: PNGError.self) { try writePNG(image, to: directory + "/taken.png") }
        for key in ["", String(repeating: "k", count: 80), " lead", "double  space", "tab\t", "emoji🐱"] {
            #expect(throws: PNGError.invalidTextKey(path: directory + "/k.png", key: key)) {
                try writePNG(image, to: directory + "/k.png", text: [(key: key, value: "v")])
            }
        }
        #expect(throws: PNGError.invalidTextValue(path: directory + "/v.png", key: "k")) {
            try writePNG(image, to: directory + "/v.png", text: [(key: "k", value: "a\0b")])
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["taken.png"])
    }

    @Test func decodedTensorMatchesDiffusersPostprocessing() throws {
        let file = try Fixtures.file("png/postprocess.safetensors")
        let decoded = try file.tensor("decoded")
        let expected = try file.tensor("pixels_hwc")
        let image = try RGBImage(decoded: decoded)
        #expect(image.width == 8 && image.height == 8)
        let mismatches = zip(image.pixels, expected.toArray()).filter { Float($0) != $1 }.count
        #expect(mismatches == 0, "\(mismatches) bytes differ from diffusers")
        #expect(try RGBImage(decoded: decoded.reshaped([3, 8, 8])) == image)
        // img2img direction: bytes -> [-1, 1], bit for bit.
        let tensor = image.normalizedTensor()
        let reference = try file.tensor("reencoded")
        #expect(tensor.shape == reference.shape)
        #expect(tensor.toArray() == reference.toArray())
    }

    @Test func rejectsBadShapes() {
        #expect(throws: ImageError.notAnImageTensor(shape: [2, 3, 4, 4])) { try RGBImage(decoded: Tensor(zeros: [2, 3, 4, 4])) }
        #expect(throws: ImageError.notAnImageTensor(shape: [4, 4, 4])) { try RGBImage(decoded: Tensor(zeros: [4, 4, 4])) }
        #expect(throws: ImageError.badSize(width: 0, height: 4)) { try RGBImage(width: 0, height: 4, pixels: []) }
        #expect(throws: ImageError.pixelCountMismatch(width: 2, height: 2, byteCount: 11)) {
            try RGBImage(width: 2, height: 2, pixels: [UInt8](repeating: 0, count: 11))
        }
    }
}
