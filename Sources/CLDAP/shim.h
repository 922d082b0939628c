#ifndef TETHER_CLDAP_SHIM_H
#define TETHER_CLDAP_SHIM_H
#define LDAP_DEPRECATED 0
#include <lber.h>
#include <ldap.h>

/* Macros Swift cannot import: LDAP_OPT_ON / LDAP_OPT_OFF point at libldap globals. */
static inline void *tether_ldap_opt_on(void) { return LDAP_OPT_ON; }
static inline void *tether_ldap_opt_off(void) { return LDAP_OPT_OFF; }

/* Puts a read-ahead buffer of `size` bytes under the connection's LDAP layer, above the
 * socket (and below TLS, when there is TLS), or takes it away when `size` is 0. libldap
 * otherwise reads each message with two read(2) calls and a poll(2): three system calls per
 * entry of a large search. Call while no response is pending. Returns 0 on success; taking
 * the buffer away fails while it holds bytes not yet read. */
static inline int tether_ldap_set_read_ahead(LDAP *ld, int size) {
    Sockbuf *sb = NULL;
    if (ldap_get_option(ld, LDAP_OPT_SOCKBUF, &sb) != LDAP_OPT_SUCCESS || sb == NULL) return -1;
    int present = ber_sockbuf_ctrl(sb, LBER_SB_OPT_HAS_IO, &ber_sockbuf_io_readahead) == 1;
    if (size > 0) {
        return present ? 0 : ber_sockbuf_add_io(sb, &ber_sockbuf_io_readahead, LBER_SBIOD_LEVEL_PROVIDER, &size);
    }
    return present ? ber_sockbuf_remove_io(sb, &ber_sockbuf_io_readahead, LBER_SBIOD_LEVEL_PROVIDER) : 0;
}

/* Whether the connection reads through the read-ahead buffer. */
static inline int tether_ldap_reads_ahead(LDAP *ld) {
    Sockbuf *sb = NULL;
    if (ldap_get_option(ld, LDAP_OPT_SOCKBUF, &sb) != LDAP_OPT_SUCCESS || sb == NULL) return 0;
    return ber_sockbuf_ctrl(sb, LBER_SB_OPT_HAS_IO, &ber_sockbuf_io_readahead) == 1;
}

#endif
