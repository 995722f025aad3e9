import GallraTestSupport
import Foundation
import GallraPostgres
import Testing

@Suite("Notifications: LISTEN, NOTIFY and waiting for them")
struct NotificationTests {
    @Test func aNotificationFromAnotherSessionArrivesWithChannelPayloadAndSender() async throws {
        try await TestDatabase.with { database, listener in
            let sender = try await database.connect()
            let senderPID = await sender.backendPID
            try await listener.listen("gallra_trigger")
            let payload = "policy=Kündigungen ✓ 日本 🧹"
            let waiting = Task { try await listener.waitForNotification(timeout: .seconds(5)) }
            try await Task.sleep(for: .milliseconds(100))
            let (received, elapsed) = try await measure {
                try await sender.notify("gallra_trigger", payload: payload)
                return try await waiting.value
            }
            let notification = try #require(received)
            #expect(notification.channel == "gallra_trigger")
            #expect(notification.payload == payload)
            #expect(notification.backendPID == senderPID)
            #expect(notification.backendPID != (await listener.backendPID))
            #expect(elapsed < .seconds(1))

            // NOTIFY written by hand reaches `listen` just the same; no payload is an empty one.
            try await sender.execute("NOTIFY gallra_trigger")
            let bare = try #require(try await listener.waitForNotification(timeout: .seconds(2)))
            #expect(bare == PostgresNotification(channel: "gallra_trigger", payload: "", backendPID: senderPID))
            await sender.close()
        }
    }

    @Test func waitingReturnsNilWhenTheTimeoutPasses() async throws {
        try await TestDatabase.with { _, listener in
            try await listener.listen("gallra_trigger")
            let (received, elapsed) = try await measure {
                try await listener.waitForNotification(timeout: .milliseconds(600))
            }
            #expect(received == nil)
            #expect(elapsed >= .milliseconds(600))
            #expect(elapsed < .milliseconds(1000))

            let (immediate, immediateElapsed) = try await measure {
                try await listener.waitForNotification(timeout: .zero)
            }
            #expect(immediate == nil)
            #expect(immediateElapsed < .milliseconds(100))
        }
    }

    @Test func notificationsSentDuringAStatementAreKeptInOrder() async throws {
        try await TestDatabase.with { database, listener in
            let sender = try await database.connect()
            try await listener.listen("gallra_trigger")
            let sleeping = Task { try await listener.query("SELECT pg_sleep(0.5)") }
            try await Task.sleep(for: .milliseconds(150))
            for payload in ["first", "second", "third"] {
                try await sender.notify("gallra_trigger", payload: payload)
            }
            _ = try await sleeping.value
            try await sender.notify("gallra_trigger", payload: "after")

            var payloads: [String] = []
            while payloads.count < 4, let next = try await listener.waitForNotification(timeout: .seconds(2)) {
                payloads.append(next.payload)
            }
            #expect(payloads == ["first", "second", "third", "after"])
            #expect(try await listener.waitForNotification(timeout: .milliseconds(200)) == nil)
            await sender.close()
        }
    }

    @Test func pendingNotificationsDrainWithoutWaiting() async throws {
        try await TestDatabase.with { database, listener in
            let sender = try await database.connect()
            try await listener.listen("gallra_trigger")
            #expect(try await listener.pendingNotifications().isEmpty)
            let sleeping = Task { try await listener.query("SELECT pg_sleep(0.5)") }
            try await Task.sleep(for: .milliseconds(150))
            try await sender.notify("gallra_trigger", payload: "1")
            try await sender.notify("gallra_trigger", payload: "2")
            _ = try await sleeping.value
            let (pending, elapsed) = try await measure { try await listener.pendingNotifications() }
            #expect(pending.map(\.payload) == ["1", "2"])
            #expect(elapsed < .milliseconds(100))
            #expect(try await listener.pendingNotifications().isEmpty)
            await sender.close()
        }
    }

    @Test func unlistenStopsDelivery() async throws {
        try await TestDatabase.with { database, listener in
            let sender = try await database.connect()
            try await listener.listen("gallra_policy")
            try await listener.listen("gallra_trigger")
            try await listener.unlisten("gallra_policy")
            let channels = try await listener.query("SELECT pg_listening_channels() AS channel")
            #expect(channels.rows.map { $0["channel"] } == [.text("gallra_trigger")])
            try await sender.notify("gallra_policy", payload: "not heard")
            #expect(try await listener.waitForNotification(timeout: .milliseconds(500)) == nil)
            await sender.close()
        }
    }

    /// The oracle is the server: `pg_listening_channels()` names what LISTEN subscribed to, and `pg_notify`
    /// written by hand sends to the raw name.
    @Test(arguments: [
        #"x"y"#, "Mixed Case", "semi;colon -- 'quote'", "Ärger über 日本", String(repeating: "é", count: 31),
    ])
    func channelNamesAreQuoted(channel: String) async throws {
        try await TestDatabase.with { database, listener in
            let sender = try await database.connect()
            try await listener.listen(channel)
            let channels = try await listener.query("SELECT pg_listening_channels() AS channel")
            #expect(channels.rows.map { $0["channel"] } == [.text(channel)])
            try await sender.execute("SELECT pg_notify($1, 'odd')", [.text(channel)])
            let notification = try #require(try await listener.waitForNotification(timeout: .seconds(2)))
            #expect(notification.channel == channel)
            #expect(notification.payload == "odd")
            await sender.close()
        }
    }

