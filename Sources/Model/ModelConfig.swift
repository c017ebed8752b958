// The decoder configuration: one Codable value that describes every model Streamline runs, LLaMA
// family (RMSNorm, RoPE, GQA, SwiGLU, no biases) and GPT-2/OPT family (LayerNorm with shift, learned
// positions, GELU/ReLU MLP, biases, tied embeddings). Widths are free to differ per layer and the hidden
// width need not equal heads × headDim, because pruning shrinks them independently.
//
// Canonical parameter names (the only place they are defined; importers map checkpoint names here):
//   embed/tokens            [V, C]
//   embed/positions         [maxPositions, C]                (learned positions only)
//   layers/{l}/attn_norm/scale, layers/{l}/attn_norm/shift    [C]  (shift: LayerNorm only)
//   layers/{l}/attn/wq [NH*HD, C], wk [NKV*HD, C], wv [NKV*HD, C], wo [C, NH*HD]
//   layers/{l}/attn/bq [NH*HD], bk [NKV*HD], bv [NKV*HD], bo [C]                 (biases only)
//   layers/{l}/mlp_norm/scale, layers/{l}/mlp_norm/shift      [C]
//   layers/{l}/mlp/w_gate [F, C] (SwiGLU only), w_up [F, C], w_down [C, F]
//   layers/{l}/mlp/b_up [F], b_down [C]                                            (biases only)
//   final_norm/scale, final_norm/shift  [C]
//   lm_head [V, C]                                            (absent when embeddings are tied)
//   layers/{l}/attn/shortcut, layers/{l}/mlp/shortcut [C, C]  (SliceGPT models only: `shortcuts`)
// Linear weights are row-major (out, in): y = x · Wᵀ + b.
// LoRA adapters live in a separate ParameterSet: `<weight name>/lora_a` [R, in], `<weight name>/lora_b` [out, R].

import Tensor

/// Which checkpoint family a config came from (decides import/export naming, nothing in the math).
public enum Architecture: String, Codable, Sendable, CaseIterable {
    case llama, gpt2, opt
}

/// Normalisation layer kind.
public enum NormKind: String, Codable, Sendable {
    /// x / sqrt(Σx²/D + ε) · scale
    case rmsnorm
    /// (x − μ) / sqrt(Σx²/D − μ² + ε) · scale + shift, μ = Σx/D
    case layernorm
}

/// MLP activation.
public enum Activation: String, Codable, Sendable {
    /// silu(x·W_gateᵀ) ⊙ (x·W_upᵀ), LLaMA.
    case swiglu
    /// GELU, tanh approximation (GPT-2's "gelu_new").
    case gelu
    /// ReLU (OPT).
    case relu
}

/// How token positions enter the model.
public enum PositionEncoding: String, Codable, Sendable {
    /// Rotary embeddings on q and k, rotate-half layout (HF LLaMA convention).
    case rope
    /// A learned [maxPositions, C] table added to the token embeddings.
    case learned
}

/// Attention and MLP widths of one layer (they may differ between layers after pruning).
public struct LayerShape: Codable, Sendable, Equatable {
    /// NH, query heads.
    public var heads: Int
    /// NKV, key/value heads; heads % kvHeads == 0.
    public var kvHeads: Int
    /// F, MLP inner width.
    public var ffn: Int
    public init(heads: Int, kvHeads: Int, ffn: Int) {
        self.heads = heads
        self.kvHeads = kvHeads
        self.ffn = ffn
    }
}

/// Everything needed to build a decoder and to read or write its parameters.
public struct ModelConfig: Codable, Sendable, Equatable {
    /// Checkpoint family, e.g. llama.
    public var architecture: Architecture
    /// V, vocabulary size, e.g. 49152.
    public var vocabSize: Int
    /// C, hidden (residual stream) width d, e.g. 576. Shrinks when hidden channels are pruned.
    public var hiddenSize: Int
    /// HD, per-head width, e.g. 64. Independent of hiddenSize.
    public var headDim: Int
    /// Per-layer head counts and MLP width; its count is L.
    public var layers: [LayerShape]
    /// Normalisation kind.
    public var norm: NormKind
    /// ε inside the norm's square root, e.g. 1e-5.
    public var normEps: Float
    /// D, the width norms divide by. Equals hiddenSize until pruning; pruned models keep the original
    /// width so that deleting channels that are exactly zero changes no output (design.md).
    public var normDivisor: Int
    /// MLP activation.
    public var activation: Activation
    /// Position encoding.
    public var positions: PositionEncoding
    /// RoPE base θ, e.g. 1e5 for SmolLM2 (ignored for learned positions).
    public var ropeTheta: Float
    /// Longest sequence the model accepts (size of the learned table; RoPE context limit).
    public var maxPositions: Int
    /// Whether linear layers have biases (GPT-2/OPT yes, LLaMA no).
    public var bias: Bool
    /// Whether the LM head reuses embed/tokens.
    public var tiedEmbeddings: Bool
    /// true: each residual connection carries a (C, C) matrix, mid = x·S_attnᵀ + attention, x' =
    /// mid·S_mlpᵀ + MLP (SliceGPT: each block's input lives in its own basis; Model/Slicing.swift).
    /// nil (absent) means identity connections; false is never stored, so the config of every other
    /// model encodes as before and keeps its store digest. Read it through `hasShortcuts`.
    public var shortcuts: Bool?

