// Digests depend on content only: the same data gives the same digest on any machine, at any
// time, in any write order; any change of content changes it; provenance never does.

import Foundation
import Testing
import Tensor
@testable import TensorStore

@Suite struct StoreDigestTests {
    @Test func tensorDigestMatchesTheDocumentedByteStreamHashedByCoreutils() throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        try SampleStore().write(to: folder.file("s.h5"))
        let reader = try TensorStoreReader(url: folder.file("s.h5"))
        let sample = SampleStore()

        var stream = Data("streamline.tensor.v1\nfloat32\n16,8\n".utf8)
        stream.append(Data(bytes: sample.embedding.data, count: sample.embedding.byteCount))
        #expect(try reader.info("embedding").digest == coreutilsSHA256(stream, in: folder))

        var ints = Data("streamline.tensor.v1\nint32\n2,3\n".utf8)
        ints.append(sample.tokens.withUnsafeBytes { Data($0) })
        #expect(try reader.info("data/tokens").digest == coreutilsSHA256(ints, in: folder))

        let scalar = Data("streamline.tensor.v1\nfloat32\n\n".utf8) + withUnsafeBytes(of: Float(2.5)) { Data($0) }
        #expect(try reader.info("scale").digest == coreutilsSHA256(scalar, in: folder))

        // The store digest is the documented text over kind, metadata and tensor digests.
        var text = "streamline.store.v1\nkind\tmodel\n"
        for key in reader.metadataKeys { text += "metadata\t\(key)\t\(try reader.metadataJSON(key))\n" }
        for info in reader.tensors { text += "tensor\t\(info.name)\t\(info.digest)\n" }
        #expect(reader.digest == (try coreutilsSHA256(Data(text.utf8), in: folder)))
    }

    @Test func sameContentSameDigestWhateverThePathTimeHostOrOrder() throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let first = try SampleStore().write(
            to: folder.file("a.h5"),
            provenance: StoreProvenance(toolVersion: "1", createdAt: Date(timeIntervalSince1970: 0), host: "one"))
        let second = try SampleStore().write(
            to: folder.file("sub/b.h5"),
            provenance: StoreProvenance(toolVersion: "2", createdAt: Date(), host: "two", command: ["other"]),
            reversed: true)
        #expect(first == second)
        #expect(try TensorStoreReader.digest(ofStoreAt: folder.file("a.h5")) == first)
        #expect(try TensorStoreReader.digest(ofStoreAt: folder.file("sub/b.h5")) == first)
    }

    @Test func anyContentChangeChangesTheDigest() throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        func digest(kind: String = "model", name: String = "w", values: [Float] = [1, 2, 3, 4],
                    shape: [Int] = [2, 2], note: String = "n") throws -> String {
            let writer = try TensorStoreWriter(url: folder.file("d.h5"), kind: kind)
            try writer.write(name, values, shape: shape)
            try writer.setMetadata("note", note)
            return try writer.commit()
        }
        let base = try digest()
        #expect(try digest() == base)
        let variants = [
            try digest(kind: "optimizer"),
            try digest(name: "v"),
            try digest(values: [1, 2, 3, 5]),
            try digest(shape: [4, 1]),
            try digest(note: "m"),
        ]
        #expect(Set(variants + [base]).count == variants.count + 1)
    }
}
