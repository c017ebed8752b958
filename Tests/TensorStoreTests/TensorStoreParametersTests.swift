// ParameterSets round-trip through stores under their canonical names, shape-checked on the way in.

import Foundation
import Testing
import Tensor
@testable import TensorStore

@Suite struct TensorStoreParametersTests {
    let specs = [ParameterSpec("embedding", [10, 4]), ParameterSpec("layers/0/attn/wq", [4, 4]),
                 ParameterSpec("layers/0/norm", [4]), ParameterSpec("final_norm", [4])]

    @Test func parameterSetRoundTripsUnderAPrefix() throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let parameters = ParameterSet(specs)
        parameters.values.assign(Tensor.randn([parameters.count], seed: 11))
        let writer = try TensorStoreWriter(url: folder.file("p.h5"), kind: "model")
        try writer.write(parameters: parameters, prefix: "model/")
        try writer.commit()

        let reader = try TensorStoreReader(url: folder.file("p.h5"))
        #expect(reader.names == ["model/embedding", "model/final_norm", "model/layers/0/attn/wq", "model/layers/0/norm"])
        let loaded = try reader.readParameters(specs, prefix: "model/", verify: true)
        #expect(loaded.values.array == parameters.values.array)
        #expect(loaded.value("layers/0/attn/wq").array == parameters.value("layers/0/attn/wq").array)
    }

    @Test func wrongShapesAndMissingNamesFailBeforeAnyDataIsRead() throws {
        let folder = try ScratchFolder()
        defer { folder.remove() }
        let parameters = ParameterSet(specs)
        parameters.values.assign(Tensor.randn([parameters.count], seed: 12))
        let writer = try TensorStoreWriter(url: folder.file("p.h5"), kind: "model")
        try writer.write(parameters: parameters)
        try writer.commit()
        let reader = try TensorStoreReader(url: folder.file("p.h5"))

        let narrower = [ParameterSpec("embedding", [10, 3]), ParameterSpec("final_norm", [4])]
        #expect(throws: TensorStoreError.shapeMismatch(path: reader.url.path, name: "embedding",
                                                       expected: [10, 3], found: [10, 4])) {
            try reader.readParameters(narrower)
        }
        let target = ParameterSet([ParameterSpec("final_norm", [4]), ParameterSpec("lm_head", [10, 4])])
        #expect(throws: TensorStoreError.self) { try reader.read(into: target) }
        // Checked first, so nothing was copied into the target.
        #expect(target.values.array.allSatisfy { $0 == 0 })
    }
}
