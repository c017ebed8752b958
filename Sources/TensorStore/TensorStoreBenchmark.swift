// Throughput of stores at model size: write (with hashing, fsync and rename), read (warm page cache
// and cold, after evicting the file's pages), verify, and in-memory SHA-256 as the hashing ceiling.
// A library function so `streamline bench` can print it; it is never run by tests.

import Foundation
import Tensor

/// Measures write, read and verify speed of a store shaped like a real model.
public enum TensorStoreBenchmark {
    /// Sizes and timings of one run. Rates are decimal megabytes (10^6 bytes) per second.
    public struct Result: Sendable, Codable {
        public var tensors: Int
        public var megabytes: Double
        public var writeSeconds: Double
        public var readWarmSeconds: Double
        public var readColdSeconds: Double
        public var verifySeconds: Double
        public var hashSeconds: Double
        /// Time of `TensorStoreReader.digest(ofStoreAt:)` (open and read the index, no tensor data).
        public var indexSeconds: Double

        public var writeMBps: Double { megabytes / writeSeconds }
        public var readWarmMBps: Double { megabytes / readWarmSeconds }
        public var readColdMBps: Double { megabytes / readColdSeconds }
        public var verifyMBps: Double { megabytes / verifySeconds }
        public var hashMBps: Double { megabytes / hashSeconds }

        /// One line per measurement, for terminals.
        public var report: String {
            func line(_ what: String, _ seconds: Double, _ rate: Double) -> String {
                "  \(what.padding(toLength: 38, withPad: " ", startingAt: 0))"
                    + "\(String(format: "%7.2f s  %8.0f MB/s", seconds, rate))"
            }
            return """
                store: \(tensors) tensors, \(String(format: "%.1f", megabytes)) MB
                \(line("write (hash + HDF5 + fsync + rename)", writeSeconds, writeMBps))
                \(line("read, warm page cache", readWarmSeconds, readWarmMBps))
                \(line("read, cold (file evicted)", readColdSeconds, readColdMBps))
                \(line("verify (read + re-hash)", verifySeconds, verifyMBps))
                \(line("SHA-256 in memory", hashSeconds, hashMBps))
                  \("store digest from the index".padding(toLength: 38, withPad: " ", startingAt: 0))\(String(format: "%7.1f ms", indexSeconds * 1000))
                """
        }
    }

    /// Writes, reads and verifies a store with the SmolLM2-135M parameter shapes by default
    /// (30 layers, d 576, 9/3 heads of 64, FFN 1536, vocabulary 49152: 134.5 M floats, 538 MB)
    /// in `folder`, then deletes it.
    public static func run(folder: URL, layers: Int = 30, hidden: Int = 576, kvWidth: Int = 192,
                           ffn: Int = 1536, vocab: Int = 49152) throws -> Result {
        var specs = [ParameterSpec("embedding", [vocab, hidden]), ParameterSpec("final_norm", [hidden])]
        for l in 0..<layers {
            specs += [ParameterSpec("layers/\(l)/attn_norm", [hidden]),
                      ParameterSpec("layers/\(l)/attn/wq", [hidden, hidden]),
                      ParameterSpec("layers/\(l)/attn/wk", [kvWidth, hidden]),
                      ParameterSpec("layers/\(l)/attn/wv", [kvWidth, hidden]),
                      ParameterSpec("layers/\(l)/attn/wo", [hidden, hidden]),
                      ParameterSpec("layers/\(l)/mlp_norm", [hidden]),
                      ParameterSpec("layers/\(l)/mlp/gate", [ffn, hidden]),
                      ParameterSpec("layers/\(l)/mlp/up", [ffn, hidden]),
                      ParameterSpec("layers/\(l)/mlp/down", [hidden, ffn])]
        }
        let parameters = ParameterSet(specs)
        var rng = RNG(seed: 0)
        parameters.values.fillNormal(&rng, std: 0.02)
        let url = folder.appendingPathComponent("bench-\(UUID().uuidString).h5")
        defer { try? FileManager.default.removeItem(at: url) }

        let write = try seconds {
            let writer = try TensorStoreWriter(url: url, kind: "model")
            try writer.write(parameters: parameters)
            try writer.commit()
        }
        // Read into memory allocated and touched beforehand: the timing is the store's, not malloc's.
        let destination = ParameterSet(specs)
        destination.values.zero()
        let readWarm = try seconds { try TensorStoreReader(url: url).read(into: destination) }
        try evictFromPageCache(url)
        let readCold = try seconds { try TensorStoreReader(url: url).read(into: destination) }
        let verify = try seconds { try TensorStoreReader(url: url).verify() }
        let index = try seconds { _ = try TensorStoreReader.digest(ofStoreAt: url) }
        let hash = try seconds {
            for spec in specs {
                let value = parameters.value(spec.name)
                _ = TensorDigest.compute(dtype: .float32, shape: spec.shape,
                                         bytes: UnsafeRawBufferPointer(start: value.data, count: value.byteCount))
            }
        }
        return Result(tensors: specs.count, megabytes: Double(parameters.values.byteCount) / 1e6,
                      writeSeconds: write, readWarmSeconds: readWarm, readColdSeconds: readCold,
                      verifySeconds: verify, hashSeconds: hash, indexSeconds: index)
    }

    private static func seconds(_ body: () throws -> Void) throws -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    /// Asks the kernel to drop the file's cached pages so the next read comes from the disk.
    private static func evictFromPageCache(_ url: URL) throws {
        try syncFile(url.path)
        let fd = open(url.path, O_RDONLY)
        guard fd >= 0 else { return }
        defer { close(fd) }
        _ = posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_DONTNEED))
    }
}
