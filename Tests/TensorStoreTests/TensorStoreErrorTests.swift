// What a damaged, foreign or misused store does: a typed error that names the file, tensor, shape
// or digest involved, never a crash and never an HDF5 error-stack dump on stderr.

import CHDF5
import Foundation
import Testing
import Tensor
@testable import TensorStore

@Suite(.serialized) struct TensorStoreErrorTests {
    /// Opening `url` must fail with an error for which `matches` holds.
    func expectOpenFails(_ url: URL, _ matches: (TensorStoreError) -> Bool,
                         sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try TensorStoreReader(url: url)
            Issue.record("opening \(url.lastPathComponent) succeeded", sourceLocation: sourceLocation)
        } catch let error as TensorStoreError {
            #expect(matches(error), "unexpected error: \(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("untyped error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func flippedDataBytesAreReportedAsADigestMismatchNamingTheTensor() throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let url = folder.file("s.h5")
        let sample = SampleStore()
        try sample.write(to: url)

        // Find the embedding's bytes in the file (contiguous layout) and flip one in the middle.
        var bytes = try Data(contentsOf: url)
        let pattern = Data(bytes: sample.embedding.data, count: sample.embedding.byteCount)
        let range = try #require(bytes.range(of: pattern))
        bytes[range.lowerBound + 100] ^= 0x40
        try bytes.write(to: url)

        let reader = try TensorStoreReader(url: url)
        let problems = try reader.verificationProblems()
        #expect(problems.count == 1)
        guard case .digestMismatch(_, let name, let recorded, let computed)? = problems.first else {
            Issue.record("expected a digest mismatch, got \(problems)")
            return
        }
        #expect(name == "embedding" && recorded != computed)
        #expect(throws: TensorStoreError.self) { try reader.verify() }
        #expect(throws: TensorStoreError.self) { try reader.tensor("embedding", verify: true) }
        // Other tensors still verify; unverified reads return the (damaged) data.
        #expect(try reader.tensor("layers/0/attn/wq", verify: true).array == sample.wq.array)
        #expect(try reader.tensor("embedding").array != sample.embedding.array)
        #expect("\(problems[0])".contains("'embedding'"))
    }

    @Test func brokenFilesGiveTypedErrorsWithoutAnHDF5StackDump() throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        try SampleStore().write(to: folder.file("good.h5"))
        let good = try Data(contentsOf: folder.file("good.h5"))
        try good.prefix(good.count / 2).write(to: folder.file("truncated.h5"))
        var rng = RNG(seed: 3)
        try Data((0..<10_000).map { _ in UInt8(truncatingIfNeeded: rng.nextUInt32()) }).write(to: folder.file("junk.h5"))
        try Data("name,value\nloss,1.5\n".utf8).write(to: folder.file("text.h5"))
        try Data().write(to: folder.file("empty.h5"))
        try writeForeignHDF5(folder.file("foreign.h5"))

