/*
 * The emulator's call pipeline and its provider table.
 *
 * Every call runs under the emulator mutex and inside one SQLite
 * transaction:
 *
 *   1. a new request id (UUID v4) and the clock reading;
 *   2. the operation is looked up in the API model and in the handler
 *      table below;
 *   3. the request is validated against the operation's input shape
 *      (api/ibs_api_validate): types, required members, lengths, patterns,
 *      ranges (maxResults 1..25), enums; the first problem becomes the
 *      validation error the operation documents, naming the member;
 *   4. for operations with an idempotency token, a clientToken seen before
 *      for the same operation replays the stored response when the other
 *      parameters hash the same, else IdempotentParameterMismatchException;
 *   5. the handler runs; on success the response is stored under the client
 *      token, requestId and clientToken are added where the output shape has
 *      them, and the transaction commits. Any failure rolls back, so a failed
 *      call changes nothing.
 *
 * AWS errors carry the code, the HTTP status from the API reference
 * (ibs_api_error_status), a message and the request id. Failures that are
 * not the caller's fault (SQLite, memory) are ServiceException (500).
 */
#include "providers/emulator/internal.h"

#include "util/diag.h"
#include "util/error.h"
#include "util/json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct handler {
    const char *operation;
    int (*fn)(struct ibs_emulator_req *req, struct ibs_value **out);
    enum ibs_emulator_kind_id kind;
};

