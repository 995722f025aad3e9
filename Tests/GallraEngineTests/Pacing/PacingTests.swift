import Testing

@testable import GallraEngine

@Suite("Pacing between batches")
struct PacingTests {
    @Test func aLongPauseShowsSignsOfLifeAndEndsOnTime() async throws {
        var beats = 0
        let started = ContinuousClock.now
        try await Pacing.pause(.milliseconds(500), slice: .milliseconds(100)) { beats += 1 }
        let took = ContinuousClock.now - started
        #expect(took >= .milliseconds(500) && took < .seconds(2), "\(took)")
        #expect(beats >= 1 && beats <= 4, "at most one beat per slice, none after the last: \(beats)")
    }

    @Test func noPauseIsNoWait() async throws {
        var beats = 0
        try await Pacing.pause(.zero) { beats += 1 }
        #expect(beats == 0)
    }
}
