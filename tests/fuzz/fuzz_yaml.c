/*
 * Fuzz target for the YAML codec: parse, then emit every document and parse
 * it again. The re-parsed document must equal the original, so emitter bugs
 * (wrong quoting, broken literal blocks) show up as crashes, not only memory
 * errors. JSON writing of the same values is exercised too.
 */
#include "tests/fuzz/fuzz.h"

#include "util/diag.h"
#include "util/error.h"
#include "util/json.h"
#include "util/value.h"
#include "util/vec.h"
#include "util/yaml.h"

#include <stdio.h>
#include <stdlib.h>

static void free_value(void *v)
{
    ibs_value_free(v);
}

static void check_roundtrip(const struct ibs_value *doc, const struct ibs_yaml_limits *lim)
{
    struct ibs_buf text = IBS_BUF_INIT;
    struct ibs_vec again = IBS_VEC_INIT;
    struct ibs_diags diags;

    ibs_diag_init(&diags);
    if (ibs_yaml_emit(&text, doc))
        goto done;
    if (ibs_yaml_parse(&again, &diags, "emitted", text.ptr, text.size, lim) == IBS_ENOMEM)
        goto done;
    if (again.count != 1 || !ibs_value_equal(doc, again.items[0])) {
        fprintf(stderr, "emitted YAML does not read back the same:\n%s\n", text.ptr);
        abort();
    }
    ibs_buf_clear(&text);
    ibs_json_write(&text, doc, IBS_JSON_SORTED | IBS_JSON_PRETTY);
done:
    ibs_vec_release_with(&again, free_value);
    ibs_diag_release(&diags);
    ibs_buf_release(&text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ibs_yaml_limits lim;
    struct ibs_vec docs = IBS_VEC_INIT;
    struct ibs_diags diags;

    /* A lower node limit keeps each run fast (alias-heavy inputs otherwise
     * build and compare 100,000-node trees); the checks are the same. */
    ibs_yaml_limits_init(&lim);
    lim.max_nodes = 20000;
    ibs_diag_init(&diags);
    ibs_yaml_parse(&docs, &diags, "fuzz", (const char *)data, size, &lim);
    for (size_t i = 0; i < docs.count; i++)
        check_roundtrip(docs.items[i], &lim);
    ibs_vec_release_with(&docs, free_value);
    ibs_diag_release(&diags);
    return 0;
}