/* Sorted by operation name (bsearch). */
static const struct handler handlers[] = {
    {"CreateComponent", ibs_emulator_op_create, IBS_EMU_COMPONENT},
    {"CreateContainerRecipe", ibs_emulator_op_create, IBS_EMU_CONTAINER_RECIPE},
    {"CreateDistributionConfiguration", ibs_emulator_op_create, IBS_EMU_DIST},
    {"CreateImage", ibs_emulator_op_create_image, IBS_EMU_IMAGE},
    {"CreateImagePipeline", ibs_emulator_op_create, IBS_EMU_PIPELINE},
    {"CreateImageRecipe", ibs_emulator_op_create, IBS_EMU_IMAGE_RECIPE},
    {"CreateInfrastructureConfiguration", ibs_emulator_op_create, IBS_EMU_INFRA},
    {"CreateLifecyclePolicy", ibs_emulator_op_create, IBS_EMU_LIFECYCLE},
    {"CreateWorkflow", ibs_emulator_op_create, IBS_EMU_WORKFLOW},
    {"DeleteComponent", ibs_emulator_op_delete, IBS_EMU_COMPONENT},
    {"DeleteContainerRecipe", ibs_emulator_op_delete, IBS_EMU_CONTAINER_RECIPE},
    {"DeleteDistributionConfiguration", ibs_emulator_op_delete, IBS_EMU_DIST},
    {"DeleteImage", ibs_emulator_op_delete, IBS_EMU_IMAGE},
    {"DeleteImagePipeline", ibs_emulator_op_delete, IBS_EMU_PIPELINE},
    {"DeleteImageRecipe", ibs_emulator_op_delete, IBS_EMU_IMAGE_RECIPE},
    {"DeleteInfrastructureConfiguration", ibs_emulator_op_delete, IBS_EMU_INFRA},
    {"DeleteLifecyclePolicy", ibs_emulator_op_delete, IBS_EMU_LIFECYCLE},
    {"DeleteWorkflow", ibs_emulator_op_delete, IBS_EMU_WORKFLOW},
    {"GetComponent", ibs_emulator_op_get, IBS_EMU_COMPONENT},
    {"GetComponentPolicy", ibs_emulator_op_get_policy, IBS_EMU_COMPONENT},
    {"GetContainerRecipe", ibs_emulator_op_get, IBS_EMU_CONTAINER_RECIPE},
    {"GetContainerRecipePolicy", ibs_emulator_op_get_policy, IBS_EMU_CONTAINER_RECIPE},
    {"GetDistributionConfiguration", ibs_emulator_op_get, IBS_EMU_DIST},
    {"GetImage", ibs_emulator_op_get, IBS_EMU_IMAGE},
    {"GetImagePipeline", ibs_emulator_op_get, IBS_EMU_PIPELINE},
    {"GetImagePolicy", ibs_emulator_op_get_policy, IBS_EMU_IMAGE},
    {"GetImageRecipe", ibs_emulator_op_get, IBS_EMU_IMAGE_RECIPE},
    {"GetImageRecipePolicy", ibs_emulator_op_get_policy, IBS_EMU_IMAGE_RECIPE},
    {"GetInfrastructureConfiguration", ibs_emulator_op_get, IBS_EMU_INFRA},
    {"GetLifecyclePolicy", ibs_emulator_op_get, IBS_EMU_LIFECYCLE},
    {"GetWorkflow", ibs_emulator_op_get, IBS_EMU_WORKFLOW},
    {"ListComponentBuildVersions", ibs_emulator_op_list_builds, IBS_EMU_COMPONENT},
    {"ListComponents", ibs_emulator_op_list, IBS_EMU_COMPONENT},
    {"ListContainerRecipes", ibs_emulator_op_list, IBS_EMU_CONTAINER_RECIPE},
    {"ListDistributionConfigurations", ibs_emulator_op_list, IBS_EMU_DIST},
    {"ListImageBuildVersions", ibs_emulator_op_list_builds, IBS_EMU_IMAGE},
    {"ListImagePipelineImages", ibs_emulator_op_list_pipeline_images, IBS_EMU_IMAGE},
    {"ListImagePipelines", ibs_emulator_op_list, IBS_EMU_PIPELINE},
    {"ListImageRecipes", ibs_emulator_op_list, IBS_EMU_IMAGE_RECIPE},
    {"ListImages", ibs_emulator_op_list, IBS_EMU_IMAGE},
    {"ListInfrastructureConfigurations", ibs_emulator_op_list, IBS_EMU_INFRA},
    {"ListLifecyclePolicies", ibs_emulator_op_list, IBS_EMU_LIFECYCLE},
    {"ListTagsForResource", ibs_emulator_op_list_tags, IBS_EMU_NO_KIND},
    {"ListWorkflowBuildVersions", ibs_emulator_op_list_builds, IBS_EMU_WORKFLOW},
    {"ListWorkflows", ibs_emulator_op_list, IBS_EMU_WORKFLOW},
    {"PutComponentPolicy", ibs_emulator_op_put_policy, IBS_EMU_COMPONENT},
    {"PutContainerRecipePolicy", ibs_emulator_op_put_policy, IBS_EMU_CONTAINER_RECIPE},
    {"PutImagePolicy", ibs_emulator_op_put_policy, IBS_EMU_IMAGE},
    {"PutImageRecipePolicy", ibs_emulator_op_put_policy, IBS_EMU_IMAGE_RECIPE},
    {"StartImagePipelineExecution", ibs_emulator_op_start_pipeline, IBS_EMU_IMAGE},
    {"TagResource", ibs_emulator_op_tag, IBS_EMU_NO_KIND},
    {"UntagResource", ibs_emulator_op_untag, IBS_EMU_NO_KIND},
    {"UpdateDistributionConfiguration", ibs_emulator_op_update, IBS_EMU_DIST},
    {"UpdateImagePipeline", ibs_emulator_op_update, IBS_EMU_PIPELINE},
    {"UpdateInfrastructureConfiguration", ibs_emulator_op_update, IBS_EMU_INFRA},
    {"UpdateLifecyclePolicy", ibs_emulator_op_update, IBS_EMU_LIFECYCLE},
};

static int cmp_handler(const void *key, const void *elem)
{
    return strcmp(key, ((const struct handler *)elem)->operation);
}

static const struct handler *find_handler(const char *operation)
{
    return bsearch(operation, handlers, sizeof(handlers) / sizeof(handlers[0]), sizeof(handlers[0]),
                   cmp_handler);
}

