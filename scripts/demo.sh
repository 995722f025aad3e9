#!/usr/bin/env bash
# `make demo`: gallra on a built-in demo shop.
# Installs what is missing, builds the release binary, starts a throwaway PostgreSQL (or uses
# $GALLRA_DATABASE), loads the demo shop (DEMO_CUSTOMERS customers, default 10000) and shows
# what gallra does with it. The throwaway server is removed at the end unless DEMO_KEEP=1: then it keeps
# running with a configuration file (the database and the audit key) and the commands to try next, and
# `make demo-reset` (scripts/demo.sh reset) gives back the shop as it was before the live run.
# GALLRA_BINARY=path uses that binary instead of building the release one.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# `scripts/demo.sh reset [DIR]`: the kept demo's shop database recreated from its copy made before the live run.
if [ "${1:-}" = reset ]; then
    dir=${2:-${DEMO_DIR:-}}
    [ -n "$dir" ] || [ -z "${GALLRA_CONFIG:-}" ] || dir=$(dirname "$GALLRA_CONFIG")
    if [ -z "$dir" ] || [ ! -f "$dir/server" ]; then
        echo "demo-reset: no kept demo found; give its directory (make demo-reset DEMO_DIR=/tmp/gallra-demo.XXXXXX)" >&2
        echo "            or export GALLRA_CONFIG as DEMO_KEEP=1 make demo printed it" >&2
        exit 64
    fi
    server=$(cat "$dir/server")
    psql "$server" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS shop WITH (FORCE)" \
        -c "CREATE DATABASE shop TEMPLATE shop_unpurged"
    echo "demo-reset: the shop is back as before the live run (nothing purged, no audit trail); try gallra plan"
    exit 0
fi

scripts/deps.sh
customers=${DEMO_CUSTOMERS:-10000}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
# SQL as the shop or an operator runs it on the demo database.
show_sql() { printf '$ psql "$GALLRA_DATABASE" -c "%s"\n' "$1"; psql "$GALLRA_DATABASE" -qX -c "$1"; }

if [ -n "${GALLRA_BINARY:-}" ]; then
    gallra=$(realpath "$GALLRA_BINARY")
else
    step "Building gallra (release)"
    scripts/release.sh
    gallra="$(swift build -c release --show-bin-path)/gallra"
fi

