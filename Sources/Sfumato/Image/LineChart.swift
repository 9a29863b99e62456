import Foundation

/// One panel of a line chart: values over their index, on a linear or logarithmic axis.
public struct ChartPanel: Sendable {
    public var title: String
    public var values: [Double]
    /// Plot log10 of the values (ticks still show the values themselves).
    public var logarithmic: Bool

    public init(title: String, values: [Double], logarithmic: Bool = false) {
        self.title = title
        self.values = values
        self.logarithmic = logarithmic
    }
}

/// Panels stacked under a title, sharing the x axis (the index of each value, labelled `xLabel`): axes,
/// grid, tick labels in the bitmap font, and each series as a line with a dot per value. Values that are
/// not finite (or not positive on a logarithmic axis) are left out.
public func lineChart(title: String, xLabel: String, panels: [ChartPanel]) throws(ImageError) -> RGBImage {
    guard !panels.isEmpty, let count = panels.map(\.values.count).max(), count >= 1, count <= 100_000 else {
        throw .badSize(width: 0, height: 0)
    }
    var canvas = ChartCanvas(width: 760, height: 36 + panels.count * ChartCanvas.panelStride + 24)
    canvas.text(title, left: 12, top: 10)
    let colors: [(UInt8, UInt8, UInt8)] = [(31, 90, 180), (200, 50, 40), (30, 140, 60), (130, 60, 160)]
    for (index, panel) in panels.enumerated() {
        canvas.panel(panel, top: 36 + index * ChartCanvas.panelStride, count: count, color: colors[index % colors.count])
    }
    canvas.text(xLabel, left: ChartCanvas.plotLeft + (ChartCanvas.plotWidth - LabelFont.width(of: xLabel)) / 2, top: canvas.height - 18)
    return try RGBImage(width: canvas.width, height: canvas.height, pixels: canvas.pixels)
}

/// An RGB drawing surface on white; every primitive clips to it.
struct ChartCanvas {
    static let plotLeft = 96, plotWidth = 640, plotHeight = 170, panelStride = 16 + 170 + 34
    let width: Int, height: Int
    var pixels: [UInt8]

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 255, count: width * height * 3)
    }

    mutating func set(_ x: Int, _ y: Int, _ color: (UInt8, UInt8, UInt8)) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let offset = (y * width + x) * 3
        pixels[offset] = color.0
        pixels[offset + 1] = color.1
        pixels[offset + 2] = color.2
    }

    /// In capitals (the font's lowercase t would stand out in words).
    mutating func text(_ text: String, left: Int, top: Int) {
        // The font draws without clipping: keep the whole label inside.
        guard left >= 0, top >= 0, left + LabelFont.width(of: text) <= width, top + LabelFont.height <= height else { return }
        LabelFont.draw(text.uppercased(), into: &pixels, imageWidth: width, left: left, top: top)
    }

    /// Bresenham's line, `thickness` pixels wide.
    mutating func line(from start: (Int, Int), to end: (Int, Int), color: (UInt8, UInt8, UInt8), thickness: Int = 1) {
        var (x, y) = start
        let dx = abs(end.0 - x), dy = -abs(end.1 - y)
        let sx = x < end.0 ? 1 : -1, sy = y < end.1 ? 1 : -1
        var error = dx + dy
        while true {
            for ox in 0..<thickness { for oy in 0..<thickness { set(x + ox, y + oy, color) } }
            if x == end.0 && y == end.1 { break }
            let doubled = 2 * error
            if doubled >= dy { error += dy; x += sx }
            if doubled <= dx { error += dx; y += sy }
        }
    }

    mutating func panel(_ panel: ChartPanel, top panelTop: Int, count: Int, color: (UInt8, UInt8, UInt8)) {
        text(panel.title, left: Self.plotLeft, top: panelTop)
        let top = panelTop + 16, left = Self.plotLeft, right = left + Self.plotWidth - 1, bottom = top + Self.plotHeight - 1
        let points = panel.values.enumerated().compactMap { index, value -> (Int, Double)? in
            let plotted = panel.logarithmic ? (value > 0 ? log10(value) : .nan) : value
            return plotted.isFinite ? (index, plotted) : nil
        }
        var low = points.map(\.1).min() ?? 0, high = points.map(\.1).max() ?? 1
        if high - low < 1e-12 { (low, high) = (low - 1, high + 1) }
        let pad = (high - low) * 0.05
        (low, high) = (low - pad, high + pad)
        let grid: (UInt8, UInt8, UInt8) = (225, 225, 225), axis: (UInt8, UInt8, UInt8) = (90, 90, 90)
        func yPixel(_ value: Double) -> Int { bottom - Int(((value - low) / (high - low) * Double(Self.plotHeight - 1)).rounded()) }
        func xPixel(_ index: Int) -> Int {
            count == 1 ? (left + right) / 2 : left + Int((Double(index) / Double(count - 1) * Double(Self.plotWidth - 1)).rounded())
        }
        for tick in 0...4 {
            let value = low + (high - low) * Double(tick) / 4
            let y = yPixel(value)
            line(from: (left, y), to: (right, y), color: grid)
            let label = String(format: "%.3g", panel.logarithmic ? pow(10, value) : value)
            text(label, left: left - 8 - LabelFont.width(of: label), top: y - LabelFont.height / 2)
        }
        let xTicks = Set([0, count - 1] + (1..<4).map { count > 4 ? $0 * (count - 1) / 4 : 0 })
        for index in xTicks.sorted() {
            let x = xPixel(index)
            line(from: (x, top), to: (x, bottom), color: grid)
            let label = String(index)
            text(label, left: x - LabelFont.width(of: label) / 2, top: bottom + 8)
        }
        line(from: (left, top), to: (left, bottom), color: axis)
        line(from: (left, bottom), to: (right, bottom), color: axis)
        for (previous, next) in zip(points, points.dropFirst()) {
            line(from: (xPixel(previous.0), yPixel(previous.1)), to: (xPixel(next.0), yPixel(next.1)), color: color, thickness: 2)
        }
        if points.count <= 200 {
            for point in points {
                let (x, y) = (xPixel(point.0), yPixel(point.1))
                for ox in -2...2 { for oy in -2...2 { set(x + ox, y + oy, color) } }
            }
        }
    }
}