/* AWS error code -> enum ibs_error_code, for callers that branch on the
 * kind of failure without parsing AWS codes. */
static const struct {
    const char *aws_code;
    int code;
} error_codes[] = {
    {"ResourceNotFoundException", IBS_ENOTFOUND},
    {"ResourceAlreadyExistsException", IBS_EEXISTS},
    {"ResourceInUseException", IBS_ECONFLICT},
    {"IdempotentParameterMismatchException", IBS_ECONFLICT},
    {"ResourceDependencyException", IBS_EDEPENDENCY},
    {"CallRateLimitExceededException", IBS_ETHROTTLED},
    {"ThrottlingException", IBS_ETHROTTLED},
    {"ForbiddenException", IBS_EAUTH},
    {"AccessDeniedException", IBS_EAUTH},
    {"ServiceException", IBS_ESERVICE},
    {"ServiceUnavailableException", IBS_ESERVICE},
    {"ServiceQuotaExceededException", IBS_ECONFLICT},
    {"UnknownOperationException", IBS_EUNSUPPORTED},
};

int ibs_emulator_error_code(const char *aws_code)
{
    for (size_t i = 0; i < sizeof(error_codes) / sizeof(error_codes[0]); i++)
        if (strcmp(error_codes[i].aws_code, aws_code) == 0)
            return error_codes[i].code;
    /* InvalidRequest, InvalidParameter*, InvalidPaginationToken,
     * InvalidVersionNumber, Client: all caller mistakes. */
    return IBS_EINVALID;
}

int ibs_emulator_fail(struct ibs_emulator_req *req, const char *aws_code, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n >= 0 && (msg = malloc((size_t)n + 1)) != NULL) {
        va_start(ap, fmt);
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    if (!msg)
        return ibs_error_oom();
    free(req->message);
    req->message = msg;
    req->aws_code = aws_code;
    return ibs_emulator_error_code(aws_code);
}

bool ibs_emulator_op_documents(const struct ibs_api_operation *op, const char *aws_code)
{
    for (const struct ibs_api_error *e = op->errors; e && e->code; e++)
        if (strcmp(e->code, aws_code) == 0)
            return true;
    return false;
}

const char *ibs_emulator_validation_error(const struct ibs_api_operation *op)
{
    /* The Put*Policy operations document InvalidParameterValueException and
     * the tagging operations InvalidParameterException; everything else
     * reports bad parameters as InvalidRequestException. */
    if (ibs_emulator_op_documents(op, "InvalidParameterValueException"))
        return "InvalidParameterValueException";
    if (!ibs_emulator_op_documents(op, "InvalidRequestException") &&
        ibs_emulator_op_documents(op, "InvalidParameterException"))
        return "InvalidParameterException";
    return "InvalidRequestException";
}

static int64_t now_ms(const struct ibs_emulator *emu)
{
    struct timespec ts;

    if (emu->clock_ms)
        return emu->clock_ms(emu->clock_ctx);
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* mkdir -p: creates `dir` and its missing parents. */
static int make_dirs(const char *dir)
{
    char *copy = strdup(dir);
    int rc = 0;

    if (!copy)
        return ibs_error_oom();
    for (char *p = copy + 1; *p && !rc; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0700) != 0 && errno != EEXIST)
            rc = ibs_error_set(IBS_EIO, "%s: cannot create directory: %s", copy, strerror(errno));
        *p = '/';
    }
    if (!rc && mkdir(copy, 0700) != 0 && errno != EEXIST)
        rc = ibs_error_set(IBS_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
    free(copy);
    return rc;
}

