#!/usr/bin/env bash
# Fails when the manual pages or the bash completions no longer describe the programs:
#  - every command and long option each CLI's --help lists is in its manual page, each leaf
#    command in a block of its own ("*attest evidence* ..." at the start of a line, up to the
#    next line starting with "*" or "#") that names every one of its options;
#  - the completion offers exactly the commands --help lists and at least its options;
#  - every configuration key mcimd and mcimd-agent accept (asked from the programs themselves,
#    by feeding them an unknown key at each level) is in the page describing the file;
#  - the completion scripts parse, and the rendered pages have no groff or man warnings.
# Usage: check_docs.sh SOURCE_DIR RENDERED_MAN_DIR|- MCIMD MCIMCTL MCIM_OPERATOR MCIMD_AGENT
set -uo pipefail

source_dir=$1 rendered=$2 mcimd=$3 mcimctl=$4 mcim_operator=$5 mcimd_agent=$6
here=$(cd "$(dirname "$0")" && pwd)
man_src=$source_dir/docs/man
completions=$source_dir/packaging/bash-completion
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# True when $2 names option $1, not merely a longer one (--out is not --out-key).
names_option() { grep -Eq -- "$1([^A-Za-z0-9-]|\$)" <<<"$2"; }

# The block of command $2 in page $1: its header line and what follows, to the next header.
command_block() {
  awk -v header="*$2*" '
    found && /^[*#]/ { exit }
    found { print; next }
    index($0, header) == 1 && (length($0) == length(header) || substr($0, length(header) + 1, 1) == " ") {
      found = 1; print
    }
  ' "$1"
}

# What the completion script $1 offers for the words after the program name ($3...), the last
# one being completed; $2 is the program.
complete_words() {
  local script=$1 program=$2
  shift 2
  bash -c '
    script=$1 program=$2
    shift 2
    source "$script" || exit 1
    function=$(complete -p "$program" | sed -n "s/.* -F \([^ ]*\) .*/\1/p")
    COMP_WORDS=("$program" "$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    "$function"
    printf "%s\n" "${COMPREPLY[@]}"
  ' complete_words "$script" "$program" "$@"
}

# check_cli NAME BINARY PAGE [COMPLETION]
check_cli() {
  local name=$1 binary=$2 page=$3 completion=${4:-}
  local tree=$work/$name.tree
  if ! "$here/cli_tree.sh" "$binary" >"$tree"; then
    fail "$name: cannot read its --help"
    return
  fi
  local root_opts
  root_opts=$(awk -F'|' '$1 == "" { print $3 }' "$tree")
  local path subs opts opt sub
  while IFS='|' read -r path subs opts; do
    local where=${path:-(the program)}
    if [[ -z $path ]]; then
      for opt in $opts; do
        names_option "$opt" "$(cat "$page")" || fail "$name: option $opt is not in $(basename "$page")"
      done
    elif [[ -z $subs ]]; then
      local block
      block=$(command_block "$page" "$path")
      if [[ -z $block ]]; then
        fail "$name: command '$path' has no block (a line starting '*$path*') in $(basename "$page")"
      else
        for opt in $opts; do
          names_option "$opt" "$block" || fail "$name $path: option $opt is not in its block in $(basename "$page")"
        done
      fi
    fi
    [[ -n $completion ]] || continue
    local offered_subs offered_opts
    # shellcheck disable=SC2086 # the path is words
    offered_subs=$(complete_words "$completion" "$name" $path "")
    # shellcheck disable=SC2086
    offered_opts=$(complete_words "$completion" "$name" $path "--")
    for sub in $subs; do
      grep -qxF -- "$sub" <<<"$offered_subs" || fail "$name completion: '$where' does not offer command $sub"
    done
    # A command without subcommands may complete file names instead.
    [[ -z $subs ]] || for sub in $offered_subs; do
      [[ " $subs " == *" $sub "* ]] || fail "$name completion: '$where' offers command $sub, which --help does not list"
    done
    for opt in $opts; do
      grep -qxF -- "$opt" <<<"$offered_opts" || fail "$name completion: '$where' does not offer option $opt"
    done
    for opt in $offered_opts; do
      [[ " $opts $root_opts --help " == *" $opt "* ]] ||
        fail "$name completion: '$where' offers option $opt, which --help does not list"
    done
  done <"$tree"
}

# The configuration keys a program accepts, dotted ("tpm.tcti", "provisioning.operators[].id"),
# by giving it an unknown key at each level and reading the known ones from its error.
# $1: a command that takes the configuration file as its last argument.
nest() {  # nest PATH INNER: the YAML flow text putting INNER at PATH
  local inner=$2 part
  local -a parts=()
  [[ -n $1 ]] && IFS=. read -ra parts <<<"$1"
  local i
  for ((i = ${#parts[@]} - 1; i >= 0; i--)); do
    part=${parts[i]}
    if [[ $part == *"[]" ]]; then inner="{${part%"[]"}: [$inner]}"; else inner="{$part: $inner}"; fi
  done
  printf '%s\n' "$inner"
}
config_error() {  # config_error PROGRAM... : run it on the YAML on stdin, print its message
  cat >"$work/probe.yaml"
  "$@" "$work/probe.yaml" 2>&1 </dev/null || true  # refusing the file is what is expected
}
config_keys() {
  local prefix=$1
  shift
  local out known key full
  out=$(nest "$prefix" "{zz-probe: 1}" | config_error "$@")
  known=$(sed -n -e 's/.*zz-probe: unknown key (known: \(.*\)).*/\1/p' \
                 -e 's/.*zz-probe: unknown key; expected one of \(.*\)$/\1/p' <<<"$out")
  if [[ -z $known ]]; then
    echo "cannot list the keys of '${prefix:-(top level)}': $out" >&2
    return 1
  fi
  for key in ${known//,/ }; do
    full=${prefix:+$prefix.}$key
    echo "$full"
    # A mapping of keys, or a list of mappings, has keys of its own.
    out=$(nest "$full" "{zz-probe: 1}" | config_error "$@")
    if [[ $out == *"$full.zz-probe: unknown key"* ]]; then
      config_keys "$full" "$@" || return 1
      continue
    fi
    out=$(nest "$full" "[{zz-probe: 1}]" | config_error "$@")
    if [[ $out == *"${full}[].zz-probe: unknown key"* ]]; then
      config_keys "${full}[]" "$@" || return 1
    fi
  done
}
check_config_keys() {  # check_config_keys PAGE PROGRAM...
  local page=$1 keys key
  shift
  if ! keys=$(config_keys "" "$@"); then
    fail "cannot list the configuration keys of $1"
    return
  fi
  [[ $(wc -l <<<"$keys") -ge 5 ]] || fail "only $(wc -l <<<"$keys") configuration keys found for $1: $keys"
  for key in $keys; do
    grep -qF -- "*$key*" "$page" || fail "configuration key $key is not in $(basename "$page") (as *$key*)"
  done
}

check_cli mcimctl "$mcimctl" "$man_src/mcimctl.1.scd" "$completions/mcimctl"
check_cli mcim-operator "$mcim_operator" "$man_src/mcim-operator.1.scd" "$completions/mcim-operator"
check_cli mcimd "$mcimd" "$man_src/mcimd.8.scd"
check_cli mcimd-agent "$mcimd_agent" "$man_src/mcimd-agent.8.scd"

check_config_keys "$man_src/mcimd.yaml.5.scd" "$mcimd" --check-config --config
check_config_keys "$man_src/mcimd-agent.8.scd" "$mcimd_agent" --config

for script in "$completions/mcimctl" "$completions/mcim-operator"; do
  bash -n "$script" || fail "$(basename "$script") completion does not parse (bash -n)"
done

if [[ $rendered != - ]]; then
  for page in "$rendered"/*.[0-9]; do
    [[ -e $page ]] || { fail "no rendered page in $rendered"; break; }
    warnings=$(LC_ALL=C.UTF-8 groff -man -ww -z "$page" 2>&1)
    if command -v man >/dev/null; then
      warnings+=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)
    fi
    [[ -z $warnings ]] || fail "$(basename "$page") renders with warnings: $warnings"
  done
fi

if ((failures > 0)); then
  echo "$failures problem(s): update docs/man/*.scd and packaging/bash-completion/ to match the code"
  exit 1
fi
echo "manual pages and completions match the programs"
