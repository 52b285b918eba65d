#!/bin/sh
# Start jobd in the foreground on the development config (make run).
# The socket and state live under ./run/ in the source tree.
set -eu
jobd=$1
conf=$2
jobctl=$(dirname "$jobd")/jobctl
mkdir -p run
cat <<MSG
jobd: starting in the foreground on $conf (Ctrl-C stops it).
  In another terminal, from $(pwd):
    export JOBD_SOCKET=\$PWD/run/jobd.sock
    $jobctl submit -- echo hello        # prints the job id
    $jobctl wait 1; $jobctl logs 1
    $jobctl list
MSG
exec "$jobd" -c "$conf"
