/*
 * The AWS shared configuration files (~/.aws/config, ~/.aws/credentials) and
 * the client settings ibsync takes from them and from the environment, with
 * the precedence the AWS CLI and SDKs use.
 *
 * File syntax (the subset every SDK agrees on):
 *   - "[section]" headers; in the config file profiles are "[profile NAME]"
 *     (any run of blanks after "profile") and "[default]"; in the
 *     credentials file every section "[NAME]" is a profile. Other config
 *     sections ("[sso-session x]", "[services x]") are kept for lookups.
 *   - "key = value" lines; keys are case-insensitive (stored lower-case),
 *     values are trimmed. A '#' or ';' that starts a line, or that follows
 *     whitespace inside a value, starts a comment (as in SDKs for Java, Go,
 *     JavaScript and Rust; secret keys never contain whitespace).
 *   - An indented line continues the previous value (joined with '\n'),
 *     unless that value is empty: then the indented "key = value" lines form
 *     a sub-section ("s3 =\n  max_concurrent_requests = 20").
 *   - Sections with the same name are merged; a later key wins. When the
 *     config file has both "[profile default]" and "[default]", only the
 *     former counts.
 * In a profile, a key of the credentials file wins over the same key of the
 * config file.
 */
#ifndef IBS_PROVIDERS_AWS_CONFIG_FILE_H
#define IBS_PROVIDERS_AWS_CONFIG_FILE_H

#include "util/vec.h"

#include <stdbool.h>
#include <stddef.h>

/* ---- one parsed file --------------------------------------------------- */

struct ibs_aws_config_prop {
    char *key;   /* lower-case */
    char *value; /* trimmed; "" for a sub-section's parent */
    unsigned line;
    struct ibs_vec sub; /* struct ibs_aws_config_prop *: the indented sub-section */
};

struct ibs_aws_config_section {
    char *type; /* first word of a two-word header ("profile", "services"), else NULL */
    char *name; /* the rest of the header, or the whole one-word header */
    unsigned line;
    struct ibs_vec props; /* struct ibs_aws_config_prop * */
};

struct ibs_aws_config_file {
    char *name;              /* as shown in messages ("~/.aws/config") */
    struct ibs_vec sections; /* struct ibs_aws_config_section * */
};

/*
 * Parses `len` bytes of `text`; `name` (copied) prefixes error messages:
 * "~/.aws/config:12: expected 'key = value'". *out is owned by the caller
 * (ibs_aws_config_file_free). IBS_EINVALID for malformed text.
 */
int ibs_aws_config_file_parse(struct ibs_aws_config_file **out, const char *name, const char *text,
                              size_t len);

/*
 * Reads and parses the file at `path`, naming it `name` (NULL: the path) in
 * messages. Returns IBS_ENOTFOUND when the file does not exist, IBS_EIO when
 * it cannot be read.
 */
int ibs_aws_config_file_load(struct ibs_aws_config_file **out, const char *path, const char *name);

void ibs_aws_config_file_free(struct ibs_aws_config_file *file);

/* ---- the pair of shared files and the selected profile ---------------- */

struct ibs_aws_config_options {
    const char *profile; /* --profile; NULL: AWS_PROFILE, AWS_DEFAULT_PROFILE, "default" */
    const char *region;  /* --region, or NULL */
    /* Service id for endpoint_url lookups ("imagebuilder", "sts"); may be NULL. */
    const char *service;
    /* Environment lookup (tests inject one); NULL: getenv(). Values are
     * copied before the call returns; "" counts as unset. */
    const char *(*getenv)(void *ctx, const char *name);
    void *env_ctx;
    const char *home;             /* NULL: $HOME */
    const char *config_file;      /* NULL: $AWS_CONFIG_FILE, else ~/.aws/config */
    const char *credentials_file; /* NULL: $AWS_SHARED_CREDENTIALS_FILE, else ~/.aws/credentials */
};

struct ibs_aws_shared_config {
    char *profile; /* the selected profile */
    const char
        *profile_source; /* static: "--profile", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "default" */
    char *home;          /* NULL when unknown */
    char *config_path;   /* NULL when neither given nor derivable from home */
    char *credentials_path;
    char *config_name; /* display names: "~/..." for paths under home */
    char *credentials_name;
    struct ibs_aws_config_file *config;      /* NULL when the file does not exist */
    struct ibs_aws_config_file *credentials; /* NULL when the file does not exist */
};

/*
 * A value found in a profile, borrowed from the loaded files.
 */
struct ibs_aws_config_ref {
    const char *value;
    const char *file; /* display name of the file */
    unsigned line;
};

