# Shared set-up for scripts/test and scripts/demo: system packages from apt, and a check
# that the Swift toolchain is on PATH.

# Debian packages the build and the tests need.
# man-db and groff-base render tether(8) in a test; bsdextrautils has col, util-linux script.
# chromium, chromium-driver and python3-selenium: the browser test of the access review page.
# postgresql: the throwaway clusters of the PostgreSQL backend's tests and of `scripts/demo --ha`;
# pgbouncer: the test that a pooler in transaction mode is refused.
TETHER_APT_PACKAGES=(libsqlite3-dev libldap2-dev slapd ldap-utils python3-venv systemd openssl man-db groff-base bsdextrautils util-linux
    chromium chromium-driver python3-selenium postgresql pgbouncer)

install_system_packages() {
    local missing=()
    # Debian's postgresql, pgbouncer and nginx packages start services of their own (a
    # cluster on 5432, a web server on 80); the tests and benchmarks start throwaway ones
    # instead, so their scripts may start nothing (policy-rc.d).
    local refuse_start=0
    for package in "${TETHER_APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    if [[ " ${missing[*]} " == *" postgresql "* || " ${missing[*]} " == *" pgbouncer "* || " ${missing[*]} " == *" nginx-light "* ]] \
        && [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
        "${sudo[@]}" chmod +x /usr/sbin/policy-rc.d
        refuse_start=1
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    [ "$refuse_start" = 1 ] && "${sudo[@]}" rm -f /usr/sbin/policy-rc.d
    return 0
}

ensure_swift() {
    if ! command -v swift >/dev/null 2>&1; then
        for candidate in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
            [ -x "$candidate/swift" ] && export PATH="$candidate:$PATH" && break
        done
    fi
    command -v swift >/dev/null 2>&1 || { echo "error: swift 6.3 is not on PATH; install the Swift toolchain first" >&2; exit 1; }
}

# Samba's Active Directory domain controller, for scripts/test-ad and scripts/bench-ad-ranges
# (as root). The packages' scripts would start smbd and nmbd on every interface: a
# policy-rc.d that refuses keeps them stopped while they install.
install_samba_packages() {
    TETHER_APT_PACKAGES+=(samba samba-dsdb-modules samba-vfs-modules samba-ad-provision)
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
        install_system_packages
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    else
        install_system_packages
    fi
}
