import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Metrics: the node_exporter textfile and `GET /metrics` of the built service after a demo run, read by the
/// Prometheus Python client's parser (Debian's python3-prometheus-client) and compared with the audit trail and
/// `gallra.run`, written by hand in SQL.
@Suite("metrics", .serialized)
struct MetricsTests {
    /// One sample as the parser reads it.
    struct Sample: Decodable, Hashable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    /// The labels gallra's metrics may carry: never one that could hold a subject.
    static let allowedLabels: Set<String> = ["policy", "table", "action", "outcome", "reason", "sqlstate", "le"]

    /// Parses exposition text (a file, or a URL fetched with urllib) with `prometheus_client.parser`; a parse error
    /// fails the test.
    static func parse(_ source: String) async throws -> [Sample] {
        let script = """
            import json, sys, urllib.request
            from prometheus_client.parser import text_string_to_metric_families
            source = sys.argv[1]
            if source.startswith("http://"):
                with urllib.request.urlopen(source, timeout=10) as response:
                    assert response.status == 200, response.status
                    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4"), response.headers
                    text = response.read().decode("utf-8")
            else:
                with open(source, encoding="utf-8") as f:
                    text = f.read()
            assert text.endswith("\\n"), "the last line ends in a line feed"
            samples = []
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    samples.append({"name": s.name, "labels": s.labels, "value": s.value})
            json.dump(samples, sys.stdout)
            """
        let result = try await run("/usr/bin/python3", ["-c", script, source])
        try #require(result.status == 0, "prometheus_client could not read \(source): \(result.stderr)")
        return try JSONDecoder().decode([Sample].self, from: Data(result.stdout.utf8))
    }

    /// The metric names the rules of an alert file use, after checking its structure as Prometheus reads it
    /// (`groups`, each rule an `alert`, an `expr`, an optional `for` duration, string labels and annotations).
    static func alertMetricNames(_ path: String) async throws -> Set<String> {
        let script = """
            import json, re, sys, yaml
            with open(sys.argv[1], encoding="utf-8") as f:
                document = yaml.safe_load(f)
            assert set(document) == {"groups"}, document.keys()
            names = set()
            alerts = []
            for group in document["groups"]:
                assert set(group) <= {"name", "interval", "rules"} and isinstance(group["name"], str), group
                for rule in group["rules"]:
                    assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
                    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"]), rule["alert"]
                    alerts.append(rule["alert"])
                    assert "for" not in rule or re.fullmatch(r"([0-9]+[smhdwy])+", rule["for"]), rule
                    for key in ("labels", "annotations"):
                        assert all(isinstance(v, str) for v in rule.get(key, {}).values()), rule
                    expr = rule["expr"]
                    assert expr.count("(") == expr.count(")") and expr.count("[") == expr.count("]"), expr
                    found = set(re.findall(r"\\bgallra_[a-z_]+", expr + " " + json.dumps(rule.get("annotations"))))
                    assert found, expr
                    names |= found
            assert len(alerts) == len(set(alerts)) == 3, alerts
            json.dump(sorted(names), sys.stdout)
            """
        let result = try await run("/usr/bin/python3", ["-c", script, path])
        try #require(result.status == 0, "\(path): \(result.stderr)")
        return Set(try JSONDecoder().decode([String].self, from: Data(result.stdout.utf8)))
    }

