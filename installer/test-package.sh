#!/usr/bin/env bash
# The packages as an operator meets them (docs/operations.md):
#
#   installer/test-package.sh checks   BUILD   the .debs: contents, dependencies (no Qt or X11 in
#                                              spillwayd), lintian, AppStream, the systemd unit
#   installer/test-package.sh install  BUILD   a fresh Debian 12 root: install with the network cut,
#                                              run the unit's ExecStart as the spillway user, a
#                                              completion, reload on SIGHUP, the history, an upgrade
#                                              keeping an edited conffile, remove and purge; then an
#                                              OCI image of that root (umoci) whose entry point is run
#                                              and asked for a completion
#
# BUILD is a configured and built build directory (build/release). The .debs
# are made there with cpack. The fresh root comes from debootstrap, which needs
# the Debian mirror once; it is cached in BUILD/package-root/ (delete it to
# start over). Runs as root (chroot, unshare); everything it starts runs in a
# network namespace of its own and is stopped on exit.
set -euo pipefail

mode=${1:?usage: test-package.sh checks|install BUILD}
build=$(cd "${2:?usage: test-package.sh checks|install BUILD}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)

say() { printf 'test-package: %s\n' "$*"; }
fail() { printf 'test-package: FAIL: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || fail "$1 is missing (installer/debian-deps.sh installs it)"; }

if [ "$mode" = install-offline ]; then
  # Inside the network namespace: the outer run owns $work and cleans up.
  shift 2
  work=$1 daemon_deb=$2 deb_in_root=$3
  install_offline_args=1
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/spillway-package.XXXXXX")
fi
cleanup() {
  local rc=$?
  # Anything still running in the test's roots (a daemon left by a failed step).
  for root in "$work"/root "$work"/bundle/rootfs; do
    [ -d "$root" ] || continue
    for p in /proc/[0-9]*; do
      if [ "$(readlink "$p/root" 2>/dev/null)" = "$root" ]; then kill -9 "${p#/proc/}" 2>/dev/null || true; fi
    done
    umount "$root/proc" 2>/dev/null || true
  done
  rm -rf "$work"
  exit $rc
}
[ -n "${install_offline_args:-}" ] || trap cleanup EXIT

# --- the packages -------------------------------------------------------------
make_packages() {
  need cpack
  say "cpack -G DEB in $build"
  rm -rf "$build/packages"
  (cd "$build" && cpack -G DEB >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log"; fail "cpack failed"; }
  daemon_deb=$(ls "$build"/packages/spillwayd_*.deb)
  console_deb=$(ls "$build"/packages/spillway-console_*.deb 2>/dev/null || true)
  say "$(basename "$daemon_deb"): $(du -k "$daemon_deb" | cut -f1) KiB"
  [ -n "$console_deb" ] && say "$(basename "$console_deb"): $(du -k "$console_deb" | cut -f1) KiB"
  return 0
}

checks() {
  make_packages
  need dpkg-deb
  need lintian
  need appstreamcli
  local info depends
  info=$(dpkg-deb --info "$daemon_deb")
  depends=$(printf '%s\n' "$info" | sed -n 's/^ Depends: //p')
  say "spillwayd Depends: $depends"
  [ -n "$depends" ] || fail "spillwayd has no Depends (dpkg-shlibdeps did not run?)"
  if printf '%s' "$depends" | grep -Eiq 'qt|x11|libxcb|libgl|wayland'; then
    fail "spillwayd depends on a GUI library: $depends"
  fi
  grep -q 'libgrpc++' <<<"$depends" || fail "spillwayd Depends lacks libgrpc++ (shlibdeps incomplete)"
  dpkg-deb --contents "$daemon_deb" >"$work/daemon.contents"
  for f in ./usr/bin/spillwayd ./usr/bin/spillctl ./usr/bin/spillway-bench ./etc/spillway/spillway.yaml \
           ./lib/systemd/system/spillwayd.service ./usr/share/doc/spillwayd/copyright \
           ./usr/share/doc/spillwayd/changelog.Debian.gz ./usr/share/man/man1/spillwayd.1.gz \
           ./usr/share/man/man1/spillctl.1.gz ./usr/share/bash-completion/completions/spillctl \
           ./etc/logrotate.d/spillwayd; do
    grep -q " $f\$" "$work/daemon.contents" || fail "spillwayd lacks $f"
  done
  # Captured first: `producer | grep -q` fails under pipefail when grep
  # exits at its match while the producer is still writing (SIGPIPE).
  local conffiles
  conffiles=$(dpkg-deb --ctrl-tarfile "$daemon_deb" | tar -xO ./conffiles)
  grep -qx /etc/spillway/spillway.yaml <<<"$conffiles" || fail "/etc/spillway/spillway.yaml is not a conffile"
  grep -qx /etc/logrotate.d/spillwayd <<<"$conffiles" || fail "/etc/logrotate.d/spillwayd is not a conffile"
  # Stripped: no debug sections left in the binaries.
  mkdir -p "$work/daemon"
  dpkg-deb -x "$daemon_deb" "$work/daemon"
  local sections
  sections=$(readelf -S "$work/daemon/usr/bin/spillwayd")
  if grep -q '\.debug_info' <<<"$sections"; then fail "spillwayd is not stripped"; fi
  lint "$daemon_deb"

  if [ -n "$console_deb" ]; then
    mkdir -p "$work/console"
    dpkg-deb -x "$console_deb" "$work/console"
    for f in usr/bin/spillway usr/share/applications/io.github.spillway.Console.desktop \
             usr/share/metainfo/io.github.spillway.Console.metainfo.xml \
             usr/share/icons/hicolor/scalable/apps/spillway.svg usr/share/icons/hicolor/48x48/apps/spillway.png \
             usr/share/icons/hicolor/256x256/apps/spillway.png; do
      [ -e "$work/console/$f" ] || fail "spillway-console lacks /$f"
    done
    appstreamcli validate --no-net "$work/console/usr/share/metainfo/io.github.spillway.Console.metainfo.xml" \
      || fail "appstreamcli rejects the metainfo"
    local console_info
    console_info=$(dpkg-deb --info "$console_deb")
    grep -q 'libqt6charts6' <<<"$console_info" || fail "spillway-console does not depend on QtCharts"
    lint "$console_deb"
  fi
  say "checks passed"
}

# lintian: errors fail the test; warnings are printed (README, "Packages",
# says which are left and why).
lint() {
  local out
  out=$(lintian --tag-display-limit 0 "$1" 2>&1 | grep -v "running with root privileges" || true)
  [ -n "$out" ] && printf '%s\n' "$out"
  if grep -q '^E: ' <<<"$out"; then fail "lintian errors in $(basename "$1")"; fi
  say "lintian: $(basename "$1"): $(printf '%s\n' "$out" | grep -c '^W: ' || true) warnings, no errors"
}

# --- a fresh Debian 12 root -----------------------------------------------------
mirror() {
  local uri
  uri=$(sed -n 's/^URIs: //p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)
  [ -n "$uri" ] || uri=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  printf '%s' "${uri:-http://deb.debian.org/debian}"
}

fresh_root() {
  need debootstrap
  local cache="$build/package-root" tarball
  tarball="$cache/bookworm-minbase.tar"
  mkdir -p "$cache"
  if [ ! -f "$tarball" ]; then
    say "debootstrap --variant=minbase bookworm (once; cached in $cache)"
    debootstrap --variant=minbase bookworm "$cache/root" "$(mirror)" >"$cache/debootstrap.log" 2>&1 \
      || { tail -n 30 "$cache/debootstrap.log"; fail "debootstrap failed"; }
    tar -C "$cache/root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    rm -rf "$cache/root"
  fi
  mkdir -p "$work/root"
  tar -C "$work/root" -xf "$tarball"
  cp /etc/resolv.conf "$work/root/etc/resolv.conf" 2>/dev/null || true
  # The package's dependencies, fetched with the network (cached with the
  # root's archives); the install itself runs with the network cut.
  local archives="$cache/archives"
  mkdir -p "$archives"
  cp "$daemon_deb" "$work/root/tmp/"
  deb_in_root=/tmp/$(basename "$daemon_deb")
  cp -a "$archives/." "$work/root/var/cache/apt/archives/" 2>/dev/null || true
  say "fetching spillwayd's dependencies into the root"
  in_root apt-get -qq update >"$work/apt-update.log" 2>&1 || { cat "$work/apt-update.log"; fail "apt-get update in the root failed"; }
  in_root apt-get -y -qq --download-only install "$deb_in_root" >"$work/apt-download.log" 2>&1 \
    || { cat "$work/apt-download.log"; fail "fetching the dependencies failed"; }
  cp -a "$work/root/var/cache/apt/archives/"*.deb "$archives/" 2>/dev/null || true
}

in_root() { chroot "$work/root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }

# Runs the rest of the install test inside a network namespace of its own:
# apt sees no network, the daemon's ports collide with nothing on the host.
install_test() {
  make_packages
  need unshare
  need curl
  fresh_root
  say "entering a network namespace without network"
  unshare -n -- "$0" install-offline "$build" "$work" "$daemon_deb" "$deb_in_root"
}

wait_for_log() {  # FILE PATTERN SECONDS
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  cat "$1" >&2
  return 1
}

# The unit's ExecStart, run as the unit's user in the root.
start_daemon() {
  local exec_start
  exec_start=$(sed -n 's/^ExecStart=//p' "$work/root/lib/systemd/system/spillwayd.service")
  [ -n "$exec_start" ] || fail "no ExecStart in the installed unit"
  say "starting as spillway: $exec_start"
  : >"$work/daemon.log"
  # shellcheck disable=SC2086 # the ExecStart line is split like systemd does for simple lines
  chroot --userspec=spillway:spillway "$work/root" env -i PATH=/usr/bin:/bin HOME=/var/lib/spillway \
    $exec_start >"$work/daemon.log" 2>&1 &
  daemon_pid=$!
  wait_for_log "$work/daemon.log" "control plane on" 30 || fail "spillwayd did not come up in the root"
}

stop_daemon() {
  kill -TERM "$daemon_pid"
  wait "$daemon_pid" || fail "spillwayd exited with $? after SIGTERM"
}

completion() {  # PORT -> prints the assistant's reply
  curl -sf --max-time 30 "http://127.0.0.1:$1/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"model":"spillway-small","messages":[{"role":"user","content":"Hello from the package test"}]}'
}

install_offline() {
  ip link set lo up
  if curl -s --max-time 3 -o /dev/null http://deb.debian.org/ 2>/dev/null; then fail "the network is not cut"; fi
  mount -t proc proc "$work/root/proc"

  say "apt-get install ./$(basename "$daemon_deb") (offline)"
  in_root apt-get -y -q install "$deb_in_root" >"$work/install.log" 2>&1 \
    || { cat "$work/install.log"; fail "installing the package failed"; }
  in_root getent passwd spillway >/dev/null || fail "postinst did not create the spillway user"
  owner=$(in_root stat -c %U:%a /var/lib/spillway)
  [ "$owner" = "spillway:750" ] || fail "/var/lib/spillway is $owner, not spillway:750"
  in_root spillwayd --version | grep -q '^spillwayd ' || fail "spillwayd --version"
  in_root spillwayd --check-config /etc/spillway/spillway.yaml >/dev/null || fail "the packaged config does not validate"

  start_daemon
  local reply
  reply=$(completion 8080) || fail "no completion from the installed spillwayd"
  printf '%s' "$reply" | grep -q '"object":"chat.completion"' || fail "not a chat completion: $reply"
  say "completion answered by the installed package"

  # Edit the conffile, reload with SIGHUP (what ExecReload does).
  sed -i 's/^  drain_timeout_ms: 30000$/  drain_timeout_ms: 20000/' "$work/root/etc/spillway/spillway.yaml"
  grep -q 'drain_timeout_ms: 20000' "$work/root/etc/spillway/spillway.yaml" || fail "could not edit the conffile"
  kill -HUP "$daemon_pid"
  wait_for_log "$work/daemon.log" "config reload (SIGHUP): applied" 30 || fail "SIGHUP did not reload"
  in_root sh -c 'spillctl --addr 127.0.0.1:50051 --token-file /var/lib/spillway/control.token config history' \
    >"$work/history.txt" || fail "spillctl config history failed"
  cat "$work/history.txt"
  grep -q 'file' "$work/history.txt" && grep -q 'SIGHUP: /etc/spillway/spillway.yaml' "$work/history.txt" \
    || fail "the reload is not in the config history"
  stop_daemon
  say "reload on SIGHUP recorded as a version by \"file\""

  # Upgrade over itself: the edited conffile stays.
  in_root apt-get -y -q -o Dpkg::Options::=--force-confold install --reinstall "$deb_in_root" \
    >"$work/upgrade.log" 2>&1 || { cat "$work/upgrade.log"; fail "reinstalling failed"; }
  grep -q 'drain_timeout_ms: 20000' "$work/root/etc/spillway/spillway.yaml" || fail "the upgrade lost the edited conffile"
  say "upgrade kept the edited conffile"

  image_test

  in_root apt-get -y -q remove spillwayd >"$work/remove.log" 2>&1 || { cat "$work/remove.log"; fail "remove failed"; }
  [ ! -e "$work/root/usr/bin/spillwayd" ] || fail "remove left /usr/bin/spillwayd"
  [ -d "$work/root/var/lib/spillway" ] || fail "remove deleted the state (only purge may)"
  [ -f "$work/root/etc/spillway/spillway.yaml" ] || fail "remove deleted the conffile (only purge may)"
  in_root apt-get -y -q purge spillwayd >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "purge failed"; }
  [ ! -e "$work/root/var/lib/spillway" ] || fail "purge left /var/lib/spillway"
  [ ! -e "$work/root/etc/spillway" ] || fail "purge left /etc/spillway"
  in_root dpkg -s spillwayd >/dev/null 2>&1 && fail "spillwayd is still known to dpkg after purge"
  umount "$work/root/proc"
  say "install test passed"
}

# An OCI image of the installed root, built with umoci (no daemon, no
# network), configured like installer/container/Containerfile; its entry
# point is run in the unpacked image and answers a completion.
image_test() {
  need umoci
  local uid
  uid=$(in_root id -u spillway)
  say "OCI image with umoci (user $uid)"
  umount "$work/root/proc"
  umoci init --layout "$work/oci"
  umoci new --image "$work/oci:spillway"
  umoci unpack --image "$work/oci:spillway" "$work/bundle" >/dev/null
  # The image's files: the installed root, less apt's lists and archives.
  tar -C "$work/root" --exclude=./var/cache/apt/archives --exclude=./var/lib/apt/lists --exclude=./tmp/* -cf - . \
    | tar -C "$work/bundle/rootfs" -xf -
  # Inside a container the front listens on every address.
  umoci repack --image "$work/oci:spillway" "$work/bundle" >/dev/null
  umoci config --image "$work/oci:spillway" --config.user "$uid:$uid" \
    --config.entrypoint /usr/bin/spillwayd \
    --config.cmd --config --config.cmd /etc/spillway/spillway.yaml --config.cmd --data-dir \
    --config.cmd /var/lib/spillway --config.cmd --listen --config.cmd 0.0.0.0:8080 --config.cmd --allow-plaintext \
    --config.exposedports 8080/tcp --config.exposedports 50051/tcp --config.workingdir /var/lib/spillway \
    --config.stopsignal SIGTERM >/dev/null
  rm -rf "$work/bundle"
  umoci unpack --image "$work/oci:spillway" "$work/bundle" >/dev/null
  say "image: $(du -sk "$work/oci" | cut -f1) KiB as an OCI layout"
  # Its process, as the image says: user and arguments from config.json.
  local args user
  args=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["process"]["args"]))' "$work/bundle/config.json")
  user=$(python3 -c 'import json,sys; u=json.load(open(sys.argv[1]))["process"]["user"]; print("%d:%d" % (u["uid"], u["gid"]))' "$work/bundle/config.json")
  [ "$user" = "$uid:$uid" ] || fail "the image runs as $user, not the spillway user"
  say "running the image's entry point: $args"
  mount -t proc proc "$work/bundle/rootfs/proc"
  : >"$work/image.log"
  # shellcheck disable=SC2086
  chroot --userspec="$user" "$work/bundle/rootfs" env -i PATH=/usr/bin:/bin $args >"$work/image.log" 2>&1 &
  local pid=$!
  wait_for_log "$work/image.log" "listening on http://0.0.0.0:8080" 30 || fail "the image's entry point did not come up"
  completion 8080 | grep -q '"object":"chat.completion"' || fail "no completion from the image"
  curl -sf "http://127.0.0.1:8080/readyz" | grep -q '"status":"ready"' || fail "the image is not ready"
  kill -TERM "$pid"
  wait "$pid" || fail "the image's spillwayd exited with $? after SIGTERM"
  umount "$work/bundle/rootfs/proc"
  mount -t proc proc "$work/root/proc"
  say "the image serves and drains on SIGTERM"
}

case "$mode" in
  checks) checks ;;
  install) install_test ;;
  install-offline) install_offline ;;
  *) fail "unknown mode $mode (checks or install)" ;;
esac
