/// An 8-bit RGB image, rows top to bottom, pixels interleaved as R, G, B.
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes.
    public let pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) throws(ImageError) {
        guard (1...Self.maxSide).contains(width), (1...Self.maxSide).contains(height) else {
            throw .badSize(width: width, height: height)
        }
        guard pixels.count == width * height * 3 else {
            throw .pixelCountMismatch(width: width, height: height, byteCount: pixels.count)
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// Largest width or height accepted (reading and creating), far above any Stable Diffusion size.
    public static let maxSide = 16384

    /// The 8-bit image diffusers makes from a VAE output in [-1, 1], shape [3, H, W] or [1, 3, H, W]:
    /// `VaeImageProcessor.postprocess` (x * 0.5 + 0.5, clamped to [0, 1], in float32) and
    /// `numpy_to_pil` (`(v * 255).round()` with round-half-to-even, then uint8). NaN becomes 0.
    public init(decoded tensor: Tensor) throws(ImageError) {
        let shape = tensor.shape
        guard (shape.count == 3 && shape[0] == 3) || (shape.count == 4 && shape[0] == 1 && shape[1] == 3) else {
            throw .notAnImageTensor(shape: shape)
        }
        let height = shape[shape.count - 2], width = shape[shape.count - 1]
        let plane = width * height
        let source = tensor.pointer
        let pixels = [UInt8](unsafeUninitializedCapacity: plane * 3) { bytes, initialized in
            for channel in 0..<3 {
                let input = source + channel * plane
                for index in 0..<plane {
                    // Two separately rounded float ops, as torch's `images * 0.5 + 0.5`.
                    let half = input[index] * 0.5
                    var unit = half + 0.5
                    unit = unit > 1 ? 1 : unit
                    unit = unit >= 0 ? unit : 0  // also maps NaN to 0
                    bytes[index * 3 + channel] = UInt8((unit * 255).rounded(.toNearestOrEven))
                }
            }
            initialized = plane * 3
        }
        try self.init(width: width, height: height, pixels: pixels)
    }

    /// The [1, 3, H, W] tensor in [-1, 1] diffusers feeds img2img: `bytes / 255` in float32,
    /// then `2 * v - 1` (VaeImageProcessor.pil_to_numpy and normalize).
    public func normalizedTensor() -> Tensor {
        let plane = width * height
        let result = Tensor(uninitializedShape: [1, 3, height, width])
        let output = result.pointer
        pixels.withUnsafeBufferPointer { bytes in
            for channel in 0..<3 {
                for index in 0..<plane {
                    let unit = Float(bytes[index * 3 + channel]) / 255
                    output[channel * plane + index] = 2 * unit - 1
                }
            }
        }
        return result
    }
}

extension RGBImage {
    /// The [1, 1, H, W] inpainting mask diffusers' mask processor makes of this image: Pillow's
    /// `convert("L")` (ITU-R 601-2 luma in 16-bit fixed point), / 255 in float32, then 1 at 0.5 and
    /// above (redrawn), 0 below (kept).
    public func inpaintingMask() -> Tensor {
        let plane = width * height
        let result = Tensor(uninitializedShape: [1, 1, height, width])
        let output = result.pointer
        pixels.withUnsafeBufferPointer { bytes in
            for index in 0..<plane {
                let (red, green, blue) = (Int(bytes[index * 3]), Int(bytes[index * 3 + 1]), Int(bytes[index * 3 + 2]))
                let luma = (red * 19595 + green * 38470 + blue * 7471 + 0x8000) >> 16
                output[index] = Float(luma) / 255 < 0.5 ? 0 : 1
            }
        }
        return result
    }
}

public enum ImageError: Error, Equatable, CustomStringConvertible {
    case badSize(width: Int, height: Int)
    case pixelCountMismatch(width: Int, height: Int, byteCount: Int)
    case notAnImageTensor(shape: [Int])

    public var description: String {
        switch self {
        case let .badSize(width, height):
            "image size \(width)x\(height) is not allowed (each side must be 1...\(RGBImage.maxSide))"
        case let .pixelCountMismatch(width, height, byteCount):
            "\(byteCount) bytes cannot be a \(width)x\(height) RGB image (needs \(width * height * 3))"
        case let .notAnImageTensor(shape):
            "tensor of shape \(shape) is not an image; expected [3, H, W] or [1, 3, H, W]"
        }
    }
}
