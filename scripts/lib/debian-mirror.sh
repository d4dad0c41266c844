# shellcheck shell=bash
# Sourced by scripts that make a Debian 12 base image with debootstrap.
# debian_mirror: prints the Debian archive this machine's apt uses, read from deb822 sources
# (cloud images) or a sources.list (debootstrap, containers); http://deb.debian.org/debian if
# neither names one. A missing file, or one naming only the security archive, is no error.
debian_mirror() {
  local m=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    m=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources | tr ' ' '\n' |
      grep -v -- '-security' | head -n 1 || true)
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m=$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}
