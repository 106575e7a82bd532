/*
 * Fuzz target for the desired-state loader: any bytes as one YAML file of a
 * source. The loader must never crash, leak or hang, and must either accept
 * the input or report at least one diagnostic.
 */
#include "fuzz.h"

#include "reconcile/loader.h"
#include "util/diag.h"
#include "util/error.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ibs_model model;
    struct ibs_diags diags;
    int rc;

    ibs_model_init(&model);
    ibs_diag_init(&diags);
    rc = ibs_loader_load_buffer(&model, &diags, "fuzz.yaml", (const char *)data, size, NULL);
    if (rc == IBS_EINVALID && diags.errors == 0)
        abort(); /* invalid without saying why */
    if (rc == 0 && diags.errors != 0)
        abort(); /* valid despite errors */
    ibs_diag_release(&diags);
    ibs_model_release(&model);
    return 0;
}
