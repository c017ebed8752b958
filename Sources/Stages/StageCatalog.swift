// The flat table of stage kinds: adding a kind is one file in this folder and one line here.

import Pipeline

public enum StageCatalog {
    /// Every stage kind this build knows.
    public static let kinds: [any StageKind] = [
        DebugConstant(),
        DebugScale(),
        DebugSum(),
        DebugTotal(),
        DebugSleep(),
        DebugFail(),
        ImportStage(),
        DatasetStage(),
        MixStage(),
        EvaluateStage(),
        TrainStage(),
        TinyLMStage(),
        SelectStage(),
        RotateStage(),
        SliceGPTStage(),
        SynthesizeStage(),
        RegularizeStage(),
        PruneStage(),
        FinetuneStage(),
        ExportStage(),
        ReportStage(),
    ]

    /// The registry the planner and the CLI use.
    public static let registry = StageRegistry(kinds)
}
