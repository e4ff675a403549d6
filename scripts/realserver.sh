#!/usr/bin/env bash
# The real AnythingLLM for tests/real: the kit in ../shared/real-anythingllm builds upstream's
# server (1.16.0 and v1.9.1) into a cache outside the clone, and runs each one in a network
# namespace that has only `lo`, bridged to a free port on 127.0.0.1.
#
#   scripts/realserver.sh start ENV_FILE   build (once; reused while the kit is unchanged), reset
#                                          to the seeded state, start; write what the tests read
#                                          into ENV_FILE (ALLM_KIT_<VERSION>_URL/_DIR and
#                                          ALLM_KIT_API_KEY, or ALLM_KIT_SKIP with the reason)
#   scripts/realserver.sh stop ENV_FILE    stop every server ENV_FILE names
#
# One line per step; build and start logs go to files, whose tail is printed when a step fails.
# env: ALLM_KIT (the kit directory)  ALLM_KIT_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/allm-jupyter)
#      ALLM_KIT_VERSIONS ("v1.16.0 v1.9.1")  ALLM_KIT=off skips the real server altogether
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
KIT=${ALLM_KIT:-$REPO/../shared/real-anythingllm}
CACHE=${ALLM_KIT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/allm-jupyter}
VERSIONS=${ALLM_KIT_VERSIONS:-v1.16.0 v1.9.1}

say() { echo "real AnythingLLM: $*"; }

# ALLM_KIT_1_16 for v1.16.0: the prefix of the variables the tests read for that version.
prefix() { local v=${1#v}; v=${v%.*}; echo "ALLM_KIT_${v//./_}"; }

why_not() { # the reason this machine cannot run the kit, or nothing
  if [ "$KIT" = off ]; then echo "switched off (ALLM_KIT=off)"; return; fi
  [ -f "$KIT/build.sh" ] || { echo "no kit at $KIT"; return; }
  [ "$(id -u)" = 0 ] || { echo "not root (the kit needs ip netns)"; return; }
  ip netns list >/dev/null 2>&1 || { echo "ip netns does not work here"; return; }
  command -v node >/dev/null 2>&1 || { echo "node is not installed"; return; }
}

kit_digest() { # the kit's content for one version: a changed kit means a new build
  local src=$KIT
  [ "$1" = v1.16.0 ] || src=$KIT/versions/$1
  (cd "$KIT" && sha256sum ./*.sh ./*.py ./*.js ./*.json && cd "$src" && sha256sum ./*.tar.gz ./*.patch) \
    | sha256sum | cut -d' ' -f1
}

free_port() { # the wanted port if nothing listens on it, else one the kernel picks
  python3 - "$1" <<'EOF'
import socket, sys
for port in (int(sys.argv[1]), 0):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        print(s.getsockname()[1])
        break
EOF
}

free_netns() { # our own namespace name, not one a running server elsewhere uses
  local name=$1
  if ip netns list | awk '{print $1}' | grep -qx "$name" && [ -n "$(ip netns pids "$name")" ]; then
    name=$name-$$
  fi
  echo "$name"
}

fail() { # step log
  say "$1 FAILED; the end of $2:" >&2
  tail -n 40 "$2" >&2
  exit 1
}

start() {
  local env_file=$1 reason
  : >"$env_file"
  chmod 600 "$env_file"
  reason=$(why_not)
  if [ -n "$reason" ]; then
    say "skipped: $reason"
    printf 'ALLM_KIT_SKIP=%q\n' "$reason" >>"$env_file"
    return 0
  fi
  mkdir -p "$CACHE"
  local version dest log digest port netns want var key=
  for version in $VERSIONS; do
    dest=$CACHE/anythingllm-$version
    var=$(prefix "$version")
    case $version in v1.16.0) want=3001 ;; *) want=3002 ;; esac
    port=$(free_port "$want")
    netns=$(free_netns "allm-test-${var#ALLM_KIT_}")
    log=$CACHE/anythingllm-$version.build.log
    [ ! -x "$dest/stop.sh" ] || "$dest/stop.sh" >/dev/null 2>&1 || true
    digest=$(kit_digest "$version")
    if [ -f "$dest/seeded-storage.tar" ] && [ "$(cat "$dest/.kit-digest" 2>/dev/null)" = "$digest" ]; then
      say "$version: built in $dest (cached)"
    else
      say "$version: building into $dest (a few minutes the first time; log: $log)"
      ALLM_VERSION=$version ALLM_PORT=$port ALLM_NETNS=$netns bash "$KIT/build.sh" "$dest" >"$log" 2>&1 \
        || fail "$version build" "$log"
      echo "$digest" >"$dest/.kit-digest"
    fi
    log=$CACHE/anythingllm-$version.start.log
    "$dest/reset.sh" >"$log" 2>&1 || fail "$version reset" "$log"
    # Written before the start, so that stop finds a half-started server too.
    printf '%s_DIR=%q\n' "$var" "$dest" >>"$env_file"
    ALLM_PORT=$port ALLM_NETNS=$netns "$dest/start.sh" >>"$log" 2>&1 || fail "$version start" "$log"
    key=$(sed -n 's/^ANYTHING_LLM_API_KEY=//p' "$log")
    printf '%s_URL=%q\n' "$var" "http://127.0.0.1:$port" >>"$env_file"
    say "$version: up at http://127.0.0.1:$port (netns $netns, seeded state)"
  done
  printf 'ALLM_KIT_API_KEY=%q\n' "$key" >>"$env_file"
}

stop() {
  local env_file=$1
  [ -f "$env_file" ] || return 0
  (
    # shellcheck disable=SC1090
    . "$env_file"
    for var in $(compgen -A variable ALLM_KIT_ | grep '_DIR$'); do
      dir=${!var}
      if "$dir/stop.sh" >/dev/null 2>&1; then say "stopped the server in $dir"; else say "could not stop the server in $dir" >&2; fi
    done
  )
}

case ${1:-} in
  start | stop) [ $# = 2 ] || { echo "usage: $0 start|stop ENV_FILE" >&2; exit 2; }; "$1" "$2" ;;
  *) echo "usage: $0 start|stop ENV_FILE" >&2; exit 2 ;;
esac
