/* utf8.h - make arbitrary script output safe to carry in JSON strings. */
#ifndef SX_HOST_UTF8_H
#define SX_HOST_UTF8_H
#include <stddef.h>
/* Copy `len` bytes, replacing each invalid UTF-8 sequence and each NUL with
 * U+FFFD.  Returns a malloc(3)ed NUL-terminated string, or NULL (no memory). */
char *sx_utf8_sanitize(const char *in, size_t len);
#endif
