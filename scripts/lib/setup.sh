# Shared set-up for scripts/test and scripts/demo: system packages from apt, and a check
# that the Swift toolchain is on PATH.

# Debian packages the build and the tests need.
TETHER_APT_PACKAGES=(libsqlite3-dev libldap2-dev slapd ldap-utils python3-venv systemd openssl)

install_system_packages() {
    local missing=()
    for package in "${TETHER_APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

ensure_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        for candidate in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
            [ -x "$candidate/swift" ] && export PATH="$candidate:$PATH" && break
        done
    fi
    command -v swift >/dev/null 2>&1 || { echo "error: swift 6.3 is not on PATH; install the Swift toolchain first" >&2; exit 1; }
}
