/*
 * The loader: desired state from a source (directory or git tree) into a
 * struct ibs_model, checked completely. Every problem is collected as a
 * diagnostic at its file, line and column with its member path; loading does
 * not stop at the first error. The format is documented in docs/format.md.
 */
#ifndef IBS_RECONCILE_LOADER_H
#define IBS_RECONCILE_LOADER_H

#include "reconcile/model.h"
#include "state/source.h"
#include "util/diag.h"

#include <stddef.h>

#define IBS_LOADER_API_VERSION "ibsync/v1"

struct ibs_loader_options {
    size_t max_file_size;   /* bytes per file; 0: 16 MiB */
    const char *stack_name; /* overrides the Stack document's name, or NULL */
    /* Preview stacks: every resource name gets this prefix (refs follow), or
     * NULL. Combined with stack_name, a pull request can apply its own
     * throw-away copy of the desired state. */
    const char *name_prefix;
};

/*
 * Loads every *.yaml / *.yml file below the source root (dot-directories
 * skipped; files used through {file:} are data, not resource documents) into
 * `model`, which the caller has initialised with ibs_model_init() and
 * releases. `opts` may be NULL.
 *
 * Returns 0 when the desired state is valid, IBS_EINVALID when errors were
 * added to `diags` (the model then holds what could be read), or another
 * negative code when the source itself failed (error set).
 */
int ibs_loader_load(struct ibs_model *model, struct ibs_diags *diags, struct ibs_source *src,
                    const struct ibs_loader_options *opts);

/*
 * Loads a single YAML text as if it were the only file of a source named
 * `file` (used by the fuzzer and tests). {file:} references cannot be
 * resolved and are reported as missing files.
 */
int ibs_loader_load_buffer(struct ibs_model *model, struct ibs_diags *diags, const char *file,
                           const char *data, size_t len, const struct ibs_loader_options *opts);

#endif
