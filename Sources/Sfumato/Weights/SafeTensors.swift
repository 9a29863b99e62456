import Foundation

/// Element types of the safetensors format.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", f8e5m2 = "F8_E5M2", f8e4m3 = "F8_E4M3"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32", f64 = "F64", i64 = "I64", u64 = "U64"

    public var byteSize: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: 1
        case .i16, .u16, .f16, .bf16: 2
        case .i32, .u32, .f32: 4
        case .f64, .i64, .u64: 8
        }
    }
}

/// Everything that can be wrong with a weight file or the tensors asked of it.
public enum WeightError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case fileTooShort(path: String, size: Int)
    case headerTooLarge(path: String, length: UInt64)
    case headerBeyondFile(path: String, length: UInt64, fileSize: Int)
    case invalidHeader(path: String, reason: String)
    case unknownDType(path: String, tensor: String, dtype: String)
    case offsetsOutOfBounds(path: String, tensor: String, begin: Int, end: Int, bufferSize: Int)
    case overlappingTensors(path: String, first: String, second: String)
    case byteLengthMismatch(path: String, tensor: String, shape: [Int], dtype: String, byteLength: Int)
    case duplicateName(path: String, tensor: String)
    case unsupportedDType(path: String, tensor: String, dtype: String)
    case missingTensor(path: String, tensor: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): "\(path): cannot open: \(reason)"
        case let .fileTooShort(path, size): "\(path): not a safetensors file: \(size) bytes, shorter than the 8-byte header length"
        case let .headerTooLarge(path, length): "\(path): header length \(length) bytes is above the 100 MB limit (corrupt file?)"
        case let .headerBeyondFile(path, length, fileSize): "\(path): header length \(length) runs past the end of the \(fileSize)-byte file (truncated or corrupt)"
        case let .invalidHeader(path, reason): "\(path): invalid header: \(reason)"
        case let .unknownDType(path, tensor, dtype): "\(path): tensor '\(tensor)' has unknown dtype '\(dtype)'"
        case let .offsetsOutOfBounds(path, tensor, begin, end, size): "\(path): tensor '\(tensor)' data_offsets [\(begin), \(end)] fall outside the \(size)-byte data buffer (truncated file?)"
        case let .overlappingTensors(path, first, second): "\(path): tensors '\(first)' and '\(second)' overlap in the data buffer"
        case let .byteLengthMismatch(path, tensor, shape, dtype, length): "\(path): tensor '\(tensor)' is \(length) bytes, but shape \(shape) of \(dtype) needs a different size"
        case let .duplicateName(path, tensor): "\(path): tensor name '\(tensor)' appears more than once"
        case let .unsupportedDType(path, tensor, dtype): "\(path): tensor '\(tensor)' has dtype \(dtype); only F32, F16 and BF16 weights are supported"
        case let .missingTensor(path, tensor): "\(path): no tensor named '\(tensor)'"
        }
    }
}

/// A memory map of a whole file, unmapped when the last user goes away. fp32 weights are used in
/// place (their pages are the file's page cache, shared by every process that maps the file).
/// The map is private and writable: a stray write copies one page for this process and can
/// neither reach the file nor fault.
final class MappedFile: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer

    init(path: String) throws(WeightError) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw .cannotOpen(path: path, reason: "not a regular file") }
        let size = Int(info.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw .cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    /// madvise over the pages of `range` (a part of `bytes`); advice is a hint, so failures
    /// (an older kernel without MADV_POPULATE_READ) are ignored.
    func advise(_ range: UnsafeRawBufferPointer, _ advice: Int32, wholePagesOnly: Bool = false) {
        guard let start = range.baseAddress, range.count > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let low = Int(bitPattern: start), high = low + range.count
        let first = wholePagesOnly ? (low + page - 1) / page * page : low / page * page
        let last = wholePagesOnly ? high / page * page : (high + page - 1) / page * page
        guard last > first else { return }
        _ = madvise(UnsafeMutableRawPointer(bitPattern: first), last - first, advice)
    }
}

/// A memory-mapped `.safetensors` file whose header has been fully validated.
public struct SafeTensorsFile: Sendable {
    public struct Entry: Sendable, Equatable {
        public let dtype: SafeTensorsDType
        public let shape: [Int]
        /// Byte range inside the data buffer.
        public let range: Range<Int>
    }

    public let path: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    private let file: MappedFile
    private let dataStart: Int

    /// The largest header the reference implementation accepts.
    static let maxHeaderLength: UInt64 = 100_000_000

    public var names: [String] { entries.keys.sorted() }

    public init(path: String) throws(WeightError) {
        self.path = path
        file = try MappedFile(path: path)
        let bytes = file.bytes
        guard bytes.count >= 8 else { throw .fileTooShort(path: path, size: bytes.count) }
        var length: UInt64 = 0
        for index in 0..<8 { length |= UInt64(bytes[index]) << (8 * UInt64(index)) }
        guard length <= Self.maxHeaderLength else { throw .headerTooLarge(path: path, length: length) }
        guard length <= UInt64(bytes.count - 8) else { throw .headerBeyondFile(path: path, length: length, fileSize: bytes.count) }
        dataStart = 8 + Int(length)
        let header = UnsafeBufferPointer(start: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + 8, count: Int(length))
        let json: JSONValue
        do { json = try JSONValue.parse(header) } catch { throw .invalidHeader(path: path, reason: error.description) }
        (entries, metadata) = try Self.validate(json, path: path, bufferSize: bytes.count - dataStart)
    }

