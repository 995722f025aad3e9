import GallraEngine
import GallraPostgres
import GallraTestSupport
import Testing

/// Known answers from FIPS 180-2 and RFC 4231, not from the code under test.
@Suite("Digests")
struct DigestTests {
    @Test func sha256KnownAnswers() {
        #expect(
            Digest.hex(Digest.sha256(Array("abc".utf8)))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            Digest.hex(Digest.sha256([]))
                == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            Digest.hex(Digest.sha256(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(
            Digest.hex(Digest.sha256([UInt8](repeating: 0x61, count: 1_000_000)))
                == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Every length around the padding boundaries (55, 56, 63, 64 bytes and their multiples), against the server.
    @Test func sha256AgreesWithPostgreSQL() async throws {
        try await TestDatabase.with { _, connection in
            let rows = try await connection.query(
                """
                SELECT n, encode(sha256(convert_to(repeat(chr(65 + n % 26), n), 'SQL_ASCII')), 'hex') AS digest
                FROM generate_series(0, 200) AS n
                """)
            #expect(rows.count == 201)
            for row in rows {
                let n = try #require(row["n"]?.int64)
                let bytes = [UInt8](repeating: UInt8(65 + n % 26), count: Int(n))
                #expect(Digest.hex(Digest.sha256(bytes)) == row["digest"]?.string, "length \(n)")
            }
        }
    }

    /// Keys shorter than, as long as and longer than a block, against pgcrypto's `hmac(message, key, type)`.
    @Test func hmacSHA256AgreesWithPgcrypto() async throws {
        try await TestDatabase.with { _, connection in
            try await connection.execute("CREATE EXTENSION pgcrypto")
            let rows = try await connection.query(
                """
                SELECT k, m, encode(hmac(convert_to(repeat('m', m), 'SQL_ASCII'),
                                         convert_to(repeat('k', k), 'SQL_ASCII'), 'sha256'), 'hex') AS mac
                FROM generate_series(0, 130, 13) AS k, (VALUES (0), (1), (64), (119)) AS v(m)
                """)
            #expect(rows.count == 44)
            for row in rows {
                let k = try #require(row["k"]?.int64), m = try #require(row["m"]?.int64)
                let mac = Digest.hmacSHA256(
                    key: [UInt8](repeating: 0x6b, count: Int(k)), message: [UInt8](repeating: 0x6d, count: Int(m)))
                #expect(Digest.hex(mac) == row["mac"]?.string, "key \(k) bytes, message \(m) bytes")
            }
        }
    }

    @Test func hmacSHA256KnownAnswers() {
        // RFC 4231 test case 1 and 2.
        #expect(
            Digest.hex(Digest.hmacSHA256(key: [UInt8](repeating: 0x0b, count: 20), message: Array("Hi There".utf8)))
                == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        #expect(
            Digest.hex(Digest.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8)))
                == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        // RFC 4231 test case 6: a key longer than the block is hashed first.
        #expect(
            Digest.hex(
                Digest.hmacSHA256(
                    key: [UInt8](repeating: 0xaa, count: 131),
                    message: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)))
                == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    }

    /// Policy digests are computed by gallra and compared by PostgreSQL's rows: the two must agree on every text,
    /// multi-byte UTF-8 and escapes included, so that digests stored before and after stay equal.
    @Test(arguments: [
        "", "{}", #"{"name":"inactive-customers","state":"active"}"#, "Åsa Öberg – 東京 🚀", #"{"a":"\"\\\n"}"#,
        String(repeating: "x", count: 1000),
    ])
    func policyDigestAgreesWithPostgreSQL(text: String) async throws {
        try await TestDatabase.with { _, connection in
            let server = try await connection.query(
                "SELECT encode(sha256(convert_to($1, 'UTF8')), 'hex') AS digest", [.text(text)]
            ).first?.decode("digest", as: String.self)
            #expect(Digest.sha256Hex(text) == server)
        }
    }

    /// Subject digests from the per-run keyed state equal a fresh HMAC of each message (the state is copied, never
    /// shared between subjects).
    @Test func subjectDigesterMatchesOneShotHMAC() {
        let key = Array("0123456789abcdef0123456789abcdef".utf8)
        let digester = SubjectDigester(key: key)
        for subject in ["1", "42", "1", "", String(repeating: "k", count: 200)] {
            #expect(
                digester.digest(table: "shop.customer", key: subject)
                    == Digest.hex(Digest.hmacSHA256(key: key, message: Array("shop.customer:\(subject)".utf8))))
        }
    }
}
