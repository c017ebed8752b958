// Embedding gather (forward) and scatter-add (backward) for token and learned position tables.
// Ids are checked against the table size by the caller (Model), not here.
//
// Shapes (legend in Tensor.swift): N tokens, C width. The public kernels are the fast ones; each has a
// plain-loop `…Reference` twin at the bottom of the file that the tests hold it to.

/// out[n] = table[ids[n]]; overwrites `out`.
/// - out: (N, C)
/// - ids: (N) row indices into `table`
/// - table: (rows, C)
public func embeddingForward(out: UnsafeMutablePointer<Float>, ids: UnsafePointer<Int32>,
                             table: UnsafePointer<Float>, N: Int, C: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.embedding, profiled) }
    Threading.parallelFor(N, minChunk: max(1, parallelGrain / max(C, 1))) { rows in
        for n in rows { (out + n * C).update(from: table + Int(ids[n]) * C, count: C) }
    }
}

/// dtable[ids[n]] += dout[n], in increasing n so repeated ids sum in a fixed order (deterministic).
/// - dtable: (rows, C)
/// - dout: (N, C)
/// - ids: (N)
public func embeddingBackward(dtable: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                              ids: UnsafePointer<Int32>, N: Int, C: Int) {
    let profiled = OpProfile.start()
    defer { OpProfile.stop(.embedding, profiled) }
    // Threads split the columns, never the rows: every element still sums its rows in increasing n.
    parallelColumns(C, rows: N) { columns in
        for n in 0..<N {
            let row = dtable + Int(ids[n]) * C, dy = dout + n * C
            for i in columns { row[i] += dy[i] }
        }
    }
}

// MARK: - Reference (plain loops; the fast versions are tested against these)

/// Plain-loop `embeddingForward`.
public func embeddingForwardReference(out: UnsafeMutablePointer<Float>, ids: UnsafePointer<Int32>,
                                      table: UnsafePointer<Float>, N: Int, C: Int) {
    for n in 0..<N {
        let row = table + Int(ids[n]) * C
        for i in 0..<C { out[n * C + i] = row[i] }
    }
}

/// Plain-loop `embeddingBackward`.
public func embeddingBackwardReference(dtable: UnsafeMutablePointer<Float>, dout: UnsafePointer<Float>,
                                       ids: UnsafePointer<Int32>, N: Int, C: Int) {
    for n in 0..<N {
        let row = dtable + Int(ids[n]) * C
        for i in 0..<C { row[i] += dout[n * C + i] }
    }
}
