/* Provider selection for commands; see provider.h. */
#include "cmd/provider.h"

#include "providers/aws/client.h"
#include "providers/aws/config_file.h"
#include "providers/aws/credentials.h"
#include "providers/emulator/emulator.h"
#include "util/buf.h"
#include "util/error.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ibs_cmd_provider_option(struct ibs_cmd_provider_args *args, int opt, const char *arg)
{
    switch (opt) {
    case 0x1101:
        args->local = true;
        args->local_dir = arg;
        return 1;
    case 0x1102:
        args->endpoint = arg;
        return 1;
    case 0x1103:
        args->region = arg;
        return 1;
    case 0x1104:
        args->profile = arg;
        return 1;
    case 0x1105:
        args->max_attempts = arg;
        return 1;
    case 0x1106:
        args->debug = true;
        return 1;
    default:
        return 0;
    }
}

static const char *pick_region(const struct ibs_cmd_provider_args *args, const char *stack_region)
{
    const char *r = args->region;
    if (!r || !*r)
        r = stack_region;
    if (!r || !*r)
        r = getenv("AWS_REGION");
    if (!r || !*r)
        r = getenv("AWS_DEFAULT_REGION");
    return r && *r ? r : NULL;
}

static int open_local(struct ibs_provider **out, const struct ibs_cmd_provider_args *args,
                      const char *region, const char *state_dir)
{
    struct ibs_emulator_options eo;
    struct ibs_emulator *emu = NULL;
    struct ibs_buf dir = IBS_BUF_INIT;
    int rc;

    if (!region)
        region = "us-east-1";
    if (args->local_dir)
        ibs_buf_puts(&dir, args->local_dir);
    else
        ibs_buf_printf(&dir, "%s/local/%s", state_dir ? state_dir : ".ibsync", region);
    if ((rc = ibs_buf_oom(&dir)))
        goto done;
    memset(&eo, 0, sizeof(eo));
    eo.data_dir = dir.ptr;
    eo.region = region;
    if ((rc = ibs_emulator_open(&emu, &eo))) {
        ibs_error_prefix("local account in %s", dir.ptr);
        goto done;
    }
    rc = ibs_emulator_provider_new(out, emu, true);
done:
    ibs_buf_release(&dir);
    return rc;
}

static void debug_log(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "ibsync: debug: %s\n", line);
}

static void chain_free(void *ctx)
{
    ibs_aws_credentials_chain_free(ctx);
}

/* AWS (or an Image Builder endpoint such as `ibsync emulator`): the shared
 * config and credential chain the AWS CLI users know. The Stack's region
 * counts as --region when none is given. */
static int open_aws(struct ibs_provider **out, const struct ibs_cmd_provider_args *args,
                    const char *stack_region)
{
    struct ibs_aws_config_options co;
    struct ibs_aws_settings st;
    struct ibs_aws_chain_options cho;
    struct ibs_aws_credentials_chain *chain = NULL;
    struct ibs_aws_config ac;
    int rc;

    memset(&co, 0, sizeof(co));
    memset(&st, 0, sizeof(st));
    co.profile = args->profile;
    co.region = args->region && *args->region ? args->region : stack_region;
    co.service = "imagebuilder";
    if ((rc = ibs_aws_config_resolve(&st, &co)))
        goto done;
    memset(&ac, 0, sizeof(ac));
    if (args->max_attempts) {
        char *end;
        long n = strtol(args->max_attempts, &end, 10);
        if (*end || n < 1 || n > 100) {
            rc = ibs_error_set(IBS_EINVALID, "--max-attempts must be 1 to 100, not \"%s\"",
                               args->max_attempts);
            goto done;
        }
        ac.max_attempts = (unsigned)n;
    } else {
        ac.max_attempts = st.max_attempts;
    }
    memset(&cho, 0, sizeof(cho));
    cho.config = co;
    cho.config.region = st.region;
    cho.http.ca_bundle = st.ca_bundle;
    cho.http.log = args->debug ? debug_log : NULL;
    if ((rc = ibs_aws_credentials_chain_new(&chain, &cho)))
        goto done;
    ac.region = st.region;
    ac.endpoint_url = args->endpoint ? args->endpoint : st.endpoint_url;
    ac.use_fips = st.use_fips_endpoint ? 1 : -1;
    ac.use_dualstack = st.use_dualstack_endpoint ? 1 : -1;
    ac.http.ca_bundle = st.ca_bundle;
    ac.http.log = args->debug ? debug_log : NULL;
    ac.retry_mode = st.retry_mode;
    ac.get_credentials = ibs_aws_credentials_chain_callback;
    ac.credentials_ctx = chain;
    ac.credentials_free = chain_free;
    chain = NULL; /* owned by the provider from here on, even on failure */
    rc = ibs_aws_provider_new(out, &ac);
done:
    ibs_aws_credentials_chain_free(chain);
    ibs_aws_config_settings_release(&st);
    return rc;
}

int ibs_cmd_provider_open(struct ibs_provider **out, const struct ibs_cmd_provider_args *args,
                          const char *stack_region, const char *state_dir)
{
    *out = NULL;
    if (args->local)
        return open_local(out, args, pick_region(args, stack_region), state_dir);
    return open_aws(out, args, stack_region);
}

/* A provider that counts calls and delegates to the one it wraps. Retries
 * and throttles come from the AWS client's own counters. */
struct counting {
    struct ibs_provider *inner;
    pthread_mutex_t lock;
    unsigned long calls;
};

static int counting_call(void *self, struct ibs_value **out, struct ibs_provider_error *err,
                         const char *operation, const struct ibs_value *input)
{
    struct counting *c = self;
    pthread_mutex_lock(&c->lock);
    c->calls++;
    pthread_mutex_unlock(&c->lock);
    return c->inner->ops->call(c->inner->self, out, err, operation, input);
}

static void counting_free(void *self)
{
    struct counting *c = self;
    ibs_provider_free(c->inner);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static const struct ibs_provider_ops counting_ops = {IBS_PROVIDER_VERSION, "counting",
                                                     counting_call, counting_free};

int ibs_cmd_provider_count(struct ibs_provider **p)
{
    struct counting *c = calloc(1, sizeof(*c));
    struct ibs_provider *w = calloc(1, sizeof(*w));

    if (!c || !w) {
        free(c);
        free(w);
        return ibs_error_oom();
    }
    c->inner = *p;
    pthread_mutex_init(&c->lock, NULL);
    w->ops = &counting_ops;
    w->self = c;
    w->region = (*p)->region;
    w->account = (*p)->account;
    *p = w;
    return 0;
}

void ibs_cmd_provider_stats(struct ibs_cmd_provider_stats *out, const struct ibs_provider *p)
{
    const struct counting *c = p && p->ops == &counting_ops ? p->self : NULL;
    struct ibs_aws_stats aws;

    memset(out, 0, sizeof(*out));
    if (!c)
        return;
    out->calls = c->calls;
    if (ibs_aws_provider_stats(&aws, c->inner) == 0) {
        out->retries = (unsigned long)aws.retries;
        out->throttles = (unsigned long)aws.throttles;
    }
}
