/*
 * Fuzz target for the JSON codec: parse, write (compact and pretty/sorted)
 * and parse again; the second parse must succeed and give an equal value
 * (unless the value holds infinities or NaN, which are written as null).
 */
#include "tests/fuzz/fuzz.h"

#include "util/buf.h"
#include "util/json.h"
#include "util/value.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Non-finite floats are written as null, so they do not read back. */
static bool has_nonfinite(const struct ibs_value *v)
{
    if (v->type == IBS_VALUE_FLOAT)
        return !isfinite(v->num.d);
    for (size_t i = 0; i < v->count; i++)
        if (has_nonfinite(v->type == IBS_VALUE_LIST ? v->u.items[i] : v->u.members[i].value))
            return true;
    return false;
}

static void roundtrip(const struct ibs_value *v, unsigned flags)
{
    struct ibs_buf text = IBS_BUF_INIT;
    struct ibs_value *again = NULL;

    if (ibs_json_write(&text, v, flags) == 0) {
        if (ibs_json_parse(&again, text.ptr, text.size) != 0 ||
            (!has_nonfinite(v) && !ibs_value_equal(v, again))) {
            fprintf(stderr, "written JSON does not read back the same:\n%s\n", text.ptr);
            abort();
        }
    }
    ibs_value_free(again);
    ibs_buf_release(&text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ibs_value *v = NULL;

    if (ibs_json_parse(&v, (const char *)data, size) == 0) {
        roundtrip(v, 0);
        roundtrip(v, IBS_JSON_PRETTY | IBS_JSON_SORTED);
    }
    ibs_value_free(v);
    return 0;
}
