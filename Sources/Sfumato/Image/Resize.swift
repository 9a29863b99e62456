import Foundation

extension RGBImage {
    /// The image resampled to `width` x `height` with a Lanczos-3 filter, as Pillow's
    /// `Image.resize(size, Image.LANCZOS)` does for RGB (what diffusers' VaeImageProcessor uses):
    /// separable, horizontal pass first with 8-bit rounding between the passes, 22-bit fixed-point
    /// weights, the filter widened by the scale when shrinking so every source pixel contributes.
    public func resized(width newWidth: Int, height newHeight: Int) throws(ImageError) -> RGBImage {
        guard (1...Self.maxSide).contains(newWidth), (1...Self.maxSide).contains(newHeight) else {
            throw .badSize(width: newWidth, height: newHeight)
        }
        if newWidth == width && newHeight == height { return self }
        let horizontal = LanczosWeights(inputSize: width, outputSize: newWidth)
        let vertical = LanczosWeights(inputSize: height, outputSize: newHeight)
        // Pillow's horizontal pass covers only the source rows the vertical pass reads.
        let firstRow = vertical.start[0]
        let lastRow = vertical.start[newHeight - 1] + vertical.count[newHeight - 1]
        var rows = pixels
        var rowsWidth = width, rowOffset = 0
        if newWidth != width {
            rows = [UInt8](repeating: 0, count: (lastRow - firstRow) * newWidth * 3)
            for y in firstRow..<lastRow {
                for x in 0..<newWidth {
                    for channel in 0..<3 {
                        rows[((y - firstRow) * newWidth + x) * 3 + channel] = horizontal.apply(at: x) { pixels[(y * width + $0) * 3 + channel] }
                    }
                }
            }
            rowsWidth = newWidth
            rowOffset = firstRow
        }
        guard newHeight != height else { return try RGBImage(width: newWidth, height: newHeight, pixels: rows) }
        var output = [UInt8](repeating: 0, count: newWidth * newHeight * 3)
        for y in 0..<newHeight {
            for x in 0..<newWidth {
                for channel in 0..<3 {
                    output[(y * newWidth + x) * 3 + channel] = vertical.apply(at: y) { rows[(($0 - rowOffset) * rowsWidth + x) * 3 + channel] }
                }
            }
        }
        return try RGBImage(width: newWidth, height: newHeight, pixels: output)
    }
}

/// Pillow's `precompute_coeffs` and `normalize_coeffs_8bpc` for one axis and the Lanczos filter.
private struct LanczosWeights {
    static let precisionBits = 22
    /// First source index and number of source pixels for each output pixel.
    var start: [Int] = []
    var count: [Int] = []
    /// Fixed-point weights, `stride` per output pixel.
    var weights: [Int] = []
    let stride: Int

    init(inputSize: Int, outputSize: Int) {
        let scale = Double(inputSize) / Double(outputSize)
        let filterScale = max(scale, 1)
        let support = 3 * filterScale
        stride = Int(support.rounded(.up)) * 2 + 1
        for index in 0..<outputSize {
            let center = (Double(index) + 0.5) * scale
            // Pillow truncates center -/+ support + 0.5 toward zero (C int casts).
            let low = max(Int(center - support + 0.5), 0)
            let high = min(Int(center + support + 0.5), inputSize)
            var row = (low..<high).map { Self.lanczos((Double($0) - center + 0.5) / filterScale) }
            let total = row.reduce(0, +)
            if total != 0 { row = row.map { $0 / total } }
            let unit = Double(1 << Self.precisionBits)
            let fixed = row.map { $0 < 0 ? Int(-0.5 + $0 * unit) : Int(0.5 + $0 * unit) }
            weights += fixed + [Int](repeating: 0, count: stride - fixed.count)
            start.append(low)
            count.append(high - low)
        }
    }

    static func lanczos(_ x: Double) -> Double {
        guard x >= -3, x < 3 else { return 0 }
        return sinc(x) * sinc(x / 3)
    }

    static func sinc(_ x: Double) -> Double {
        guard x != 0 else { return 1 }
        let angle = x * Double.pi
        return sin(angle) / angle
    }

    /// The weighted sum for output pixel `index` over source values, rounded and clipped to 8 bits.
    func apply(at index: Int, _ source: (Int) -> UInt8) -> UInt8 {
        var sum = 1 << (Self.precisionBits - 1)
        let base = index * stride
        for tap in 0..<count[index] { sum += Int(source(start[index] + tap)) * weights[base + tap] }
        return UInt8(min(max(sum >> Self.precisionBits, 0), 255))
    }
}
