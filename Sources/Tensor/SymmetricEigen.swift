// Eigenvalues and eigenvectors of a real symmetric matrix through LAPACK's dsyev (in libopenblas), for
// the principal bases of rotations (Model/Rotation.swift). Runs on one BLAS thread so the result does
// not depend on the thread count (dsyev's reductions would be split differently), and fixes each
// vector's sign, which LAPACK leaves free, so the same matrix always gives the same bytes.

import CBLAS

public enum SymmetricEigenError: Error, CustomStringConvertible, Equatable {
    /// dsyev did not converge, or the input holds NaN/∞.
    case failed(info: Int)

    public var description: String {
        switch self {
        case let .failed(info):
            return "the symmetric eigensolver failed (LAPACK dsyev info \(info)); the matrix may hold NaN or infinite values"
        }
    }
}

/// `a` (n×n, row-major, symmetric) = Σ_j values[j]·v_j·v_jᵀ with values in DESCENDING order; `vectors`
/// holds v_j as row j (n×n, row-major). Each v_j's largest-magnitude entry is positive.
public func symmetricEigen(_ a: [Double], n: Int) throws(SymmetricEigenError) -> (values: [Double], vectors: [Double]) {
    precondition(a.count == n * n, "symmetricEigen: \(a.count) values for n = \(n)")
    guard n > 0 else { return ([], []) }
    guard a.allSatisfy(\.isFinite) else { throw .failed(info: -4) }
    // Column-major LAPACK sees the row-major symmetric matrix unchanged; on exit column j is v_j,
    // which row-major reads as row j.
    var matrix = a, values = [Double](repeating: 0, count: n)
    var info: Int32 = 0, count = Int32(n), lwork: Int32 = -1, query = 0.0
    let jobz = Int8(UInt8(ascii: "V")), uplo = Int8(UInt8(ascii: "U"))
    var job = jobz, triangle = uplo
    let threads = Threading.threads
    openblas_set_num_threads(1)
    defer { openblas_set_num_threads(Int32(threads)) }
    dsyev_(&job, &triangle, &count, &matrix, &count, &values, &query, &lwork, &info)
    var work = [Double](repeating: 0, count: max(1, Int(query)))
    lwork = Int32(work.count)
    dsyev_(&job, &triangle, &count, &matrix, &count, &values, &work, &lwork, &info)
    guard info == 0 else { throw .failed(info: Int(info)) }
    // Ascending → descending, with a fixed sign per vector.
    var sortedValues = [Double](), vectors = [Double]()
    sortedValues.reserveCapacity(n)
    vectors.reserveCapacity(n * n)
    for j in stride(from: n - 1, through: 0, by: -1) {
        var row = Array(matrix[(j * n)..<((j + 1) * n)])
        var largest = 0
        for i in 1..<n where abs(row[i]) > abs(row[largest]) { largest = i }
        if row[largest] < 0 { row = row.map { -$0 } }
        sortedValues.append(values[j])
        vectors += row
    }
    return (sortedValues, vectors)
}
