/// The pause between a policy's batches (`limits.pause`).
enum Pacing {
    /// Sleeps `duration` in slices of at most `slice`, calling `beat` after each but the last: a long pause
    /// still shows signs of life (the daemon's watchdog heartbeat). Cancellation ends it at once.
    static func pause(_ duration: Duration, slice: Duration = .seconds(10), beat: () -> Void) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + duration
        while case let left = deadline - clock.now, left > .zero {
            try await Task.sleep(for: min(left, slice))
            if clock.now < deadline { beat() }
        }
    }
}
