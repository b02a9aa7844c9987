#!/bin/sh
# Chat with a Ruster session from a terminal: sh plus socat (or nc -U).
#
#   sh examples/chat.sh                     # session "chat" on /tmp/ruster.sock
#   sh examples/chat.sh work /run/me/ruster.sock
#   echo "What is a UNIX socket?" | sh examples/chat.sh work
#
# Arguments in any order: one containing "/" is the socket (else
# $RUSTER_SOCKET, else /tmp/ruster.sock), the other the session (default
# "chat"; created if it does not exist). Each line you type is sent; the
# reply is printed as it streams, and so are reminders and other proactive
# messages of the session. Ctrl-D ends the chat once the replies are in;
# Ctrl-C quits at once. (`ruster chat` is the full client.)
session=chat sock=${RUSTER_SOCKET:-/tmp/ruster.sock}
for a; do case $a in */*) sock=$a ;; *) session=$a ;; esac; done

# A line as a JSON string body: escape \ and ", drop other control characters.
quote() { printf '%s' "$1" | tr -d '\000-\010\012-\037' | sed 's/\\/\\\\/g; s/"/\\"/g; s/	/\\t/g'; }

# Text of the JSON string that starts $1, up to its closing quote (escapes
# \" \\ \/ \n \t decoded; \u00XX control characters dropped).
unquote() {
  s=$1 out=
  while :; do
    pre=${s%%[\\\"]*} s=${s#"$pre"} out=$out$pre
    case $s in
      \\?*)
        c=${s#?} c=${c%"${c#?}"} s=${s#??}
        case $c in
          n) out="$out
" ;;
          t) out="$out	" ;;
          u) s=${s#????} ;;
          r | b | f) ;;
          *) out=$out$c ;;
        esac ;;
      *) printf '%s' "$out"; return ;;
    esac
  done
}

# The value of string field $1 in the JSON line $2.
field() {
  case $2 in *"\"$1\":\""*) unquote "${2#*\"$1\":\"}" ;; esac
}

if command -v socat >/dev/null 2>&1; then
  connect() { socat -t 600 - "UNIX-CONNECT:$sock"; }
elif command -v nc >/dev/null 2>&1; then
  connect() { nc -N -U "$sock"; }
else
  echo "chat.sh: needs socat or nc (netcat-openbsd)" >&2
  exit 1
fi

[ -S "$sock" ] || { echo "chat.sh: no daemon socket at $sock: start it with \`ruster\`" >&2; exit 1; }

{
  printf '{"action":"create","session_id":"%s"}\n' "$(quote "$session")"
  while IFS= read -r line; do
    [ -n "$line" ] && printf '{"action":"send","session_id":"%s","message":"%s"}\n' \
      "$(quote "$session")" "$(quote "$line")"
  done
} | connect | while IFS= read -r ev; do
  case $ev in
    '{"event":"created"'*) printf '[session %s, model %s]\n' "$(field session_id "$ev")" "$(field model "$ev")" >&2 ;;
    '{"event":"response"'*)
      field delta "$ev"
      case $ev in *'"done":true'*) echo ;; esac ;;
    '{"event":"proactive"'*) printf '[%s] %s\n' "$(field kind "$ev")" "$(field message "$ev")" ;;
    '{"event":"error"'*) printf 'error: %s\n' "$(field message "$ev")" >&2 ;;
  esac
done
