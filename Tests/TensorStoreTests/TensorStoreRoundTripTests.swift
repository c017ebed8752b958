// Writing then reading a store gives back every tensor bit for bit, with names, shapes, dtypes,
// metadata and provenance; external HDF5 tools can read what we write.

import Foundation
import Testing
import Tensor
@testable import TensorStore

@Suite struct TensorStoreRoundTripTests {
    @Test func everyDtypeShapeAndMetadataRoundTrips() throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let sample = SampleStore()
        let provenance = StoreProvenance(toolVersion: "9.9.9", host: "box", command: ["streamline", "x"],
                                         extra: ["stage": "import"])
        let committed = try sample.write(to: folder.file("s.h5"), provenance: provenance)

        let reader = try TensorStoreReader(url: folder.file("s.h5"))
        #expect(reader.kind == "model")
        #expect(reader.formatVersion == 1)
        #expect(reader.names == ["data/mask", "data/offsets", "data/tokens", "embedding",
                                 "layers/0/attn/wq", "layers/1/empty", "scale"])
        #expect(reader.digest == committed && reader.recordedDigest == committed)

        #expect(try reader.tensor("layers/0/attn/wq").array == sample.wq.array)
        #expect(try reader.tensor("layers/0/attn/wq").shape == [3, 4])
        #expect(try reader.tensor("embedding", expectedShape: [16, 8], verify: true).array == sample.embedding.array)
        let scalar = try reader.tensor("scale", verify: true)
        #expect(scalar.shape == [] && scalar.array == [2.5])
        let empty = try reader.tensor("layers/1/empty", verify: true)
        #expect(empty.shape == [0, 3] && empty.count == 0)

        let tokens = try reader.int32s("data/tokens", verify: true)
        #expect(tokens.values == sample.tokens && tokens.shape == [2, 3])
        #expect(try reader.values("data/offsets", as: Int64.self).values == sample.offsets)
        #expect(try reader.values("data/mask", as: UInt8.self, verify: true).values == sample.mask)

        let info = try reader.info("data/tokens")
        #expect(info.dtype == .int32 && info.byteCount == 24 && info.digest.count == 64)

        #expect(reader.metadataKeys == ["model_config", "note"])
        #expect(try reader.metadata("model_config", as: SampleConfig.self) == sample.config)
        #expect(try reader.metadata("note", as: String.self) == "hello")
        // Canonical JSON: sorted keys, no spaces, '/' and non-ASCII left as they are.
        let json = try reader.metadataJSON("model_config")
        #expect(json == #"{"eps":1e-05,"layers":2,"name":"toy","tags":["a/b","ü"],"width":8}"#, "\(json)")
        #expect(reader.provenance == provenance)
        try reader.verify()
    }

    @Test func readIntoExistingTensorAndConcurrentReaders() async throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let sample = SampleStore()
        try sample.write(to: folder.file("s.h5"))
        let reader = try TensorStoreReader(url: folder.file("s.h5"))
        let destination = Tensor(zeros: [16, 8])
        try reader.read("embedding", into: destination, verify: true)
        #expect(destination.array == sample.embedding.array)

        // Many tasks sharing one reader and opening others: the HDF5 lock keeps every read intact.
        let expected = sample.embedding.array
        let url = folder.file("s.h5")
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<16 {
                group.addTask {
                    let r = i.isMultiple(of: 2) ? reader : try TensorStoreReader(url: url)
                    try r.verify()
                    return try r.tensor("embedding").array == expected
                }
            }
            for try await same in group { #expect(same) }
        }
    }

    @Test func largeMetadataRoundTrips() throws {
        // A tokenizer's vocabulary and merges run to megabytes of JSON; attributes must hold that.
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let vocabulary = (0..<200_000).map { "token-\($0)-\(String(repeating: "x", count: $0 % 13))" }
        let writer = try TensorStoreWriter(url: folder.file("t.h5"), kind: "tokenizer")
        try writer.setMetadata("vocabulary", vocabulary)
        try writer.commit()
        let reader = try TensorStoreReader(url: folder.file("t.h5"))
        #expect(try reader.metadataJSON("vocabulary").utf8.count > 3_000_000)
        #expect(try reader.metadata("vocabulary", as: [String].self) == vocabulary)
    }

    @Test func commitCreatesMissingFoldersAndReplacesAnExistingStore() throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let url = folder.file("deep/er/s.h5")
        try SampleStore().write(to: url)
        let replacement = try TensorStoreWriter(url: url, kind: "metrics")
        try replacement.write("loss", [Float(1.5)], shape: [1])
        // Until commit, readers still see the old store.
        #expect(try TensorStoreReader(url: url).kind == "model")
        try replacement.commit()
        let reader = try TensorStoreReader(url: url)
        #expect(reader.kind == "metrics" && reader.names == ["loss"])
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/h5ls")))
    func h5lsListsEveryTensor() throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        try SampleStore().write(to: folder.file("s.h5"))
        let (status, listing) = try run("/usr/bin/h5ls", ["-r", folder.file("s.h5").path])
        #expect(status == 0)
        let lines = listing.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        #expect(lines.contains("/layers/0/attn/wq Dataset {3, 4}"))
        #expect(lines.contains("/embedding Dataset {16, 8}"))
        #expect(lines.contains("/data/tokens Dataset {2, 3}"))
        #expect(lines.contains("/scale Dataset {SCALAR}"))
        #expect(lines.contains("/layers/1/empty Dataset {0, 3}"))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/h5dump")))
    func h5dumpReadsValuesAndAttributes() throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        try SampleStore().write(to: folder.file("s.h5"))
        let (status, dump) = try run("/usr/bin/h5dump", ["-d", "/data/tokens", "-a", "/streamline.kind",
                                                          folder.file("s.h5").path])
        #expect(status == 0)
        #expect(dump.contains("5, -1, 2000000000") && dump.contains("0, 7, 9"))
        #expect(dump.contains("\"model\""))
    }
}
