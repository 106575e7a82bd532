/*
 * The provider table's generic half: dispatch through the table, errors,
 * and a pagination loop driven by the API model's pagination keys (the
 * same loop serves the AWS client and the emulator).
 */
#include "providers/provider.h"

#include "api/api.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

/* maxResults for every page: the largest the API allows. */
#define LIST_PAGE_SIZE 25

void ibs_provider_error_init(struct ibs_provider_error *err)
{
    memset(err, 0, sizeof(*err));
}

void ibs_provider_error_release(struct ibs_provider_error *err)
{
    if (!err)
        return;
    free(err->aws_code);
    free(err->message);
    free(err->request_id);
    ibs_provider_error_init(err);
}

int ibs_provider_call(struct ibs_value **out, struct ibs_provider_error *err,
                      struct ibs_provider *p, const char *operation, const struct ibs_value *input)
{
    *out = NULL;
    if (!p || !p->ops || !p->ops->call)
        return ibs_error_set(IBS_EINVALID, "provider: no provider to call %s",
                             operation ? operation : "(null)");
    if (p->ops->version != IBS_PROVIDER_VERSION)
        return ibs_error_set(IBS_EUNSUPPORTED,
                             "provider %s: table version %u, this build expects %u",
                             p->ops->name ? p->ops->name : "(unnamed)", p->ops->version,
                             (unsigned)IBS_PROVIDER_VERSION);
    if (!operation)
        return ibs_error_set(IBS_EINVALID, "provider %s: no operation given", p->ops->name);
    return p->ops->call(p->self, out, err, operation, input);
}

/* Moves the items of the list resp[key] (if any) to the end of `all`. */
static int move_items(struct ibs_value *all, struct ibs_value *resp, const char *key)
{
    struct ibs_value *list = ibs_value_map_take(resp, key);
    int rc = 0;

    if (!list)
        return 0;
    if (list->type != IBS_VALUE_LIST) {
        rc = ibs_error_set(IBS_ESERVICE, "the response member %s is a %s, not a list", key,
                           ibs_value_type_name(list->type));
        goto done;
    }
    for (size_t i = 0; i < list->count && !rc; i++) {
        /* The item belongs to `all` from here on, even when appending fails. */
        rc = ibs_value_list_append(all, list->u.items[i]);
        list->u.items[i] = NULL;
    }
done:
    ibs_value_free(list);
    return rc;
}

int ibs_provider_list_all(struct ibs_value **out, size_t *out_pages, struct ibs_provider *p,
                          const char *operation, const struct ibs_value *input)
{
    const struct ibs_api_operation *op = ibs_api_operation_find(operation ? operation : "");
    struct ibs_value *req = NULL, *all = NULL, *resp = NULL, *limit = NULL;
    char *prev_token = NULL;
    size_t pages = 0;
    int rc;

    *out = NULL;
    if (out_pages)
        *out_pages = 0;
    if (!op)
        return ibs_error_set(IBS_EINVALID, "provider: unknown operation %s",
                             operation ? operation : "(null)");
    if (!op->input_token || !op->output_token || !op->result_key)
        return ibs_error_set(IBS_EINVALID, "provider: %s does not paginate", op->name);
    if (input && input->type != IBS_VALUE_MAP)
        return ibs_error_set(IBS_EINVALID, "provider: the %s request must be a map", op->name);
    rc = input ? ibs_value_clone(&req, input) : ((req = ibs_value_new_map()) ? 0 : IBS_ENOMEM);
    if (rc)
        goto done;
    if (op->limit_key) {
        if (!(limit = ibs_value_new_int(LIST_PAGE_SIZE))) {
            rc = IBS_ENOMEM;
            goto done;
        }
        if ((rc = ibs_value_map_set(req, op->limit_key, limit)))
            goto done;
    }
    if (!(all = ibs_value_new_list())) {
        rc = IBS_ENOMEM;
        goto done;
    }
    for (;;) {
        const char *token;
        struct ibs_value *next;

        if ((rc = ibs_provider_call(&resp, NULL, p, op->name, req)))
            goto done;
        pages++;
        if ((rc = move_items(all, resp, op->result_key)))
            goto done;
        token = ibs_value_map_get_str(resp, op->output_token);
        if (!token || !*token)
            break;
        /* A service that hands back the token it was given would loop forever. */
        if (prev_token && strcmp(prev_token, token) == 0) {
            rc = ibs_error_set(IBS_ESERVICE, "%s returned the same pagination token twice",
                               op->name);
            goto done;
        }
        free(prev_token);
        if (!(prev_token = strdup(token))) {
            rc = ibs_error_oom();
            goto done;
        }
        if (!(next = ibs_value_new_string(token))) {
            rc = IBS_ENOMEM;
            goto done;
        }
        if ((rc = ibs_value_map_set(req, op->input_token, next)))
            goto done;
        ibs_value_free(resp);
        resp = NULL;
    }
    *out = all;
    all = NULL;
    if (out_pages)
        *out_pages = pages;
done:
    free(prev_token);
    ibs_value_free(resp);
    ibs_value_free(req);
    ibs_value_free(all);
    return rc;
}

void ibs_provider_free(struct ibs_provider *p)
{
    if (!p)
        return;
    if (p->ops && p->ops->free)
        p->ops->free(p->self);
    free(p);
}
