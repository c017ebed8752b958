// Stores and ParameterSets: write every parameter under its canonical name, and read a store back
// into a fresh ParameterSet with every name and shape checked before any data is read.

import Tensor

extension TensorStoreWriter {
    /// Writes the value of every parameter as `prefix + name`, in layout order (gradients are not stored).
    public func write(parameters: ParameterSet, prefix: String = "") throws {
        for spec in parameters.specs {
            try write(prefix + spec.name, parameters.value(spec.name))
        }
    }
}

extension TensorStoreReader {
    /// A new ParameterSet for `specs` filled from tensors `prefix + name` (gradients zero).
    /// Throws `missingTensor`, `shapeMismatch` or `dtypeMismatch` for the first spec that does not
    /// fit, before reading any data; with `verify`, re-hashes each tensor as it is read.
    public func readParameters(_ specs: [ParameterSpec], prefix: String = "", verify: Bool = false) throws -> ParameterSet {
        let parameters = ParameterSet(specs)
        try read(into: parameters, prefix: prefix, verify: verify)
        return parameters
    }

    /// Fills the values of an existing ParameterSet from tensors `prefix + name` (shape-checked first).
    public func read(into parameters: ParameterSet, prefix: String = "", verify: Bool = false) throws {
        for spec in parameters.specs {
            let info = try info(prefix + spec.name)
            guard info.dtype == .float32 else {
                throw TensorStoreError.dtypeMismatch(path: url.path, name: info.name, expected: .float32, found: info.dtype)
            }
            guard info.shape == spec.shape else {
                throw TensorStoreError.shapeMismatch(path: url.path, name: info.name, expected: spec.shape, found: info.shape)
            }
        }
        for spec in parameters.specs {
            try read(prefix + spec.name, into: parameters.value(spec.name), verify: verify)
        }
    }
}
