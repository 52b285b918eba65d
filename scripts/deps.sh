#!/bin/sh
# Install the Debian packages jobd needs to build and test, if any are
# missing.  As root it runs apt-get; otherwise it prints the exact command
# and fails, so nothing is installed behind the user's back.
set -eu

PACKAGES="gcc make pkg-config libevent-dev libjansson-dev libconfig-dev check
libsystemd-dev python3 python3-pytest curl prometheus clang libclang-rt-14-dev groff-base man-db systemd"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "jobd: missing packages:$missing" >&2
	echo "jobd: run as root: apt-get update && $cmd" >&2
	exit 1
fi
echo "jobd: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
$cmd
