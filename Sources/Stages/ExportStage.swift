// `export`: a model store -> what a Hugging Face folder holds (HFExport, the same conversion as
// `streamline export --format hf`), cached as a store like every stage output; and
// `ExportFolders.materialize`, which `streamline run` calls after a run to write each export node's
// `destination` folder from its cached store (a cache hit included: a missing or edited folder is
// written again). The folder is not the stage's output because a cache entry must be content
// addressed and relocatable, and a destination is a place.
//
// Store layout (kind `hf_folder`): every weight as float32 under `safetensors/<HF name>` (norm scales
// already rescaled for pruned widths), metadata `safetensors_order` (the names in file order, so the
// folder's model.safetensors is byte-identical to `streamline export`'s), and config.json and
// tokenizer.json as their exact bytes in uint8 tensors `files/config.json`, `files/tokenizer.json`:
// tensors rather than metadata because tokenizer.json runs to megabytes (49k tokens and merges) and
// metadata lives in HDF5 attributes, which the store's default object headers cap at 64 KB.

import Data
import Foundation
import Pipeline
import TensorStore

/// `export`: the Hugging Face files of a model, materialised at `destination` by `streamline run`.
public struct ExportStage: StageKind {
    public init() {}
    public let name = "export"
    public let version = 1
    public let doc = "Converts a model to a Hugging Face folder (config.json, model.safetensors, tokenizer.json); `streamline run` writes it to `destination`."
    public let params = [
        ParamDecl("destination", .string(), default: .string(""), destination: true,
                  doc: "Folder written after the run, relative to the spec's folder (may use ${var}); \"\" = keep the files in the cache only."),
    ]
    public let inputs = [InputDecl("model", storeKind: ModelStore.storeKind, doc: "The model to export (LLaMA family, pruned or not).")]
    public let outputs = [OutputDecl("folder", storeKind: HFFolderStore.storeKind, doc: "The folder's files: weights under HF names, config and tokenizer JSON.")]

    struct Params: Decodable { var destination: String }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self)
        let store = try ModelStore(store: context.inputs["model"]!)
        let folder: HFFolder
        do {
            folder = try HFExport.folder(config: store.config, parameters: store.parameters, tokenizer: store.tokenizer)
        } catch let error as DataError {
            throw DReSSStageError.badInput(stage: context.stageID, input: "model", what: "cannot be exported: \(error.description)")
        }
        try HFFolderStore.write(folder, to: context.outputs["folder"]!)
        let bytes = folder.tensors.reduce(0) { $0 + $1.tensor.byteCount }
        context.log(String(format: "%d tensors, %.1f MB of weights, hidden size %d", folder.tensors.count, Double(bytes) / 1e6,
                           store.config.hiddenSize)
                    + (p.destination.isEmpty ? "" : "; streamline run writes it to \(p.destination)"))
    }
}

/// The `hf_folder` store an export stage writes (layout in the file header).
public enum HFFolderStore {
    public static let storeKind = "hf_folder"
    static let tensorPrefix = "safetensors/"
    static let orderKey = "safetensors_order"
    static let configTensor = "files/config.json"
    static let tokenizerTensor = "files/tokenizer.json"

    /// Writes `folder` as a store at `url` (deterministic: same folder, same digest).
    @discardableResult
    public static func write(_ folder: HFFolder, to url: URL) throws -> String {
        let writer = try TensorStoreWriter(url: url, kind: storeKind)
        do {
            for (name, tensor) in folder.tensors { try writer.write(tensorPrefix + name, tensor) }
            try writer.setMetadata(orderKey, folder.tensors.map(\.name))
            try writer.write(configTensor, [UInt8](folder.config), shape: [folder.config.count])
            if let tokenizer = folder.tokenizer { try writer.write(tokenizerTensor, [UInt8](tokenizer), shape: [tokenizer.count]) }
            return try writer.commit()
        } catch {
            writer.abandon()
            throw error
        }
    }

    /// Reads the folder's files back from a store written by `write`.
    public static func read(_ url: URL) throws -> HFFolder {
        let reader = try TensorStoreReader(url: url, expectingKind: storeKind)
        let order = try reader.metadata(orderKey, as: [String].self)
        let tensors = try order.map { ($0, try reader.tensor(tensorPrefix + $0)) }
        let config = Data(try reader.values(configTensor, as: UInt8.self).values)
        let tokenizer = reader.contains(tokenizerTensor) ? Data(try reader.values(tokenizerTensor, as: UInt8.self).values) : nil
        return HFFolder(config: config, tensors: tensors, tokenizer: tokenizer)
    }
}

/// Writing export stages' destination folders from the cache.
public enum ExportFolders {
    /// What `materialize` did for one export node.
    public struct Outcome: Sendable, Equatable {
        public var id: String
        public var folder: URL
        /// Files written; empty when the folder already held exactly these files.
        public var written: [String]
    }

    /// For every `export` node of `spec` (those `target` needs; nil = all) that is cached and has a
    /// non-empty `destination`: writes the folder's files where missing or different. Nodes not
    /// cached (failed, skipped) are passed over. Two nodes with one destination fail to plan.
    @discardableResult
    public static func materialize(_ spec: Spec, target: String? = nil, cache: Cache,
                                   log: (String) -> Void = { _ in }) throws -> [Outcome] {
        // Planning hashes file parameters (a model file: tenths of a second); most specs export nothing.
        guard spec.stages.contains(where: { $0.kind.value == ExportStage().name }) else { return [] }
        let plan = try Planner.plan(spec, registry: StageCatalog.registry) { cache.record($0)?.outputs }
        var outcomes: [Outcome] = []
        for node in try plan.closure(of: target) where node.kind == ExportStage().name {
            guard case .string(let destination)? = node.params["destination"], !destination.isEmpty else { continue }
            let folder = Planner.path(destination, relativeTo: spec.baseDirectory)
            guard cache.lookup(node.fingerprint) != nil else { continue }
            let written = try HFFolderStore.read(cache.outputURL(node.fingerprint, "folder")).write(to: folder)
            log("export   \(node.id) -> \(folder.path) " + (written.isEmpty ? "(up to date)" : "(wrote \(written.joined(separator: ", ")))"))
            outcomes.append(Outcome(id: node.id, folder: folder, written: written))
        }
        return outcomes
    }
}
