import CPNG
import Foundation

/// Why a PNG could not be read or written; every case names the file.
public enum PNGError: Error, Equatable, CustomStringConvertible {
    case cannotRead(path: String, reason: String)
    case cannotWrite(path: String, reason: String)
    case invalidPNG(path: String, reason: String)
    case tooLarge(path: String, width: Int, height: Int)
    case invalidTextKey(path: String, key: String)
    case invalidTextValue(path: String, key: String)

    public var description: String {
        switch self {
        case let .cannotRead(path, reason): "\(path): cannot read: \(reason)"
        case let .cannotWrite(path, reason): "\(path): cannot write: \(reason)"
        case let .invalidPNG(path, reason): "\(path): not a valid PNG: \(reason)"
        case let .tooLarge(path, width, height):
            "\(path): image is \(width)x\(height); each side may be at most \(RGBImage.maxSide)"
        case let .invalidTextKey(path, key):
            "\(path): text key '\(key)' must be 1-79 printable Latin-1 characters without leading, trailing or double spaces"
        case let .invalidTextValue(path, key): "\(path): text value for '\(key)' contains a NUL character"
        }
    }
}

/// Largest PNG file read into memory; a full-size 16384x16384 RGBA image is far below it.
private let maxPNGFileSize = 2 << 30

/// Writes `image` as an 8-bit RGB PNG with `text` as tEXt chunks (Latin-1 values) or iTXt chunks
/// (UTF-8, for values outside Latin-1), placed after IHDR.
/// The file appears atomically: the data goes to a temporary file in the target directory that is
/// renamed over `path`, so a failure leaves neither a partial file nor the temporary one.
public func writePNG(_ image: RGBImage, to path: String, text: [(key: String, value: String)] = []) throws(PNGError) {
    try writeAtomically(pngBytes(image, text: text, name: path), to: path)
}

/// The bytes `writePNG` writes, in memory (for servers: no file involved). Errors name `name`.
public func pngData(_ image: RGBImage, text: [(key: String, value: String)] = [], name: String = "PNG") throws(PNGError) -> [UInt8] {
    try pngBytes(image, text: text, name: name)
}

private func pngBytes(_ image: RGBImage, text: [(key: String, value: String)], name: String) throws(PNGError) -> [UInt8] {
    var chunks: [UInt8] = []
    for (key, value) in text {
        chunks += try PNGChunks.textChunk(key: key, value: value, path: name)
    }
    var encoded = try encodePNG(image, path: name)
    // The signature (8 bytes) and IHDR (4 + 4 + 13 + 4 bytes) come first in every PNG.
    encoded.insert(contentsOf: chunks, at: 33)
    return encoded
}

/// Reads any PNG (gray, gray + alpha, palette, RGB, RGBA; 1 to 16 bits; interlaced) as 8-bit RGB
/// through libpng's simplified API, which does the format conversions.
/// Transparency (an alpha channel or a palette's tRNS) is composited over white: a transparent
/// background reads as white paper, never as whatever colour its invisible pixels hold. (diffusers'
/// `load_image` drops alpha instead; flatten such images yourself to compare with it.)
/// 16-bit samples are rounded to 8 bits first (PIL truncates, so those may differ from PIL by one).
public func readPNG(path: String) throws(PNGError) -> RGBImage {
    try decodePNG(readFile(path), name: path)
}

