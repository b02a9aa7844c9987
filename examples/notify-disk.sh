#!/bin/sh
# Tell a Ruster session when a disk is nearly full. Meant for cron:
#   */15 * * * *  RUSTER_SOCKET=/tmp/ruster.sock /path/to/notify-disk.sh /home 90 main
# Usage: notify-disk.sh [PATH] [THRESHOLD%] [SESSION]   (defaults: / 90 main)
# At or above the threshold it sends a `notify` (delivery next_turn: the
# session's next turn hears of it). Prints nothing below it. Needs `nc -N -U`
# (netcat-openbsd) or socat; the session must exist. Exit 1 if not delivered.
path=${1:-/} limit=${2:-90} session=${3:-main} sock=${RUSTER_SOCKET:-/tmp/ruster.sock}
used=$(df -P "$path" | awk 'NR==2 { sub("%", "", $5); print $5 }')
[ -n "$used" ] && [ "$used" -ge "$limit" ] || exit 0
esc=$(printf '%s' "$path" | sed 's/\\/\\\\/g; s/"/\\"/g')
req="{\"action\":\"notify\",\"session_id\":\"$session\",\"source\":\"disk-monitor\",\"message\":\"$esc is $used% full (threshold $limit%)\",\"delivery\":\"next_turn\"}"
if command -v nc >/dev/null 2>&1; then
  answer=$(printf '%s\n' "$req" | nc -N -U "$sock")
else
  answer=$(printf '%s\n' "$req" | socat - "UNIX-CONNECT:$sock")
fi
case $answer in *'"notified"'*) exit 0 ;; esac
echo "notify-disk: not delivered to $sock: ${answer:-no answer}" >&2
exit 1
