#!/bin/sh
# Starts EPMD (listening on every interface, so peers in other containers can look the node up), then the
# node. ERLANG_COOKIE sets the cookie when no -setcookie is given. A command that is not an option
# (`docker run IMAGE bash`) runs instead.
set -e
case "${1:-}" in
  ''|-*) ;;
  *) exec "$@" ;;
esac
epmd -daemon
if [ -n "${ERLANG_COOKIE:-}" ] && ! echo " $* " | grep -q ' -setcookie '; then
  set -- "$@" -setcookie "$ERLANG_COOKIE"
fi
exec node /app/dist/cli.js "$@"
