#include "build_stamp.h"

/* Written by scripts/package (scripts/lib/stamp.sh) for the build it makes, removed after it;
   never committed. A C file rather than Swift so that a new stamp recompiles this file and
   relinks, and nothing else: the functions' interface never changes. */
#if __has_include("stamp.generated.h")
#include "stamp.generated.h"
#endif

#ifndef TETHER_BUILD_COMMIT
#define TETHER_BUILD_COMMIT ""
#endif
#ifndef TETHER_BUILD_DATE
#define TETHER_BUILD_DATE ""
#endif

const char *tether_build_commit(void) { return TETHER_BUILD_COMMIT; }
const char *tether_build_date(void) { return TETHER_BUILD_DATE; }
