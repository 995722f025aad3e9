import GallraTestSupport
import Foundation
import Testing

@testable import GallraSystemd

#if canImport(Glibc)
    import Glibc
#endif

/// `NOTIFY_SOCKET` and `WATCHDOG_*` are process-wide, so these tests run one at a time and put
/// the variables back afterwards.
@Suite(.serialized)
struct SystemdNotifierTests {
    let notifier = SystemdNotifier()

    @Test(arguments: [false, true])
    func readyStatusWatchdogAndStoppingArriveAsDatagrams(abstract: Bool) throws {
        let listener = try NotifyListener(abstract: abstract)
        try withEnvironment(["NOTIFY_SOCKET": listener.address]) {
            #expect(notifier.isEnabled)

            try notifier.ready(status: "connected, 3 policies")
            let ready = try listener.receive()
            #expect(ready.assignments == ["READY=1", "STATUS=connected, 3 policies"])
            #expect(ready.senderPID == getpid())

            try notifier.ready()
            #expect(try listener.receive().assignments == ["READY=1"])

            try notifier.status("purging inactive-customers: 12000/48000 subjects")
            #expect(try listener.receive().text == "STATUS=purging inactive-customers: 12000/48000 subjects")

            try notifier.watchdog()
            #expect(try listener.receive().text == "WATCHDOG=1")

            try notifier.stopping(status: "finishing the current batch")
            #expect(try listener.receive().assignments == ["STOPPING=1", "STATUS=finishing the current batch"])
        }
    }

    @Test func reloadingCarriesTheMonotonicClock() throws {
        let listener = try NotifyListener(abstract: false)
        try withEnvironment(["NOTIFY_SOCKET": listener.address]) {
            let before = monotonicMicroseconds()
            try notifier.reloading(status: "re-reading policies")
            let after = monotonicMicroseconds()

            let assignments = try listener.receive().assignments
            #expect(assignments.count == 3)
            #expect(assignments.first == "RELOADING=1")
            #expect(assignments.last == "STATUS=re-reading policies")
            let stamp = try #require(assignments.first { $0.hasPrefix("MONOTONIC_USEC=") })
            let value = try #require(UInt64(stamp.dropFirst("MONOTONIC_USEC=".count)))
            #expect(value >= before && value <= after)
        }
    }

    @Test func extendTimeoutSendsMicroseconds() throws {
        let listener = try NotifyListener(abstract: true)
        try withEnvironment(["NOTIFY_SOCKET": listener.address]) {
            try notifier.extendTimeout(.seconds(90))
            #expect(try listener.receive().text == "EXTEND_TIMEOUT_USEC=90000000")
            try notifier.extendTimeout(.milliseconds(1500))
            #expect(try listener.receive().text == "EXTEND_TIMEOUT_USEC=1500000")
        }
    }

    @Test func aLineBreakInAValueCannotInjectAnAssignment() throws {
        let listener = try NotifyListener(abstract: false)
        try withEnvironment(["NOTIFY_SOCKET": listener.address]) {
            try notifier.status("policy x\nREADY=1")
            #expect(try listener.receive().assignments == ["STATUS=policy x READY=1"])
        }
    }

    @Test func withoutNotifySocketMessagesAreNoOps() throws {
        try withEnvironment(["NOTIFY_SOCKET": nil]) {
            #expect(!notifier.isEnabled)
            try notifier.ready(status: "ready")
            try notifier.status("idle")
            try notifier.watchdog()
            try notifier.reloading()
            try notifier.stopping()
            try notifier.extendTimeout(.seconds(5))
        }
    }

    @Test func anUnreachableSocketIsReportedAsAnError() throws {
        let missing = "\(NSTemporaryDirectory())gallra-no-such-socket-\(UUID().uuidString)"
        withEnvironment(["NOTIFY_SOCKET": missing]) {
            #expect(notifier.isEnabled)
            let error = #expect(throws: SystemdNotifier.Error.self) { try notifier.ready() }
            #expect(error?.code == ENOENT)
            #expect(error?.message == "READY=1")
            #expect(error?.description.contains("READY=1") == true)
        }
    }

    @Test func watchdogIntervalForThisProcess() {
        withEnvironment(["WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "\(getpid())"]) {
            #expect(notifier.watchdogInterval == .seconds(1))
            #expect(notifier.watchdogPingInterval == .milliseconds(500))
        }
    }

    @Test func watchdogMeantForAnotherProcessIsOff() {
        withEnvironment(["WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "\(getppid())"]) {
            #expect(notifier.watchdogInterval == nil)
            #expect(notifier.watchdogPingInterval == nil)
        }
    }

    @Test func watchdogWithoutWatchdogPIDIsForThisProcess() {
        withEnvironment(["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": nil]) {
            #expect(notifier.watchdogInterval == .seconds(30))
            #expect(notifier.watchdogPingInterval == .seconds(15))
        }
    }

    @Test func noWatchdogWithoutWatchdogUSec() {
        withEnvironment(["WATCHDOG_USEC": nil, "WATCHDOG_PID": nil]) {
            #expect(notifier.watchdogInterval == nil)
        }
    }

    private func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }
}

@Test(arguments: [
    (Duration.seconds(90), UInt64(90_000_000)),
    (.milliseconds(1500), 1_500_000),
    (.nanoseconds(1), 1),
    (.nanoseconds(1001), 2),
    (.zero, 0),
    (.seconds(-3), 0),
])
func timeoutsAreWholeMicrosecondsRoundedUp(duration: Duration, microseconds: UInt64) {
    #expect(SystemdNotifier.microseconds(duration) == microseconds)
}