int ibs_emulator_open(struct ibs_emulator **out, const struct ibs_emulator_options *opts)
{
    struct ibs_emulator *emu = NULL;
    struct ibs_buf path = IBS_BUF_INIT;
    int rc = 0;

    *out = NULL;
    if (!opts || !opts->data_dir || !*opts->data_dir)
        return ibs_error_set(IBS_EINVALID, "emulator: no data directory given");
    if (opts->image_build_ms < 0)
        return ibs_error_set(IBS_EINVALID, "emulator: image build time must not be negative");
    if ((rc = make_dirs(opts->data_dir)))
        return rc;
    emu = calloc(1, sizeof(*emu));
    if (!emu)
        return ibs_error_oom();
    if (pthread_mutex_init(&emu->lock, NULL) != 0) {
        free(emu);
        return ibs_error_set(IBS_ERROR, "emulator: cannot create mutex");
    }
    emu->image_build_ms = opts->image_build_ms;
    emu->clock_ms = opts->clock_ms;
    emu->clock_ctx = opts->clock_ctx;
    ibs_buf_printf(&path, "%s/imagebuilder.db", opts->data_dir);
    if (!(emu->db_path = ibs_buf_detach(&path))) {
        rc = IBS_ENOMEM;
        goto done;
    }
    if ((rc = ibs_emulator_store_open(emu, opts->region, opts->account)))
        goto done;
    ibs_buf_printf(&path, "arn:aws:imagebuilder:%s:%s:", emu->region, emu->account);
    if (!(emu->arn_prefix = ibs_buf_detach(&path))) {
        rc = IBS_ENOMEM;
        goto done;
    }
    *out = emu;
    emu = NULL;
done:
    ibs_buf_release(&path);
    ibs_emulator_free(emu);
    return rc;
}

void ibs_emulator_free(struct ibs_emulator *emu)
{
    if (!emu)
        return;
    ibs_emulator_store_close(emu);
    pthread_mutex_destroy(&emu->lock);
    free(emu->db_path);
    free(emu->region);
    free(emu->account);
    free(emu->arn_prefix);
    free(emu);
}

const char *ibs_emulator_region(const struct ibs_emulator *emu)
{
    return emu->region;
}

const char *ibs_emulator_account(const struct ibs_emulator *emu)
{
    return emu->account;
}

/* Validation against the operation's input shape; the first problem (in
 * document order) is reported, as the service reports one at a time, in
 * the service's words: "The value supplied for parameter '<member>' is not
 * valid." followed by what is wrong. */
static int validate(struct ibs_emulator_req *req)
{
    static const char missing[] = "missing required member \"";
    struct ibs_diags diags;
    struct ibs_buf member = IBS_BUF_INIT;
    const struct ibs_diag *d;
    const char *path, *msg;
    int rc = 0;

    ibs_diag_init(&diags);
    if (!req->op->input)
        goto done;
    rc = ibs_api_validate(&diags, req->input, req->op->input, "", NULL);
    if (rc == 0 || rc == IBS_ENOMEM)
        goto done;
    if (diags.count == 0) {
        rc = ibs_emulator_fail(req, ibs_emulator_validation_error(req->op),
                               "The request is not valid.");
        goto done;
    }
    d = &diags.items[0];
    path = d->path ? d->path : "";
    while (*path == '.')
        path++;
    msg = d->message;
    ibs_buf_puts(&member, path);
    /* A missing member is reported on its parent; name the member itself. */
    if (strncmp(msg, missing, sizeof(missing) - 1) == 0) {
        const char *name = msg + sizeof(missing) - 1;
        const char *end = strchr(name, '"');
        if (member.size)
            ibs_buf_putc(&member, '.');
        ibs_buf_put(&member, name, end ? (size_t)(end - name) : strlen(name));
        msg = "The member is required";
    }
    if ((rc = ibs_buf_oom(&member)))
        goto done;
    rc = ibs_emulator_fail(req, ibs_emulator_validation_error(req->op),
                           "The value supplied for parameter '%s' is not valid: %s.",
                           member.size ? member.ptr : "(request)", msg);
done:
    ibs_buf_release(&member);
    ibs_diag_release(&diags);
    return rc;
}

