#!/usr/bin/env bash
# Runs the CronJob's pod on this machine the way the kubelet would, as far
# as ibsync can tell, for tests/scenarios/usage_k8s.sh. Needs root (mount
# namespaces, setpriv).
#
# Usage: pod.sh POD_JSON WORKDIR IBSYNC EXTRA_ENV_FILE BINDS_FILE
#   POD_JSON        the pod as `k8s.js pod` prints it
#   WORKDIR         host directory for the volumes: emptyDirs are created
#                   as WORKDIR/volumes/NAME; a Secret volume NAME must be
#                   prepared as WORKDIR/volumes/NAME by the caller
#   IBSYNC          the binary that the ibsync image holds as
#                   /usr/local/bin/ibsync
#   EXTRA_ENV_FILE  NAME=VALUE lines added to every container's environment
#                   (what the EKS webhook injects, and the test's endpoints)
#   BINDS_FILE      "HOST_PATH CONTAINER_PATH" lines bind-mounted read-only
#                   into every container (the IRSA token)
#
# Each container runs in its own mount namespace in which the root
# filesystem and every other mount are read-only (readOnlyRootFilesystem),
# only its volumes are mounted where the manifest says (emptyDirs writable,
# group fsGroup), as runAsUser/runAsGroup with fsGroup as supplementary
# group, no_new_privs (allowPrivilegeEscalation: false) and no capabilities
# (drop: ALL), with only the manifest's environment. Native sidecars start
# first and get SIGTERM after the main container exited. The main
# container's stdout and stderr go to WORKDIR/NAME.out and .err, sidecars'
# to WORKDIR/NAME.log; the exit status is the main container's.
set -euo pipefail

if [ "${1:-}" = --container ]; then
    # In the container's new mount namespace: $2 pod JSON, $3 container index.
    spec=$2 idx=$3 work=$4 ibsync=$5 extra=$6 binds=$7
    eval "$(python3 - "$spec" "$idx" "$work" <<'EOF'
import json, shlex, sys
pod = json.load(open(sys.argv[1]))
c = pod["containers"][int(sys.argv[2])]
work = sys.argv[3]
sc, psc = c["securityContext"], pod["securityContext"] or {}
print("uid=%d gid=%d fsgroup=%d" % (sc.get("runAsUser", psc.get("runAsUser", 0)),
      sc.get("runAsGroup", psc.get("runAsGroup", 0)), psc.get("fsGroup", 0)))
print("rofs=%d" % bool(sc.get("readOnlyRootFilesystem")))
print("nnp=%d" % (sc.get("allowPrivilegeEscalation") is False))
print("dropall=%d" % ("ALL" in (sc.get("capabilities") or {}).get("drop", [])))
print("image=%s" % shlex.quote(c["image"]))
print("argv=(%s)" % " ".join(shlex.quote(a) for a in c["argv"]))
print("envs=(%s)" % " ".join(shlex.quote("%s=%s" % kv) for kv in c["env"].items()))
print("mounts=(%s)" % " ".join(shlex.quote("%s|%s|%d" % (work + "/volumes/" + m["volume"], m["path"], m["readOnly"]))
      for m in c["mounts"]))
