import GallraSystemd
import Testing

@Test func journalStreamNeedsTheVariable() {
    #expect(!JournalStream.matchesStandardError(environment: [:]))
    #expect(!JournalStream.matchesStandardError(environment: ["JOURNAL_STREAM": "not-a-pair"]))
    #expect(!JournalStream.matchesStandardError(environment: ["JOURNAL_STREAM": "1:1"]))
}
