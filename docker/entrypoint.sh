#!/bin/sh
# Starts EPMD (listening on every interface, so peers in other containers can look the node up), then the
# node. ERLANG_COOKIE sets the cookie when no -setcookie is given: written to ~/.erlang.cookie (mode 400),
# where the node reads it as erl does, so it does not show in `ps` as a -setcookie argument would. A command
# that is not an option (`docker run IMAGE bash`) runs instead.
set -e
case "${1:-}" in
  ''|-*) ;;
  *) exec "$@" ;;
esac
epmd -daemon
if [ -n "${ERLANG_COOKIE:-}" ] && ! echo " $* " | grep -q ' -setcookie '; then
  cookie_file="$HOME/.erlang.cookie"
  rm -f "$cookie_file"
  (umask 077 && printf '%s' "$ERLANG_COOKIE" > "$cookie_file")
  chmod 400 "$cookie_file"
fi
exec node /app/dist/cli.js "$@"
