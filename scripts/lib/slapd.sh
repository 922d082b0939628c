# A throwaway OpenLDAP server: config, data and process all under one folder.
# Usage: start_slapd FOLDER PORT ROOTPW LDIF [MAXSIZE]   (sets SLAPD_PID; MAXSIZE in bytes, default 1 GiB)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_slapd() {
    local folder=$1 port=$2 rootpw=$3 ldif=$4 maxsize=${5:-1073741824}
    mkdir -p "$folder/data"
    cat > "$folder/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload syncprov
moduleload memberof
pidfile $folder/slapd.pid
sizelimit unlimited
database mdb
directory $folder/data
suffix "dc=example,dc=com"
rootdn "cn=admin,dc=example,dc=com"
rootpw $rootpw
maxsize $maxsize
index objectClass,uid,cn,mail,member,entryCSN,entryUUID eq
overlay memberof
overlay syncprov
syncprov-checkpoint 100 5
syncprov-sessionlog 1000
CONF
    slapadd -q -f "$folder/slapd.conf" -l "$ldif" >/dev/null
    /usr/sbin/slapd -f "$folder/slapd.conf" -h "ldap://127.0.0.1:$port/" -d 0 >"$folder/slapd.log" 2>&1 &
    SLAPD_PID=$!
    for _ in $(seq 1 100); do
        if ldapsearch -x -H "ldap://127.0.0.1:$port/" -b "dc=example,dc=com" -s base >/dev/null 2>&1; then return 0; fi
        kill -0 "$SLAPD_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "slapd did not start; see $folder/slapd.log" >&2
    return 1
}
