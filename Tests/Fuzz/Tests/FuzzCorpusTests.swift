import Foundation
import SfumatoFuzzTargets
import Testing

/// The seed corpus and every input a fuzzer once crashed on (Tests/Fuzz/Corpus/TARGET), replayed through
/// the fuzz targets without instrumentation: a trap in any of them takes the test run down.
@Suite struct FuzzCorpusTests {
    @Test(arguments: FuzzTarget.allCases)
    func corpusRunsWithoutTrapping(_ target: FuzzTarget) throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: target.corpus.path).sorted()
        #expect(!files.isEmpty, "no seed inputs in \(target.corpus.path)")
        for file in files {
            target.run(Array(try Data(contentsOf: target.corpus.appendingPathComponent(file))))
        }
    }
}
