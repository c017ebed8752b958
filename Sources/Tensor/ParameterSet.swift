// Parameters planned in one place (llm.c style): every trainable tensor of a model is a named view
// into one flat value buffer, and its gradient is the view at the same offset in one flat gradient
// buffer. Optimisers walk the flat buffers; models and stores use the names.

/// The name and shape of one parameter tensor, e.g. `layers/3/attn/wq` with shape [NH*HD, C].
public struct ParameterSpec: Sendable, Hashable, Codable {
    public let name: String
    public let shape: [Int]
    public init(_ name: String, _ shape: [Int]) {
        self.name = name
        self.shape = shape
    }
    public var count: Int { shape.reduce(1, *) }
}

/// A fixed set of named parameters with gradients, each set in one allocation.
public final class ParameterSet: @unchecked Sendable {
    /// Parameters in layout order.
    public let specs: [ParameterSpec]
    /// All values, concatenated in layout order.
    public let values: Tensor
    /// All gradients, same layout as `values`.
    public let grads: Tensor
    /// Start of each parameter inside the flat buffers.
    public let offsets: [Int]
    private let indexByName: [String: Int]

    /// Allocates zeroed values and gradients for `specs` (names must be unique).
    public init(_ specs: [ParameterSpec]) {
        var offsets: [Int] = []
        var index: [String: Int] = [:]
        var total = 0
        for (i, spec) in specs.enumerated() {
            precondition(index[spec.name] == nil, "ParameterSet: duplicate parameter name \(spec.name)")
            index[spec.name] = i
            offsets.append(total)
            total += spec.count
        }
        self.specs = specs
        self.offsets = offsets
        self.indexByName = index
        self.values = Tensor(zeros: [total])
        self.grads = Tensor(zeros: [total])
    }

    /// Total number of scalar parameters.
    public var count: Int { values.count }
    /// Parameter names in layout order.
    public var names: [String] { specs.map(\.name) }

    public func contains(_ name: String) -> Bool { indexByName[name] != nil }

    /// Position of `name` in `specs`, if present.
    public func index(of name: String) -> Int? { indexByName[name] }

    /// The value view of parameter `name` (precondition: it exists).
    public func value(_ name: String) -> Tensor {
        guard let i = indexByName[name] else { preconditionFailure("ParameterSet: no parameter named \(name)") }
        return Tensor(storage: values.storage, offset: values.offset + offsets[i], shape: specs[i].shape)
    }

    /// The gradient view of parameter `name` (precondition: it exists).
    public func grad(_ name: String) -> Tensor {
        guard let i = indexByName[name] else { preconditionFailure("ParameterSet: no parameter named \(name)") }
        return Tensor(storage: grads.storage, offset: grads.offset + offsets[i], shape: specs[i].shape)
    }

    /// Sets every gradient to zero (backward passes accumulate).
    public func zeroGrads() { grads.zero() }
}