/// `readPNG` for bytes in memory (an upload, a base64 field); errors name `name` where they name a path.
public func decodePNG(_ data: [UInt8], name: String) throws(PNGError) -> RGBImage {
    let path = name
    guard data.count <= maxPNGFileSize else { throw .cannotRead(path: path, reason: "\(data.count) bytes are too large") }
    // libpng keeps reading `data` until finish_read: both calls stay inside one withUnsafeBytes,
    // so the bytes cannot be freed (or reused) in between.
    let decoded: Result<(width: Int, height: Int, rgba: [UInt8]), PNGError> = data.withUnsafeBytes { bytes in
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        guard png_image_begin_read_from_memory(&image, bytes.baseAddress, bytes.count) != 0 else {
            return .failure(.invalidPNG(path: path, reason: libpngMessage(image)))
        }
        let width = Int(image.width), height = Int(image.height)
        guard width <= RGBImage.maxSide, height <= RGBImage.maxSide else {
            return .failure(.tooLarge(path: path, width: width, height: height))
        }
        // RGBA output keeps libpng from compositing (it would do so in linear light); we composite the
        // 8-bit values ourselves below, as image editors show a transparent image over white.
        // 16-bit files without gAMA/sRGB are taken as sRGB like every other image (libpng would assume
        // linear light and brighten them); PIL, which diffusers uses, keeps their values too.
        // (Set after begin_read, which clears the struct.)
        image.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
        image.format = UInt32(PNG_FORMAT_RGB | PNG_FORMAT_FLAG_ALPHA)
        var rgba = [UInt8](repeating: 0, count: width * height * 4)
        let finished = rgba.withUnsafeMutableBytes {
            png_image_finish_read(&image, nil, $0.baseAddress, Int32(width * 4), nil)
        }
        guard finished != 0 else { return .failure(.invalidPNG(path: path, reason: libpngMessage(image))) }
        return .success((width, height, rgba))
    }
    let (width, height, rgba) = try decoded.get()
    let pixels = [UInt8](unsafeUninitializedCapacity: width * height * 3) { rgb, initialized in
        for index in 0..<(width * height) {
            // (c * a + 255 * (255 - a)) / 255, rounded to nearest (an exact .5 cannot occur).
            let alpha = Int(rgba[index * 4 + 3])
            for channel in 0..<3 {
                rgb[index * 3 + channel] = UInt8((Int(rgba[index * 4 + channel]) * alpha + 255 * (255 - alpha) + 127) / 255)
            }
        }
        initialized = width * height * 3
    }
    do {
        return try RGBImage(width: width, height: height, pixels: pixels)
    } catch {
        throw .invalidPNG(path: path, reason: error.description)
    }
}

/// The uncompressed text chunks of a PNG: tEXt (Latin-1) and iTXt (UTF-8); compressed ones
/// (zTXt, compressed iTXt) are skipped. A key that appears twice keeps its last value.
public func readPNGText(path: String) throws(PNGError) -> [String: String] {
    try PNGChunks.text(in: readFile(path), path: path)
}

/// `readPNGText` for bytes in memory.
public func decodePNGText(_ data: [UInt8], name: String) throws(PNGError) -> [String: String] {
    try PNGChunks.text(in: data, path: name)
}

private func encodePNG(_ rgb: RGBImage, path: String) throws(PNGError) -> [UInt8] {
    var image = png_image()
    image.version = UInt32(PNG_IMAGE_VERSION)
    image.width = UInt32(rgb.width)
    image.height = UInt32(rgb.height)
    image.format = UInt32(PNG_FORMAT_RGB)
    defer { png_image_free(&image) }
    // zlib's worst case for stored blocks plus chunk overhead; libpng reports the exact need if short.
    let raw = rgb.height * (1 + rgb.width * 3)
    var capacity = raw + raw / 8 + raw / 64 + 4096
    for _ in 0..<2 {
        var output = [UInt8](repeating: 0, count: capacity)
        var size = png_alloc_size_t(capacity)
        let ok = rgb.pixels.withUnsafeBytes { pixels in
            output.withUnsafeMutableBytes { memory in
                png_image_write_to_memory(&image, memory.baseAddress, &size, 0, pixels.baseAddress,
                                          Int32(rgb.width * 3), nil)
            }
        }
        if ok != 0 {
            output.removeSubrange(Int(size)...)
            return output
        }
        guard Int(size) > capacity else { break }
        capacity = Int(size)
    }
    throw .cannotWrite(path: path, reason: "PNG encoding failed: \(libpngMessage(image))")
}

private func libpngMessage(_ image: png_image) -> String {
    withUnsafeBytes(of: image.message) { bytes in
        let text = bytes.prefix { $0 != 0 }
        return text.isEmpty ? "libpng gave no reason" : String(decoding: text, as: UTF8.self)
    }
}

private func errnoText() -> String { String(cString: strerror(errno)) }

private func readFile(_ path: String) throws(PNGError) -> [UInt8] {
    let descriptor = open(path, O_RDONLY)
    guard descriptor >= 0 else { throw .cannotRead(path: path, reason: errnoText()) }
    defer { close(descriptor) }
    var status = stat()
    guard fstat(descriptor, &status) == 0 else { throw .cannotRead(path: path, reason: errnoText()) }
    guard (status.st_mode & S_IFMT) == S_IFREG else { throw .cannotRead(path: path, reason: "not a regular file") }
    let size = Int(status.st_size)
    guard size <= maxPNGFileSize else { throw .cannotRead(path: path, reason: "file of \(size) bytes is too large") }
    var data = [UInt8](repeating: 0, count: size)
    var filled = 0
    while filled < size {
        let count = data.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + filled, size - filled) }
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else {
            throw .cannotRead(path: path, reason: count < 0 ? errnoText() : "file shrank while reading")
        }
        filled += count
    }
    return data
}

