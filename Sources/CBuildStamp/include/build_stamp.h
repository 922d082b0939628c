#ifndef TETHER_BUILD_STAMP_H
#define TETHER_BUILD_STAMP_H

/* The commit and date a release build was made from, or "" when the build was not stamped.
   scripts/package writes them to stamp.generated.h for one build; a plain `swift build`
   has no such file and says so honestly. */
const char *tether_build_commit(void);
const char *tether_build_date(void);

#endif