/* The idempotency token member of the operation's input, if any. */
static const char *token_member(const struct ibs_api_operation *op)
{
    const struct ibs_api_shape *in = op->input;

    for (size_t i = 0; in && i < in->nmembers; i++)
        if (in->members[i].idempotency_token)
            return in->members[i].name;
    return NULL;
}

static const char *const hash_skip[] = {"clientToken", NULL};

/*
 * Looks up the client token and computes the request hash into `hash`.
 * Returns 0 with *out set to the stored response for a replay, or with *out
 * NULL to go ahead (`hash` then is to be stored under the token); or a
 * negative error.
 */
static int idempotency_check(struct ibs_emulator_req *req, const char *token, char *hash,
                             struct ibs_value **out)
{
    char *stored_hash = NULL, *stored_response = NULL;
    int rc;

    if ((rc = ibs_emulator_request_hash(hash, req->input, hash_skip)))
        return rc;
    rc = ibs_emulator_store_token_get(&stored_hash, &stored_response, req->emu, token,
                                      req->op->name);
    if (rc == IBS_ENOTFOUND) {
        rc = 0;
        goto done;
    }
    if (rc)
        goto done;
    if (strcmp(stored_hash, hash) != 0) {
        rc = ibs_emulator_fail(req, "IdempotentParameterMismatchException",
                               "The client token '%s' was already used with different "
                               "parameters for %s.",
                               token, req->op->name);
        goto done;
    }
    rc = ibs_json_parse(out, stored_response, strlen(stored_response));
done:
    free(stored_hash);
    free(stored_response);
    return rc;
}

static int finish_response(struct ibs_emulator_req *req, struct ibs_value *resp)
{
    const char *token = ibs_value_map_get_str(req->input, "clientToken");
    int rc = 0;

    if (ibs_api_member_find(req->op->output, "requestId"))
        rc = ibs_emulator_set_str(resp, "requestId", req->request_id);
    if (!rc && token && ibs_api_member_find(req->op->output, "clientToken"))
        rc = ibs_emulator_set_str(resp, "clientToken", token);
    return rc;
}

static int run(struct ibs_emulator_req *req, const struct handler *h, struct ibs_value **out)
{
    const char *token_name = token_member(req->op);
    const char *token = token_name ? ibs_value_map_get_str(req->input, token_name) : NULL;
    char hash[65] = "";
    char *json = NULL;
    struct ibs_value *resp = NULL;
    int rc;

    if ((rc = ibs_emulator_store_begin(req->emu)))
        return rc;
    if (token && (rc = idempotency_check(req, token, hash, &resp)) < 0)
        goto done;
    if (!resp) {
        /* Not a replay: perform the operation, and remember the answer
         * under the client token. */
        if ((rc = h->fn(req, &resp)))
            goto done;
        if (token && (rc = ibs_emulator_to_json(&json, resp, 0)))
            goto done;
        if (token && (rc = ibs_emulator_store_token_put(req->emu, token, req->op->name, hash, json,
                                                        req->now_ms)))
            goto done;
    }
    if ((rc = finish_response(req, resp)))
        goto done;
    rc = ibs_emulator_store_commit(req->emu);
done:
    if (rc) {
        ibs_emulator_store_rollback(req->emu);
        ibs_value_free(resp);
        resp = NULL;
    }
    free(json);
    *out = resp;
    return rc;
}

static int fill_error(struct ibs_provider_error *err, int code, const char *aws_code,
                      const char *message, const char *request_id)
{
    ibs_provider_error_release(err);
    err->code = code;
    err->status = ibs_api_error_status(aws_code);
    err->attempts = 1;
    err->aws_code = strdup(aws_code);
    err->message = strdup(message);
    err->request_id = strdup(request_id);
    if (!err->aws_code || !err->message || !err->request_id)
        return ibs_error_oom();
    return 0;
}

int ibs_emulator_call(struct ibs_emulator *emu, struct ibs_value **out,
                      struct ibs_provider_error *err, const char *operation,
                      const struct ibs_value *input)
{
    return ibs_emulator_serve(emu, out, NULL, err, operation, input);
}

