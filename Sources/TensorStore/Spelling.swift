// Did-you-mean suggestions, shared by every error that names something unknown (a tensor, a spec
// key or stage, a parameter pattern). Here because TensorStore is the lowest module all of those
// users depend on.

public enum Spelling {
    /// Levenshtein distance over Unicode scalars (insert, delete, substitute: cost 1 each), one rolling row.
    public static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a.unicodeScalars), b = Array(b.unicodeScalars)
        if a.isEmpty { return b.count }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var diagonal = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let above = row[j]
                row[j] = min(above + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1))
                diagonal = above
            }
        }
        return row[b.count]
    }

    /// The candidate closest to `name`, if close enough to be a likely typo: within a third of the
    /// name's length, at least 2 edits (one or two slips in a short word; further is a guess).
    public static func closest(to name: String, among candidates: [String], ignoringCase: Bool = false) -> String? {
        let fold = { (s: String) in ignoringCase ? s.lowercased() : s }
        let target = fold(name)
        var best: (name: String, distance: Int)?
        for candidate in candidates {
            let d = distance(target, fold(candidate))
            if d < (best?.distance ?? Int.max) { best = (candidate, d) }
        }
        guard let best, best.distance <= max(2, target.unicodeScalars.count / 3) else { return nil }
        return best.name
    }

    /// Up to `limit` names nearest to `query`, however far (ties keep the given order).
    public static func nearest(to query: String, in names: [String], limit: Int = 5) -> [String] {
        let scored = names.enumerated().map { (distance(query, $0.element), $0.offset, $0.element) }
        return scored.sorted { ($0.0, $0.1) < ($1.0, $1.1) }.prefix(limit).map(\.2)
    }
}
