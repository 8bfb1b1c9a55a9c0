/* Fixtures several test suites share (linked into every suite and into the emulated cuda suite). */
#ifndef KT_TEST_FIXTURE_H
#define KT_TEST_FIXTURE_H

#include <stdint.h>

/* Saves a convnext_atto checkpoint at path: `classes` classes named by names, side x side pixels,
 * weights from seed with every layer scale set to 0.5 (timm's 1e-6 makes all images look alike,
 * and a test comparing predictions would then say little). Failures go to the test harness;
 * returns 1 on success. */
int kt_fixture_atto_checkpoint(const char *path, const char *const *names, int classes, int side, uint64_t seed);

/* Number of entries under dir whose name contains needle (recursively; 0 when dir is absent). */
int kt_fixture_count_named(const char *dir, const char *needle);

#endif
