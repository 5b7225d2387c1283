#!/usr/bin/env bash
# Installs and starts what Berth needs on a Debian machine, as root:
#   docker.io    Docker Engine, started when not running (tasks run on it)
#   etcd-server  the external-etcd contract tests start it themselves
#   awscli       Debian's AWS CLI v2 (/usr/bin/aws), one of our two test clients
#   chromium     headless browser for the web console's tests (test/scenario/console_browser_test.go)
# It changes nothing when everything is already there.
set -euo pipefail

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
[ -x /usr/bin/etcd ] || need+=(etcd-server)
[ -x /usr/bin/aws ] || need+=(awscli)
command -v chromium >/dev/null 2>&1 || need+=(chromium)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: need root to install: ${need[*]}" >&2
    exit 1
  fi
  echo "install-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Start Docker Engine when it is not answering.
if ! docker version >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "install-deps: starting dockerd"
    mkdir -p /var/log
    # setsid: dockerd must outlive the shell (and process group) that starts it
    setsid nohup dockerd >>/var/log/berth-dockerd.log 2>&1 </dev/null &
    for _ in $(seq 1 60); do
      docker version >/dev/null 2>&1 && break
      sleep 0.5
    done
  fi
  if ! docker version >/dev/null 2>&1; then
    echo "install-deps: warning: Docker Engine is not answering (see /var/log/berth-dockerd.log)" >&2
  fi
fi
