// `export`: a model store -> what a Hugging Face folder holds (HFExport, the same conversion as
// `streamline export --format hf`) or, with `format: gguf`, a folder holding one `model.gguf`
// (GGUFExport, as `streamline export --format gguf`), cached as a store like every stage output.
// `streamline run` writes each export node's `destination` folder from that store afterwards
// (StreamlineCLI/ExportFolders.swift): the folder is not the stage's output because a cache entry
// must be content addressed and relocatable, and a destination is a place.
//
// Store layout (kind `hf_folder`): every weight as float32 under `safetensors/<HF name>` (norm scales
// already rescaled for pruned widths), metadata `safetensors_order` (the names in file order, so the
// folder's model.safetensors is byte-identical to `streamline export`'s) and `dtype` (the float type
// model.safetensors is written in), and each JSON file (config.json, tokenizer.json, ...) as its exact
// bytes in a uint8 tensor `files/<name>`, the names in metadata `files`: tensors rather than metadata
// because tokenizer.json runs to megabytes (49k tokens and merges) and metadata lives in HDF5
// attributes, which the store's default object headers cap at 64 KB. Version 1 stores (no `files`,
// no `dtype`) read as float32 with config.json and tokenizer.json. A GGUF export has no safetensors
// tensors and one file, `model.gguf` (its bytes as `files/model.gguf`), with `dtype` its GGUF type.

import Data
import Foundation
import Pipeline
import TensorStore

/// `export`: the Hugging Face files of a model, materialised at `destination` by `streamline run`.
public struct ExportStage: StageKind {
    public init() {}
    public let name = "export"
    // 2: tokenizer_config.json, special_tokens_map.json, generation_config.json and `dtype`.
    // 3: `format` (hf | gguf); every export node's fingerprint changes once, since defaults are hashed.
    public let version = 3
    public let doc = "Converts a model to a Hugging Face folder (config.json, generation_config.json, model.safetensors, tokenizer files) or a GGUF file (model.gguf, for llama.cpp); `streamline run` writes it to `destination`."
    public let params = [
        ParamDecl("destination", .string(), default: .string(""), destination: true,
                  doc: "Folder written after the run, relative to the spec's folder (may use ${var}); \"\" = keep the files in the cache only."),
        ParamDecl("format", .string(choices: ["hf", "gguf"]), default: .string("hf"),
                  doc: "hf: a Hugging Face folder for transformers >= 4.45; gguf: model.gguf (architecture llama) for llama.cpp."),
        ParamDecl("dtype", .string(choices: ["float32", "bfloat16", "float16", "q8_0"]), default: .string("float32"),
                  doc: "Weight type (rounded to nearest even; float16 refuses weights beyond ±65504): hf float32|bfloat16|float16, gguf float32|float16|q8_0 (norms stay F32)."),
    ]
    public let inputs = [InputDecl("model", storeKind: ModelStore.storeKind, doc: "The model to export (LLaMA family, pruned or not).")]
    public let outputs = [OutputDecl("folder", storeKind: HFFolderStore.storeKind, doc: "The folder's files: weights under HF names, config and tokenizer JSON.")]

