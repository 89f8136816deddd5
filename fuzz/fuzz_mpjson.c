/* fuzz/fuzz_mpjson.c — msgpack to JSON (proto/mpjson.c), behind proto_unpack.
 *
 * The router turns every replica answer into JSON with mpjson_from; a replica is a peer, and a
 * peer's bytes are input. proto_unpack must refuse what msgpack-c would over-allocate for;
 * what it accepts must convert (or give NULL for a type JSON cannot hold) and dump. */
#include <jansson.h>
#include <msgpack.h>

#include "fuzz/fuzz.h"
#include "proto/mpjson.h"
#include "proto/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = fuzz_copy(data, size);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    if (proto_unpack(p, size, &up) == 0) {
        json_t *j = mpjson_from(&up.data);
        if (j != NULL) {
            char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
            free(s);
            json_decref(j);
        }
    }
    msgpack_unpacked_destroy(&up);
    free(p);
    return 0;
}