    private static func validate(_ json: JSONValue, path: String, bufferSize: Int) throws(WeightError) -> ([String: Entry], [String: String]) {
        guard case let .object(members) = json else { throw .invalidHeader(path: path, reason: "the header is not a JSON object") }
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        var seenMetadata = false
        for (name, value) in members {
            if name == "__metadata__" {
                guard !seenMetadata else { throw .duplicateName(path: path, tensor: name) }
                seenMetadata = true
                guard case let .object(pairs) = value else { throw .invalidHeader(path: path, reason: "__metadata__ is not an object") }
                for (key, item) in pairs {
                    guard case let .string(text) = item else { throw .invalidHeader(path: path, reason: "__metadata__ value for '\(key)' is not a string") }
                    metadata[key] = text
                }
                continue
            }
            guard entries[name] == nil else { throw .duplicateName(path: path, tensor: name) }
            entries[name] = try entry(name, value, path: path, bufferSize: bufferSize)
        }
        // Sorted by start, each tensor must begin at or after the previous one's end.
        let ordered = entries.sorted { ($0.value.range.lowerBound, $0.value.range.upperBound, $0.key) < ($1.value.range.lowerBound, $1.value.range.upperBound, $1.key) }
        for (previous, next) in zip(ordered, ordered.dropFirst()) where next.value.range.lowerBound < previous.value.range.upperBound {
            throw .overlappingTensors(path: path, first: previous.key, second: next.key)
        }
        return (entries, metadata)
    }

    private static func entry(_ name: String, _ value: JSONValue, path: String, bufferSize: Int) throws(WeightError) -> Entry {
        guard case let .object(fields) = value else { throw .invalidHeader(path: path, reason: "entry '\(name)' is not an object") }
        func field(_ key: String) throws(WeightError) -> JSONValue {
            let matches = fields.filter { $0.key == key }
            guard matches.count == 1 else {
                throw .invalidHeader(path: path, reason: matches.isEmpty ? "tensor '\(name)' has no \(key)" : "tensor '\(name)' repeats \(key)")
            }
            return matches[0].value
        }
        func integers(_ key: String) throws(WeightError) -> [Int] {
            guard case let .array(items) = try field(key) else { throw .invalidHeader(path: path, reason: "tensor '\(name)' \(key) is not an array") }
            var result: [Int] = []
            for item in items {
                guard case let .number(number) = item, number >= 0, number < 9.0e15, number == number.rounded() else {
                    throw .invalidHeader(path: path, reason: "tensor '\(name)' \(key) holds a value that is not a non-negative integer")
                }
                result.append(Int(number))
            }
            return result
        }
        guard case let .string(dtypeName) = try field("dtype") else { throw .invalidHeader(path: path, reason: "tensor '\(name)' dtype is not a string") }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else { throw .unknownDType(path: path, tensor: name, dtype: dtypeName) }
        let shape = try integers("shape")
        let offsets = try integers("data_offsets")
        guard offsets.count == 2 else { throw .invalidHeader(path: path, reason: "tensor '\(name)' data_offsets must hold two numbers") }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end, end <= bufferSize else {
            throw .offsetsOutOfBounds(path: path, tensor: name, begin: begin, end: end, bufferSize: bufferSize)
        }
        var elements = 1
        for dimension in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw .byteLengthMismatch(path: path, tensor: name, shape: shape, dtype: dtypeName, byteLength: end - begin) }
            elements = product
        }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, bytes == end - begin else {
            throw .byteLengthMismatch(path: path, tensor: name, shape: shape, dtype: dtypeName, byteLength: end - begin)
        }
        return Entry(dtype: dtype, shape: shape, range: begin..<end)
    }

    /// The raw little-endian bytes of a tensor, valid while this file value lives.
    public func rawBytes(_ name: String) throws(WeightError) -> UnsafeRawBufferPointer {
        guard let entry = entries[name] else { throw .missingTensor(path: path, tensor: name) }
        return UnsafeRawBufferPointer(rebasing: file.bytes[(dataStart + entry.range.lowerBound)..<(dataStart + entry.range.upperBound)])
    }

    /// The tensor converted to Float32 (F32 copied; F16 and BF16 widened exactly).
    public func tensor(_ name: String) throws(WeightError) -> Tensor {
        guard let entry = entries[name] else { throw .missingTensor(path: path, tensor: name) }
        let source = try rawBytes(name)
        let count = entry.shape.reduce(1, *)
        if entry.dtype == .f32, count > 0, let base = source.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            // In place: map the pages now so the first denoising step does not fault them in one by one.
            file.advise(source, MADV_POPULATE_READ)
            let pointer = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Float.self))
            return Tensor(shape: entry.shape, storage: TensorStorage(borrowing: pointer, count: count, owner: file), offset: 0)
        }
        // Converted (or misaligned) tensors are copied; the file's pages are then dropped from this
        // process's resident set (they stay in the page cache).
        defer { file.advise(source, MADV_DONTNEED, wholePagesOnly: true) }
        let result = Tensor(uninitializedShape: entry.shape)
        let destination = result.pointer
        switch entry.dtype {
        case .f32:
            if count > 0 { UnsafeMutableRawPointer(destination).copyMemory(from: source.baseAddress!, byteCount: count * 4) }
        case .f16:
            Parallel.forEachChunk(count, grain: 1 << 16) { range in
                for index in range {
                    let bits = source.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)
                    destination[index] = Float(Float16(bitPattern: UInt16(littleEndian: bits)))
                }
            }
        case .bf16:
            Parallel.forEachChunk(count, grain: 1 << 16) { range in
                for index in range {
                    let bits = source.loadUnaligned(fromByteOffset: index * 2, as: UInt16.self)
                    destination[index] = Float(bitPattern: UInt32(UInt16(littleEndian: bits)) << 16)
                }
            }
        default:
            throw .unsupportedDType(path: path, tensor: name, dtype: entry.dtype.rawValue)
        }
        return result
    }
}
