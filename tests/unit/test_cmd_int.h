/* tests/unit/test_cmd_int.h — what the files of the test_cmd binary share: the fixture, the
 * sample commands and the codec helpers (test_cmd.c), and each file's tests for main's list. */
#ifndef LAUREL_TEST_CMD_INT_H
#define LAUREL_TEST_CMD_INT_H

#include "lib/err.h"
#include "shard/cmd.h"
#include "tests/lib/testlib.h"

#define TS 1795350660123LL
#define TS_MAX 253402300799999LL

struct fixture {
    struct group *g;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    char errmsg[LR_ERRMSG_SIZE];
    struct testrng rng;
};

/* Every command type in CMD_LIST order. Defined here, a copy in each file, so that NTYPES can
 * take its size. */
static const enum cmd_type all_types[] = {
#define TYPE(code, NAME, name, flags) CMD_##NAME,
    CMD_LIST(TYPE)
#undef TYPE
};
#define NTYPES (sizeof all_types / sizeof all_types[0])

/* test_cmd.c: sample commands, comparison and codec helpers (described where defined) */
struct lr_str S(const char *s);
struct cmd sample(enum cmd_type type);
void cmd_equal(const struct cmd *x, const struct cmd *y);
void encode_entry(struct fixture *f, const struct cmd *cmds, uint32_t n);
int decode_entry(struct fixture *f, struct cmd_entry *e);
int decode_one(struct fixture *f, struct cmd *out);
int round_trip(struct fixture *f, const struct cmd *c, struct cmd *out);
void expect_ok(struct fixture *f, const struct cmd *c);
void expect_msg_names(const char *errmsg, const char *fname);
void expect_bad(struct fixture *f, const struct cmd *c, int want, const char *fname);
void pack_str(msgpack_packer *pk, struct lr_str s);

/* test_cmd_wire.c: the wire form packed by hand, the entry envelope */
void encoder_matches_documented_wire_form(void **state);
void wrong_field_type_is_refused(void **state);
void wrong_field_count_is_malformed(void **state);
void origin_round_trips_and_is_optional(void **state);
void bad_origins_are_refused(void **state);
void audited_commands_name_action_and_player(void **state);
void unknown_command_code_is_version_error(void **state);
void ts_out_of_range_is_malformed(void **state);
void command_not_an_array_is_malformed(void **state);
void entry_version_is_checked(void **state);
void entry_shape_is_checked(void **state);
void truncated_and_trailing_entries(void **state);
void huge_claims_are_refused_cheaply(void **state);
void entry_command_limit(void **state);

/* test_cmd_fields.c: bounds of every field, the request hash, valid.h */
void every_field_enforces_its_bounds(void **state);
void api_conventions_spelled_out(void **state);
void request_hash_covers_every_field(void **state);
void request_hash_keeps_field_boundaries(void **state);
void valid_id_alphabet_and_length(void **state);
void valid_text_counts_code_points(void **state);
void valid_idem_printable_ascii(void **state);
void valid_score_bounds(void **state);

/* test_cmd_cursor.c: page cursors */
void cursor_key_round_trips(void **state);
void cursor_seq_round_trips(void **state);
void cursor_pos_round_trips(void **state);
void cursor_rejects_wrong_version_and_shape(void **state);
void cursor_rejects_truncated_and_noncanonical(void **state);
void cursor_random_strings(void **state);

/* test_cmd_mp.c: the in-place msgpack reader */
void mp_ints_at_every_width(void **state);
void mp_strings_and_bins(void **state);
void mp_bool_nil_and_containers(void **state);
void mp_errors_latch(void **state);
void mp_skip_nested(void **state);
void mp_truncated_input(void **state);

#endif