    /// A TCP port on 127.0.0.1 nothing listens on now.
    static func freePort() throws -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        try #require(bound, "no free port")
        return UInt16(bigEndian: address.sin_port)
    }

    /// `name`'s samples by their labels (minus `drop`), values summed.
    static func values(_ samples: [Sample], _ name: String, by keys: [String]) -> [String: Double] {
        var result: [String: Double] = [:]
        for sample in samples where sample.name == name {
            result[keys.map { sample.labels[$0] ?? "" }.joined(separator: "|"), default: 0] += sample.value
        }
        return result
    }

    /// psql's `-At` rows, `KEY|...|VALUE`, as a dictionary.
    static func rows(_ text: String) -> [String: Double] {
        var result: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "|", omittingEmptySubsequences: false)
            result[fields.dropLast().joined(separator: "|")] = Double(fields.last ?? "")
        }
        return result
    }

    /// Compares the samples with the audit trail and `gallra.run` of `shop`'s database.
    static func expectEqualToAudit(_ samples: [Sample], _ shop: DemoShop, _ what: String) async throws {
        let rows = Self.rows(
            try await shop.psql(
                """
                SELECT b.policy, c->>'table', c->>'action', sum((c->>'rows')::bigint)
                FROM gallra.audit_block AS b JOIN gallra.audit_subject AS s ON s.block = b.sequence,
                     jsonb_array_elements(s.counts) AS c
                GROUP BY 1, 2, 3 HAVING sum((c->>'rows')::bigint) > 0
                """))
        try #require(rows.count >= 3, "the demo run deleted and anonymized rows in several tables: \(rows)")
        #expect(
            values(samples, "gallra_rows_total", by: ["policy", "table", "action"]).filter { $0.value > 0 } == rows,
            "\(what): rows per policy, table and action")
        let subjects = Self.rows(
            try await shop.psql("SELECT policy, sum(subjects) FROM gallra.audit_block GROUP BY policy"))
        #expect(
            values(samples, "gallra_subjects_processed_total", by: ["policy"]).filter { $0.value > 0 } == subjects,
            "\(what): subjects per policy")
        let batches = Self.rows(try await shop.psql("SELECT policy, count(*) FROM gallra.audit_block GROUP BY policy"))
        #expect(
            values(samples, "gallra_batch_duration_seconds_count", by: ["policy"]) == batches,
            "\(what): one batch duration per audit block")
        let runs = Self.rows(try await shop.psql("SELECT outcome, count(*) FROM gallra.run GROUP BY outcome"))
        try #require(!runs.isEmpty)
        #expect(
            values(samples, "gallra_runs_total", by: ["outcome"]).filter { $0.value > 0 } == runs,
            "\(what): runs by outcome")
        #expect(
            Set(values(samples, "gallra_runs_total", by: ["outcome"]).keys)
                == ["done", "partial", "refused", "failed", "interrupted"],
            "\(what): every outcome's series exists from the start")
        let pending = try await shop.psql("SELECT count(*) FROM gallra.erasure_request WHERE status = 'pending'")
        #expect(Self.values(samples, "gallra_erasure_requests_pending", by: []) == ["": Double(pending)!], "\(what)")
        let succeeded = Set(Self.values(samples, "gallra_last_success_timestamp_seconds", by: ["policy"]).keys)
        #expect(succeeded.isSuperset(of: subjects.keys), "\(what): the policies that processed subjects succeeded")
        for sample in samples {
            #expect(Set(sample.labels.keys).isSubset(of: allowedLabels), "\(what): \(sample)")
        }
    }

    @Test("after a demo run the service's textfile and GET /metrics hold the audit trail's counts")
    func serviceMetricsEqualTheAuditTrail() async throws {
        try await DemoShop.with(customers: 300) { shop in
            let textfile = shop.directory + "/gallra.prom"
            let port = try Self.freePort()
            let daemon = try DaemonProcess(
                database: shop.conninfo, keyFile: shop.keyFile,
                environment: [
                    "GALLRA_METRICS_TEXTFILE": textfile, "GALLRA_METRICS_LISTEN": "127.0.0.1:\(port)",
                ])
            try await daemon.notify.wait(for: "READY=1")
            // Written at start, before any run: every outcome at 0.
            let before = try await Self.parse(textfile)
            let outcomes = Self.values(before, "gallra_runs_total", by: ["outcome"])
            #expect(outcomes.count == 5 && outcomes.values.allSatisfy { $0 == 0 }, "\(outcomes)")
            daemon.signal(SIGUSR1)
            try await waitUntil("the triggered run is in the textfile", within: 120) {
                let finished = try await shop.psql(
                    "SELECT count(*) FILTER (WHERE outcome <> 'running') || '|' || count(*) FROM gallra.run")
                let parts = finished.split(separator: "|")
                guard parts.count == 2, parts[0] == parts[1], let runs = Double(parts[0]), runs > 0 else {
                    return false
                }
                let samples = try await Self.parse(textfile)
                return Self.values(samples, "gallra_runs_total", by: []).values.reduce(0, +) == runs
            }
            try await Self.expectEqualToAudit(try await Self.parse(textfile), shop, "textfile")
            try await Self.expectEqualToAudit(
                try await Self.parse("http://127.0.0.1:\(port)/metrics"), shop, "GET /metrics")

            // node_exporter reads it as another user; no temporary file is left beside it.
            let attributes = try FileManager.default.attributesOfItem(atPath: textfile)
            #expect((attributes[.posixPermissions] as? Int) == 0o644)
            let files = try FileManager.default.contentsOfDirectory(atPath: shop.directory)
            #expect(files.filter { $0.contains("gallra.prom") } == ["gallra.prom"], "\(files)")
            daemon.signal(SIGTERM)
            #expect(try await daemon.waitForExit(within: 15) == 0, "\(daemon.log)")
        }
    }

    @Test("the textfile is replaced after each batch, while the run goes on")
    func textfileAfterEachBatch() async throws {
        try await withExpiredCustomers(count: 15, batchSize: 5, pause: "3s") { database, conninfo, keyFile in
            try await Harness.withTemporaryDirectory { directory in
                let textfile = directory + "/gallra.prom"
                let daemon = try DaemonProcess(
                    database: conninfo, keyFile: keyFile, environment: ["GALLRA_METRICS_TEXTFILE": textfile])
                try await daemon.notify.wait(for: "READY=1")
                daemon.signal(SIGUSR1)
                // After the first batch, during the pause before the second: 5 subjects, and the run still running.
                try await waitUntil("the first batch is in the textfile", within: 20) {
                    let samples = try await Self.parse(textfile)
                    return Self.values(samples, "gallra_subjects_processed_total", by: []) == ["": 5]
                }
                #expect(
                    try await Harness.psql("SELECT string_agg(outcome, ',') FROM gallra.run", database: database)
                        == "running")
                try await waitUntil("the run is in the textfile", within: 30) {
                    let samples = try await Self.parse(textfile)
                    return Self.values(samples, "gallra_runs_total", by: ["outcome"])["done"] == 1
                }
                let samples = try await Self.parse(textfile)
                #expect(Self.values(samples, "gallra_subjects_processed_total", by: []) == ["": 15])
                #expect(Self.values(samples, "gallra_batch_duration_seconds_count", by: []) == ["": 3])
                #expect(
                    Self.values(samples, "gallra_subjects_due", by: ["policy"]) == ["stale-customers": 0])
                daemon.signal(SIGTERM)
                #expect(try await daemon.waitForExit(within: 15) == 0, "\(daemon.log)")
            }
        }
    }

    @Test("a textfile that can no longer be written is logged once, and the run goes on")
    func textfileWriteFailureIsLoggedOnce() async throws {
        try await withExpiredCustomers(count: 15, batchSize: 5, pause: "100ms") { database, conninfo, keyFile in
            try await Harness.withTemporaryDirectory { directory in
                let textfile = directory + "/metrics/gallra.prom"
                try FileManager.default.createDirectory(
                    atPath: directory + "/metrics", withIntermediateDirectories: false)
                let daemon = try DaemonProcess(
                    database: conninfo, keyFile: keyFile, environment: ["GALLRA_METRICS_TEXTFILE": textfile])
                try await daemon.notify.wait(for: "READY=1")
                #expect(FileManager.default.fileExists(atPath: textfile))
                try FileManager.default.removeItem(atPath: directory + "/metrics")
                daemon.signal(SIGUSR1)
                try await waitUntil("the run is done", within: 20) {
                    try await Harness.psql("SELECT string_agg(outcome, ',') FROM gallra.run", database: database)
                        == "done"
                }
                #expect(
                    try await Harness.psql("SELECT count(*) FROM shop.customer", database: database) == "10")
                try await waitUntil("the failure is logged", within: 5) {
                    daemon.log.contains("cannot write the metrics textfile")
                }
                let warnings = daemon.log.split(separator: "\n").filter {
                    $0.contains("cannot write the metrics textfile: mkstemp \(directory)/metrics: No such file")
                }
                #expect(warnings.count == 1, "three batches and the run's end, one warning: \(warnings)")
                daemon.signal(SIGTERM)
                #expect(try await daemon.waitForExit(within: 15) == 0, "\(daemon.log)")
            }
        }
    }

    @Test("an address the service cannot listen on is logged as an error, and the service runs without the endpoint")
    func endpointOnATakenPort() async throws {
        try await withExpiredCustomers(count: 5) { database, conninfo, keyFile in
            // A port this test listens on.
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let listening = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 && listen(fd, 1) == 0
                }
            }
            try #require(listening)
            let port = UInt16(bigEndian: address.sin_port)
            let daemon = try DaemonProcess(
                database: conninfo, keyFile: keyFile, environment: ["GALLRA_METRICS_LISTEN": "127.0.0.1:\(port)"])
            try await daemon.notify.wait(for: "READY=1")
            try await waitUntil("the endpoint's failure is logged", within: 10) {
                daemon.log.contains("metrics: cannot serve GET /metrics on 127.0.0.1:\(port)")
            }
            daemon.signal(SIGUSR1)
            try await waitUntil("the run is done", within: 20) {
                try await Harness.psql("SELECT string_agg(outcome, ',') FROM gallra.run", database: database) == "done"
            }
            daemon.signal(SIGTERM)
            #expect(try await daemon.waitForExit(within: 15) == 0, "\(daemon.log)")
        }
    }

    @Test(
        "the endpoint answers 404 off /metrics and 405 to another method, keeps a connection alive, closes an idle one")
    func endpointStatuses() async throws {
        try await withExpiredCustomers(count: 5) { _, conninfo, keyFile in
            let port = try Self.freePort()
            let daemon = try DaemonProcess(
                database: conninfo, keyFile: keyFile, environment: ["GALLRA_METRICS_LISTEN": "127.0.0.1:\(port)"])
            try await waitUntil("the endpoint listens", within: 20) {
                daemon.log.contains("metrics: serving GET /metrics on 127.0.0.1:\(port)")
            }
            // One connection for every request: the local port it was made from must not change.
            let script = """
                import http.client, sys
                connection = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
                connection.connect()
                local = connection.sock.getsockname()
                for method, path in [("GET", "/metrics"), ("GET", "/metrics?name=x"), ("GET", "/"),
                                     ("GET", "/metrics/x"), ("POST", "/metrics"), ("HEAD", "/metrics")]:
                    connection.request(method, path)
                    response = connection.getresponse()
                    body = response.read()
                    print(method, path, response.status, response.getheader("Content-Type"),
                          response.getheader("Allow"), len(body) > 0)
                print("same connection", connection.sock is not None and connection.sock.getsockname() == local)
                """
            let result = try await run("/usr/bin/python3", ["-c", script, "\(port)"])
            try #require(result.status == 0, "\(result.stderr)")
            let metricsType = "text/plain; version=0.0.4; charset=utf-8"
            #expect(
                result.stdout.split(separator: "\n") == [
                    "GET /metrics 200 \(metricsType) None True",
                    "GET /metrics?name=x 200 \(metricsType) None True",
                    "GET / 404 None None False",
                    "GET /metrics/x 404 None None False",
                    "POST /metrics 405 None GET, HEAD False",
                    "HEAD /metrics 200 \(metricsType) None False",
                    "same connection True",
                ], "\(result.stdout)")
            // A connection that sends nothing is closed after 15 s.
            let idle = """
                import socket, sys, time
                connection = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=40)
                started = time.monotonic()
                print(connection.recv(1) == b"", round(time.monotonic() - started))
                """
            let closed = try await run("/usr/bin/python3", ["-c", idle, "\(port)"])
            try #require(closed.status == 0, "\(closed.stderr)")
            let fields = closed.stdout.split(separator: " ")
            #expect(fields.first == "True", "\(closed.stdout)")
            #expect(
                fields.count == 2
                    && (14...20).contains(Int(fields[1].trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0),
                "\(closed.stdout)")
            daemon.signal(SIGTERM)
            #expect(try await daemon.waitForExit(within: 15) == 0, "\(daemon.log)")
        }
    }

    @Test("run --once writes the textfile with the run's counts")
    func runOnceWritesTheTextfile() async throws {
        try await DemoShop.with(customers: 200) { shop in
            let textfile = shop.directory + "/once.prom"
            let result = try await shop.gallra(
                "run", "--once", "--as-of", DemoShop.asOf,
                environment: shop.keyEnvironment.merging(["GALLRA_METRICS_TEXTFILE": textfile]) { $1 })
            try #require([0, 75].contains(result.status), "\(result.stderr)")
            let samples = try await Self.parse(textfile)
            try await Self.expectEqualToAudit(samples, shop, "run --once")

            // The example alert rules: Prometheus's rule file structure, and only metrics gallra exports.
            let names = try await Self.alertMetricNames(shop.root + "/config/gallra-alerts.yaml")
            #expect(names.count == 4, "\(names)")
            let exported = Set(samples.map(\.name))
            #expect(names.isSubset(of: exported), "not exported: \(names.subtracting(exported))")
        }
    }

    @Test("a policy the guard refuses: a refusal, a refused run, every due subject still due, no success")
    func guardRefusalIsCounted() async throws {
        try await withExpiredCustomers(count: 15) { database, conninfo, keyFile in
            try await Harness.withTemporaryDirectory { directory in
                let policy = directory + "/stale-customers.yaml"
                try """
                policy: stale-customers
                state: active
                subject: { table: shop.customer, key: id }
                expires: { inactive_for: 1 year, activity: last_seen_at }
                data:
                  - { table: shop.customer, delete: true }
                limits: { batch_size: 5, max_subjects_per_run: 10, max_fraction: 1 }
                """.write(toFile: policy, atomically: true, encoding: .utf8)
                let apply = try await gallra("policy", "apply", "--database", conninfo, policy)
                try #require(apply.status == 0, "\(apply.stdout)\(apply.stderr)")
                let textfile = directory + "/gallra.prom"
                let result = try await gallra(
                    "run", "--once", "--database", conninfo,
                    environment: ["GALLRA_AUDIT_KEY_FILE": keyFile, "GALLRA_METRICS_TEXTFILE": textfile])
                #expect(result.status == 75, "\(result.stderr)")
                let samples = try await Self.parse(textfile)
                #expect(Self.values(samples, "gallra_guard_refusals_total", by: ["policy"]) == ["stale-customers": 1])
                #expect(Self.values(samples, "gallra_runs_total", by: ["outcome"])["refused"] == 1)
                #expect(Self.values(samples, "gallra_subjects_due", by: ["policy"]) == ["stale-customers": 15])
                #expect(Self.values(samples, "gallra_last_success_timestamp_seconds", by: ["policy"]).isEmpty)
                #expect(Self.values(samples, "gallra_subjects_processed_total", by: []).isEmpty)
                #expect(
                    try await Harness.psql("SELECT string_agg(outcome, ',') FROM gallra.run", database: database)
                        == "refused")
            }
        }
    }

    @Test("a textfile gallra cannot write, or a bad listen address, stops the start with 78 and says why")
    func badMetricsSettingsExit78() async throws {
        try await Harness.withTemporaryDirectory { directory in
            let key = directory + "/audit-key"
            try String(repeating: "k", count: 48).write(toFile: key, atomically: true, encoding: .utf8)
            let environment = ["GALLRA_AUDIT_KEY_FILE": key]
            let missing = try await gallra(
                "run", "--once", "--database", "host=/nonexistent dbname=none",
                environment: environment.merging(["GALLRA_METRICS_TEXTFILE": directory + "/no/such/dir/g.prom"]) {
                    $1
                })
            #expect(missing.status == 78, "\(missing.stderr)")
            #expect(missing.stderr.contains("metrics.textfile"), "\(missing.stderr)")
            #expect(missing.stderr.contains(directory + "/no/such/dir"), "\(missing.stderr)")
            #expect(missing.stderr.contains("No such file or directory"), "\(missing.stderr)")

            let relative = try await gallra(
                "run", "--once", "--database", "host=/nonexistent dbname=none",
                environment: environment.merging(["GALLRA_METRICS_TEXTFILE": "gallra.txt"]) { $1 })
            #expect(relative.status == 78, "\(relative.stderr)")
            #expect(relative.stderr.contains("an absolute path ending in .prom"), "\(relative.stderr)")

            for bad in ["9187", "127.0.0.1", "127.0.0.1:70000", "example.org:9187", "[::1:9187"] {
                let listen = try await gallra(
                    "run", "--database", "host=/nonexistent dbname=none",
                    environment: environment.merging(["GALLRA_METRICS_LISTEN": bad]) { $1 })
                #expect(listen.status == 78, "\(bad): \(listen.stderr)")
                #expect(listen.stderr.contains("metrics.listen"), "\(bad): \(listen.stderr)")
                #expect(listen.stderr.contains("127.0.0.1:9187"), "\(bad): \(listen.stderr)")
            }
        }
    }
}
