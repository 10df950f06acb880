#!/usr/bin/env bash
# Installs the SIP peers the SIP tests run against (SIPp, Kamailio with its
# presence modules, baresip) from the Debian archive when any is missing.
# Prints nothing when all are present, so the test command can call it
# every time. Uses sudo only when not running as root.
set -euo pipefail

packages=(sip-tester kamailio kamailio-presence-modules baresip-core)

missing=()
command -v sipp >/dev/null 2>&1 || missing+=(sipp)
command -v kamailio >/dev/null 2>&1 || [[ -x /usr/sbin/kamailio ]] || missing+=(kamailio)
command -v baresip >/dev/null 2>&1 || missing+=(baresip)
# The presence modules ship in their own package, so look for one of them.
if ! compgen -G "/usr/lib/*/kamailio/modules/presence_dialoginfo.so" >/dev/null; then
    missing+=(kamailio-presence-modules)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-peers: missing ${missing[*]}, and apt-get is not available;" \
        "install ${packages[*]} with this system's package manager" >&2
    exit 1
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    sudo=(sudo)
fi

echo "ensure-peers: missing ${missing[*]}; installing ${packages[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
