/// The lawful basis a policy's processing rests on (`legal_basis:`): one of the six of GDPR Art. 6(1).
public enum LegalBasis: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
    /// (a) The subject consented to the processing for this purpose.
    case consent
    /// (b) Needed to perform a contract with the subject, or to take steps they asked for before one.
    case contract
    /// (c) Needed to comply with a legal obligation of the controller (bookkeeping, tax).
    case legalObligation = "legal_obligation"
    /// (d) Needed to protect someone's life.
    case vitalInterests = "vital_interests"
    /// (e) Needed for a task in the public interest or in the exercise of official authority.
    case publicTask = "public_task"
    /// (f) Needed for the legitimate interests of the controller or a third party, not overridden by the subject's.
    case legitimateInterests = "legitimate_interests"

    /// The spelling in a policy file (`legal_obligation`).
    public var description: String { rawValue }

    /// The point of GDPR Art. 6(1) that states it, `(a)` to `(f)`.
    public var article: String {
        switch self {
        case .consent: "Art. 6(1)(a)"
        case .contract: "Art. 6(1)(b)"
        case .legalObligation: "Art. 6(1)(c)"
        case .vitalInterests: "Art. 6(1)(d)"
        case .publicTask: "Art. 6(1)(e)"
        case .legitimateInterests: "Art. 6(1)(f)"
        }
    }
}
