// The model store: one tensor store of kind "model" holding everything needed to run a model on text —
// the architecture (`model_config` metadata), the weights under their canonical names, and the
// tokenizer. This file saves and loads it; it does not import checkpoints (GGUFImport, HFImport) or
// run the model (Decoder).
//
// The tokenizer's vocabulary and merges are far larger than an HDF5 attribute may hold (64 KiB), so
// they are stored as the uint8 tensor `tokenizer/record` (canonical JSON of `TokenizerRecord`); the
// small `tokenizer` metadata summarises it (digest, size, special ids) for `inspect`.

import Foundation
import Model
import Tensor
import TensorStore

/// The serialisable form of a `BPETokenizer`: exactly the fields its initializer takes.
public struct TokenizerRecord: Codable, Sendable, Equatable {
    public var tokens: [String]
    public var merges: [String]
    public var preTokenizer: PreTokenizerKind
    public var specialTokenIDs: [Int]
    public var bosID: Int?
    public var eosID: Int?
    public var unknownID: Int?
    /// Absent in stores written before it was recorded (decodes as nil = unknown); omitted when empty,
    /// so a tokenizer without conventions keeps its record bytes and store digest.
    public var conventions: TokenizerConventions?

    public init(_ tokenizer: BPETokenizer) {
        tokens = tokenizer.tokens
        merges = tokenizer.merges
        preTokenizer = tokenizer.preTokenizer
        specialTokenIDs = tokenizer.specialTokenIDs
        bosID = tokenizer.bosID
        eosID = tokenizer.eosID
        unknownID = tokenizer.unknownID
        conventions = tokenizer.conventions == TokenizerConventions() ? nil : tokenizer.conventions
    }

    /// Rebuilds the tokenizer; `path` names the store in errors.
    public func tokenizer(path: String) throws -> BPETokenizer {
        try BPETokenizer(tokens: tokens, merges: merges, preTokenizer: preTokenizer, specialTokenIDs: specialTokenIDs,
                         bosID: bosID, eosID: eosID, unknownID: unknownID, conventions: conventions ?? TokenizerConventions(), path: path)
    }
}

/// The `tokenizer` metadata of a model store: a summary for people and tools.
public struct TokenizerSummary: Codable, Sendable, Equatable {
    /// `BPETokenizer.digest`.
    public var digest: String
    public var vocabSize: Int
    public var preTokenizer: PreTokenizerKind
    public var bosID: Int?
    public var eosID: Int?

    enum CodingKeys: String, CodingKey {
        case digest, preTokenizer = "pre_tokenizer", vocabSize = "vocab_size", bosID = "bos_id", eosID = "eos_id"
    }
}

/// A model with its tokenizer, as read from or written to a model store.
public struct ModelStore {
    /// Store kind of model stores.
    public static let storeKind = "model"
    /// Name of the uint8 tensor holding the tokenizer record.
    static let tokenizerTensor = "tokenizer/record"
    /// Prefix of the weights inside the store.
    static let parameterPrefix = "params/"

    public var config: ModelConfig
    /// Values under the canonical names of `config.parameterSpecs`.
    public var parameters: ParameterSet
    public var tokenizer: BPETokenizer
    /// Free-form provenance recorded in the store's metadata `source` (e.g. the checkpoint's sha256);
    /// part of the store digest.
    public var source: [String: String]

    public init(config: ModelConfig, parameters: ParameterSet, tokenizer: BPETokenizer, source: [String: String] = [:]) {
        self.config = config
        self.parameters = parameters
        self.tokenizer = tokenizer
        self.source = source
    }

    /// Writes the store at `url` (atomically) and returns its digest. Throws when the tokenizer's
    /// vocabulary and the model's disagree in size.
    @discardableResult
    public func write(to url: URL) throws -> String {
        guard tokenizer.vocabSize == config.vocabSize else {
            throw DataError.malformed(format: "model store", path: url.path, at: "tokenizer",
                                      detail: "tokenizer has \(tokenizer.vocabSize) tokens, the model V = \(config.vocabSize); use the checkpoint's own tokenizer")
        }
        let writer = try TensorStoreWriter(url: url, kind: Self.storeKind)
        do {
            try writer.setMetadata("model_config", config)
            try writer.setMetadata("tokenizer", TokenizerSummary(
                digest: tokenizer.digest, vocabSize: tokenizer.vocabSize, preTokenizer: tokenizer.preTokenizer,
                bosID: tokenizer.bosID, eosID: tokenizer.eosID))
            try writer.setMetadata("source", source)
            let record = [UInt8](try CanonicalTokenizerJSON.encode(TokenizerRecord(tokenizer)))
            try writer.write(Self.tokenizerTensor, record, shape: [record.count])
            try writer.write(parameters: parameters, prefix: Self.parameterPrefix)
            return try writer.commit()
        } catch {
            writer.abandon()
            throw error
        }
    }

    /// Reads a model store: config, weights (shape-checked against the config) and tokenizer.
    public init(store url: URL, verify: Bool = false) throws {
        let reader = try TensorStoreReader(url: url, expectingKind: Self.storeKind)
        let config = try reader.metadata("model_config", as: ModelConfig.self)
        let parameters = try reader.readParameters(config.parameterSpecs, prefix: Self.parameterPrefix, verify: verify)
        let bytes = try reader.values(Self.tokenizerTensor, as: UInt8.self, verify: verify).values
        let record: TokenizerRecord
        do {
            record = try JSONDecoder().decode(TokenizerRecord.self, from: Data(bytes))
        } catch {
            throw DataError.malformed(format: "model store", path: url.path, at: Self.tokenizerTensor,
                                      detail: "\(error); rewrite the store with `streamline import`")
        }
        self.init(config: config, parameters: parameters, tokenizer: try record.tokenizer(path: url.path),
                  source: (try? reader.metadata("source", as: [String: String].self)) ?? [:])
    }

    /// The model ready to run (validates the parameters against the config).
    public func decoder() throws -> Decoder {
        try Decoder(config: config, parameters: parameters)
    }
}

/// JSON with sorted keys, so the same tokenizer always gives the same record bytes (store digests
/// are deterministic).
enum CanonicalTokenizerJSON {
    static func encode<T: Encodable>(_ value: T) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value)
    }
}

extension ModelStore {
    /// Imports a checkpoint: a `.gguf` file (GGUFImport) or a Hugging Face folder (HFImport). The
    /// store's `source` metadata records the format and `contentDigest(of:)` of the source, never
    /// its path, so importing the same bytes from anywhere gives the same store digest.
    public static func importCheckpoint(_ url: URL) throws -> ModelStore {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder) else {
            throw DataError.unreadable(path: url.path, detail: "no such file or folder; run make models or check the path")
        }
        let imported = isFolder.boolValue ? try HFImport.load(folder: url) : try GGUFImport.load(url: url)
        guard let tokenizer = imported.tokenizer else {
            throw DataError.unsupportedTokenizer(path: url.path, detail: "the checkpoint carries no tokenizer; a model store needs one")
        }
        return ModelStore(config: imported.config, parameters: imported.parameters, tokenizer: tokenizer,
                          source: ["format": isFolder.boolValue ? "hf" : "gguf", "sha256": try contentDigest(of: url)])
    }

    /// SHA-256 (hex) of a file's bytes; for a folder, of every regular file's relative path and
    /// bytes in sorted path order (FileDigest, as the planner hashes file parameters).
    public static func contentDigest(of url: URL) throws -> String {
        do {
            return try FileDigest.sha256(of: url.path)
        } catch {
            throw DataError.unreadable(path: error.path, detail: error.detail)
        }
    }
}
