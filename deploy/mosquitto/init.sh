#!/bin/sh
# The broker's secrets, written at every start by the mosquitto-init service (image eclipse-mosquitto:2, or
# deploy/mosquitto/Containerfile) before Mosquitto starts:
#   $MQTT_AUTH_DIR/passwd         one account per service (mosquitto_passwd hashes), replaced whole,
#                                 so a password changed in its secret file takes effect at the next `up`;
#   $MQTT_AUTH_DIR/acl            the repo's deploy/mosquitto/acl (mounted at $MQTT_ACL_SRC), copied so that
#                                 it is owned by mosquitto and private, as Mosquitto 2 wants;
#   $MQTT_AUTH_DIR/conf.d/tls.conf  the TLS listener on 8883 when MQTT_TLS=true, with the certificate
#                                 and key copied from $MQTT_CERT_DIR (ca.crt, server.crt, server.key).
# Each password comes from the file named by MQTT_PASSWORD_<ACCOUNT>_FILE (compose mounts the secret files
# made by scripts/secrets at /run/secrets/), or else from MQTT_PASSWORD_<ACCOUNT> itself (the older .env way).
# An account whose password is empty is not created (it cannot log in); the twin's own accounts are
# required. Extra accounts: "name:password name2:password2" in MQTT_EXTRA_USERS(_FILE) (give them topics in acl).
set -eu

# secret VAR: the value of VAR, read from the file $VAR_FILE when that is set (trailing newlines dropped)
secret() {
    eval "file=\${$1_FILE:-}"
    if [ -n "$file" ]; then
        if [ ! -r "$file" ]; then
            echo "mosquitto-init: $1_FILE: cannot read $file (run scripts/secrets)" >&2
            exit 1
        fi
        cat "$file"
    else
        eval "printf '%s' \"\${$1:-}\""
    fi
}

AUTH_DIR=${MQTT_AUTH_DIR:-/mosquitto/auth}
CERT_DIR=${MQTT_CERT_DIR:-/mosquitto/certs}
ACL_SRC=${MQTT_ACL_SRC:-/mosquitto/acl}
umask 077
mkdir -p "$AUTH_DIR/conf.d"
new="$AUTH_DIR/passwd.new"
rm -f "$new"
: > "$new"
count=0

# add USER PASSWORD [VARIABLE: required, named in the error]
add() {
    if [ -z "$2" ]; then
        if [ -n "${3:-}" ]; then
            echo "mosquitto-init: $3 is empty: run scripts/secrets (or set it in .env)" >&2
            exit 1
        fi
        return 0
    fi
    case "$1" in
        *[!A-Za-z0-9_.-]* | "") echo "mosquitto-init: bad account name '$1'" >&2; exit 1 ;;
    esac
    case "$2" in
        change-me*) echo "mosquitto-init: the password of $1 is still the example value: run scripts/secrets" >&2
                    exit 1 ;;
    esac
    mosquitto_passwd -b "$new" "$1" "$2"
    count=$((count + 1))
}

# account USER VARIABLE [required]: USER with the password in VARIABLE (or its file)
account() {
    value=$(secret "$2") || exit 1
    if [ "${3:-}" = required ]; then add "$1" "$value" "$2"; else add "$1" "$value"; fi
}

account state MQTT_PASSWORD_STATE required
account forecast MQTT_PASSWORD_FORECAST required
account sink MQTT_PASSWORD_SINK required
account viewer MQTT_PASSWORD_VIEWER required
account sim MQTT_PASSWORD_SIM
account replay MQTT_PASSWORD_REPLAY
account adapter-dcgm-h1-h4 MQTT_PASSWORD_ADAPTER_DCGM_H1_H4
account adapter-dcgm-h5-h8 MQTT_PASSWORD_ADAPTER_DCGM_H5_H8
account adapter-cdu-h1 MQTT_PASSWORD_ADAPTER_MODBUS
account adapter-meters MQTT_PASSWORD_ADAPTER_OPCUA
account grafana MQTT_PASSWORD_GRAFANA
extra=$(secret MQTT_EXTRA_USERS) || exit 1
for pair in $extra; do
    case "$pair" in
        *:?*) add "${pair%%:*}" "${pair#*:}" ;;
        *) echo "mosquitto-init: MQTT_EXTRA_USERS entry '${pair%%:*}' is not name:password" >&2; exit 1 ;;
    esac
done
mv "$new" "$AUTH_DIR/passwd"
if [ ! -r "$ACL_SRC" ]; then
    echo "mosquitto-init: no ACL at $ACL_SRC (mount deploy/mosquitto/acl there)" >&2
    exit 1
fi
cp "$ACL_SRC" "$AUTH_DIR/acl.new"
mv "$AUTH_DIR/acl.new" "$AUTH_DIR/acl"

tls="$AUTH_DIR/conf.d/tls.conf"
if [ "${MQTT_TLS:-false}" = "true" ]; then
    mkdir -p "$AUTH_DIR/tls"
    for f in ca.crt server.crt server.key; do
        if [ ! -r "$CERT_DIR/$f" ]; then
            echo "mosquitto-init: MQTT_TLS=true but $CERT_DIR/$f is missing (see README, Deploy)" >&2
            exit 1
        fi
        cp "$CERT_DIR/$f" "$AUTH_DIR/tls/$f"
    done
    cat > "$tls" <<CONF
# Written by init.sh because MQTT_TLS=true.
listener 8883
cafile $AUTH_DIR/tls/ca.crt
certfile $AUTH_DIR/tls/server.crt
keyfile $AUTH_DIR/tls/server.key
tls_version tlsv1.2
CONF
else
    rm -f "$tls"
fi

# Mosquitto reads these after dropping to its own user.
if [ "$(id -u)" = "0" ] && id mosquitto >/dev/null 2>&1; then
    chown -R mosquitto:mosquitto "$AUTH_DIR"
fi
echo "mosquitto-init: $count accounts, ACL from $ACL_SRC; TLS listener: ${MQTT_TLS:-false}"
