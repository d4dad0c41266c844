#!/usr/bin/env bash
# Prints a CLI11 program's command tree from its --help output, one line per command path:
#   PATH|SUBCOMMANDS|LONG-OPTIONS
# PATH is empty for the program itself; lists are space-separated; --help is left out.
# Usage: cli_tree.sh PROGRAM
set -euo pipefail

program=$1

# The subcommand names and long options of one --help text, as two lines.
parse_help() {
  awk '
    /^[A-Z][A-Za-z ]*:$/ { section = $0; next }
    /^[^ ]/ || /^$/      { section = ""; next }
    /^   / { next }       # a description wrapped onto its own line
    {
      # The first word names the command, or the option ("-c,--config"); after it come the
      # value type, REQUIRED, Excludes: and the description, which may name other options.
      split(substr($0, 3), w, " ")
      if (section == "Subcommands:") subs = subs " " w[1]
      if (section == "Options:") {
        n = split(w[1], names, ",")
        for (i = 1; i <= n; i++)
          if (names[i] ~ /^--/ && names[i] != "--help") opts = opts " " names[i]
      }
    }
    END { sub(/^ /, "", subs); sub(/^ /, "", opts); print subs; print opts }
  '
}

walk() {
  local path=$1 text subs opts
  # shellcheck disable=SC2086 # the path is words
  if ! text=$("$program" $path --help 2>&1); then
    echo "cli_tree.sh: '$program $path --help' failed" >&2
    exit 1
  fi
  { read -r subs; read -r opts; } < <(parse_help <<<"$text")
  printf '%s|%s|%s\n' "$path" "$subs" "$opts"
  local sub
  for sub in $subs; do walk "${path:+$path }$sub"; done
}

walk ""
