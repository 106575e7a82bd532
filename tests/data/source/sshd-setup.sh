#!/bin/sh
# Prepares an OpenSSH server for tests of ibsync's git-over-SSH
# authentication (tests/unit/test_source.c, tests/scenarios/git_auth.sh):
#   sshd-setup.sh DIR PORT
# writes into DIR (which must exist):
#   sshd_config            listen on 127.0.0.1:PORT, public keys of
#                          authorized_keys only, for the current user only
#   host_key               the server's ed25519 host key
#   id_plain               client key without passphrase (authorized)
#   id_locked, passphrase  client key with a passphrase (authorized)
#   id_stranger            client key that is not authorized
#   known_hosts            "[127.0.0.1]:PORT" with the server's key
#   known_hosts_hashed     the same, hashed (|1|salt|hash)
#   known_hosts_changed    "[127.0.0.1]:PORT" with another ed25519 key
#   known_hosts_elsewhere  the server's key for port 22 and another host only
# Start the server with: "$(command -v sshd || echo /usr/sbin/sshd)" -D -e -f DIR/sshd_config
# (an absolute path: sshd re-executes itself). Run as root, sshd needs its
# privilege separation directory /run/sshd, created here when missing.
set -eu
D=$1
PORT=$2
USER_NAME=$(id -un)

key() { ssh-keygen -q -t ed25519 -N "$2" -C "ibsync-test-$1" -f "$D/$1"; }
key host_key ''
key other_host_key ''
key id_plain ''
printf 'correct horse battery staple\n' > "$D/passphrase"
key id_locked 'correct horse battery staple'
key id_stranger ''
cat "$D/id_plain.pub" "$D/id_locked.pub" > "$D/authorized_keys"
chmod 600 "$D/authorized_keys"

cat > "$D/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $D/host_key
PidFile none
AuthorizedKeysFile $D/authorized_keys
AllowUsers $USER_NAME
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
LogLevel VERBOSE
EOF

host=$(cut -d' ' -f1,2 "$D/host_key.pub")
other=$(cut -d' ' -f1,2 "$D/other_host_key.pub")
printf '# test server\n[127.0.0.1]:%s %s\n' "$PORT" "$host" > "$D/known_hosts"
cp "$D/known_hosts" "$D/known_hosts_hashed"
ssh-keygen -q -H -f "$D/known_hosts_hashed" >/dev/null 2>&1
rm -f "$D/known_hosts_hashed.old"
printf '[127.0.0.1]:%s %s\n' "$PORT" "$other" > "$D/known_hosts_changed"
printf '127.0.0.1 %s\n[127.0.0.2]:%s %s\n' "$host" "$PORT" "$host" > "$D/known_hosts_elsewhere"

if [ "$(id -u)" = 0 ] && [ ! -d /run/sshd ]; then
    mkdir -p /run/sshd
    chmod 755 /run/sshd
fi
