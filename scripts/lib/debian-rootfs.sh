# Sourced by sandbox-image/build and images/build: a slim Debian root file system from Debian's
# archive, for images built where no registry can be reached. Sets SUDO ("" when root).
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

# debian_rootfs ROOTFS SUITE PACKAGES-FILE: debootstrap a minbase SUITE into ROOTFS with the
# packages listed one per line, from the mirror this machine's apt already uses (so the build
# reaches what apt reaches), then drop package caches, docs and locales, which nothing in the
# images needs. On failure it prints the tail of debootstrap's log and returns 1.
debian_rootfs() {
  local rootfs="$1" suite="$2" packages="$3" mirror log
  command -v debootstrap >/dev/null || { echo "debootstrap is missing (scripts/setup installs it)" >&2; return 1; }
  mirror="$(grep -hoE '^(URIs:|deb) *(\[[^]]*\] *)?https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
    | grep -oE 'https?://[^ ]+' | grep -v -- '-security' | grep -E '/debian/?$' | head -n1 || true)"
  log="$(mktemp)"
  if ! $SUDO debootstrap --variant=minbase --include="$(paste -sd, "$packages")" \
      "$suite" "$rootfs" ${mirror:+"$mirror"} >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    rm -f "$log"
    echo "debootstrap of $suite with $(basename "$packages") failed (log above)" >&2
    return 1
  fi
  rm -f "$log"
  $SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/info "$rootfs"/usr/share/locale
}
