/// Spatial tiles of [N, C, H, W] feature maps: cutting them out, blending their overlaps as diffusers'
/// tiled VAE decoding does, and writing them into a larger map.

/// x[:, :, rows, columns] as a new tensor.
public func spatialCrop(_ x: Tensor, rows: Range<Int>, columns: Range<Int>) -> Tensor {
    precondition(x.rank == 4 && rows.lowerBound >= 0 && rows.upperBound <= x.shape[2] && !rows.isEmpty
                 && columns.lowerBound >= 0 && columns.upperBound <= x.shape[3] && !columns.isEmpty,
                 "crop \(rows) x \(columns) of \(x.shape)")
    let (height, width) = (x.shape[2], x.shape[3])
    let out = Tensor(uninitializedShape: [x.shape[0], x.shape[1], rows.count, columns.count])
    for plane in 0..<x.shape[0] * x.shape[1] {
        let source = x.pointer + plane * height * width, target = out.pointer + plane * rows.count * columns.count
        for (row, sourceRow) in rows.enumerated() {
            (target + row * columns.count).update(from: source + sourceRow * width + columns.lowerBound, count: columns.count)
        }
    }
    return out
}

/// Which edge of a tile overlaps its neighbour.
public enum TileEdge: Sendable { case top, left }

/// diffusers' `blend_v` / `blend_h`: the first `extent` rows (top) or columns (left) of `tile` faded in
/// linearly from the last ones of `neighbour` (weight y / extent on the tile, in float32 as torch's scalar ops).
public func blendingEdge(_ tile: Tensor, from neighbour: Tensor, edge: TileEdge, extent requested: Int) -> Tensor {
    precondition(tile.rank == 4 && neighbour.rank == 4 && tile.shape[0] == neighbour.shape[0] && tile.shape[1] == neighbour.shape[1],
                 "blend \(tile.shape) with \(neighbour.shape)")
    let axis = edge == .top ? 2 : 3
    let extent = min(tile.shape[axis], neighbour.shape[axis], requested)
    let out = tile.copy()
    let (height, width) = (tile.shape[2], tile.shape[3])
    let (otherHeight, otherWidth) = (neighbour.shape[2], neighbour.shape[3])
    // The overlapping part along the other axis (neighbours of a row or column have the same size there).
    let across = edge == .top ? min(width, otherWidth) : min(height, otherHeight)
    for plane in 0..<tile.shape[0] * tile.shape[1] {
        let b = out.pointer + plane * height * width, a = neighbour.pointer + plane * otherHeight * otherWidth
        for offset in 0..<extent {
            let fraction = Double(offset) / Double(extent)
            let keep = Float(1 - fraction), take = Float(fraction)
            for position in 0..<across {
                if edge == .top {
                    let index = offset * width + position
                    b[index] = a[(otherHeight - extent + offset) * otherWidth + position] * keep + b[index] * take
                } else {
                    let index = position * width + offset
                    b[index] = a[position * otherWidth + otherWidth - extent + offset] * keep + b[index] * take
                }
            }
        }
    }
    return out
}

/// Writes tile[:, :, 0..<rows, 0..<columns] into `target` with its corner at (top, left).
func paste(_ tile: Tensor, into target: Tensor, top: Int, left: Int, rows: Int, columns: Int) {
    precondition(tile.rank == 4 && target.rank == 4 && tile.shape[0] == target.shape[0] && tile.shape[1] == target.shape[1]
                 && rows <= tile.shape[2] && columns <= tile.shape[3]
                 && top + rows <= target.shape[2] && left + columns <= target.shape[3], "paste \(tile.shape) into \(target.shape)")
    let (height, width) = (target.shape[2], target.shape[3])
    for plane in 0..<tile.shape[0] * tile.shape[1] {
        let source = tile.pointer + plane * tile.shape[2] * tile.shape[3], destination = target.pointer + plane * height * width
        for row in 0..<rows {
            (destination + (top + row) * width + left).update(from: source + row * tile.shape[3], count: columns)
        }
    }
}
