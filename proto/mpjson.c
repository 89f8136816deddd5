/* proto/mpjson.c — see mpjson.h. Depth is bounded by the msgpack unpacker's own limits. */
#include "mpjson.h"

json_t *mpjson_from(const msgpack_object *o)
{
    json_t *j = NULL;
    if (o == NULL) {
        return NULL;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return o->via.u64 > (uint64_t)INT64_MAX ? json_real((double)o->via.u64)
                                                : json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: return json_stringn(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return json_loadb(o->via.bin.ptr, o->via.bin.size, JSON_DECODE_ANY, NULL);
    case MSGPACK_OBJECT_ARRAY:
        j = json_array();
        for (uint32_t i = 0; j && i < o->via.array.size; i++) {
            json_t *v = mpjson_from(&o->via.array.ptr[i]);
            if (v == NULL || json_array_append_new(j, v) != 0) {
                json_decref(j);
                return NULL;
            }
        }
        return j;
    case MSGPACK_OBJECT_MAP:
        j = json_object();
        for (uint32_t i = 0; j && i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            json_t *v;
            if (k->type != MSGPACK_OBJECT_STR ||
                (v = mpjson_from(&o->via.map.ptr[i].val)) == NULL) {
                json_decref(j);
                return NULL;
            }
            if (json_object_setn_new(j, k->via.str.ptr, k->via.str.size, v) != 0) {
                json_decref(j);
                return NULL;
            }
        }
        return j;
    default: return NULL;
    }
}
