import Sfumato
import Testing

/// Layout ops against torch (Tests/Reference/fixtures_ops_a.py): pure data movement, so exact.
@Suite struct ShapeOpsTests {
    @Test func upsampleMatchesInterpolateNearest() throws {
        let file = try Fixtures.file("ops/shape_ops.safetensors")
        expectClose(upsampleNearest2x(try file.tensor("upsample.x")), try file.tensor("upsample.y"), tolerance: 0, "upsample")
    }

    @Test func concatMatchesTorchCat() throws {
        let file = try Fixtures.file("ops/shape_ops.safetensors")
        expectClose(concat([try file.tensor("cat1.a"), try file.tensor("cat1.b")], axis: 1), try file.tensor("cat1.y"), tolerance: 0, "cat axis 1")
        expectClose(concat([try file.tensor("cat0.a"), try file.tensor("cat0.b")], axis: 0), try file.tensor("cat0.y"), tolerance: 0, "cat axis 0")
        let last = try ["a", "b", "c"].map { try file.tensor("catlast.\($0)") }
        expectClose(concat(last, axis: -1), try file.tensor("catlast.y"), tolerance: 0, "cat axis -1")
    }

    @Test func tokenLayoutMatchesPermute() throws {
        let file = try Fixtures.file("ops/shape_ops.safetensors")
        let x = try file.tensor("tokens.x")
        let tokens = nchwToTokens(x)
        expectClose(tokens, try file.tensor("tokens.y"), tolerance: 0, "nchwToTokens")
        expectClose(tokensToNCHW(tokens, height: 9, width: 13), x, tolerance: 0, "round trip")
        expectClose(tokensToNCHW(try file.tensor("nchw.x"), height: 9, width: 13), try file.tensor("nchw.y"), tolerance: 0, "tokensToNCHW")
    }

    /// Sizes above the parallel grain, so the split work is checked too (against the serial definition).
    @Test func largeLayoutOpsSplitCorrectly() {
        var generator = SplitMix(seed: 3)
        let x = generator.tensor([2, 70, 33, 35])
        let up = upsampleNearest2x(x)
        let tokens = nchwToTokens(x)
        for (c, y, xx) in [(0, 0, 0), (69, 32, 34), (35, 17, 1), (1, 32, 0)] {
            for n in 0..<2 {
                let value = x[flat: ((n * 70 + c) * 33 + y) * 35 + xx]
                #expect(up[flat: ((n * 70 + c) * 66 + 2 * y + 1) * 70 + 2 * xx] == value)
                #expect(up[flat: ((n * 70 + c) * 66 + 2 * y) * 70 + 2 * xx + 1] == value)
                #expect(tokens[flat: (n * 33 * 35 + y * 35 + xx) * 70 + c] == value)
            }
        }
        #expect(tokensToNCHW(tokens, height: 33, width: 35).toArray() == x.toArray())
        let joined = concat([x, up.slice(0..<2).reshaped([2, 280, 33, 35])], axis: 1)
        #expect(joined.shape == [2, 350, 33, 35])
        #expect(Array(joined.slice(1..<2).buffer.prefix(70 * 33 * 35)) == Array(x.slice(1..<2).buffer))
    }
}

/// add, scaled and addPerChannel against torch broadcasting.
@Suite struct ElementwiseTests {
    @Test func elementwiseMatchesTorch() throws {
        let file = try Fixtures.file("ops/elementwise.safetensors")
        expectClose(add(try file.tensor("add.a"), try file.tensor("add.b")), try file.tensor("add.y"), tolerance: 0, "add")
        let factor = try #require(file.metadata["scale"].flatMap(Float.init))
        expectClose(scaled(try file.tensor("scaled.x"), by: factor), try file.tensor("scaled.y"), tolerance: 0, "scaled")
        expectClose(addPerChannel(try file.tensor("perchannel.x"), try file.tensor("perchannel.b")),
                    try file.tensor("perchannel.y"), tolerance: 0, "addPerChannel")
    }
}