/*
 * The environment variable `name` through opts->getenv (or getenv()), NULL
 * when unset or empty. `opts` may be NULL. The pointer is the lookup
 * function's: copy it before calling into other code.
 */
const char *ibs_aws_config_getenv(const struct ibs_aws_config_options *opts, const char *name);

/*
 * Selects the profile and loads both files. Missing files are not an error
 * (the file pointer stays NULL); a malformed one is (IBS_EINVALID, with file
 * and line). A profile chosen by --profile or AWS_PROFILE that neither file
 * defines is IBS_ENOTFOUND. *out needs no initialisation; release it with
 * ibs_aws_config_release() (also after a failure).
 */
int ibs_aws_config_load(struct ibs_aws_shared_config *out,
                        const struct ibs_aws_config_options *opts);

void ibs_aws_config_release(struct ibs_aws_shared_config *cfg);

/* Lookups accept a NULL `cfg` (no files: nothing is found). */

/* Whether either file defines `profile`. */
bool ibs_aws_config_has_profile(const struct ibs_aws_shared_config *cfg, const char *profile);

/*
 * Looks `key` up in `profile`: the credentials file first, then the config
 * file. Returns true and fills *out (borrowed) when found.
 */
bool ibs_aws_config_find(struct ibs_aws_config_ref *out, const struct ibs_aws_shared_config *cfg,
                         const char *profile, const char *key);

/* The value of `key` in `profile`, borrowed, or NULL. */
const char *ibs_aws_config_get(const struct ibs_aws_shared_config *cfg, const char *profile,
                               const char *key);

/*
 * Looks `key` up in the `service` block of the "[services NAME]" section
 * that the profile's `services` setting names (config file only).
 */
bool ibs_aws_config_find_service(struct ibs_aws_config_ref *out,
                                 const struct ibs_aws_shared_config *cfg, const char *profile,
                                 const char *service, const char *key);

/*
 * The endpoint URL configured for `service` (e.g. "sts"), in the SDKs'
 * order: AWS_ENDPOINT_URL_<SERVICE>, the profile's services block,
 * AWS_ENDPOINT_URL, the profile's endpoint_url; none when
 * AWS_IGNORE_CONFIGURED_ENDPOINT_URLS / ignore_configured_endpoint_urls is
 * true. `cfg` may be NULL (environment only). *out is a new string (caller
 * frees) or NULL when none is set.
 */
int ibs_aws_config_endpoint(char **out, const struct ibs_aws_shared_config *cfg,
                            const struct ibs_aws_config_options *opts, const char *service);

/*
 * A copy of `path` with a leading "~/" replaced by `home` (kept as is when
 * `home` is NULL). Caller frees; NULL when out of memory (error set).
 */
char *ibs_aws_config_expand_path(const char *path, const char *home);

/* ---- resolved client settings ----------------------------------------- */

struct ibs_aws_settings {
    char *profile;
    char *region;              /* NULL when no source names one */
    const char *region_source; /* static: "--region", "AWS_REGION", "AWS_DEFAULT_REGION",
                                  "profile", or NULL */
    char *endpoint_url;        /* for opts->service; NULL: the service's default endpoint */
    bool use_fips_endpoint;
    bool use_dualstack_endpoint;
    unsigned max_attempts; /* 0 when not configured */
    char *retry_mode;      /* "standard", "adaptive", "legacy", or NULL */
    char *ca_bundle;       /* AWS_CA_BUNDLE or the profile's ca_bundle; NULL: system store */
};

/*
 * Resolves the settings for opts->profile and opts->service:
 *   region        --region > AWS_REGION > AWS_DEFAULT_REGION > profile region
 *   endpoint_url  see ibs_aws_config_endpoint()
 *   use_fips_endpoint, use_dualstack_endpoint, max_attempts, retry_mode,
 *   ca_bundle     AWS_USE_FIPS_ENDPOINT, AWS_USE_DUALSTACK_ENDPOINT,
 *                 AWS_MAX_ATTEMPTS, AWS_RETRY_MODE, AWS_CA_BUNDLE > profile
 * Invalid values are IBS_EINVALID naming the variable or the file, line and
 * profile. *out needs no initialisation; release it with
 * ibs_aws_config_settings_release() (also after a failure).
 */
int ibs_aws_config_resolve(struct ibs_aws_settings *out, const struct ibs_aws_config_options *opts);

/* Same, from files already loaded with ibs_aws_config_load(). */
int ibs_aws_config_settings(struct ibs_aws_settings *out, const struct ibs_aws_shared_config *cfg,
                            const struct ibs_aws_config_options *opts);

void ibs_aws_config_settings_release(struct ibs_aws_settings *s);

#endif
