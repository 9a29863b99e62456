import Sfumato
import Testing

/// Softmax and the activations against PyTorch.
@Suite struct ActivationTests {
    @Test(arguments: ["softmax", "softmax_long"])
    func softmaxMatchesPyTorch(_ name: String) throws {
        let file = try Fixtures.file("ops/\(name).safetensors")
        expectClose(softmax(try file.tensor("x")), try file.tensor("out"), tolerance: 1e-5, name)
    }

    /// Relative error per row, so small rows cannot hide behind the largest value of the tensor.
    @Test func softmaxEveryRowAccurate() throws {
        let file = try Fixtures.file("ops/softmax.safetensors")
        let out = softmax(try file.tensor("x")), expected = try file.tensor("out")
        let length = out.shape[out.rank - 1]
        let rows = out.count / length
        for row in 0..<rows {
            let actualRow = out.reshaped([rows, length]).slice(row..<row + 1)
            let expectedRow = expected.reshaped([rows, length]).slice(row..<row + 1)
            expectClose(actualRow, expectedRow, tolerance: 1e-5, "softmax row \(row)")
        }
    }

    @Test(arguments: ["activations", "activations_sweep"])
    func activationsMatchPyTorch(_ name: String) throws {
        let file = try Fixtures.file("ops/\(name).safetensors")
        let x = try file.tensor("x")
        expectClose(silu(x), try file.tensor("silu"), tolerance: 1e-5, "silu \(name)")
        expectClose(gelu(x), try file.tensor("gelu"), tolerance: 1e-5, "gelu \(name)")
        expectClose(quickGELU(x), try file.tensor("quick_gelu"), tolerance: 1e-5, "quick_gelu \(name)")
    }

    @Test func gegluMatchesDiffusers() throws {
        let file = try Fixtures.file("ops/geglu.safetensors")
        expectClose(geglu(try file.tensor("x")), try file.tensor("out"), tolerance: 1e-5, "geglu")
    }

    /// Large inputs take the parallel path; every chunk must agree with the single-element result.
    @Test func largeInputsSplitAcrossChunks() {
        let count = 100_003
        let x = Tensor(shape: [count], values: (0..<count).map { Float($0 % 97) * 0.1 - 4.8 })
        let whole = silu(x)
        for index in [0, 16, 50_000, 99_999, count - 1] {
            let single = silu(Tensor(shape: [1], values: [x[flat: index]]))
            #expect(whole[flat: index] == single[flat: 0], "silu element \(index)")
        }
    }
}
