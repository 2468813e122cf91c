#!/bin/sh
# The broker's secrets, from the environment (.env), written at every start by the mosquitto-init
# service (image eclipse-mosquitto:2) before Mosquitto starts:
#   $MQTT_AUTH_DIR/passwd         one account per service (mosquitto_passwd hashes), replaced whole,
#                                 so a password changed in .env takes effect at the next `up`;
#   $MQTT_AUTH_DIR/acl            the repo's deploy/mosquitto/acl (mounted at $MQTT_ACL_SRC), copied so that
#                                 it is owned by mosquitto and private, as Mosquitto 2 wants;
#   $MQTT_AUTH_DIR/conf.d/tls.conf  the TLS listener on 8883 when MQTT_TLS=true, with the certificate
#                                 and key copied from $MQTT_CERT_DIR (ca.crt, server.crt, server.key).
# An account whose password is empty is not created (it cannot log in); the twin's own accounts are
# required. Extra accounts: MQTT_EXTRA_USERS="name:password name2:password2" (give them topics in acl).
set -eu

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
            echo "mosquitto-init: $3 is empty: set it in .env" >&2
            exit 1
        fi
        return 0
    fi
    case "$1" in
        *[!A-Za-z0-9_.-]* | "") echo "mosquitto-init: bad account name '$1'" >&2; exit 1 ;;
    esac
    case "$2" in
        change-me*) echo "mosquitto-init: the password of $1 is still the example value: set it in .env" >&2
                    exit 1 ;;
    esac
    mosquitto_passwd -b "$new" "$1" "$2"
    count=$((count + 1))
}

add state "${MQTT_PASSWORD_STATE:-}" MQTT_PASSWORD_STATE
add forecast "${MQTT_PASSWORD_FORECAST:-}" MQTT_PASSWORD_FORECAST
add sink "${MQTT_PASSWORD_SINK:-}" MQTT_PASSWORD_SINK
add viewer "${MQTT_PASSWORD_VIEWER:-}" MQTT_PASSWORD_VIEWER
add sim "${MQTT_PASSWORD_SIM:-}"
add replay "${MQTT_PASSWORD_REPLAY:-}"
add adapter-dcgm-h1 "${MQTT_PASSWORD_ADAPTER_DCGM:-}"
add adapter-cdu-h1 "${MQTT_PASSWORD_ADAPTER_MODBUS:-}"
add adapter-meters "${MQTT_PASSWORD_ADAPTER_OPCUA:-}"
add grafana "${MQTT_PASSWORD_GRAFANA:-}"
for pair in ${MQTT_EXTRA_USERS:-}; do
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