# What a kept demo prints at the end: the configuration to use and the commands to try on it.
next_steps() {
    kept=$(psql "$GALLRA_DATABASE" -qAtX -c \
        "SELECT min(c.id) FROM shop.customer AS c WHERE c.last_seen_at > now() - interval '1 year'
         AND NOT c.legal_hold AND EXISTS (SELECT FROM shop.\"order\" AS o WHERE o.customer_id = c.id)")
    cat <<NEXT

$(printf '\033[1m== %s\033[0m' "The demo is kept: try it yourself")
export GALLRA_CONFIG=$work/gallra.yaml    # the demo database and its audit key
alias gallra=$gallra
gallra plan                                          # the active policies have nothing left to do
gallra audit verify                                  # the chains recomputed
gallra audit lookup --subject shop.customer:${subject:-1}     # a customer the run purged
gallra audit lookup --subject shop.customer:$kept    # an active customer, kept
gallra explain --subject shop.customer:$kept         # why it is kept, and until when
gallra export --subject shop.customer:$kept --out $work/customer-$kept.json
gallra erase --subject shop.customer:$kept --dry-run # what an erasure request would do
gallra requests list                                 # the erasure requests and what became of them
make demo-reset DEMO_DIR=$work    # the shop as before the live run: plan and run again
gallra plan && gallra run --once
NEXT
}

work=""
if [ -z "${GALLRA_DATABASE:-}" ]; then
    work=$(mktemp -d /tmp/gallra-demo.XXXXXX)
    chmod 0755 "$work"
    cleanup() {
        status=$?
        if [ "${DEMO_KEEP:-0}" = 1 ]; then
            [ "$status" -ne 0 ] || next_steps
            echo "The demo server keeps running; stop it with: scripts/pg.sh stop $work/pg && rm -rf $work"
        else
            scripts/pg.sh stop "$work/pg" || true
            rm -rf "$work"
        fi
        exit $status
    }
    trap cleanup EXIT INT TERM
    step "Starting a throwaway PostgreSQL"
    server=$(scripts/pg.sh start "$work/pg")
    echo "$server" >"$work/server"
    psql "$server" -qX -c "CREATE DATABASE shop" >/dev/null
    GALLRA_DATABASE="${server/dbname=postgres/dbname=shop}"
fi
export GALLRA_DATABASE

step "Loading the demo shop ($customers customers)"
# Never replace a schema `shop` that is not the demo's own.
existing=$(psql "$GALLRA_DATABASE" -qAtX -c \
    "SELECT coalesce(obj_description(oid, 'pg_namespace'), '') FROM pg_namespace WHERE nspname = 'shop'")
if [ -n "$existing" ] && [[ "$existing" != "gallra demo shop"* ]]; then
    echo "demo: the database already has a schema \"shop\" that is not gallra's demo; refusing to replace it." >&2
    echo "      Unset GALLRA_DATABASE to use a throwaway server, or point it at an empty database." >&2
    exit 78
fi
PGOPTIONS="-c client_min_messages=warning" psql "$GALLRA_DATABASE" -qX -v ON_ERROR_STOP=1 -f config/demo/schema.sql
started=$SECONDS
psql "$GALLRA_DATABASE" -qX -v ON_ERROR_STOP=1 -v customers="$customers" -f config/demo/generate.sql >/dev/null
echo "loaded in $((SECONDS - started)) s"
psql "$GALLRA_DATABASE" -qX -v ON_ERROR_STOP=1 -f config/demo/check.sql

step "gallra"
show "$gallra" version
show "$gallra" check

step "Policies: check them against the shop's catalog and see what each would touch"
show "$gallra" policy validate config/policies

step "gallra's own schema, then the policies stored in it"
show "$gallra" migrate
show "$gallra" policy apply config/policies
show "$gallra" policy list

step "Consent: the shop's consent table moves into gallra's registry, and customer service uses it"
# The shop kept consent in a table of its own (shop.newsletter_consent); the import turns each row into
# a grant and, if withdrawn, a revocation, with their historical times (docs/consent.md, "Moving from
# your own consent table"). From then on the shop records consent with gallra.grant_consent.
psql "$GALLRA_DATABASE" -qX -v ON_ERROR_STOP=1 -f config/demo/consent.sql
printf '$ %s | (first and last months)\n' "$gallra consent list --policy revoked-newsletter-consent"
"$gallra" consent list --policy revoked-newsletter-consent | awk 'NR <= 4 { print; next } { tail[NR % 3] = $0 }
    END { if (NR > 7) print "..."; for (i = NR - 2; i <= NR; i++) if (i > 4) print tail[i % 3] }'
# An active customer without newsletter consent, who subscribes at the desk and unsubscribes by phone.
customer=$(psql "$GALLRA_DATABASE" -qAtX -c \
    "SELECT min(c.id) FROM shop.customer AS c
     WHERE c.last_seen_at > now() - interval '1 year' AND NOT c.legal_hold
       AND NOT EXISTS (SELECT FROM shop.newsletter_consent AS n WHERE n.customer_id = c.id)")
show "$gallra" consent grant --subject "shop.customer:$customer" --policy revoked-newsletter-consent \
    --source store --evidence ticket:5521
show "$gallra" consent grant --subject "shop.customer:$customer" --policy revoked-newsletter-consent --source store
# The shop's own code asks the registry in SQL, e.g. the checkout before offering the newsletter (its login role is a
# member of gallra_app, which may call the four functions and nothing else).
has_consent="SELECT gallra.has_consent('shop.customer', '$customer', 'revoked-newsletter-consent') AS newsletter"
show_sql "$has_consent"
show "$gallra" consent revoke --subject "shop.customer:$customer" --policy revoked-newsletter-consent --source phone
show_sql "$has_consent"
show "$gallra" consent show --subject "shop.customer:$customer"

step "Collection guarded by consent: an active policy with collect: with_consent refuses data without consent"
# revoked-newsletter-consent says collect: with_consent. While it is a draft nothing is guarded; applied as
# active, it installs a trigger on shop.newsletter_log that refuses a row of a customer without consent in
# force (SQLSTATE GC009), in the transaction that stores the version. Applying the draft again removes it.
active_copy=$(mktemp -d /tmp/gallra-demo-policy.XXXXXX)
sed 's/^state: draft/state: active/' config/policies/revoked-newsletter-consent.yaml \
    >"$active_copy/revoked-newsletter-consent.yaml"
show "$gallra" policy apply "$active_copy/revoked-newsletter-consent.yaml"
printf '$ %s | (the collect lines)\n' "$gallra policy show revoked-newsletter-consent"
"$gallra" policy show revoked-newsletter-consent | sed -n '/^collect/,/^digest/p' | sed '$d'
# The customer above withdrew consent: the newsletter service may not log an issue sent to them.
opened="INSERT INTO shop.newsletter_log (customer_ref, event, at) VALUES ($customer, 'opened', now())"
show_sql "$opened" || echo "(refused: no consent in force)"
show "$gallra" consent grant --subject "shop.customer:$customer" --policy revoked-newsletter-consent --source app
show_sql "$opened"
show "$gallra" policy apply config/policies/revoked-newsletter-consent.yaml
rm -rf "$active_copy"

step "The plan: what a run would do now (a dry run in a read-only transaction)"
# revoked-newsletter-consent (a draft) plans the customers whose latest event in the registry is a
# revocation more than 30 days old; the query after the plan counts them by hand.
show "$gallra" plan --show-keys 5
show_sql "SELECT count(*) FILTER (WHERE NOT c.legal_hold) AS expiring, count(*) FILTER (WHERE c.legal_hold) AS exempted
FROM (SELECT DISTINCT ON (subject_key) subject_key, event, recorded_at FROM gallra.consent_event
      WHERE policy = 'revoked-newsletter-consent' ORDER BY subject_key, ordinal DESC) AS latest
JOIN shop.customer AS c ON c.id::text = latest.subject_key
WHERE latest.event = 'revoked' AND latest.recorded_at <= now() - interval '30 days'"

step "A live run: batches of small transactions, each with its audit block"
# The audit key makes the trail's subject digests; a real installation keeps it in
# /etc/gallra/audit-key (a systemd credential). A kept demo keeps it, with a configuration naming it.
keydir=${work:-$(mktemp -d /tmp/gallra-demo-key.XXXXXX)}
(umask 077; head -c 48 /dev/urandom | base64 >"$keydir/audit-key")
export GALLRA_AUDIT_KEY_FILE="$keydir/audit-key"
if [ -n "$work" ]; then
    printf 'database: "%s"\naudit:\n  key_file: %s\n' "$GALLRA_DATABASE" "$keydir/audit-key" >"$work/gallra.yaml"
    # The shop as it is now, before anything is purged: `make demo-reset` recreates it from this copy.
    psql "$server" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE shop_unpurged TEMPLATE shop" >/dev/null
fi
# One customer the run will erase, to look up in the audit trail afterwards.
subject=$(psql "$GALLRA_DATABASE" -qAtX -c \
    "SELECT min(id) FROM shop.customer WHERE last_seen_at < now() - interval '1 year' AND NOT legal_hold")
show "$gallra" run --once

step "The audit trail: what was done, when, under which policy; and proof it was not altered"
show "$gallra" audit runs
show "$gallra" audit show --limit 5
[ -z "$subject" ] || show "$gallra" audit lookup --subject "shop.customer:$subject"
show "$gallra" audit verify

step "A correction: a customer says the name on their account and orders is misspelled (GDPR Art. 16)"
# Old and new values per row first; --yes confirms (without it, gallra asks on the terminal). One transaction,
# one correction event in the audit trail: tables, columns and row counts, never the values.
corrected=$(psql "$GALLRA_DATABASE" -qAtX -c \
    "SELECT min(customer_id) FROM shop.\"order\" WHERE customer_id IS NOT NULL")
if [ -n "$corrected" ]; then
    show "$gallra" correct --subject "shop.customer:$corrected" --set "shop.customer.full_name=Ada Lovelace King" \
        --set "shop.order.full_name=Ada Lovelace King" --yes
    show_sql "SELECT sequence, kind, subject_table, detail, left(hash, 12) AS hash FROM gallra.audit_event"
fi

step "A legal hold: a customer in a dispute is left alone by every policy, visibly"
# A hold is a record in gallra's schema, not a column the shop must have; placing and releasing it are audited.
held=$(psql "$GALLRA_DATABASE" -qAtX -c "SELECT max(id) FROM shop.customer WHERE NOT legal_hold")
show "$gallra" hold add --subject "shop.customer:$held" --reason "chargeback dispute 88812"
show "$gallra" hold list
show "$gallra" explain --subject "shop.customer:$held" | sed -n '1,12p'
# An erasure request for a held customer is refused, and the refusal names the hold (exit 75).
show "$gallra" erase --subject "shop.customer:$held" --reason "ticket 6001" || echo "(refused: exit $?)"

step "Erasure on request: one command deletes what can go and anonymizes what must stay (GDPR Art. 17)"
# config/policies/erasure-requests.yaml has expires: on_request. Its orders are kept for bookkeeping
# (anonymized); its addresses are deleted where nothing else uses them and anonymized where a kept
# order still points to them (delete: true with anonymize:).
# The customer corrected above: their audit trail then shows both.
erased=${corrected:-$(psql "$GALLRA_DATABASE" -qAtX -c \
    "SELECT min(c.id) FROM shop.customer AS c JOIN shop.\"order\" AS o ON o.customer_id = c.id
     WHERE NOT c.legal_hold AND c.id <> $held")}
show "$gallra" erase --subject "shop.customer:$erased" --dry-run
show "$gallra" erase --subject "shop.customer:$erased" --reason "ticket 5521 (e-mail of 2026-12-01)"
# The shop's back office asks in SQL (its login role is in gallra_app), with a day to change its mind.
requested=$(psql "$GALLRA_DATABASE" -qAtX -c \
    "SELECT min(id) FROM shop.customer WHERE NOT legal_hold AND id NOT IN ($held, $erased)")
show_sql "SELECT gallra.request_erasure('shop.customer', '$requested', 'web form', interval '24 hours') AS request"
show "$gallra" requests list
request=$(psql "$GALLRA_DATABASE" -qAtX -c \
    "SELECT max(id) FROM gallra.erasure_request WHERE status = 'pending'")
show_sql "SELECT gallra.cancel_erasure($request)"
# Decided requests keep the customer only as its audit digest (a request cancelled in SQL keeps its key until
# gallra next processes the queue; the customer was not erased).
show_sql "SELECT id, status, subject_key, left(subject_digest, 12) AS digest, run FROM gallra.erasure_request ORDER BY id"
hold=$(psql "$GALLRA_DATABASE" -qAtX -c "SELECT max(id) FROM gallra.hold")
show "$gallra" hold release "$hold" --reason "dispute 88812 settled"

step "The audit trail of one customer: the erasure on request (and the correction above), and the chains verified"
show "$gallra" audit lookup --subject "shop.customer:$erased"
show "$gallra" audit verify

step "A second plan: the active policies have nothing left to do (a draft is only ever planned)"
show "$gallra" plan
[ -n "$work" ] || rm -rf "$keydir"