    public init(architecture: Architecture, vocabSize: Int, hiddenSize: Int, headDim: Int, layers: [LayerShape],
                norm: NormKind, normEps: Float, normDivisor: Int? = nil, activation: Activation,
                positions: PositionEncoding, ropeTheta: Float = 10_000, maxPositions: Int, bias: Bool,
                tiedEmbeddings: Bool, shortcuts: Bool = false) {
        self.architecture = architecture
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.headDim = headDim
        self.layers = layers
        self.norm = norm
        self.normEps = normEps
        self.normDivisor = normDivisor ?? hiddenSize
        self.activation = activation
        self.positions = positions
        self.ropeTheta = ropeTheta
        self.maxPositions = maxPositions
        self.bias = bias
        self.tiedEmbeddings = tiedEmbeddings
        self.shortcuts = shortcuts ? true : nil
    }

    /// A LLaMA-family config with identical layers.
    public static func llama(vocabSize: Int, hiddenSize: Int, layers: Int, heads: Int, kvHeads: Int,
                             headDim: Int? = nil, ffn: Int, ropeTheta: Float = 10_000, normEps: Float = 1e-5,
                             maxPositions: Int = 2048, tiedEmbeddings: Bool = true) -> ModelConfig {
        ModelConfig(architecture: .llama, vocabSize: vocabSize, hiddenSize: hiddenSize,
                    headDim: headDim ?? hiddenSize / heads,
                    layers: Array(repeating: LayerShape(heads: heads, kvHeads: kvHeads, ffn: ffn), count: layers),
                    norm: .rmsnorm, normEps: normEps, activation: .swiglu, positions: .rope,
                    ropeTheta: ropeTheta, maxPositions: maxPositions, bias: false, tiedEmbeddings: tiedEmbeddings)
    }

    /// A GPT-2-family config with identical layers (FFN 4·C unless given).
    public static func gpt2(vocabSize: Int, hiddenSize: Int, layers: Int, heads: Int, ffn: Int? = nil,
                            maxPositions: Int = 1024, normEps: Float = 1e-5, activation: Activation = .gelu,
                            architecture: Architecture = .gpt2) -> ModelConfig {
        ModelConfig(architecture: architecture, vocabSize: vocabSize, hiddenSize: hiddenSize, headDim: hiddenSize / heads,
                    layers: Array(repeating: LayerShape(heads: heads, kvHeads: heads, ffn: ffn ?? 4 * hiddenSize), count: layers),
                    norm: .layernorm, normEps: normEps, activation: activation, positions: .learned,
                    maxPositions: maxPositions, bias: true, tiedEmbeddings: true)
    }

    /// L, number of layers.
    public var layerCount: Int { layers.count }

    /// Whether every residual connection carries a (C, C) matrix (`shortcuts`).
    public var hasShortcuts: Bool { shortcuts == true }

    /// Every parameter's name and shape, in the canonical layout order.
    public var parameterSpecs: [ParameterSpec] {
        let C = hiddenSize, V = vocabSize, HD = headDim
        let hasShift = norm == .layernorm
        var specs: [ParameterSpec] = [ParameterSpec("embed/tokens", [V, C])]
        if positions == .learned { specs.append(ParameterSpec("embed/positions", [maxPositions, C])) }
        for (l, shape) in layers.enumerated() {
            let p = "layers/\(l)"
            let q = shape.heads * HD, kv = shape.kvHeads * HD, F = shape.ffn
            specs.append(ParameterSpec("\(p)/attn_norm/scale", [C]))
            if hasShift { specs.append(ParameterSpec("\(p)/attn_norm/shift", [C])) }
            specs += [ParameterSpec("\(p)/attn/wq", [q, C]), ParameterSpec("\(p)/attn/wk", [kv, C]),
                      ParameterSpec("\(p)/attn/wv", [kv, C]), ParameterSpec("\(p)/attn/wo", [C, q])]
            if bias {
                specs += [ParameterSpec("\(p)/attn/bq", [q]), ParameterSpec("\(p)/attn/bk", [kv]),
                          ParameterSpec("\(p)/attn/bv", [kv]), ParameterSpec("\(p)/attn/bo", [C])]
            }
            if hasShortcuts { specs.append(ParameterSpec("\(p)/attn/shortcut", [C, C])) }
            specs.append(ParameterSpec("\(p)/mlp_norm/scale", [C]))
            if hasShift { specs.append(ParameterSpec("\(p)/mlp_norm/shift", [C])) }
            if activation == .swiglu { specs.append(ParameterSpec("\(p)/mlp/w_gate", [F, C])) }
            specs += [ParameterSpec("\(p)/mlp/w_up", [F, C]), ParameterSpec("\(p)/mlp/w_down", [C, F])]
            if bias { specs += [ParameterSpec("\(p)/mlp/b_up", [F]), ParameterSpec("\(p)/mlp/b_down", [C])] }
            if hasShortcuts { specs.append(ParameterSpec("\(p)/mlp/shortcut", [C, C])) }
        }
        specs.append(ParameterSpec("final_norm/scale", [C]))
        if hasShift { specs.append(ParameterSpec("final_norm/shift", [C])) }
        if !tiedEmbeddings { specs.append(ParameterSpec("lm_head", [V, C])) }
        return specs
    }

    /// Total scalar parameters.
    public var parameterCount: Int { parameterSpecs.reduce(0) { $0 + $1.count } }
}
