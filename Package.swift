// swift-tools-version:6.0
// Streamline: DReSS-style structured pruning of transformer LMs, run as cached declarative pipelines.
import PackageDescription

/// Kernels are hot loops: in release builds drop bounds/overflow checks so they vectorise
/// (design.md: plain -O blocks vectorisation, 6x on a naive loop).
let kernelSettings: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release)),
]

let package = Package(
    name: "Streamline",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "streamline", targets: ["streamline"]),
        .library(name: "StreamlineKit", targets: ["Tensor", "TensorStore", "Model", "Training", "Data", "Pipeline", "Stages"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"4.0.0"),
    ],
    targets: [
        // MARK: - C shims

        /// HDF5 (serial build), plus static-inline helpers for macros Swift cannot import.
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5-serial", providers: [.apt(["libhdf5-dev"])]),
        /// CBLAS from OpenBLAS (pthread build).
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        /// A measured FMA loop (AVX-512 or AVX2+FMA, picked at run time): the peak `bench engine` divides by.
        .target(name: "CPeak"),
        /// Re-selects OpenBLAS's kernels from the CPU's flags when it fell back to generic ones (a CPU
        /// model newer than the library): re-executes the program with OPENBLAS_CORETYPE set, before main runs.
        .target(name: "CBLASCore"),

        // MARK: - Numerics

        /// Float32 tensors, cblas_sgemm, vectorised kernels with paired backward, seeded RNG, threading.
        .target(name: "Tensor", dependencies: ["CBLAS", "CBLASCore"], swiftSettings: kernelSettings),
        /// HDF5 files of named tensors with JSON metadata, content digests and atomic writes.
        .target(name: "TensorStore", dependencies: ["Tensor", "CHDF5", .product(name: "Crypto", package: "swift-crypto")], exclude: ["README.md"]),

        // MARK: - Models and training

        /// Decoder configs (LLaMA, GPT-2/OPT families), forward, hand-written backward with the fused losses, LoRA, channel surgery, compensation, rotation, SliceGPT, perplexity.
        .target(name: "Model", dependencies: ["Tensor"], exclude: ["README.md"], swiftSettings: kernelSettings),
        /// AdamW, schedules, clipping, accumulation, freezing, the training loop, DReSS selection and regularization.
        .target(name: "Training", dependencies: ["Tensor", "TensorStore", "Model"], exclude: ["README.md"], swiftSettings: kernelSettings),
        /// Tokenizers, checkpoint formats (GGUF, safetensors), text corpora and token dataset stores.
        .target(name: "Data", dependencies: ["Tensor", "TensorStore", "Model", .product(name: "Crypto", package: "swift-crypto")], exclude: ["README.md"]),

        // MARK: - Pipelines

        /// Specs, schema validation, sweeps, planner, fingerprints, cache, executors.
        .target(name: "Pipeline", dependencies: ["TensorStore", .product(name: "Yams", package: "Yams"), .product(name: "Crypto", package: "swift-crypto")], exclude: ["README.md"]),
        /// One type per stage kind (listed in Stages/StageCatalog.swift) and the stores they write.
        /// Stages may import the libraries below it and, of Pipeline, only the stage interface
        /// (Pipeline/StageKind.swift: StageKind, StageContext, ParamDecl, ParamValue, InputDecl, OutputDecl,
        /// GatheredInput, StageProgress, StageRegistry). It must not use Spec, Planner/Plan, Cache, StageRunner,
        /// NodeFile or the executors: finding stores in the cache is scheduling, and scheduling is the CLI's.
        .target(name: "Stages", dependencies: ["Tensor", "TensorStore", "Model", "Training", "Data", "Pipeline"], exclude: ["README.md"]),

        // MARK: - Command line

        /// The `streamline` commands as types; thin over the libraries.
        .target(name: "StreamlineCLI", dependencies: ["CBLAS", "CPeak", "Tensor", "TensorStore", "Model", "Training", "Data", "Pipeline", "Stages", .product(name: "ArgumentParser", package: "swift-argument-parser")], exclude: ["README.md"]),
        .executableTarget(name: "streamline", dependencies: ["StreamlineCLI"]),

        // MARK: - Tests

        .testTarget(name: "TensorTests", dependencies: ["Tensor"]),
        .testTarget(name: "TensorStoreTests", dependencies: ["TensorStore", "Tensor", "CHDF5"]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "Tensor"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Model", "Tensor", "TensorStore"]),
        .testTarget(name: "DataTests", dependencies: ["Data", "Model", "Tensor", "TensorStore"], exclude: ["Fixtures"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "TensorStore", .product(name: "Yams", package: "Yams")],
                    exclude: ["Fixtures"]),
        /// Helpers the two test targets that run stage kinds in-process share.
        .target(name: "StageTestSupport", dependencies: ["Pipeline", "Data", "Training"], path: "Tests/StageTestSupport"),
        .testTarget(name: "StagesTests", dependencies: ["StageTestSupport", "Stages", "Pipeline", "Data", "Model", "Training", "Tensor", "TensorStore"]),
        .testTarget(name: "StreamlineCLITests", dependencies: ["StageTestSupport", "StreamlineCLI", "Stages", "Pipeline", "Data", "Model", "Training", "Tensor", "TensorStore"]),
    ]
)
