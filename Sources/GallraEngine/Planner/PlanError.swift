/// Why a policy cannot be planned. Names come from the catalog and the policy, never from rows.
public enum PlanError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `identify_rows_before` on a step that is not rows the subject points to.
    case identifiedBeforeUnsupported(dataPoint: Int, table: String)
    /// Rows the subject points to, reached by a path that does not end with a parent link.
    case referencedNotAtPathEnd(dataPoint: Int, table: String)
    /// An empty name, one with NUL, or one over 63 bytes.
    case unusableIdentifier(String)
    /// A type name with characters that could end a cast.
    case unusableTypeName(String)

    public var description: String {
        switch self {
        case .identifiedBeforeUnsupported(let dataPoint, let table):
            "data[\(dataPoint)] (\(table)) must be identified before an earlier step breaks its path; the engine supports this only for rows the subject points to. Reorder the data points or add a direct link"
        case .referencedNotAtPathEnd(let dataPoint, let table):
            "data[\(dataPoint)] (\(table)) is reached through a parent link followed by child links; the engine supports rows the subject points to only at the end of the path"
        case .unusableIdentifier(let name):
            "\(name.debugDescription) cannot be used as an identifier (empty, NUL, or over 63 bytes)"
        case .unusableTypeName(let type):
            "the type name \(type.debugDescription) cannot be used in a cast"
        }
    }
}
