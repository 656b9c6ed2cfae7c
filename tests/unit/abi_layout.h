/*
 * abi_layout.h - records of the public SDK's binary layout, shared by
 * test_abi_layout.c (current headers) and abi_layout_1_0.c (the frozen 1.0
 * headers of tests/fixtures/sdk-1.0).  Includes no SDK header itself, so
 * each translation unit measures the SDK it was compiled against.
 */
#ifndef SX_TEST_ABI_LAYOUT_H
#define SX_TEST_ABI_LAYOUT_H

#include <stddef.h>

/* One struct size (field == NULL) or field offset: as recorded when that
 * minor was released, and as the compiler lays it out now. */
typedef struct sx_layout {
    const char *type;
    const char *field;
    size_t recorded;
    size_t actual;
} sx_layout;

#define SX_LAYOUT_SIZE(t, n) {#t, NULL, n, sizeof(t)}
#define SX_LAYOUT_FIELD(t, f, n) {#t, #f, n, offsetof(t, f)}

/* One enum constant or #define whose value is part of the ABI. */
typedef struct sx_abi_constant {
    const char *name;
    long long recorded;
    long long actual;
} sx_abi_constant;

#define SX_ABI_CONST(c, v) {#c, v, (long long)(c)}

/* What abi_layout_1_0.c measured from the SDK 1.0 headers. */
extern const sx_layout sx_abi_1_0_layout[];
extern const size_t sx_abi_1_0_layout_n;
extern const sx_abi_constant sx_abi_1_0_constants[];
extern const size_t sx_abi_1_0_constants_n;
extern const int sx_abi_1_0_major, sx_abi_1_0_minor;

#endif
