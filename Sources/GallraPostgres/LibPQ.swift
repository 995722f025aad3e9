import CLibPQ

/// Facts about the libpq library gallra is linked against.
public enum LibPQ {
    /// libpq's version as `PQlibVersion()` reports it, e.g. 150018 for 15.18.
    public static var version: Int { Int(PQlibVersion()) }

    /// The version in the usual dotted form, e.g. "15.18".
    public static var versionString: String {
        let v = version
        return v >= 100_000 ? "\(v / 10_000).\(v % 10_000)" : "\(v / 10_000).\(v / 100 % 100).\(v % 100)"
    }
}