    struct Params: Decodable {
        var destination: String
        var format: String
        var dtype: String
    }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self)
        guard p.format == "hf" || GGUFFloat(rawValue: p.dtype) != nil else {
            throw DReSSStageError.badParameter(stage: context.stageID, name: "dtype",
                                               reason: "gguf takes float32, float16 or q8_0, not \(p.dtype); change dtype or use format: hf")
        }
        guard p.format == "gguf" || SafetensorsFloat(rawValue: p.dtype) != nil else {
            throw DReSSStageError.badParameter(stage: context.stageID, name: "dtype",
                                               reason: "hf takes float32, bfloat16 or float16, not \(p.dtype); change dtype or use format: gguf")
        }
        let store = try ModelStore(store: context.inputs["model"]!)
        guard p.format == "hf" else { return try runGGUF(context, p, store) }
        let dtype = SafetensorsFloat(rawValue: p.dtype)!
        let folder: HFFolder
        do {
            folder = try HFExport.folder(config: store.config, parameters: store.parameters, tokenizer: store.tokenizer, dtype: dtype)
            // Encoding is where a weight beyond the dtype's range shows; better here than after the run.
            _ = try folder.files()
        } catch let error as DataError {
            throw DReSSStageError.badInput(stage: context.stageID, input: "model", what: "cannot be exported: \(error.description)")
        }
        try HFFolderStore.write(folder, to: context.outputs["folder"]!)
        let bytes = folder.tensors.reduce(0) { $0 + $1.tensor.count } * dtype.byteWidth
        context.log(String(format: "%d tensors, %.1f MB of %@ weights, hidden size %d", folder.tensors.count, Double(bytes) / 1e6,
                           dtype.rawValue, store.config.hiddenSize)
                    + (p.destination.isEmpty ? "" : "; streamline run writes it to \(p.destination)"))
        for note in folder.notes { context.log("note: \(note)") }
    }

    /// format: gguf: the file as the folder's one document.
    func runGGUF(_ context: StageContext, _ p: Params, _ store: ModelStore) throws {
        let bytes: Data
        do {
            bytes = try GGUFExport.encode(config: store.config, parameters: store.parameters, tokenizer: store.tokenizer,
                                          dtype: GGUFFloat(rawValue: p.dtype)!)
        } catch let error as DataError {
            throw DReSSStageError.badInput(stage: context.stageID, input: "model", what: "cannot be exported: \(error.description)")
        }
        try HFFolderStore.write(HFFolder(documents: [("model.gguf", bytes)], tensors: []), to: context.outputs["folder"]!, dtype: p.dtype)
        context.log(String(format: "model.gguf, %.1f MB (%@), hidden size %d", Double(bytes.count) / 1e6, p.dtype, store.config.hiddenSize)
                    + (p.destination.isEmpty ? "" : "; streamline run writes it to \(p.destination)"))
    }
}

/// The `hf_folder` store an export stage writes (layout in the file header).
public enum HFFolderStore {
    public static let storeKind = "hf_folder"
    static let tensorPrefix = "safetensors/"
    static let orderKey = "safetensors_order"
    static let filesKey = "files"
    static let dtypeKey = "dtype"
    static let filePrefix = "files/"

    /// Writes `folder` as a store at `url` (deterministic: same folder, same digest).
    @discardableResult
    /// `dtype` overrides the folder's safetensors type in metadata (a GGUF export's type, e.g. q8_0).
    public static func write(_ folder: HFFolder, to url: URL, dtype: String? = nil) throws -> String {
        let writer = try TensorStoreWriter(url: url, kind: storeKind)
        do {
            for (name, tensor) in folder.tensors { try writer.write(tensorPrefix + name, tensor) }
            try writer.setMetadata(orderKey, folder.tensors.map(\.name))
            try writer.setMetadata(dtypeKey, dtype ?? folder.dtype.rawValue)
            try writer.setMetadata(filesKey, folder.documents.map(\.name))
            for (name, bytes) in folder.documents { try writer.write(filePrefix + name, [UInt8](bytes), shape: [bytes.count]) }
            return try writer.commit()
        } catch {
            writer.abandon()
            throw error
        }
    }

    /// Reads the folder's files back from a store written by `write` (notes are not kept).
    public static func read(_ url: URL) throws -> HFFolder {
        let reader = try TensorStoreReader(url: url, expectingKind: storeKind)
        let order = try reader.metadata(orderKey, as: [String].self)
        let tensors = try order.map { ($0, try reader.tensor(tensorPrefix + $0)) }
        let names = reader.metadataKeys.contains(filesKey) ? try reader.metadata(filesKey, as: [String].self)
            : ["config.json", "tokenizer.json"].filter { reader.contains(filePrefix + $0) }
        let documents = try names.map { ($0, Data(try reader.values(filePrefix + $0, as: UInt8.self).values)) }
        let dtypeName = reader.metadataKeys.contains(dtypeKey) ? try reader.metadata(dtypeKey, as: String.self) : SafetensorsFloat.float32.rawValue
        // A GGUF export's type names its file, not safetensors (there are no tensors).
        guard let dtype = SafetensorsFloat(rawValue: dtypeName) ?? (order.isEmpty && GGUFFloat(rawValue: dtypeName) != nil ? .float32 : nil) else {
            throw DataError.malformed(format: "hf_folder store", path: url.path, at: dtypeKey,
                                      detail: "'\(dtypeName)' is not float32, bfloat16 or float16; the store was written by another Streamline: run the export stage again with this one")
        }
        return HFFolder(documents: documents, tensors: tensors, dtype: dtype)
    }
}
