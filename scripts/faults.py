#!/usr/bin/env python3
"""The fault campaign (docs/reliability.md): faults against `gallra run --once` on the demo shop,
each trial checked by an SQL oracle that shares no code with gallra.

Run by scripts/faults.sh, which builds gallra and starts the PostgreSQL cluster this script is given:

    faults.py --gallra BIN --server CONNINFO --pg-dir DIR --work DIR [--customers N] [--trials N] [--seed N]

Each trial works on a fresh copy of one template database (the demo shop, gallra migrated, the policy
applied): it starts a run, injects the fault, waits for the run to end, checks the oracle (the state
a fault leaves), undoes the fault's cause (the server back, the lock released, the grant restored),
reruns until a run ends cleanly, and checks the oracle again (with nothing left due). It prints one
line per trial, then a table per fault, and exits 1 on any violation.
"""

import argparse
import hashlib
import hmac
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time

TEMPLATE = "faults_tpl"
ROLE = "gallra_faults"
POLICY = "inactive-customers"
SUBJECT_TABLE = "shop.customer"
# The shop's tables the policy deletes from, with the column naming the subject (cart_item through cart).
DELETED = {
    "wishlist_item": "customer_id",
    "cart": "customer_id",
    "newsletter_consent": "customer_id",
    "newsletter_log": "customer_ref",
}
# Tables the policy never touches: compared whole.
UNTOUCHED = ["order_line", "product", "store", "employee"]


# Every table whose rows a batch of the policy locks.
LOCKED_TABLES = ["shop.customer", "shop.wishlist_item", "shop.cart_item", "shop.cart", "shop.newsletter_consent",
                 "shop.newsletter_log", 'shop."order"', "shop.address"]


def log(*parts):
    print(*parts, flush=True)