int ibs_emulator_serve(struct ibs_emulator *emu, struct ibs_value **out, char *out_request_id,
                       struct ibs_provider_error *err, const char *operation,
                       const struct ibs_value *input)
{
    struct ibs_emulator_req req;
    struct ibs_value *empty = NULL;
    const struct handler *h;
    const char *aws_code;
    char *message = NULL;
    int rc;

    *out = NULL;
    memset(&req, 0, sizeof(req));
    req.emu = emu;
    req.kind = IBS_EMU_NO_KIND;
    if (out_request_id)
        out_request_id[0] = '\0';
    if (!input) {
        if (!(empty = ibs_value_new_map()))
            return IBS_ENOMEM;
        input = empty;
    }
    req.input = input;
    pthread_mutex_lock(&emu->lock);
    req.now_ms = now_ms(emu);
    if ((rc = ibs_emulator_uuid(req.request_id, sizeof(req.request_id))))
        goto done;
    req.op = operation ? ibs_api_operation_find(operation) : NULL;
    if (!req.op) {
        rc = ibs_emulator_fail(&req, "UnknownOperationException",
                               "The operation '%s' is not part of the Image Builder API.",
                               operation ? operation : "(null)");
        goto done;
    }
    h = find_handler(operation);
    if (!h) {
        rc = ibs_emulator_fail(&req, "InvalidRequestException",
                               "The operation %s is not supported by the emulator.", operation);
        goto done;
    }
    req.kind = h->kind;
    if (input->type != IBS_VALUE_MAP) {
        rc = ibs_emulator_fail(&req, ibs_emulator_validation_error(req.op),
                               "The request body must be a JSON object.");
        goto done;
    }
    if ((rc = validate(&req)))
        goto done;
    rc = run(&req, h, out);
done:
    pthread_mutex_unlock(&emu->lock);
    if (rc) {
        if (req.aws_code) {
            aws_code = req.aws_code;
            message = req.message;
            req.message = NULL;
        } else {
            aws_code = "ServiceException";
            message = strdup(ibs_error_last()->message);
            rc = IBS_ESERVICE;
        }
        if (err)
            fill_error(err, rc, aws_code, message ? message : "", req.request_id);
        ibs_error_set(rc, "%s: %s", aws_code, message ? message : "");
    }
    if (out_request_id)
        memcpy(out_request_id, req.request_id, sizeof(req.request_id));
    free(message);
    free(req.message);
    ibs_value_free(empty);
    return rc;
}

/* The provider table: the engine in-process, for `--local`. */
struct emulator_provider {
    struct ibs_emulator *emu;
    bool owned;
};

static int provider_call(void *self, struct ibs_value **out, struct ibs_provider_error *err,
                         const char *operation, const struct ibs_value *input)
{
    struct emulator_provider *p = self;
    return ibs_emulator_call(p->emu, out, err, operation, input);
}

static void provider_free(void *self)
{
    struct emulator_provider *p = self;
    if (!p)
        return;
    if (p->owned)
        ibs_emulator_free(p->emu);
    free(p);
}

static const struct ibs_provider_ops emulator_ops = {
    IBS_PROVIDER_VERSION,
    "emulator",
    provider_call,
    provider_free,
};

int ibs_emulator_provider_new(struct ibs_provider **out, struct ibs_emulator *emu, bool owned)
{
    struct ibs_provider *p = NULL;
    struct emulator_provider *self = NULL;

    *out = NULL;
    p = calloc(1, sizeof(*p));
    self = calloc(1, sizeof(*self));
    if (!p || !self) {
        free(p);
        free(self);
        if (owned)
            ibs_emulator_free(emu);
        return ibs_error_oom();
    }
    self->emu = emu;
    self->owned = owned;
    p->ops = &emulator_ops;
    p->self = self;
    p->region = emu->region;
    p->account = emu->account;
    *out = p;
    return 0;
}