        let stderrText = try capturingStderr {
            expectOpenFails(folder.file("missing.h5")) { if case .fileNotFound = $0 { true } else { false } }
            expectOpenFails(folder.url) { if case .notHDF5 = $0 { true } else { false } }
            expectOpenFails(folder.file("junk.h5")) { if case .notHDF5 = $0 { true } else { false } }
            expectOpenFails(folder.file("text.h5")) { if case .notHDF5 = $0 { true } else { false } }
            expectOpenFails(folder.file("empty.h5")) { if case .notHDF5 = $0 { true } else { false } }
            expectOpenFails(folder.file("truncated.h5")) {
                if case .unreadable(_, let detail) = $0 { detail.contains("truncated") } else { false }
            }
            expectOpenFails(folder.file("foreign.h5")) { if case .notAStore = $0 { true } else { false } }
            // The same from another thread: HDF5's error printing is switched off per thread.
            let done = DispatchSemaphore(value: 0)
            Thread {
                expectOpenFails(folder.file("truncated.h5")) { if case .unreadable = $0 { true } else { false } }
                expectOpenFails(folder.file("foreign.h5")) { if case .notAStore = $0 { true } else { false } }
                done.signal()
            }.start()
            done.wait()
        }
        #expect(stderrText.isEmpty, "stderr: \(stderrText)")
    }

    @Test func missingTensorsAndWrongShapesOrDtypesNameWhatIsThere() throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        try SampleStore().write(to: folder.file("s.h5"))
        let reader = try TensorStoreReader(url: folder.file("s.h5"))

        #expect(throws: TensorStoreError.missingTensor(
            path: reader.url.path, name: "layers/0/attn/wk", available: reader.names, suggestion: "layers/0/attn/wq")) {
            try reader.tensor("layers/0/attn/wk")
        }
        #expect(throws: TensorStoreError.missingTensor(
            path: reader.url.path, name: "lm_head", available: reader.names, suggestion: nil)) {
            try reader.tensor("lm_head")
        }
        #expect(throws: TensorStoreError.shapeMismatch(
            path: reader.url.path, name: "embedding", expected: [8, 16], found: [16, 8])) {
            try reader.tensor("embedding", expectedShape: [8, 16])
        }
        #expect(throws: TensorStoreError.shapeMismatch(
            path: reader.url.path, name: "embedding", expected: [16, 4], found: [16, 8])) {
            try reader.read("embedding", into: Tensor(zeros: [16, 4]))
        }
        #expect(throws: TensorStoreError.dtypeMismatch(
            path: reader.url.path, name: "data/tokens", expected: .float32, found: .int32)) {
            try reader.tensor("data/tokens")
        }
        #expect(throws: TensorStoreError.missingMetadata(
            path: reader.url.path, key: "tokenizer", available: ["model_config", "note"])) {
            try reader.metadata("tokenizer", as: String.self)
        }
        #expect(throws: TensorStoreError.self) { try reader.metadata("note", as: SampleConfig.self) }

        #expect(throws: TensorStoreError.wrongKind(path: reader.url.path, expected: "dataset", found: "model")) {
            try TensorStoreReader(url: folder.file("s.h5"), expectingKind: "dataset")
        }
        #expect(try TensorStoreReader(url: folder.file("s.h5"), expectingKind: "model").kind == "model")

        let message = "\(TensorStoreError.missingTensor(path: "m.h5", name: "x", available: ["a", "b"], suggestion: "a"))"
        #expect(message.contains("a, b") && message.contains("Did you mean 'a'?"))
    }

    @Test func badNamesAndConflictsAreRejectedAtWriteTime() throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let writer = try TensorStoreWriter(url: folder.file("n.h5"), kind: "model")
        let one = Tensor(zeros: [1])
        for bad in ["", "/a", "a/", "a//b", "a/../b", "./a", "a\tb", "a\nb"] {
            #expect(throws: TensorStoreError.self, "\(bad.debugDescription)") { try writer.write(bad, one) }
        }
        try writer.write("a/b", one)
        #expect(throws: TensorStoreError.self) { try writer.write("a/b", one) }
        #expect(throws: TensorStoreError.nameConflict(path: writer.url.path, name: "a", existing: "a/b")) {
            try writer.write("a", one)
        }
        #expect(throws: TensorStoreError.nameConflict(path: writer.url.path, name: "a/b/c", existing: "a/b")) {
            try writer.write("a/b/c", one)
        }
        #expect(throws: TensorStoreError.countMismatch(name: "ids", shape: [2, 2], count: 3)) {
            try writer.write("ids", [Int32(1), 2, 3], shape: [2, 2])
        }
        #expect(throws: TensorStoreError.self) { try writer.setMetadata("bad key", 1) }
        #expect(throws: TensorStoreError.self) { try TensorStoreWriter(url: folder.file("k.h5"), kind: "a/b") }
        // Rejected names leave the writer usable.
        try writer.write("a/c", one)
        try writer.commit()
        #expect(try TensorStoreReader(url: folder.file("n.h5")).names == ["a/b", "a/c"])
        #expect(throws: TensorStoreError.writerClosed(path: writer.url.path)) { try writer.write("d", one) }
        #expect(throws: TensorStoreError.writerClosed(path: writer.url.path)) { try writer.commit() }
    }

    @Test func abandonedOrFailedWritersLeaveNoFileBehind() throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let url = folder.file("s.h5")
        do {
            let writer = try TensorStoreWriter(url: url, kind: "model")
            try writer.write("w", Tensor(zeros: [4, 4]))
            #expect(try folder.contents().count == 1)   // only the hidden temporary file
            #expect(!FileManager.default.fileExists(atPath: url.path))
        }   // dropped without commit
        #expect(try folder.contents().isEmpty)

        func failingStage() throws {
            let writer = try TensorStoreWriter(url: url, kind: "model")
            try writer.write("w", Tensor(zeros: [4, 4]))
            try writer.write("ids", [Int32(1)], shape: [2])   // throws: 1 value for 2 elements
            try writer.commit()
        }
        #expect(throws: TensorStoreError.self) { try failingStage() }
        #expect(try folder.contents().isEmpty)

        let abandoned = try TensorStoreWriter(url: url, kind: "model")
        abandoned.abandon()
        abandoned.abandon()
        #expect(try folder.contents().isEmpty)
        #expect(throws: TensorStoreError.writerClosed(path: abandoned.url.path)) { try abandoned.commit() }
    }

    @Test func editsAfterCommitAreCaughtByTheStoreDigest() throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let url = folder.file("s.h5")
        let committed = try SampleStore().write(to: url)
        #expect(try TensorStoreReader.digest(ofStoreAt: url) == committed)

        // Change one metadata value in place, as a user with h5py might.
        let file = H5Fopen(url.path, streamline_h5f_acc_rdwr(), streamline_h5p_default())
        try #require(file >= 0)
        H5Adelete(file, "streamline.metadata.note")
        #expect(HDF5.writeStringAttribute(file, "streamline.metadata.note", #""edited""#))
        H5Fclose(file)

        let reader = try TensorStoreReader(url: url)
        #expect(reader.recordedDigest == committed && reader.digest != committed)
        #expect(try reader.verificationProblems() == [.storeDigestMismatch(path: reader.url.path, recorded: committed,
                                                                            computed: reader.digest)])
        #expect(throws: TensorStoreError.storeDigestMismatch(path: reader.url.path, recorded: committed,
                                                             computed: reader.digest)) {
            try TensorStoreReader.digest(ofStoreAt: url)
        }
    }

    @Test func aForeignMarkerWrittenAsAFixedLengthStringIsNamed() throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let url = folder.file("other.h5")
        try writeForeignHDF5(url)
        // h5py writes numpy bytes attributes as fixed-length strings; read those too.
        let file = H5Fopen(url.path, streamline_h5f_acc_rdwr(), streamline_h5p_default())
        try #require(file >= 0)
        let type = H5Tcopy(streamline_h5t_c_s1())
        H5Tset_size(type, 9)
        let space = H5Screate(H5S_SCALAR)
        let attribute = H5Acreate2(file, "streamline.format", type, space, streamline_h5p_default(), streamline_h5p_default())
        var text = Array("other-app".utf8)
        H5Awrite(attribute, type, &text)
        H5Aclose(attribute)
        H5Sclose(space)
        H5Tclose(type)
        H5Fclose(file)
        expectOpenFails(url) {
            if case .notAStore(_, let detail) = $0 { detail == "'streamline.format' is 'other-app'" } else { false }
        }
    }

    @Test func staleTemporaryFilesOfCrashedWritersAreRemovedAndLiveOnesKept() throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let live = try TensorStoreWriter(url: folder.file("live.h5"), kind: "model")
        try live.write("w", Tensor(zeros: [2]))
        let crashed = ".model.h5.tmp-4242-9f3ab"
        try Data("partial".utf8).write(to: folder.file(crashed))
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -2 * 86_400)],
                                              ofItemAtPath: folder.file(crashed).path)
        for keep in [".notes.tmp-x-1", "model.h5", ".model.h5.tmp-12-zz"] {
            try Data().write(to: folder.file(keep))
            try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -2 * 86_400)],
                                                  ofItemAtPath: folder.file(keep).path)
        }
        #expect(TensorStoreWriter.removeStaleTemporaryFiles(in: folder.url) == [crashed])
        #expect(try folder.contents() == [".model.h5.tmp-12-zz", ".notes.tmp-x-1", live.temporaryURL.lastPathComponent,
                                          "model.h5"].sorted())
        try live.commit()
    }

    /// An HDF5 file that Streamline did not write (one dataset, no store attributes).
    func writeForeignHDF5(_ url: URL) throws {
        let file = H5Fcreate(url.path, streamline_h5f_acc_trunc(), streamline_h5p_default(), streamline_h5p_default())
        try #require(file >= 0)
        var dims: [hsize_t] = [4]
        let space = H5Screate_simple(1, &dims, nil)
        let dataset = H5Dcreate2(file, "weights", streamline_h5t_ieee_f32le(), space, streamline_h5p_default(),
                                 streamline_h5p_default(), streamline_h5p_default())
        var values: [Float] = [1, 2, 3, 4]
        H5Dwrite(dataset, streamline_h5t_native_float(), streamline_h5s_all(), streamline_h5s_all(),
                 streamline_h5p_default(), &values)
        H5Dclose(dataset)
        H5Sclose(space)
        H5Fclose(file)
    }
}
