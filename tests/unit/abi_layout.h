/*
 * abi_layout.h - records of the public SDK's binary layout, shared by
 * test_abi_layout.c (current headers) and abi_layout_1_N.c (the frozen
 * headers of each previous minor, tests/fixtures/sdk-1.N).  Includes no SDK
 * header itself, so each translation unit measures the SDK it was compiled
 * against.
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

/* A typedef that is not a struct or an enum (a function pointer type): its
 * name, and whether the compiler still finds it compatible with the
 * signature recorded for it. */
typedef struct sx_abi_typedef {
    const char *name;
    int same_type;
} sx_abi_typedef;

#define SX_ABI_TYPEDEF(t, recorded_type) {#t, _Generic((t)0, recorded_type: 1, default: 0)}

/* Everything recorded for one minor, measured from the headers the
 * translation unit that defines it was compiled against.  typedefs may be
 * NULL (not recorded for that minor). */
typedef struct sx_abi_record {
    int major, minor;               /* SX_ABI_MAJOR/MINOR of those headers */
    const sx_layout *layout;
    size_t layout_n;
    const sx_abi_constant *constants;
    size_t constants_n;
    const sx_abi_typedef *typedefs;
    size_t typedefs_n;
} sx_abi_record;

#define SX_ABI_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The previous minors, each measured from its frozen headers
 * (abi_layout_1_0.c, abi_layout_1_1.c). */
extern const sx_abi_record sx_abi_1_0;
extern const sx_abi_record sx_abi_1_1;

#endif
