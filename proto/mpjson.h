/* proto/mpjson.h — msgpack answers to JSON, generically.
 * The shard answers with msgpack maps keyed by API.md's field names (docs/architecture.md), so
 * one converter serves every endpoint: strings, integers, floats, booleans, nil, arrays and
 * maps map one to one; BIN holds compact JSON text (metadata) and is embedded as JSON. */
#ifndef LAUREL_MPJSON_H
#define LAUREL_MPJSON_H

#include <jansson.h>
#include <msgpack.h>

/** New JSON value for @o (caller owns it), or NULL on a type JSON cannot hold. */
json_t *mpjson_from(const msgpack_object *o); /* NULL @o: NULL */

#endif
