#ifndef TETHER_CLDAP_SHIM_H
#define TETHER_CLDAP_SHIM_H
#define LDAP_DEPRECATED 0
#include <lber.h>
#include <ldap.h>

/* Macros Swift cannot import: LDAP_OPT_ON / LDAP_OPT_OFF point at libldap globals. */
static inline void *tether_ldap_opt_on(void) { return LDAP_OPT_ON; }
static inline void *tether_ldap_opt_off(void) { return LDAP_OPT_OFF; }

#endif