EOF
)"
    mapfile -t extra_env <"$extra"
    # Mount points under /var/lib and /run come from fresh tmpfs layers, so
    # that nothing is created on the host's root filesystem.
    mount -t tmpfs -o mode=0755 tmpfs /var/lib
    mount -t tmpfs -o mode=0755 tmpfs /run
    mount -t tmpfs -o mode=0755 tmpfs /usr/local/bin
    writable=()
    case $image in
    */ibsync:*)
        touch /usr/local/bin/ibsync
        mount --bind "$ibsync" /usr/local/bin/ibsync
        home=/var/lib/ibsync
        mkdir -p /var/lib/ibsync
        ;;
    *) home=/ ;;
    esac
    while read -r host cpath; do
        [ -n "$host" ] || continue
        mkdir -p "$cpath" 2>/dev/null || { mkdir -p "$(dirname "$cpath")"; touch "$cpath"; }
        mount --bind -o ro "$host" "$cpath"
        mount -o remount,bind,ro "$cpath"
    done <"$binds"
    tmp_mount=
    for m in "${mounts[@]}"; do
        IFS='|' read -r host cpath ro <<<"$m"
        if [ "$cpath" = /tmp ]; then
            tmp_mount=$host
            continue
        fi
        mkdir -p "$cpath"
        mount --bind "$host" "$cpath"
        if [ "$ro" = 1 ]; then
            mount -o remount,bind,ro "$cpath"
        else
            writable+=("$cpath")
        fi
    done
    # /tmp last: the sources above may lie under the host's /tmp.
    if [ -n "$tmp_mount" ]; then
        mount --bind "$tmp_mount" /tmp
        writable+=(/tmp)
    fi
    if [ "$rofs" = 1 ]; then
        mount -o remount,ro /var/lib
        mount -o remount,ro /run
        mount -o remount,ro /usr/local/bin
        # Per-mount flags only (bind remounts): the host's filesystems stay
        # as they are.
        while read -r mp; do
            mp=$(printf '%b' "$mp")
            case $mp in /proc | /proc/* | /sys | /sys/* | /dev | /dev/*) continue ;; esac
            for w in "${writable[@]}"; do [ "$mp" != "$w" ] || continue 2; done
            mount -o remount,bind,ro "$mp" 2>/dev/null || [ "$mp" != / ] ||
                { echo "pod.sh: cannot make / read-only" >&2; exit 1; }
        done < <(awk '{ print $5 }' /proc/self/mountinfo)
    fi
    priv=(--reuid="$uid" --regid="$gid" --groups="$fsgroup")
    [ "$nnp" = 0 ] || priv+=(--no-new-privs)
    [ "$dropall" = 0 ] || priv+=(--inh-caps=-all --bounding-set=-all)
    cd "$home"
    exec setpriv "${priv[@]}" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME="$home" "${envs[@]}" "${extra_env[@]}" "${argv[@]}"
fi

spec=$(realpath "$1") work=$(realpath "$2") ibsync=$(realpath "$3") extra=$(realpath "$4") binds=$(realpath "$5")
[ "$(id -u)" -eq 0 ] || { echo "pod.sh: needs root" >&2; exit 1; }
python3 - "$spec" "$work" <<'EOF'
import json, os, sys
pod = json.load(open(sys.argv[1]))
fsgroup = (pod["securityContext"] or {}).get("fsGroup", 0)
for c in pod["containers"]:
    for m in c["mounts"]:
        d = os.path.join(sys.argv[2], "volumes", m["volume"])
        if m["type"] == "emptyDir" and not os.path.isdir(d):
            os.makedirs(d)
            os.chown(d, 0, fsgroup)
            os.chmod(d, 0o2777)
        elif not os.path.exists(d):
            sys.exit("pod.sh: volume %s (%s) was not prepared in %s" % (m["volume"], m["type"], d))
EOF
mapfile -t kinds < <(python3 -c 'import json,sys; [print(c["name"], c["kind"], int(c["sidecar"])) for c in json.load(open(sys.argv[1]))["containers"]]' "$spec")
sidecars=()
status=0
for i in "${!kinds[@]}"; do
    read -r name kind sidecar <<<"${kinds[$i]}"
    run=(unshare --mount --propagation private bash "$0" --container "$spec" "$i" "$work" "$ibsync" "$extra" "$binds")
    if [ "$kind" = init ] && [ "$sidecar" = 1 ]; then
        "${run[@]}" >"$work/$name.log" 2>&1 &
        sidecars+=("$!")
        # Started means running its command: wait for its first line.
        for _ in $(seq 1 200); do
            [ ! -s "$work/$name.log" ] || break
            kill -0 "$!" 2>/dev/null || break
            sleep 0.05
        done
        [ -s "$work/$name.log" ] || { echo "pod.sh: sidecar $name did not start" >&2; exit 1; }
    elif [ "$kind" = init ]; then
        "${run[@]}" >"$work/$name.log" 2>&1 || { status=$?; break; }
    else
        "${run[@]}" >"$work/$name.out" 2>"$work/$name.err" || status=$?
    fi
done
for p in "${sidecars[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
    wait "$p" || true
done
exit "$status"
