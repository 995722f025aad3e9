#!/usr/bin/env bash
# `make bench`, its last step: the memory of `gallra export` for a subject with many rows (docs/export.md).
#
#   bench/export.sh [GALLRA_BINARY]      (default .build/release/gallra, built by scripts/release.sh if missing)
#
# Starts a throwaway PostgreSQL (scripts/pg.sh), loads the demo shop (EXPORT_CUSTOMERS customers, default 1000),
# gives customer 1 EXPORT_ORDERS more orders (default 200000, copies of one of theirs), and exports the customer
# as JSON to a file, then as CSV (a zip archive), then as HTML. Prints one line per figure (export_csv_* for
# the CSV archive, export_html_* for the HTML page):
#
#   export_rows N           the rows the extract holds (all tables)
#   export_bytes N          the size of the extract
#   export_seconds X        its wall time
#   export_peak_rss_kb N    the export's maximum resident set size (GNU time); gallra reads rows with a cursor and
#                           writes them as they come, so it does not grow with the rows: it stays under 60 MB
#   export_html_bytes N, export_html_seconds X, export_html_peak_rss_kb N
#                           the same for --format html
#
# Exits 1 when either peak is 60 MB or more. The server is removed on exit, whatever happens.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

customers=${EXPORT_CUSTOMERS:-1000}
orders=${EXPORT_ORDERS:-200000}
limit_kb=$((60 * 1024))

bench=export.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh

bench_binary "$@"
bench_needs_gnu_time

work=$(mktemp -d /tmp/gallra-export-bench.XXXXXX)
chmod 0755 "$work"
cleanup() {
    status=$?
    scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
    rm -rf "$work"
    exit $status
}
trap cleanup EXIT INT TERM


log "starting a throwaway PostgreSQL, loading the demo shop ($customers customers, $orders more orders for one)"
bench_demo_shop "$customers" '2026-11-29 00:00:00+00'
# Customer 1 gets copies of an order (their own if they have one), each with its own id and time.
quiet psql "$GALLRA_DATABASE" -qX -v ON_ERROR_STOP=1 -c "
    INSERT INTO shop.\"order\" (customer_id, placed_at, status, email, full_name, phone, birth_date,
                                shipping_address_id, total)
    SELECT 1, o.placed_at - i * interval '1 minute', o.status, o.email, o.full_name, o.phone, o.birth_date,
           o.shipping_address_id, o.total + i % 100
    FROM (SELECT * FROM shop.\"order\" ORDER BY customer_id = 1 DESC, id LIMIT 1) AS o,
         generate_series(1, $orders) AS i"
quiet psql "$GALLRA_DATABASE" -qX -v ON_ERROR_STOP=1 -c "VACUUM ANALYZE"
(umask 077; head -c 48 /dev/urandom | base64 >"$work/audit-key")
export GALLRA_AUDIT_KEY_FILE="$work/audit-key"
quiet "$gallra" migrate
quiet "$gallra" policy apply config/policies

# One export of customer 1 in FORMAT to FILE under GNU time; prints its figures with PREFIX and checks the peak.
measure() {
    local prefix=$1 format=$2 file=$3
    log "gallra export --subject shop.customer:1 --format $format"
    /usr/bin/time -v -o "$work/time-$format.txt" "$gallra" export --subject shop.customer:1 --format "$format" \
        --out "$file" 2>"$work/export-$format.log" || {
        cat "$work/export-$format.log" >&2
        echo "export.sh: gallra export --format $format failed" >&2
        exit 70
    }
    # The rows the extract holds by its own count: the JSON document's tables, the CSV archive's manifest, the
    # HTML page's count under each table.
    rows=$(python3 -c '
import json, re, sys, zipfile
path = sys.argv[1]
if path.endswith(".html"):
    count = re.compile(r"<p class=\"count\">(\d+) rows?\.</p>")
    print(sum(int(m.group(1)) for line in open(path, encoding="utf-8") for m in count.finditer(line)))
    sys.exit()
document = json.loads(zipfile.ZipFile(path).read("manifest.json")) if zipfile.is_zipfile(path) else json.load(open(path))
print(sum(t["row_count"] for t in document["tables"]))' "$file")
    echo "${prefix}_rows $rows"
    echo "${prefix}_bytes $(stat -c %s "$file")"
    awk -F': ' -v prefix="$prefix" '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0;
        for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%s_seconds %.2f\n", prefix, s }' "$work/time-$format.txt"
    peak=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$work/time-$format.txt")
    echo "${prefix}_peak_rss_kb $peak"
    if [ "$peak" -ge "$limit_kb" ]; then
        echo "export.sh: the $format export's peak resident set ($peak kB) is not under 60 MB" >&2
        exit 1
    fi
}

measure export json "$work/extract.json"
# The CSV archive: each table through a temporary file, then deflated into the zip.
measure export_csv csv "$work/extract.zip"
# The HTML page: each row laid out as cells.
measure export_html html "$work/extract.html"