    @Test func listeningOnAQuoteInTheNameMatchesTheQuotedIdentifierWrittenByHand() async throws {
        try await TestDatabase.with { database, listener in
            let sender = try await database.connect()
            try await listener.listen(#"x"y"#)
            try await sender.execute(#"NOTIFY "x""y", 'hand'"#)
            let notification = try #require(try await listener.waitForNotification(timeout: .seconds(2)))
            #expect(notification.channel == #"x"y"#)
            #expect(notification.payload == "hand")
            await sender.close()
        }
    }

    @Test(arguments: ["", "nul\u{0}inside", String(repeating: "x", count: 64)])
    func invalidChannelNamesAreRefused(channel: String) async throws {
        try await TestDatabase.with { _, connection in
            let listenError = await #expect(throws: PostgresError.self) { try await connection.listen(channel) }
            #expect(listenError?.code == .clientMisuse)
            #expect(listenError?.message.contains("channel name") == true)
            let notifyError = await #expect(throws: PostgresError.self) {
                try await connection.notify(channel, payload: "x")
            }
            #expect(notifyError?.code == .clientMisuse)
        }
    }

    @Test func cancellingAWaitingTaskReturnsPromptlyAndLeavesTheConnectionUsable() async throws {
        try await TestDatabase.with { database, listener in
            try await listener.listen("gallra_trigger")
            let waiting = Task { try await listener.waitForNotification(timeout: nil) }
            try await Task.sleep(for: .milliseconds(300))
            let (outcome, elapsed) = await measure {
                waiting.cancel()
                return await waiting.result
            }
            let error = try #require(outcome.failure(as: PostgresError.self))
            #expect(error.code == .cancelled)
            #expect(elapsed < .milliseconds(500))
            #expect(await listener.isOpen)
            #expect(try await listener.query("SELECT 1 AS one")[0, "one"] == .int32(1))

            let sender = try await database.connect()
            try await sender.notify("gallra_trigger", payload: "still listening")
            let notification = try await listener.waitForNotification(timeout: .seconds(2))
            #expect(notification?.payload == "still listening")
            await sender.close()
        }
    }

    @Test func theSequenceYieldsNotificationsAndEndsWhenItsTaskIsCancelled() async throws {
        try await TestDatabase.with { database, listener in
            let sender = try await database.connect()
            try await listener.listen("gallra_trigger")
            let consuming = Task {
                var payloads: [String] = []
                for try await notification in listener.notifications() { payloads.append(notification.payload) }
                return payloads
            }
            try await sender.notify("gallra_trigger", payload: "a")
            try await sender.notify("gallra_trigger", payload: "b")
            try await Task.sleep(for: .milliseconds(400))
            let (payloads, elapsed) = try await measure {
                consuming.cancel()
                return try await consuming.value
            }
            #expect(payloads == ["a", "b"])
            #expect(elapsed < .milliseconds(500))
            await sender.close()
        }
    }

    /// Waiting yields the connection between slices: another task's statement runs meanwhile, and a
    /// notification the session sends to itself reaches the waiter.
    @Test func statementsOfOtherTasksRunWhileOneWaits() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.listen("gallra_policy")
            let waiting = Task { try await connection.waitForNotification(timeout: .seconds(5)) }
            try await Task.sleep(for: .milliseconds(100))
            let (value, elapsed) = try await measure { try await connection.query("SELECT 7 AS seven")[0, "seven"] }
            #expect(value == .int32(7))
            #expect(elapsed < .milliseconds(500))
            try await connection.notify("gallra_policy", payload: "changed")
            let notification = try #require(try await waiting.value)
            #expect(notification.payload == "changed")
            #expect(notification.backendPID == (await connection.backendPID))
        }
    }

    @Test func aTerminatedListenerThrowsConnectionLost() async throws {
        try await TestDatabase.with { database, listener in
            try await listener.listen("gallra_trigger")
            let pid = await listener.backendPID
            let waiting = Task { try await listener.waitForNotification(timeout: .seconds(10)) }
            try await Task.sleep(for: .milliseconds(200))
            let admin = try await database.connect()
            let (outcome, elapsed) = try await measure {
                let terminated = try await admin.query("SELECT pg_terminate_backend($1, 5000) AS ok", [.int32(pid)])
                #expect(terminated[0, "ok"] == .bool(true))
                return await waiting.result
            }
            let error = try #require(outcome.failure(as: PostgresError.self))
            #expect(error.isConnectionLost)
            #expect(elapsed < .seconds(2))
            #expect(await listener.isOpen == false)
            await admin.close()
        }
    }

    @Test func notificationsReceivedBeforeTheLossAreHandedOutFirst() async throws {
        try await TestDatabase.with { database, listener in
            try await listener.listen("gallra_trigger")
            let pid = await listener.backendPID
            let admin = try await database.connect()
            try await admin.notify("gallra_trigger", payload: "before the end")
            try await Task.sleep(for: .milliseconds(200))  // delivered to the idle listener's socket
            _ = try await admin.query("SELECT pg_terminate_backend($1, 5000)", [.int32(pid)])
            let notification = try await listener.waitForNotification(timeout: .seconds(2))
            #expect(notification?.payload == "before the end")
            let error = await #expect(throws: PostgresError.self) {
                try await listener.waitForNotification(timeout: .seconds(2))
            }
            #expect(error?.isConnectionLost == true)
            let again = await #expect(throws: PostgresError.self) {
                try await listener.waitForNotification(timeout: .seconds(2))
            }
            #expect(again?.code == .connectionClosed)
            await admin.close()
        }
    }
}
