/* fuzz/fuzz.h — what every libFuzzer harness in fuzz/ shares (fuzz/README.md).
 *
 * Each harness is one decoder (or a decoder and what runs on its output) behind
 * LLVMFuzzerTestOneInput. The rule it enforces is laurel's: input from the network or the disk
 * gets 0 or a documented LR_E* code, never a crash, a leak, a read past its end or undefined
 * behaviour (the build adds ASan and UBSan). fuzz_copy hands the decoder a heap buffer of
 * exactly the input's size, so ASan sees a read one byte past it. */
#ifndef LAUREL_FUZZ_H
#define LAUREL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/** A malloc'ed copy of @data (at least 1 byte allocated, so @size 0 is fine). Caller frees. */
static inline char *fuzz_copy(const uint8_t *data, size_t size)
{
    char *p = malloc(size ? size : 1);
    if (p == NULL) {
        abort(); /* the harness has no other way to report it */
    }
    if (size) {
        memcpy(p, data, size);
    }
    return p;
}

/** A malloc'ed copy of @data with a NUL after its @size bytes, for decoders of C strings.
 * Caller frees. */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
    char *p = malloc(size + 1);
    if (p == NULL) {
        abort();
    }
    if (size) {
        memcpy(p, data, size);
    }
    p[size] = '\0';
    return p;
}

#endif
