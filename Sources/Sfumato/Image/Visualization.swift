import Foundation

/// Pictures of the diffusion process: latent channels as grayscale, contact sheets, PSNR.

/// Each channel of latents [1, C, h, w] as a grayscale image, stretched from its own minimum (black)
/// to its maximum (white) and enlarged `scale` times (nearest) so it lines up with the picture.
public func latentChannelImages(_ latents: Tensor, scale: Int = 1) throws(ImageError) -> [RGBImage] {
    guard latents.rank == 4, latents.shape[0] == 1, scale >= 1 else { throw .notAnImageTensor(shape: latents.shape) }
    let (channels, height, width) = (latents.shape[1], latents.shape[2], latents.shape[3])
    let values = latents.toArray()
    var images: [RGBImage] = []
    for channel in 0..<channels {
        let plane = values[(channel * height * width)..<((channel + 1) * height * width)]
        let low = plane.min() ?? 0, high = plane.max() ?? 0
        let range = high > low ? high - low : 1
        var pixels = [UInt8](repeating: 0, count: height * scale * width * scale * 3)
        for y in 0..<(height * scale) {
            for x in 0..<(width * scale) {
                let value = plane[plane.startIndex + (y / scale) * width + x / scale]
                let level = UInt8(((value - low) / range * 255).rounded())
                for component in 0..<3 { pixels[(y * width * scale + x) * 3 + component] = level }
            }
        }
        images.append(try RGBImage(width: width * scale, height: height * scale, pixels: pixels))
    }
    return images
}

/// Peak signal-to-noise ratio in dB over all 8-bit values, 10 log10(255^2 / MSE); infinite for equal images.
public func peakSignalToNoiseRatio(_ a: RGBImage, _ b: RGBImage) throws(ImageError) -> Double {
    guard a.width == b.width, a.height == b.height else { throw .badSize(width: b.width, height: b.height) }
    let squared = zip(a.pixels, b.pixels).reduce(0.0) { total, pair in
        let difference = Double(pair.0) - Double(pair.1)
        return total + difference * difference
    }
    let meanSquared = squared / Double(a.pixels.count)
    return meanSquared == 0 ? .infinity : 10 * log10(255 * 255 / meanSquared)
}

/// Images in a grid on white, `columns` wide, each with its label (digits, 't', '=', '.', '-' and
/// spaces in a small bitmap font) beneath it.
public func contactSheet(_ entries: [(label: String, image: RGBImage)], columns: Int) throws(ImageError) -> RGBImage {
    guard !entries.isEmpty, columns >= 1 else { throw .badSize(width: 0, height: 0) }
    let gap = 6, labelHeight = LabelFont.height + 6
    let cellWidth = entries.map { max($0.image.width, LabelFont.width(of: $0.label)) }.max() ?? 0
    let cellHeight = (entries.map(\.image.height).max() ?? 0) + labelHeight
    let rows = (entries.count + columns - 1) / columns
    let used = min(columns, entries.count)
    let width = gap + used * (cellWidth + gap), height = gap + rows * (cellHeight + gap)
    guard width <= RGBImage.maxSide, height <= RGBImage.maxSide else { throw .badSize(width: width, height: height) }
    var pixels = [UInt8](repeating: 255, count: width * height * 3)
    for (index, entry) in entries.enumerated() {
        let left = gap + (index % columns) * (cellWidth + gap), top = gap + (index / columns) * (cellHeight + gap)
        for y in 0..<entry.image.height {
            let source = y * entry.image.width * 3, target = ((top + y) * width + left) * 3
            pixels.replaceSubrange(target..<(target + entry.image.width * 3),
                                   with: entry.image.pixels[source..<(source + entry.image.width * 3)])
        }
        LabelFont.draw(entry.label, into: &pixels, imageWidth: width, left: left, top: top + entry.image.height + 4)
    }
    return try RGBImage(width: width, height: height, pixels: pixels)
}

/// A 3x5 bitmap font drawn at twice its size: enough for timestep labels such as "t=250".
enum LabelFont {
    static let scale = 2
    static let height = 5 * scale
    /// Rows top to bottom, three bits each (leftmost pixel in the high bit).
    static let glyphs: [Character: [UInt8]] = [
        "0": [7, 5, 5, 5, 7], "1": [2, 6, 2, 2, 7], "2": [7, 1, 7, 4, 7], "3": [7, 1, 7, 1, 7], "4": [5, 5, 7, 1, 1],
        "5": [7, 4, 7, 1, 7], "6": [7, 4, 7, 5, 7], "7": [7, 1, 1, 1, 1], "8": [7, 5, 7, 5, 7], "9": [7, 5, 7, 1, 7],
        "t": [2, 7, 2, 2, 3], "=": [0, 7, 0, 7, 0], ".": [0, 0, 0, 0, 2], "-": [0, 0, 7, 0, 0], " ": [0, 0, 0, 0, 0],
        // Capitals, which other letters are drawn with (plot titles and axis labels).
        "A": [2, 5, 7, 5, 5], "B": [6, 5, 6, 5, 6], "C": [3, 4, 4, 4, 3], "D": [6, 5, 5, 5, 6], "E": [7, 4, 6, 4, 7],
        "F": [7, 4, 6, 4, 4], "G": [3, 4, 5, 5, 3], "H": [5, 5, 7, 5, 5], "I": [7, 2, 2, 2, 7], "J": [1, 1, 1, 5, 2],
        "K": [5, 5, 6, 5, 5], "L": [4, 4, 4, 4, 7], "M": [5, 7, 7, 5, 5], "N": [6, 5, 5, 5, 5], "O": [2, 5, 5, 5, 2],
        "P": [6, 5, 6, 4, 4], "Q": [2, 5, 5, 6, 3], "R": [6, 5, 6, 5, 5], "S": [3, 4, 2, 1, 6], "T": [7, 2, 2, 2, 2],
        "U": [5, 5, 5, 5, 7], "V": [5, 5, 5, 5, 2], "W": [5, 5, 7, 7, 5], "X": [5, 5, 2, 5, 5], "Y": [5, 5, 2, 2, 2],
        "Z": [7, 1, 2, 4, 7], "+": [0, 2, 7, 2, 0], "(": [1, 2, 2, 2, 1], ")": [4, 2, 2, 2, 4], ",": [0, 0, 0, 2, 4],
        ":": [0, 2, 0, 2, 0], "/": [1, 1, 2, 4, 4], "_": [0, 0, 0, 0, 7],
    ]

    static func width(of text: String) -> Int { text.count * 4 * scale }

    static func draw(_ text: String, into pixels: inout [UInt8], imageWidth: Int, left: Int, top: Int) {
        for (position, character) in text.enumerated() {
            let rows = glyphs[character] ?? glyphs[Character(character.uppercased())] ?? glyphs[" "] ?? []
            for (row, bits) in rows.enumerated() {
                for column in 0..<3 where bits & (4 >> column) != 0 {
                    for dy in 0..<scale {
                        for dx in 0..<scale {
                            let x = left + (position * 4 + column) * scale + dx, y = top + row * scale + dy
                            let offset = (y * imageWidth + x) * 3
                            pixels[offset] = 0
                            pixels[offset + 1] = 0
                            pixels[offset + 2] = 0
                        }
                    }
                }
            }
        }
    }
}
