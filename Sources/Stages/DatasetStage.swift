// `dataset`: text files -> token datasets (train and validation) with the tokenizer of a model store.
// Each file is one document. Validation is either the files listed in `validation` (held-out texts,
// e.g. whole plays) or, when that is empty, a seeded split of the training documents. Tokenizing,
// splitting and the store format are TokenDataset's (Data module). `train` and `validation` are
// file-list parameters: the planner hands this stage absolute paths and fingerprints the files'
// content, so editing a text re-runs the stage and moving the project does not.

import Data
import Foundation
import Pipeline

public struct DatasetStage: StageKind {
    public init() {}
    public let name = "dataset"
    public let version = 1
    public let doc = "Tokenizes text files into train and validation token datasets (one document per file)."
    public let params = [
        ParamDecl("train", .files, doc: "Comma-separated files or folders (all files below, sorted) of training text, relative to the spec's folder."),
        ParamDecl("validation", .files, default: .string(""),
                  doc: "Comma-separated files or folders of held-out text, relative to the spec's folder; empty = a seeded split of the training documents."),
        ParamDecl("validation_fraction", .double(0...0.9), default: .double(0.1),
                  doc: "Share of training documents drawn into validation when `validation` is empty."),
        ParamDecl("eos", .bool, default: .bool(true), doc: "Append the tokenizer's eos id after each document."),
    ]
    public let inputs = [InputDecl("model", storeKind: ModelStore.storeKind, doc: "The model store whose tokenizer is used.")]
    public let outputs = [
        OutputDecl("train", storeKind: TokenDataset.storeKind, doc: "Token ids of the training documents."),
        OutputDecl("validation", storeKind: TokenDataset.storeKind, doc: "Token ids of the validation documents."),
    ]

    struct Params: Decodable {
        var train: String
        var validation: String
        var validation_fraction: Double
        var eos: Bool
    }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self)
        let tokenizer = try ModelStore(store: context.inputs["model"]!).tokenizer
        let trainFiles = try Self.files(p.train)
        guard !trainFiles.isEmpty else {
            throw DataError.notEnoughText(path: "train", detail: "no files given; list text files or folders in `train`")
        }
        let all = TokenDataset(documents: try trainFiles.flatMap(TextCorpus.plainText), tokenizer: tokenizer, eos: p.eos)
        let train: TokenDataset, validation: TokenDataset
        if p.validation.isEmpty {
            (train, validation) = all.split(validationFraction: p.validation_fraction, seed: context.seed)
        } else {
            train = all
            validation = TokenDataset(documents: try Self.files(p.validation).flatMap(TextCorpus.plainText),
                                      tokenizer: tokenizer, eos: p.eos)
        }
        for (name, data) in [("train", train), ("validation", validation)] {
            guard !data.tokens.isEmpty else {
                throw DataError.notEnoughText(path: name, detail: "the \(name) dataset is empty; give more files or a validation fraction that leaves documents on both sides")
            }
            try data.write(to: context.outputs[name]!)
            context.log("\(name): \(data.documentCount) documents, \(data.tokens.count) tokens")
        }
    }

    /// The files named by a comma-separated list of absolute paths of files and folders (folders:
    /// every regular file below, sorted by path, hidden files skipped).
    static func files(_ list: String) throws -> [URL] {
        var out: [URL] = []
        for item in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: item, isDirectory: &isFolder) else {
                throw DataError.unreadable(path: item, detail: "no such file or folder; run make corpora or fix the path")
            }
            guard isFolder.boolValue else { out.append(URL(fileURLWithPath: item)); continue }
            let below = (FileManager.default.enumerator(atPath: item)?.allObjects as? [String] ?? []).sorted()
            for relative in below where !relative.split(separator: "/").contains(where: { $0.hasPrefix(".") }) {
                let url = URL(fileURLWithPath: item).appendingPathComponent(relative)
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir), !isDir.boolValue { out.append(url) }
            }
        }
        return out
    }
}