private func writeAtomically(_ data: [UInt8], to path: String) throws(PNGError) {
    let url = URL(fileURLWithPath: path)
    let directory = url.deletingLastPathComponent().path
    let temporary = "\(directory)/.\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL, 0o644)
    guard descriptor >= 0 else { throw .cannotWrite(path: path, reason: errnoText()) }
    var failure: String?
    var written = 0
    while written < data.count {
        let count = data.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, data.count - written) }
        if count < 0 && errno == EINTR { continue }
        guard count > 0 else {
            failure = errnoText()
            break
        }
        written += count
    }
    if failure == nil && fsync(descriptor) != 0 { failure = errnoText() }
    if close(descriptor) != 0 && failure == nil { failure = errnoText() }
    if failure == nil && rename(temporary, path) != 0 { failure = errnoText() }
    if let failure {
        unlink(temporary)
        throw .cannotWrite(path: path, reason: failure)
    }
}

/// PNG chunk framing for the text chunks libpng's simplified API does not handle.
enum PNGChunks {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    static func textChunk(key: String, value: String, path: String) throws(PNGError) -> [UInt8] {
        let keyScalars = key.unicodeScalars
        // PNG keywords: 1-79 Latin-1 printable characters, no leading, trailing or consecutive spaces.
        let printable = keyScalars.allSatisfy { (32...126).contains($0.value) || (161...255).contains($0.value) }
        guard printable, (1...79).contains(keyScalars.count), !key.hasPrefix(" "), !key.hasSuffix(" "),
              !key.contains("  ") else {
            throw .invalidTextKey(path: path, key: key)
        }
        guard !value.unicodeScalars.contains("\0") else { throw .invalidTextValue(path: path, key: key) }
        let keyBytes = keyScalars.map { UInt8($0.value) }
        if value.unicodeScalars.allSatisfy({ $0.value <= 255 }) {
            return chunk("tEXt", keyBytes + [0] + value.unicodeScalars.map { UInt8($0.value) })
        }
        // Keyword, NUL, uncompressed (0, 0), empty language tag and translated keyword, UTF-8 text.
        return chunk("iTXt", keyBytes + [0, 0, 0, 0, 0] + Array(value.utf8))
    }

    static func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
        let typeBytes = Array(type.utf8)
        return bigEndian(UInt32(body.count)) + typeBytes + body + bigEndian(crc32(typeBytes + body))
    }

    static func text(in data: [UInt8], path: String) throws(PNGError) -> [String: String] {
        guard data.count >= 8, Array(data[0..<8]) == signature else {
            throw .invalidPNG(path: path, reason: "missing PNG signature")
        }
        var result: [String: String] = [:]
        var offset = 8
        while offset < data.count {
            guard data.count - offset >= 12 else { throw .invalidPNG(path: path, reason: "truncated chunk at byte \(offset)") }
            let length = Int(readBigEndian(data, offset))
            let type = String(decoding: data[(offset + 4)..<(offset + 8)], as: UTF8.self)
            guard length <= data.count - offset - 12 else {
                throw .invalidPNG(path: path, reason: "chunk \(type) at byte \(offset) runs past the end of the file")
            }
            let body = Array(data[(offset + 8)..<(offset + 8 + length)])
            guard crc32(Array(data[(offset + 4)..<(offset + 8)]) + body) == readBigEndian(data, offset + 8 + length) else {
                throw .invalidPNG(path: path, reason: "CRC mismatch in chunk \(type) at byte \(offset)")
            }
            if let (key, value) = decodeText(type: type, body: body) { result[key] = value }
            if type == "IEND" { break }
            offset += 12 + length
        }
        return result
    }

    private static func decodeText(type: String, body: [UInt8]) -> (String, String)? {
        guard let keyEnd = body.firstIndex(of: 0) else { return nil }
        let key = String(String.UnicodeScalarView(body[..<keyEnd].map { Unicode.Scalar($0) }))
        switch type {
        case "tEXt":
            return (key, String(String.UnicodeScalarView(body[(keyEnd + 1)...].map { Unicode.Scalar($0) })))
        case "iTXt":
            // Compression flag and method, then NUL-terminated language tag and translated keyword.
            guard body.count >= keyEnd + 3, body[keyEnd + 1] == 0 else { return nil }
            var position = keyEnd + 3
            for _ in 0..<2 {
                guard let end = body[position...].firstIndex(of: 0) else { return nil }
                position = end + 1
            }
            return (key, String(decoding: body[position...], as: UTF8.self))
        default:
            return nil
        }
    }

    private static let crcTable: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 != 0 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes { crc = crcTable[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    private static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }

    private static func readBigEndian(_ data: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(data[offset]) << 24 | UInt32(data[offset + 1]) << 16 | UInt32(data[offset + 2]) << 8 | UInt32(data[offset + 3])
    }
}
