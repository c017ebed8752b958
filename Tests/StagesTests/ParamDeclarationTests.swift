// Every stage kind's declared parameters and the typed structs its `run` decodes them into agree
// (issue 14): the declared defaults decode, both as the planner passes them (an `omittedAtDefault`
// parameter at its default left out, so its field must be optional) and written out; and every
// parameter that is always present (not `omittedAtDefault`) is read by a non-optional field, so a
// declaration nothing reads, or a field whose declaration was renamed, fails here rather than
// silently falling back to a default.

import Foundation
import Pipeline
@testable import Stages
import Testing

@Suite struct ParamDeclarationTests {
    typealias Reader = @Sendable (StageContext) throws -> Void

    /// The typed structs each kind decodes its parameters into.
    static func readers(of kind: String) -> [Reader]? {
        switch kind {
        case ImportStage().name: return [{ _ = try $0.decodeParams(ImportStage.Params.self) }]
        case DatasetStage().name: return [{ _ = try $0.decodeParams(DatasetStage.Params.self) }]
        case MixStage().name: return [{ _ = try $0.decodeParams(MixStage.Params.self) }]
        case EvaluateStage().name: return [{ _ = try $0.decodeParams(EvaluateStage.Params.self) }]
        case TrainStage().name:
            return [{ _ = try $0.decodeParams(TrainStage.Params.self) }, { _ = try $0.decodeParams(TrainingParams.self) },
                    { _ = try $0.decodeParams(DistillationParams.self) }]
        case TinyLMStage().name: return [{ _ = try $0.decodeParams(TinyLMStage.Params.self) }]
        case SelectStage().name: return [{ _ = try $0.decodeParams(SelectionParams.self) }]
        case RotateStage().name: return [{ _ = try $0.decodeParams(RotateStage.Params.self) }]
        case SliceGPTStage().name: return [{ _ = try $0.decodeParams(SliceGPTStage.Params.self) }]
        case SynthesizeStage().name: return [{ _ = try $0.decodeParams(SynthesizeStage.Params.self) }]
        case RegularizeStage().name:
            return [{ _ = try $0.decodeParams(RegularizeStage.Params.self) }, { _ = try $0.decodeParams(TrainingParams.self) },
                    { _ = try $0.decodeParams(DistillationParams.self) }, { _ = try $0.decodeParams(SelectionParams.self) }]
        case PruneStage().name: return [{ _ = try $0.decodeParams(PruneStage.Params.self) }]
        case FinetuneStage().name:
            return [{ _ = try $0.decodeParams(FinetuneStage.Params.self) }, { _ = try $0.decodeParams(TrainingParams.self) },
                    { _ = try $0.decodeParams(DistillationParams.self) }]
        case ExportStage().name: return [{ _ = try $0.decodeParams(ExportStage.Params.self) }]
        case ReportStage().name: return [{ _ = try $0.decodeParams(ReportStage.Params.self) }]
        case DebugConstant().name: return [{ _ = try $0.decodeParams(DebugConstant.Params.self) }]
        case DebugScale().name: return [{ _ = try $0.decodeParams(DebugScale.Params.self) }]
        case DebugSleep().name: return [{ _ = try $0.decodeParams(DebugSleep.Params.self) }]
        case DebugFail().name: return [{ _ = try $0.decodeParams(DebugFail.Params.self) }]
        case DebugSum().name, DebugTotal().name: return []
        default: return nil
        }
    }

    /// A value of `type` for a required parameter without a default (a path, a count).
    static func placeholder(_ type: ParamType) -> ParamValue {
        switch type {
        case .int: return .int(1)
        case .double: return .double(1)
        case .bool: return .bool(false)
        case .string(let choices): return .string(choices?.first ?? "x")
        case .file, .files: return .string("/nowhere")
        }
    }

    /// The parameters as the planner hands them to a node whose spec sets none: defaults and
    /// placeholders, an `omittedAtDefault` parameter left out (`leaveOut`), or written out in full.
    static func context(_ kind: any StageKind, without omitted: String? = nil, leaveOut: Bool = true) -> StageContext {
        var params: [String: ParamValue] = [:]
        for decl in kind.params where decl.name != omitted {
            let value = decl.defaultValue ?? placeholder(decl.type)
            if !(leaveOut && decl.isLeftOut(at: value)) { params[decl.name] = value }
        }
        return StageContext(stageID: kind.name, params: params, seed: 1, inputs: [:], outputs: [:], threads: 1)
    }

    @Test func everyKindReadsItsDeclaredParametersThroughTypedFields() throws {
        for kind in StageCatalog.kinds {
            let readers = try #require(Self.readers(of: kind.name), "\(kind.name): list the structs its run decodes")
            for read in readers {
                // The planner leaves an omittedAtDefault parameter at its default out: the struct must read it as optional.
                #expect(throws: Never.self, "\(kind.name): the defaults decode as the planner passes them") { try read(Self.context(kind)) }
                #expect(throws: Never.self, "\(kind.name): the defaults decode written out") { try read(Self.context(kind, leaveOut: false)) }
            }
            for decl in kind.params where !decl.omittedAtDefault {
                let context = Self.context(kind, without: decl.name)
                let failures = readers.filter { read in (try? read(context)) == nil }.count
                #expect(failures > 0, "\(kind.name): nothing reads '\(decl.name)' as a required field")
            }
        }
    }
}
