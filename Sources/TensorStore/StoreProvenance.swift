// Provenance: who made a store, when, where and how. Recorded for people reading a store later;
// deliberately NOT part of any digest, so the same content made at another time or place is the
// same store to the pipeline cache.

import Foundation

/// The version of Streamline that this build is: `--version`, and the default of every store's provenance.
public enum StreamlineVersion {
    public static let string = "0.1.0"
}

/// Where a store came from. Stored as JSON in the `streamline.provenance` root attribute.
public struct StoreProvenance: Codable, Sendable, Equatable {
    /// Program that wrote the store, e.g. "streamline".
    public var tool: String
    /// Version of that program, e.g. "0.1.0".
    public var toolVersion: String
    /// UTC creation time, ISO 8601, e.g. "2026-11-29T04:12:03Z".
    public var createdAt: String
    /// Host name of the machine that wrote the store.
    public var host: String
    /// The command line that wrote it.
    public var command: [String]
    /// Anything else worth keeping (stage name, pipeline fingerprint, input digests…).
    public var extra: [String: String]

    /// Provenance of the current process.
    public init(tool: String = "streamline",
                toolVersion: String = StreamlineVersion.string,
                createdAt: Date = Date(),
                host: String = ProcessInfo.processInfo.hostName,
                command: [String] = CommandLine.arguments,
                extra: [String: String] = [:]) {
        self.tool = tool
        self.toolVersion = toolVersion
        self.createdAt = createdAt.ISO8601Format()
        self.host = host
        self.command = command
        self.extra = extra
    }
}

/// Fixed names and numbers of the on-disk layout (see README.md in this folder).
enum StoreFormat {
    /// Root attribute whose value marks a Streamline store.
    static let markerAttribute = "streamline.format"
    static let markerValue = "streamline-tensor-store"
    /// Root attribute holding the layout version (an integer).
    static let versionAttribute = "streamline.format_version"
    /// The layout version this build writes and the newest it reads.
    static let version = 1
    static let kindAttribute = "streamline.kind"
    /// Root attribute holding the store digest recorded at commit.
    static let digestAttribute = "streamline.digest"
    static let provenanceAttribute = "streamline.provenance"
    /// Content metadata key `k` lives in root attribute `streamline.metadata.k` as canonical JSON.
    static let metadataPrefix = "streamline.metadata."
    /// Dataset attribute holding the tensor digest.
    static let tensorDigestAttribute = "streamline.sha256"
}
