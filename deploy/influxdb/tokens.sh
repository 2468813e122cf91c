#!/bin/sh
# The InfluxDB tokens the stack's services use, made by the influx-tokens service (image influxdb:2)
# with the admin token (its secret file, INFLUX_TOKEN_FILE), at every start, into the influx-tokens volume ($TOKENS_DIR):
#   sink.token     write-only to the bucket (the sink)          owner uid 10001 (the twin image's user)
#   grafana.token  read-only from the bucket (Grafana's data source)  owner uid 472 (Grafana's user)
# A token is made once and kept while InfluxDB still knows it (its id is saved next to it); it is made
# again when missing, deleted in InfluxDB, or when ROTATE=1 (the old one is then deleted).
# InfluxDB makes token values itself (its API takes no chosen value), which is why they live in a
# volume and not in a secret file. Needs INFLUX_HOST, INFLUX_TOKEN_FILE (or INFLUX_TOKEN: admin), INFLUX_ORG,
# INFLUX_BUCKET.
set -eu

TOKENS_DIR=${TOKENS_DIR:-/tokens}
if [ -n "${INFLUX_TOKEN_FILE:-}" ]; then
    if [ ! -s "$INFLUX_TOKEN_FILE" ]; then
        echo "influx-tokens: INFLUX_TOKEN_FILE: cannot read $INFLUX_TOKEN_FILE, or it is empty (run scripts/secrets)" >&2
        exit 1
    fi
    INFLUX_TOKEN=$(cat "$INFLUX_TOKEN_FILE")
fi
: "${INFLUX_HOST:?}" "${INFLUX_TOKEN:?}" "${INFLUX_ORG:?}" "${INFLUX_BUCKET:?}"
export INFLUX_HOST INFLUX_TOKEN INFLUX_ORG
umask 077
mkdir -p "$TOKENS_DIR"
# The directory is traversable (not listable) by the services' users; each file is readable by its owner only.
chmod 0711 "$TOKENS_DIR"

bucket_id=$(influx bucket list --name "$INFLUX_BUCKET" --hide-headers | cut -f 1)
if [ -z "$bucket_id" ]; then
    echo "influx-tokens: bucket $INFLUX_BUCKET not found in org $INFLUX_ORG" >&2
    exit 1
fi

# json_field NAME: the value of the first "NAME": "value" in the JSON on stdin (the top-level one:
# `influx auth create --json` prints id and token before the permissions)
json_field() {
    grep -o "\"$1\": *\"[^\"]*\"" | head -n 1 | sed 's/^[^:]*: *"//; s/"$//'
}

# ensure NAME OWNER_UID PERMISSION_FLAG: a token for NAME with that one permission on the bucket
ensure() {
    name=$1 owner=$2 flag=$3
    id_file="$TOKENS_DIR/$name.id" token_file="$TOKENS_DIR/$name.token"
    if [ -s "$id_file" ] && [ -s "$token_file" ]; then
        old=$(cat "$id_file")
        if [ "${ROTATE:-0}" = "1" ]; then
            influx auth delete --id "$old" >/dev/null 2>&1 || true
            echo "influx-tokens: $name token $old deleted (rotation)"
        elif influx auth list --id "$old" --hide-headers 2>/dev/null | grep -q "$old"; then
            echo "influx-tokens: $name token $old kept"
            return 0
        fi
    fi
    out=$(influx auth create --org "$INFLUX_ORG" "$flag" "$bucket_id" \
          --description "stargate twin: $name ($flag $INFLUX_BUCKET)" --json)
    token=$(printf '%s' "$out" | json_field token)
    id=$(printf '%s' "$out" | json_field id)
    if [ -z "$token" ] || [ -z "$id" ]; then
        echo "influx-tokens: could not read the new $name token from influx auth create" >&2
        exit 1
    fi
    printf '%s' "$token" > "$token_file.new"
    printf '%s' "$id" > "$id_file"
    chown "$owner" "$token_file.new" "$id_file" 2>/dev/null || true
    chmod 0400 "$token_file.new"
    mv "$token_file.new" "$token_file"
    echo "influx-tokens: $name token $id made"
}

ensure sink 10001 --write-bucket
ensure grafana 472 --read-bucket

# InfluxQL (Grafana's data source, through the v1 compatibility API) reads the bucket as the database
# $INFLUX_BUCKET with retention policy autogen: the DBRP mapping, made once and kept
if influx v1 dbrp list --db "$INFLUX_BUCKET" --hide-headers 2>/dev/null | grep -q "$bucket_id"; then
    echo "influx-tokens: DBRP mapping $INFLUX_BUCKET/autogen kept"
else
    influx v1 dbrp create --db "$INFLUX_BUCKET" --rp autogen --bucket-id "$bucket_id" --default >/dev/null
    echo "influx-tokens: DBRP mapping $INFLUX_BUCKET/autogen -> bucket $bucket_id made"
fi