class Server:
    """psql against the campaign's cluster, as its superuser (the shop and the oracle)."""

    def __init__(self, conninfo, pg_dir):
        self.conninfo = conninfo
        self.pg_dir = pg_dir
        bindirs = sorted(
            (d for d in os.listdir("/usr/lib/postgresql")), key=lambda v: [int(x) for x in v.split(".")]
        )
        self.bindir = f"/usr/lib/postgresql/{bindirs[-1]}/bin"

    def db(self, name):
        return f"{self.conninfo} dbname={name}"

    def psql(self, sql, db="postgres", check=True, timeout=600):
        proc = subprocess.run(
            ["psql", self.db(db), "-qAtX", "-v", "ON_ERROR_STOP=1", "-F", "\t", "-c", sql],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"psql failed ({proc.returncode}): {proc.stderr.strip()}\n  in: {sql[:300]}")
        return proc.stdout

    def rows(self, sql, db="postgres"):
        out = self.psql(sql, db)
        return [line.split("\t") for line in out.splitlines() if line != ""]

    def psql_file(self, path, db, variables=()):
        args = ["psql", self.db(db), "-qX", "-v", "ON_ERROR_STOP=1"]
        for name, value in variables:
            args += ["-v", f"{name}={value}"]
        # Notices (a DROP ... IF EXISTS that had nothing to drop) are not the campaign's news.
        env = dict(os.environ, PGOPTIONS="-c client_min_messages=warning")
        subprocess.run(args + ["-f", path], check=True, stdout=subprocess.DEVNULL, env=env)

    def pg_ctl(self, *args):
        cmd = [f"{self.bindir}/pg_ctl", "-D", f"{self.pg_dir}/data", "-l", f"{self.pg_dir}/server.log", *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True)

    def up(self):
        return subprocess.run(["psql", self.db("postgres"), "-qAtX", "-c", "SELECT 1"], capture_output=True).returncode == 0

    def wait_up(self, seconds=60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.up():
                return
            time.sleep(0.1)
        raise RuntimeError("the server did not come back")


class Session:
    """A psql process kept open: the shop holding locks while a run goes on."""

    def __init__(self, server, db):
        self.proc = subprocess.Popen(
            ["psql", server.db(db), "-qAtX", "-v", "ON_ERROR_STOP=1"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def send(self, sql, marker="ready"):
        self.proc.stdin.write(sql + f"\n\\echo {marker}\n")
        self.proc.stdin.flush()
        while True:
            line = self.proc.stdout.readline()
            if line == "":
                raise RuntimeError("the shop's session ended")
            if line.strip() == marker:
                return

    def close(self):
        try:
            self.proc.stdin.write("ROLLBACK;\n\\q\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ------------------------------------------------------------------------------------------------
# The snapshot and the oracle: plain SQL over the shop's tables, no gallra code.


def table_hash_sql(table):
    return f'SELECT md5(coalesce(string_agg(md5(t::text), \'\' ORDER BY md5(t::text)), \'\')) FROM shop."{table}" AS t'


def snapshot(server, db):
    """Each row of the shop as a hash, by owner; the columns the policy anonymizes kept in clear."""
    snap = {}
    snap["customer"] = {r[0]: r[1] for r in server.rows("SELECT id, md5(t::text) FROM shop.customer AS t", db)}
    for table, column in DELETED.items():
        key = "id" if table != "wishlist_item" else "customer_id, product_id"
        snap[table] = {
            r[0]: (r[1], r[2])
            for r in server.rows(f"SELECT row({key})::text, md5(t::text), {column} FROM shop.{table} AS t", db)
        }
    snap["cart_item"] = {
        r[0]: (r[1], r[2])
        for r in server.rows(
            "SELECT row(i.cart_id, i.product_id)::text, md5(i::text), c.customer_id"
            " FROM shop.cart_item AS i JOIN shop.cart AS c ON c.id = i.cart_id",
            db,
        )
    }
    # Orders: the hash of the columns the policy keeps, the anonymized ones in clear.
    snap["order"] = {
        r[0]: r[1:]
        for r in server.rows(
            "SELECT id, md5(row(id, placed_at, status, shipping_address_id, total)::text),"
            " coalesce(customer_id::text, ''), email, full_name, coalesce(phone, '\\N'),"
            " coalesce(birth_date::text, '\\N'), coalesce(date_trunc('year', birth_date)::date::text, '\\N')"
            ' FROM shop."order"',
            db,
        )
    }
    snap["address"] = {
        r[0]: r[1:]
        for r in server.rows(
            "SELECT id, md5(row(id, postal_code, city, country)::text), street, coalesce(phone, '\\N')"
            " FROM shop.address",
            db,
        )
    }
    snap["untouched"] = {t: server.psql(table_hash_sql(t), db).strip() for t in UNTOUCHED}
    return snap


class Shop:
    """What the template holds: who expires, who owns which row, who uses which address."""

    def __init__(self, server, db):
        self.before = snapshot(server, db)
        self.expiring = {
            r[0]
            for r in server.rows(
                "SELECT id FROM shop.customer WHERE last_seen_at < now() - interval '1 year' AND NOT legal_hold", db
            )
        }
        # Address users: customers (address_id), orders (their customer), stores.
        self.address_users = {}
        for address, user in server.rows(
            "SELECT address_id, 'c' || id FROM shop.customer WHERE address_id IS NOT NULL"
            " UNION ALL SELECT shipping_address_id, 'c' || coalesce(customer_id::text, 'none')"
            ' FROM shop."order" WHERE shipping_address_id IS NOT NULL'
            " UNION ALL SELECT address_id, 's' || id FROM shop.store",
            db,
        ):
            self.address_users.setdefault(address, set()).add(user)
        self.customers = set(self.before["customer"])


def check_state(server, db, shop, key, final):
    """The oracle. Returns (violations, processed subjects). `final`: after a clean rerun."""
    after = snapshot(server, db)
    before = shop.before
    problems = []

    def bad(message):
        if len(problems) < 20:
            problems.append(message)
        elif len(problems) == 20:
            problems.append("(more violations left out)")

    for table, digest in before["untouched"].items():
        if after["untouched"][table] != digest:
            bad(f"shop.{table}, outside the policy, changed")
    for table in ["customer", *DELETED, "cart_item", "order", "address"]:
        extra = set(after[table]) - set(before[table])
        if extra:
            bad(f"shop.{table} has {len(extra)} rows it did not have")

    processed = {c for c in shop.customers if c not in after["customer"]}
    for c in shop.customers:
        if c in after["customer"] and after["customer"][c] != before["customer"][c]:
            bad(f"customer {c} changed but not deleted")
    for c in processed - shop.expiring:
        bad(f"customer {c} does not expire but was deleted")

    # Rows a subject owns: all gone when it is processed, all byte-identical otherwise; orphans identical.
    for table in [*DELETED, "cart_item"]:
        for row, (digest, owner) in before[table].items():
            if owner in processed:
                if row in after[table]:
                    bad(f"subject {owner} processed but its shop.{table} row {row} remains")
            elif after[table].get(row, (None,))[0] != digest:
                bad(f"shop.{table} row {row} of subject {owner} (not processed) changed or vanished")

    # Orders: anonymized and detached when their customer is processed, byte-identical otherwise.
    for oid, (rest, customer, email, name, phone, birth, birth_year) in before["order"].items():
        now = after["order"].get(oid)
        if now is None:
            bad(f"order {oid} vanished (orders are kept)")
            continue
        if now[0] != rest:
            bad(f"order {oid}: a column the policy keeps changed")
        if customer in processed:
            n_customer, n_email, n_name, n_phone, n_birth = now[1:6]
            if n_customer != "" or n_phone != "\\N" or n_birth != birth_year or n_email == email or n_name == name:
                bad(f"order {oid} of processed subject {customer} not (fully) anonymized")
        elif tuple(now[1:6]) != (customer, email, name, phone, birth):
            bad(f"order {oid} of subject {customer} (not processed) changed")

    # Addresses: anonymized only when no store and no subject that stays uses them, and at least one of
    # their subjects is processed; when all their subjects are processed, anonymized.
    for aid, (rest, street, phone) in before["address"].items():
        now = after["address"].get(aid)
        if now is None:
            bad(f"address {aid} vanished (addresses are kept)")
            continue
        if now[0] != rest:
            bad(f"address {aid}: a column the policy keeps changed")
        users = shop.address_users.get(aid, set())
        stays = any(u[0] == "s" or u[1:] not in shop.expiring for u in users)
        customers = {u[1:] for u in users if u[0] == "c"}
        anonymized = now[1] != street or now[2] != phone
        if anonymized:
            if now[1] == street or now[2] != "\\N":
                bad(f"address {aid} half anonymized")
            if stays:
                bad(f"address {aid} anonymized while a store or a subject that stays uses it")
            elif not customers & processed:
                bad(f"address {aid} anonymized but none of its subjects is processed")
        elif users and not stays and customers <= processed:
            bad(f"address {aid}: all its subjects processed, not anonymized")

    # The audit trail: one record per processed subject, none for another; the chain links without gaps.
    digests = {}
    for (digest,) in server.rows(
        "SELECT s.subject_digest FROM gallra.audit_subject AS s JOIN gallra.audit_block AS b ON b.sequence = s.block"
        f" WHERE b.policy = '{POLICY}'",
        db,
    ):
        digests[digest] = digests.get(digest, 0) + 1
    expected = {subject_digest(key, SUBJECT_TABLE, c): c for c in processed}
    for digest, c in expected.items():
        if digests.get(digest, 0) != 1:
            bad(f"subject {c} processed with {digests.get(digest, 0)} audit records")
    stray = sum(n for d, n in digests.items() if d not in expected)
    if stray:
        bad(f"{stray} audit records of subjects not processed")
    blocks = server.rows(
        "SELECT sequence, previous_hash, hash, subjects, (SELECT count(*) FROM gallra.audit_subject AS s"
        " WHERE s.block = b.sequence) FROM gallra.audit_block AS b ORDER BY sequence",
        db,
    )
    previous = "0" * 64
    for i, (sequence, previous_hash, block_hash, subjects, records) in enumerate(blocks, start=1):
        if int(sequence) != i or previous_hash != previous or subjects != records:
            bad(f"audit block {sequence}: sequence, link or record count broken")
            break
        previous = block_hash
    head = server.rows("SELECT sequence, hash FROM gallra.audit_head", db)
    if head != [[str(len(blocks)), previous]]:
        bad("gallra.audit_head is not the last block")

    if final:
        left = shop.expiring - processed
        if left:
            bad(f"{len(left)} expiring subjects left after a clean rerun, e.g. {sorted(left, key=int)[:3]}")
        running = server.psql("SELECT count(*) FROM gallra.run WHERE outcome = 'running'", db).strip()
        if running != "0":
            bad(f"{running} runs still recorded as running after a clean rerun")
    return problems, processed


def subject_digest(key, table, subject):
    return hmac.new(key, f"{table}:{subject}".encode(), hashlib.sha256).hexdigest()


# ------------------------------------------------------------------------------------------------
# gallra


class Gallra:
    def __init__(self, binary, server, work, key_file):
        self.binary = binary
        self.server = server
        self.work = work
        self.key_file = key_file

    def env(self, db, extra=None):
        env = dict(os.environ)
        env.update(
            {
                "GALLRA_CONFIG": os.path.join(self.work, "gallra.yaml"),
                "GALLRA_DATABASE": f"{self.server.conninfo} dbname={db} user={ROLE}",
                "GALLRA_AUDIT_KEY_FILE": self.key_file,
                "GALLRA_LOG_FORMAT": "text",
                "GALLRA_LOG_LEVEL": "warning",
            }
        )
        env.update(extra or {})
        return env

    def start(self, db, *args, name="run"):
        out = open(os.path.join(self.work, f"{db}-{name}.out"), "w")
        return subprocess.Popen(
            [self.binary, *args], env=self.env(db), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def run(self, db, *args, timeout=600, env=None):
        proc = subprocess.run(
            [self.binary, *args], env=self.env(db, env), capture_output=True, text=True, timeout=timeout
        )
        return proc.returncode, proc.stdout + proc.stderr


def wait(proc, timeout):
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return "hang"


def status(code):
    return f"sig{-code}" if isinstance(code, int) and code < 0 else str(code)


# ------------------------------------------------------------------------------------------------
# Faults. Each gets the trial context, starts the run(s) itself, injects, and returns the exit
# statuses seen; `undo` (optional) removes the fault's cause before the recovery run.


class Trial:
    def __init__(self, campaign, db, rng):
        self.c = campaign
        self.db = db
        self.rng = rng
        self.server = campaign.server
        self.undo = []
        self.notes = []

    def offset(self, parallel=False):
        return self.rng.uniform(0.05, 0.8) * (self.c.baseline_parallel if parallel else self.c.baseline)

    def run_with(self, inject, parallel=False):
        if parallel:
            self.c.apply_policy(self.db, parallel=2)
        proc = self.c.gallra.start(self.db, "run", "--once")
        time.sleep(self.offset(parallel))
        if proc.poll() is None:
            inject(proc)
        else:
            self.notes.append("ended before the fault")
        return [wait(proc, self.c.run_timeout)]

    def gallra_backends(self):
        return [
            r[0]
            for r in self.server.rows(
                f"SELECT pid FROM pg_stat_activity WHERE usename = '{ROLE}' AND datname = '{self.db}'"
            )
        ]


def fault_kill9(t):
    return t.run_with(lambda p: os.killpg(p.pid, signal.SIGKILL))


def fault_kill9_parallel(t):
    return t.run_with(lambda p: os.killpg(p.pid, signal.SIGKILL), parallel=True)


def signal_fault(signals, gap=0.3):
    def fault(t):
        def inject(p):
            for i, s in enumerate(signals):
                if i:
                    time.sleep(gap)
                if p.poll() is None:
                    os.kill(p.pid, s)

        return t.run_with(inject)

    return fault


def restart_fault(mode):
    def fault(t):
        def inject(_):
            result = t.server.pg_ctl("-m", mode, "-w", "-t", "120", "restart")
            if result.returncode != 0:
                raise RuntimeError(f"pg_ctl restart -m {mode}: {result.stderr.strip()}")

        codes = t.run_with(inject)
        t.server.wait_up()
        return codes

    return fault


def backend_fault(function, which):
    def fault(t):
        def inject(_):
            pids = t.gallra_backends()
            if which == "one" and pids:
                pids = [t.rng.choice(pids)]
            for pid in pids:
                t.server.psql(f"SELECT {function}({pid})", check=False)
            if not pids:
                t.notes.append("no backend found")

        return t.run_with(inject)

    return fault


def fault_locked_rows(t):
    # The shop holds FOR UPDATE on the child rows of three expiring customers for the whole run.
    victims = t.rng.sample(sorted(t.c.shop.expiring & t.c.with_wishlist, key=int), 3)
    session = Session(t.server, t.db)
    ids = ", ".join(victims)
    session.send(f"BEGIN; SELECT FROM shop.wishlist_item WHERE customer_id IN ({ids}) FOR UPDATE;")
    t.undo.append(session.close)
    proc = t.c.gallra.start(t.db, "run", "--once")
    codes = [wait(proc, t.c.run_timeout)]
    session.close()
    return codes


def fault_two_runs(t):
    first = t.c.gallra.start(t.db, "run", "--once", name="run1")
    time.sleep(t.rng.uniform(0, 0.2))
    second = t.c.gallra.start(t.db, "run", "--once", name="run2")
    return [wait(first, t.c.run_timeout), wait(second, t.c.run_timeout)]


def fault_revoke(t):
    def inject(_):
        t.server.psql(f"REVOKE DELETE ON shop.wishlist_item FROM {ROLE}", t.db)

    t.undo.append(lambda: t.server.psql(f"GRANT DELETE ON shop.wishlist_item TO {ROLE}", t.db))
    return t.run_with(inject)


def fault_trigger(t):
    victims = t.rng.sample(sorted(t.c.shop.expiring & t.c.with_wishlist, key=int), 3)
    t.server.psql(
        "CREATE FUNCTION shop.faults_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " RAISE EXCEPTION 'the shop refuses to delete this row'; END $$;"
        " CREATE TRIGGER faults_refuse BEFORE DELETE ON shop.wishlist_item FOR EACH ROW"
        f" WHEN (OLD.customer_id IN ({', '.join(victims)})) EXECUTE FUNCTION shop.faults_refuse()",
        t.db,
    )
    t.undo.append(
        lambda: t.server.psql(
            "DROP TRIGGER faults_refuse ON shop.wishlist_item; DROP FUNCTION shop.faults_refuse()", t.db
        )
    )
    proc = t.c.gallra.start(t.db, "run", "--once")
    return [wait(proc, t.c.run_timeout)]


def fault_sigstop(t):
    # Stopped mid-batch: the shop must be able to lock every row of the policy's tables within the
    # idle-in-transaction timeout (10 s by default) plus a margin, while gallra is still stopped.
    freed = {}

    def inject(p):
        os.kill(p.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        while time.monotonic() - stopped < t.c.idle_timeout + 20:
            # Row locks: any row gallra's open transaction wrote is locked; NOWAIT over every table.
            probe = subprocess.run(
                ["psql", t.server.db(t.db), "-qAtX", "-v", "ON_ERROR_STOP=1", "-c",
                 "BEGIN; " + " ".join(
                     f"SELECT count(*) FROM (SELECT FROM {table} FOR UPDATE NOWAIT) AS t;" for table in LOCKED_TABLES
                 ) + " ROLLBACK"],
                capture_output=True,
                text=True,
            )
            if probe.returncode == 0:
                freed["after"] = time.monotonic() - stopped
                break
            time.sleep(0.5)
        os.kill(p.pid, signal.SIGCONT)

    codes = t.run_with(inject)
    if "after" in freed:
        t.notes.append(f"locks free {freed['after']:.1f} s after SIGSTOP")
        if freed["after"] > t.c.idle_timeout + 5:
            t.extra_violations = [f"locks held {freed['after']:.1f} s by a stopped gallra"]
    elif "ended before the fault" not in t.notes:
        t.extra_violations = [f"locks still held {t.c.idle_timeout + 20} s after SIGSTOP"]
    return codes


FAULTS = [
    ("kill -9", fault_kill9, 1.0),
    ("kill -9, parallel: 2", fault_kill9_parallel, 0.5),
    ("restart -m fast", restart_fault("fast"), 0.25),
    ("restart -m immediate", restart_fault("immediate"), 0.25),
    ("pg_terminate_backend (all)", backend_fault("pg_terminate_backend", "all"), 0.25),
    ("pg_terminate_backend (one)", backend_fault("pg_terminate_backend", "one"), 0.25),
    ("pg_cancel_backend", backend_fault("pg_cancel_backend", "all"), 0.25),
    ("rows locked by the shop", fault_locked_rows, 0.25),
    ("two runs at once", fault_two_runs, 0.25),
    ("SIGTERM", signal_fault([signal.SIGTERM]), 0.25),
    ("SIGINT", signal_fault([signal.SIGINT]), 0.25),
    ("SIGTERM twice", signal_fault([signal.SIGTERM, signal.SIGTERM]), 0.25),
    ("SIGINT twice", signal_fault([signal.SIGINT, signal.SIGINT]), 0.25),
    ("grant revoked mid-run", fault_revoke, 0.25),
    ("trigger raising on 3 subjects", fault_trigger, 0.25),
    ("SIGSTOP", fault_sigstop, 0.25),
]


# ------------------------------------------------------------------------------------------------
# Hostile inputs: policy files with odd content must be refused with a usage/data/config status
# (never 70 or a signal) and leave the stored policies unchanged; subjects with odd text keys must be
# processed all or nothing, their audit digests those of their keys.

HOSTILE_POLICIES = {
    "empty": "",
    "only a comment": "# nothing\n",
    "a list, not a mapping": "- policy: x\n",
    "a scalar": "just text\n",
    "NUL bytes": "policy: x\x00y\nsubject: { table: shop.customer, key: id }\n",
    "invalid UTF-8": b"policy: \xff\xfe\nsubject: { table: shop.customer, key: id }\n",
    "tab indentation": "policy: x\nsubject:\n\ttable: shop.customer\n",
    "a duplicate key": "policy: a\npolicy: b\n",
    "an anchor bomb": "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
    "deep nesting": "a: " + "[" * 5000 + "]" * 5000 + "\n",
    "a huge name": "policy: " + "x" * 100000 + "\n",
    "a quote in the table": 'policy: q\nsubject: { table: "shop.cus\\"tomer", key: id }\nexpires: { inactive_for: 1 year, activity: last_seen_at }\ndata:\n  - { table: shop.customer, delete: true }\n',
    "SQL in a column": "policy: s\nsubject: { table: shop.customer, key: \"id; DROP TABLE shop.product\" }\nexpires: { inactive_for: 1 year, activity: last_seen_at }\ndata:\n  - { table: shop.customer, delete: true }\n",
    "a negative period": "policy: n\nsubject: { table: shop.customer, key: id }\nexpires: { inactive_for: -1 year, activity: last_seen_at }\ndata:\n  - { table: shop.customer, delete: true }\n",
    "a huge period": "policy: h\nsubject: { table: shop.customer, key: id }\nexpires: { inactive_for: 99999999999999999999 years, activity: last_seen_at }\ndata:\n  - { table: shop.customer, delete: true }\n",
    "batch_size 0": "policy: b\nsubject: { table: shop.customer, key: id }\nexpires: { inactive_for: 1 year, activity: last_seen_at }\ndata:\n  - { table: shop.customer, delete: true }\nlimits: { batch_size: 0 }\n",
    "unknown table": "policy: u\nsubject: { table: shop.nope, key: id }\nexpires: { inactive_for: 1 year, activity: last_seen_at }\ndata:\n  - { table: shop.nope, delete: true }\n",
    "unicode name": "policy: \u00e5\u00e4\u00f6-\U0001F600\nsubject: { table: shop.customer, key: id }\nexpires: { inactive_for: 1 year, activity: last_seen_at }\ndata:\n  - { table: shop.customer, delete: true }\n",
    "a BOM and CRLF": "\ufeffpolicy: crlf\r\nsubject: { table: shop.customer, key: id }\r\nexpires: { inactive_for: 1 year, activity: last_seen_at }\r\n",
}

HOSTILE_KEYS = [
    "plain",
    "it's",
    'say "hi"',
    "back\\slash",
    "semi; DROP TABLE hostile.note; --",
    "'); DELETE FROM hostile.person; --",
    "\u00e5\u00e4\u00f6 \u00c5\u00c4\u00d6",
    "\U0001F600 emoji",
    "\u202eRTL override",
    "zero\u200bwidth",
    "tab\there",
    "new\nline",
    "\\x00 looks like NUL",
    "%s %n %x",
    "${HOME}",
    "<script>",
    " leading and trailing ",
    "x" * 2000,
    "shop.customer:1",
    ":colon:",
]


def hostile_trial(campaign):
    """Returns [(name, status, violations)]."""
    c = campaign
    db = "faults_hostile"
    c.fresh(db)
    results = []
    before_policies = c.server.psql("SELECT md5(string_agg(t::text, '' ORDER BY t::text)) FROM gallra.policy AS t", db)
    tmp = tempfile.mkdtemp(dir=c.work)
    for name, content in HOSTILE_POLICIES.items():
        path = os.path.join(tmp, "policy.yaml")
        with open(path, "wb") as f:
            f.write(content if isinstance(content, bytes) else content.encode())
        for command in (["policy", "validate", path], ["policy", "apply", path]):
            code, out = c.gallra.run(db, *command, timeout=120)
            problems = []
            if code not in (64, 65, 66, 78):
                problems.append(f"{' '.join(command[:2])} of {name!r} exited {status(code)}: {out.strip()[-300:]}")
            results.append((f"policy file: {name}", code, problems))
    after_policies = c.server.psql("SELECT md5(string_agg(t::text, '' ORDER BY t::text)) FROM gallra.policy AS t", db)
    if before_policies != after_policies:
        results.append(("policy file: stored policies unchanged", "-", ["the stored policies changed"]))

    # Subjects with odd text keys.
    c.server.psql(
        "CREATE SCHEMA hostile;"
        " CREATE TABLE hostile.person (key text PRIMARY KEY, last_seen_at timestamptz NOT NULL);"
        " CREATE TABLE hostile.note (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        "   person text NOT NULL REFERENCES hostile.person (key), body text NOT NULL);"
        " CREATE INDEX ON hostile.note (person);"
        f" GRANT USAGE ON SCHEMA hostile TO {ROLE};"
        f" GRANT SELECT, UPDATE, DELETE ON ALL TABLES IN SCHEMA hostile TO {ROLE};",
        db,
    )
    keys = [(k, "old" if i % 2 == 0 else "new") for i, k in enumerate(HOSTILE_KEYS)]
    values = ", ".join(
        "(" + quote(k) + (", now() - interval '2 years')" if age == "old" else ", now())") for k, age in keys
    )
    c.server.psql(f"INSERT INTO hostile.person VALUES {values}", db)
    c.server.psql("INSERT INTO hostile.note (person, body) SELECT key, 'a note' FROM hostile.person, generate_series(1, 2)", db)
    policy_dir = os.path.join(tmp, "hostile")
    os.mkdir(policy_dir)
    with open(os.path.join(policy_dir, "hostile.yaml"), "w") as f:
        f.write(
            "policy: hostile-keys\ndescription: Subjects with odd keys.\nstate: active\n"
            "subject: { table: hostile.person, key: key }\n"
            "expires: { inactive_for: 1 year, activity: last_seen_at }\n"
            "data:\n  - { table: hostile.note, delete: true }\n  - { table: hostile.person, delete: true }\n"
            "limits: { batch_size: 3, pause: 0, max_fraction: 1 }\n"
        )
    code, out = c.gallra.run(db, "policy", "apply", policy_dir)
    if code != 0:
        raise RuntimeError(f"hostile: policy apply exited {code}: {out}")
    # Lookups by odd keys: a status, never a crash.
    for k in ("it's", "\U0001F600 emoji", "nul\x01ctl", "", "x" * 5000):
        code, out = c.gallra.run(db, "explain", "--subject", f"hostile.person:{k}", timeout=120)
        problems = [] if code in (0, 64, 65, 66) else [f"explain --subject {k[:20]!r} exited {status(code)}: {out[-300:]}"]
        results.append((f"explain of key {k[:12]!r}", code, problems))
    code, out = c.gallra.run(db, "run", "--once", timeout=300)
    problems = [] if code == 0 else [f"run --once exited {status(code)}: {out[-300:]}"]
    remaining = {r[0] for r in c.server.rows("SELECT md5(key) FROM hostile.person", db)}
    notes = {r[0]: int(r[1]) for r in c.server.rows("SELECT md5(person), count(*) FROM hostile.note GROUP BY 1", db)}
    digests = [r[0] for r in c.server.rows(
        "SELECT s.subject_digest FROM gallra.audit_subject AS s JOIN gallra.audit_block AS b ON b.sequence = s.block"
        " WHERE b.policy = 'hostile-keys'", db)]
    for k, age in keys:
        h = hashlib.md5(k.encode()).hexdigest()
        n = digests.count(subject_digest(c.key, "hostile.person", k))
        if age == "old" and (h in remaining or h in notes or n != 1):
            problems.append(f"old key {k[:20]!r}: person left {h in remaining}, notes {notes.get(h, 0)}, records {n}")
        if age == "new" and (h not in remaining or notes.get(h) != 2 or n != 0):
            problems.append(f"new key {k[:20]!r} touched")
    if len(digests) != sum(1 for _, age in keys if age == "old"):
        problems.append(f"{len(digests)} audit records for {sum(1 for _, a in keys if a == 'old')} subjects")
    code_v, out_v = c.gallra.run(db, "audit", "verify")
    if code_v != 0:
        problems.append(f"audit verify exited {code_v}: {out_v[-300:]}")
    results.append(("subjects with odd keys", code, problems))
    c.drop(db)
    return results


def quote(text):
    return "'" + text.replace("'", "''") + "'"


# ------------------------------------------------------------------------------------------------


class Campaign:
    def __init__(self, args):
        self.server = Server(args.server, args.pg_dir)
        self.work = args.work
        self.customers = args.customers
        self.key_file = os.path.join(self.work, "audit-key")
        with open(self.key_file, "w") as f:
            f.write(hashlib.sha256(f"faults {args.seed}".encode()).hexdigest() + "\n")
        os.chmod(self.key_file, 0o400)
        with open(self.key_file, "rb") as f:
            self.key = f.read().rstrip()
        with open(os.path.join(self.work, "gallra.yaml"), "w") as f:
            f.write("session:\n  idle_in_transaction_timeout: 10\n")
        self.idle_timeout = 10
        self.gallra = Gallra(args.gallra, self.server, self.work, self.key_file)
        self.root = args.root

    def policy_dir(self, parallel):
        path = os.path.join(self.work, f"policies-p{parallel}")
        if not os.path.isdir(path):
            os.mkdir(path)
            with open(os.path.join(self.root, "config/policies/inactive-customers.yaml")) as f:
                text = f.read()
            lines = [l for l in text.splitlines() if not l.startswith("limits:")]
            lines.append(
                f"limits: {{ batch_size: 50, pause: 0, max_subjects_per_run: 1000000, max_fraction: 0.5,"
                f" parallel: {parallel} }}"
            )
            with open(os.path.join(path, "inactive-customers.yaml"), "w") as f:
                f.write("\n".join(lines) + "\n")
        return path

    def apply_policy(self, db, parallel=1):
        code, out = self.gallra.run(db, "policy", "apply", self.policy_dir(parallel))
        if code != 0:
            raise RuntimeError(f"policy apply exited {code}: {out}")

    def build_template(self):
        s = self.server
        s.psql(f"DROP DATABASE IF EXISTS {TEMPLATE}")
        s.psql(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN"
               f" CREATE ROLE {ROLE} LOGIN; END IF; END $$")
        s.psql("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gallra_app') THEN"
               " CREATE ROLE gallra_app NOLOGIN; END IF; END $$")
        s.psql(f"CREATE DATABASE {TEMPLATE}")
        s.psql(f"GRANT CREATE ON DATABASE {TEMPLATE} TO {ROLE}")
        s.psql_file(os.path.join(self.root, "config/demo/schema.sql"), TEMPLATE)
        s.psql_file(os.path.join(self.root, "config/demo/generate.sql"), TEMPLATE, [("customers", self.customers)])
        # No customer within a day of the one-year boundary, so that no subject starts to expire
        # while the campaign runs.
        s.psql(
            "UPDATE shop.customer SET last_seen_at = now() - interval '1 year' + interval '2 days'"
            " WHERE last_seen_at >= now() - interval '1 year' - interval '1 hour'"
            "   AND last_seen_at < now() - interval '1 year' + interval '2 days'",
            TEMPLATE,
        )
        s.psql(
            f"GRANT USAGE ON SCHEMA shop TO {ROLE};"
            f" GRANT SELECT, UPDATE, DELETE ON ALL TABLES IN SCHEMA shop TO {ROLE}",
            TEMPLATE,
        )
        s.psql("VACUUM ANALYZE", TEMPLATE)
        for command in (["migrate"], ["policy", "apply", self.policy_dir(1)]):
            code, out = self.gallra.run(TEMPLATE, *command)
            if code != 0:
                raise RuntimeError(f"gallra {' '.join(command)} exited {code}: {out}")
        self.shop = Shop(s, TEMPLATE)
        self.with_wishlist = {r[0] for r in s.rows("SELECT DISTINCT customer_id FROM shop.wishlist_item", TEMPLATE)}
        log(f"template: {len(self.shop.customers)} customers, {len(self.shop.expiring)} expiring")

    def fresh(self, db):
        self.server.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        self.server.psql(f"CREATE DATABASE {db} TEMPLATE {TEMPLATE}")

    def drop(self, db):
        self.server.psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")

    def measure_baseline(self):
        """Undisturbed runs (parallel: 1 and 2): how long a run takes, and the oracle agrees with them."""
        db = "faults_baseline"
        for parallel in (1, 2):
            self.fresh(db)
            if parallel == 2:
                self.apply_policy(db, parallel=2)
            started = time.monotonic()
            code, out = self.gallra.run(db, "run", "--once")
            seconds = time.monotonic() - started
            if code != 0:
                raise RuntimeError(f"the undisturbed run exited {code}: {out}")
            problems, processed = check_state(self.server, db, self.shop, self.key, final=True)
            if problems:
                raise RuntimeError("the undisturbed run violates the oracle:\n  " + "\n  ".join(problems))
            if parallel == 1:
                self.baseline = seconds
            else:
                self.baseline_parallel = seconds
            log(f"undisturbed run, parallel: {parallel}: {seconds:.1f} s, {len(processed)} subjects, oracle clean")
        self.run_timeout = max(120, 10 * self.baseline)
        self.drop(db)

    def test_oracle(self):
        """The oracle must see what it is there to see: each damage below, done by hand, is a violation."""
        db = "faults_oracle"
        victim = min(self.shop.expiring & self.with_wishlist, key=int)
        keeper = min(self.shop.customers - self.shop.expiring, key=int)
        damages = {
            "half a subject (its wishlist gone, its account kept)": f"DELETE FROM shop.wishlist_item WHERE customer_id = {victim}",
            "a row outside the policy changed": "UPDATE shop.product SET price = price + 1 WHERE id = 1",
            "a subject that stays touched": f'UPDATE shop."order" SET phone = NULL WHERE customer_id = {keeper}',
            "a subject deleted without an audit record": (
                f"DELETE FROM shop.wishlist_item WHERE customer_id = {victim};"
                f" DELETE FROM shop.newsletter_log WHERE customer_ref = {victim};"
                f" DELETE FROM shop.cart WHERE customer_id = {victim};"
                f" DELETE FROM shop.newsletter_consent WHERE customer_id = {victim};"
                f' UPDATE shop."order" SET customer_id = NULL, phone = NULL, email = \'x\' || id,'
                f" full_name = 'x', birth_date = date_trunc('year', birth_date) WHERE customer_id = {victim};"
                f" DELETE FROM shop.customer WHERE id = {victim}"
            ),
        }
        for what, damage in damages.items():
            self.fresh(db)
            self.server.psql(damage, db)
            problems, _ = check_state(self.server, db, self.shop, self.key, final=False)
            if not problems:
                raise RuntimeError(f"the oracle misses {what}")
        self.drop(db)
        log(f"oracle: sees each of {len(damages)} damages done by hand")

    def recover(self, db):
        """Reruns until a run ends with 0 (a moment after a fault the runner lock or the server may still
        be busy); returns the seconds it took and the statuses of the reruns."""
        started = time.monotonic()
        codes = []
        for attempt in range(10):
            code, out = self.gallra.run(db, "run", "--once", timeout=self.run_timeout)
            codes.append(code)
            if code == 0:
                return time.monotonic() - started, codes, None
            time.sleep(1)
        return time.monotonic() - started, codes, f"no clean rerun in 10 attempts: {codes}, last: {out[-400:]}"

    def trial(self, name, fault, number, rng):
        db = f"faults_t{number}"
        self.fresh(db)
        t = Trial(self, db, rng)
        t.extra_violations = []
        problems = []
        try:
            codes = fault(t)
        finally:
            for undo in t.undo:
                undo()
        problems += list(t.extra_violations)
        if "hang" in codes:
            problems.append("the faulted run did not end")
        if 70 in codes:
            problems.append("exit 70 (internal error) on a fault")
        if not self.server.up():
            self.server.wait_up()
        mid, processed_mid = check_state(self.server, db, self.shop, self.key, final=False)
        problems += [f"after the fault: {p}" for p in mid]
        seconds, rerun_codes, error = self.recover(db)
        if error:
            problems.append(error)
        final, processed = check_state(self.server, db, self.shop, self.key, final=True)
        problems += [f"after recovery: {p}" for p in final]
        code, out = self.gallra.run(db, "audit", "verify")
        if code != 0:
            problems.append(f"audit verify exited {code}: {out.strip()[-300:]}")
        code, out = self.gallra.run(db, "plan", "--format", "json")
        if code != 0:
            problems.append(f"plan exited {code}")
        else:
            due = sum_key(json.loads(out), "expiring")
            if due:
                problems.append(f"plan after recovery: {due} subjects still due")
        self.drop(db)
        note = "; ".join(t.notes)
        log(
            f"  {name:32} #{number:<3} exit {'/'.join(status(c) for c in codes):9} processed before recovery"
            f" {len(processed_mid):5}, recovery {seconds:5.1f} s {('(' + note + ')') if note else ''}"
            f" {'OK' if not problems else 'VIOLATION'}"
        )
        for p in problems:
            log(f"      {p}")
        return codes, seconds, problems, "ended before the fault" not in t.notes


def sum_key(document, key):
    """The sum of every number under `key` anywhere in a JSON document."""
    total = 0
    if isinstance(document, dict):
        for k, v in document.items():
            if k == key and isinstance(v, (int, float)) and not isinstance(v, bool):
                total += v
            else:
                total += sum_key(v, key)
    elif isinstance(document, list):
        for v in document:
            total += sum_key(v, key)
    return total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gallra", required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--pg-dir", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--customers", type=int, default=20000)
    parser.add_argument("--trials", type=int, default=4, help="trials of kill -9; other faults get a share")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", default="", help="run only faults whose name contains this")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    campaign = Campaign(args)
    started = time.monotonic()
    campaign.build_template()
    campaign.test_oracle()
    campaign.measure_baseline()
    table = []
    number = 0
    for name, fault, share in FAULTS:
        if args.only and args.only not in name:
            continue
        trials = max(1, round(args.trials * share))
        codes_seen, times, violations, landed = {}, [], 0, 0
        for _ in range(trials):
            number += 1
            codes, seconds, problems, hit = campaign.trial(name, fault, number, rng)
            key = "/".join(status(c) for c in codes)
            codes_seen[key] = codes_seen.get(key, 0) + 1
            times.append(seconds)
            violations += 1 if problems else 0
            landed += 1 if hit else 0
        table.append((name, trials, landed, violations, codes_seen, times))
    if not args.only or "hostile" in args.only:
        results = hostile_trial(campaign)
        codes_seen, violations = {}, 0
        for what, code, problems in results:
            codes_seen[status(code)] = codes_seen.get(status(code), 0) + 1
            if problems:
                violations += 1
                log(f"  hostile: {what}: VIOLATION")
                for p in problems:
                    log(f"      {p}")
        log(f"  hostile inputs: {len(results)} checks, {violations} violations")
        table.append(("hostile inputs", len(results), len(results), violations, codes_seen, []))

    total_trials = sum(row[1] for row in table if row[0] != "hostile inputs")
    total_violations = sum(row[3] for row in table)
    log("")
    log("landed: trials whose run was still going when the fault came (a run that ended first is still checked)")
    log(f"{'fault':32} {'trials':>6} {'landed':>6} {'violations':>10}  {'exit codes (count)':30} {'recovery median/max':>20}")
    for name, trials, landed, violations, codes_seen, times in table:
        codes = ", ".join(f"{k}x{v}" for k, v in sorted(codes_seen.items()))
        recovery = f"{statistics.median(times):.1f} / {max(times):.1f} s" if times else "-"
        log(f"{name:32} {trials:6} {landed:6} {violations:10}  {codes:30} {recovery:>20}")
    log(
        f"{total_trials} fault trials and {sum(row[1] for row in table) - total_trials} hostile inputs,"
        f" {total_violations} with violations; {campaign.customers} customers,"
        f" undisturbed run {campaign.baseline:.1f} s; {time.monotonic() - started:.0f} s in all"
    )
    return 1 if total_violations else 0


if __name__ == "__main__":
    sys.exit(main())
