// `dataset`: text files -> token datasets (train and validation) with the tokenizer of a model store.
// `format` says what a document is: `text`, a whole file; `jsonl`, the string `field` of each
// non-empty line; `wikitext`, each article of a WikiText raw file (from one top-level ` = Title = `
// heading to the next; TextCorpus.topLevelHeading defines a heading). Validation is either the
// files listed in `validation` (held-out texts, e.g. whole plays) or, when that is empty, a seeded
// split of the training documents. Tokenizing, splitting and the store format are TokenDataset's
// (Data module). `train` and `validation` are file-list parameters: the planner expands globs, hands
// this stage absolute paths and fingerprints the files' content, so editing a text re-runs the
// stage and moving the project does not.
// `format` and `field` came later: at their defaults they stay out of the fingerprint
// (`omittedAtDefault`), so specs written before keep their cached results; version 1 still holds,
// as plain text is read exactly as before. The format is recorded in the stores' metadata (non-text
// only, so plain-text stores are unchanged) and provenance.

import Data
import Foundation
import Pipeline
import TensorStore

public struct DatasetStage: StageKind {
    public init() {}
    public let name = "dataset"
    public let version = 1
    public let doc = "Tokenizes text, JSONL or WikiText raw files into train and validation token datasets."
    public let params = [
        ParamDecl("train", .files, doc: "Comma-separated files, folders (all files below, sorted) or globs (`data/*.jsonl`, `**` spans folders; sorted) of training text, relative to the spec's folder."),
        ParamDecl("validation", .files, default: .string(""),
                  doc: "Comma-separated files, folders or globs of held-out text, relative to the spec's folder; empty = a seeded split of the training documents."),
        ParamDecl("format", .string(choices: Format.allCases.map(\.rawValue)), default: .string(Format.text.rawValue), omittedAtDefault: true,
                  doc: "What a document is: text = a whole file; jsonl = the string `field` of each non-empty line; wikitext = each article of a WikiText raw file (from a ` = Title = ` line to the next)."),
        ParamDecl("field", .string(), default: .string("text"), omittedAtDefault: true,
                  doc: "The JSONL field holding a document's text (format jsonl only)."),
        ParamDecl("validation_fraction", .double(0...0.9), default: .double(0.1),
                  doc: "Share of training documents drawn into validation when `validation` is empty."),
        ParamDecl("eos", .bool, default: .bool(true), doc: "Append the tokenizer's eos id after each document."),
    ]
    public let inputs = [InputDecl("model", storeKind: ModelStore.storeKind, doc: "The model store whose tokenizer is used.")]
    public let outputs = [
        OutputDecl("train", storeKind: TokenDataset.storeKind, doc: "Token ids of the training documents."),
        OutputDecl("validation", storeKind: TokenDataset.storeKind, doc: "Token ids of the validation documents."),
    ]

    /// How a file becomes documents.
    enum Format: String, CaseIterable {
        case text, jsonl, wikitext
    }

    struct Params: Decodable {
        var train: String
        var validation: String
        var validation_fraction: Double
        var eos: Bool
        // Absent at their defaults (omittedAtDefault).
        var format: String?
        var field: String?
    }

    public func run(_ context: StageContext) throws {
        let p = try context.decodeParams(Params.self)
        let tokenizer = try ModelStore(store: context.inputs["model"]!).tokenizer
        let trainFiles = try Self.files(p.train)
        guard !trainFiles.isEmpty else {
            throw DataError.notEnoughText(path: "train", detail: "no files given; list text files or folders in `train`")
        }
        let format = Format(rawValue: p.format ?? "") ?? .text
        let field = p.field ?? "text"
        // A field given for another format, or an empty one, is a mistake in the spec, not a no-op.
        if format != .jsonl && field != "text" {
            throw DReSSStageError.badParameter(stage: context.stageID, name: "field",
                                               reason: "is read only by format jsonl (format is \(format.rawValue)); set format: jsonl or remove field")
        }
        if field.isEmpty {
            throw DReSSStageError.badParameter(stage: context.stageID, name: "field", reason: "is empty; name the JSONL field holding the text")
        }
        let read: (URL) throws -> [TextDocument] = switch format {
        case .text: TextCorpus.plainText
        case .jsonl: { try TextCorpus.jsonl($0, field: field) }
        case .wikitext: TextCorpus.wikitext
        }
        let label = format == .jsonl ? "jsonl field=\(field)" : format.rawValue
        func dataset(_ files: [URL]) throws -> TokenDataset {
            var data = TokenDataset(documents: try files.flatMap(read), tokenizer: tokenizer, eos: p.eos)
            data.format = format == .text ? nil : label
            return data
        }
        let all = try dataset(trainFiles)
        let train: TokenDataset, validation: TokenDataset
        if p.validation.isEmpty {
            (train, validation) = all.split(validationFraction: p.validation_fraction, seed: context.seed)
        } else {
            train = all
            validation = try dataset(try Self.files(p.validation))
        }
        var provenance = StoreProvenance()
        provenance.extra["format"] = label
        for (name, data) in [("train", train), ("validation", validation)] {
            guard !data.tokens.isEmpty else {
                throw DataError.notEnoughText(path: name, detail: "the \(name) dataset is empty; give more files or a validation fraction that leaves documents on both sides")
            }
            try data.write(to: context.outputs[name]!, provenance: provenance)
            context.log("\(name): \(data.documentCount) documents (\(label)), \(data.tokens.count) tokens")
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
