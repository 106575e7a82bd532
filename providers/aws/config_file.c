/*
 * Shared config/credentials files: a line-based INI parser (syntax in
 * config_file.h), profile lookups over the pair of files, and the resolution
 * of client settings (region, endpoint, FIPS/dual-stack, retries, CA bundle)
 * from --options, the environment and the selected profile.
 *
 * Lookups are linear scans: the files have a few dozen sections, and "a
 * later section or key wins" falls out of scanning everything.
 */
#include "providers/aws/config_file.h"

#include "util/buf.h"
#include "util/error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Far above any real shared file; guards against pointing at a device. */
#define MAX_FILE_SIZE (16 * 1024 * 1024)

/* ---- small helpers --------------------------------------------------- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool ascii_ieq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (ascii_lower(*a) != ascii_lower(*b))
            return false;
    return *a == *b;
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && is_blank(**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && is_blank((*s)[*n - 1]))
        (*n)--;
}

static char *dup_range(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p) {
        ibs_error_oom();
        return NULL;
    }
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static char *dup_str(const char *s)
{
    return s ? dup_range(s, strlen(s)) : NULL;
}

/* ---- parsed files ---------------------------------------------------- */

static void prop_free(void *item)
{
    struct ibs_aws_config_prop *p = item;
    if (!p)
        return;
    free(p->key);
    free(p->value);
    ibs_vec_release_with(&p->sub, prop_free);
    free(p);
}

static void section_free(void *item)
{
    struct ibs_aws_config_section *s = item;
    if (!s)
        return;
    free(s->type);
    free(s->name);
    ibs_vec_release_with(&s->props, prop_free);
    free(s);
}

void ibs_aws_config_file_free(struct ibs_aws_config_file *file)
{
    if (!file)
        return;
    free(file->name);
    ibs_vec_release_with(&file->sections, section_free);
    free(file);
}

/* Cuts a value at a '#' or ';' that follows whitespace. */
static void strip_comment(const char *s, size_t *n)
{
    for (size_t i = 1; i < *n; i++) {
        if ((s[i] == '#' || s[i] == ';') && is_blank(s[i - 1])) {
            *n = i;
            return;
        }
    }
}

/* Parses "key = value" into a new property appended to `into`. */
static int parse_property(struct ibs_aws_config_prop **out, struct ibs_vec *into, const char *name,
                          unsigned lineno, const char *s, size_t n)
{
    struct ibs_aws_config_prop *p = NULL;
    const char *eq = memchr(s, '=', n);
    const char *key = s, *value;
    size_t keylen, valuelen;
    int rc = 0;

    if (!eq) {
        rc = ibs_error_set(IBS_EINVALID, "%s:%u: expected 'key = value'", name, lineno);
        goto done;
    }
    keylen = (size_t)(eq - s);
    trim(&key, &keylen);
    if (keylen == 0) {
        rc = ibs_error_set(IBS_EINVALID, "%s:%u: expected 'key = value'", name, lineno);
        goto done;
    }
    value = eq + 1;
    valuelen = (size_t)(s + n - value);
    strip_comment(value, &valuelen);
    trim(&value, &valuelen);

    p = calloc(1, sizeof(*p));
    if (!p) {
        rc = ibs_error_oom();
        goto done;
    }
    ibs_vec_init(&p->sub);
    p->line = lineno;
    p->key = dup_range(key, keylen);
    p->value = dup_range(value, valuelen);
    if (!p->key || !p->value) {
        rc = IBS_ENOMEM;
        goto done;
    }
    for (char *c = p->key; *c; c++)
        *c = ascii_lower(*c);
    rc = ibs_vec_push(into, p);
    if (rc < 0)
        goto done;
    *out = p;
    p = NULL;
done:
    prop_free(p);
    return rc;
}

static int parse_header(struct ibs_aws_config_section **out, struct ibs_aws_config_file *f,
                        unsigned lineno, const char *s, size_t n)
{
    struct ibs_aws_config_section *sec = NULL;
    const char *close = memchr(s, ']', n);
    const char *inner = s + 1, *rest;
    size_t innerlen, restlen, word;
    int rc = 0;

    if (!close) {
        rc = ibs_error_set(IBS_EINVALID, "%s:%u: expected ']' at the end of the section header",
                           f->name, lineno);
        goto done;
    }
    rest = close + 1;
    restlen = (size_t)(s + n - rest);
    trim(&rest, &restlen);
    if (restlen > 0 && rest[0] != '#' && rest[0] != ';') {
        rc = ibs_error_set(IBS_EINVALID, "%s:%u: unexpected text after ']'", f->name, lineno);
        goto done;
    }
    innerlen = (size_t)(close - inner);
    trim(&inner, &innerlen);
    if (innerlen == 0) {
        rc = ibs_error_set(IBS_EINVALID, "%s:%u: empty section name", f->name, lineno);
        goto done;
    }
    sec = calloc(1, sizeof(*sec));
    if (!sec) {
        rc = ibs_error_oom();
        goto done;
    }
    ibs_vec_init(&sec->props);
    sec->line = lineno;
    for (word = 0; word < innerlen && !is_blank(inner[word]); word++)
        ;
    if (word < innerlen) {
        const char *name = inner + word;
        size_t namelen = innerlen - word;
        trim(&name, &namelen);
        sec->type = dup_range(inner, word);
        sec->name = dup_range(name, namelen);
        if (!sec->type || !sec->name) {
            rc = IBS_ENOMEM;
            goto done;
        }
    } else {
        sec->name = dup_range(inner, innerlen);
        if (!sec->name) {
            rc = IBS_ENOMEM;
            goto done;
        }
    }
    rc = ibs_vec_push(&f->sections, sec);
    if (rc < 0)
        goto done;
    *out = sec;
    sec = NULL;
done:
    section_free(sec);
    return rc;
}

/* Appends an indented continuation line to a property's value. */
static int append_continuation(struct ibs_aws_config_prop *p, const char *s, size_t n)
{
    size_t old = strlen(p->value);
    char *v = realloc(p->value, old + 1 + n + 1);
    if (!v)
        return ibs_error_oom();
    v[old] = '\n';
    memcpy(v + old + 1, s, n);
    v[old + 1 + n] = '\0';
    p->value = v;
    return 0;
}

static int parse_text(struct ibs_aws_config_file *f, const char *text, size_t len)
{
    struct ibs_aws_config_section *sec = NULL;
    struct ibs_aws_config_prop *last = NULL;
    unsigned lineno = 0;
    size_t pos = 0;
    int rc = 0;

    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        bool indented;

        pos += n + (nl ? 1 : 0);
        lineno++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (memchr(line, '\0', n)) {
            rc = ibs_error_set(IBS_EINVALID, "%s:%u: unexpected NUL byte", f->name, lineno);
            goto done;
        }
        indented = n > 0 && is_blank(line[0]);
        trim(&line, &n);
        if (n == 0 || line[0] == '#' || line[0] == ';')
            continue;
        if (line[0] == '[') {
            rc = parse_header(&sec, f, lineno, line, n);
            if (rc < 0)
                goto done;
            last = NULL;
            continue;
        }
        if (indented && last) {
            if (last->value[0] == '\0' || last->sub.count > 0) {
                struct ibs_aws_config_prop *sub;
                rc = parse_property(&sub, &last->sub, f->name, lineno, line, n);
            } else {
                rc = append_continuation(last, line, n);
            }
            if (rc < 0)
                goto done;
            continue;
        }
        if (!sec) {
            if (!memchr(line, '=', n))
                rc = ibs_error_set(IBS_EINVALID, "%s:%u: expected 'key = value'", f->name, lineno);
            else
                rc = ibs_error_set(IBS_EINVALID,
                                   "%s:%u: expected a [section] header before 'key = value'",
                                   f->name, lineno);
            goto done;
        }
        rc = parse_property(&last, &sec->props, f->name, lineno, line, n);
        if (rc < 0)
            goto done;
    }
done:
    return rc;
}

int ibs_aws_config_file_parse(struct ibs_aws_config_file **out, const char *name, const char *text,
                              size_t len)
{
    struct ibs_aws_config_file *f = calloc(1, sizeof(*f));
    int rc = 0;

    *out = NULL;
    if (!f) {
        rc = ibs_error_oom();
        goto done;
    }
    ibs_vec_init(&f->sections);
    f->name = dup_str(name ? name : "<config>");
    if (!f->name) {
        rc = IBS_ENOMEM;
        goto done;
    }
    rc = parse_text(f, text, len);
    if (rc < 0)
        goto done;
    *out = f;
    f = NULL;
done:
    ibs_aws_config_file_free(f);
    return rc;
}

int ibs_aws_config_file_load(struct ibs_aws_config_file **out, const char *path, const char *name)
{
    struct ibs_buf text = IBS_BUF_INIT;
    FILE *fp = NULL;
    struct stat st;
    char chunk[8192];
    size_t n;
    int rc = 0;

    *out = NULL;
    if (!name)
        name = path;
    fp = fopen(path, "rb");
    if (!fp) {
        if (errno == ENOENT || errno == ENOTDIR)
            rc = ibs_error_set(IBS_ENOTFOUND, "%s: no such file", name);
        else
            rc = ibs_error_set(IBS_EIO, "%s: %s", name, strerror(errno));
        goto done;
    }
    if (fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = ibs_error_set(IBS_EIO, "%s: is a directory", name);
        goto done;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        if (text.size + n > MAX_FILE_SIZE) {
            rc = ibs_error_set(IBS_EINVALID, "%s: larger than %d bytes", name, MAX_FILE_SIZE);
            goto done;
        }
        rc = ibs_buf_put(&text, chunk, n);
        if (rc < 0)
            goto done;
    }
    if (ferror(fp)) {
        rc = ibs_error_set(IBS_EIO, "%s: read error", name);
        goto done;
    }
    rc = ibs_aws_config_file_parse(out, name, text.ptr, text.size);
done:
    if (fp)
        fclose(fp);
    ibs_buf_release(&text);
    return rc;
}

/* ---- the pair of files ----------------------------------------------- */

const char *ibs_aws_config_getenv(const struct ibs_aws_config_options *opts, const char *name)
{
    const char *v;
    if (opts && opts->getenv)
        v = opts->getenv(opts->env_ctx, name);
    else
        v = getenv(name);
    return v && *v ? v : NULL;
}

char *ibs_aws_config_expand_path(const char *path, const char *home)
{
    struct ibs_buf b = IBS_BUF_INIT;
    if (home && path[0] == '~' && (path[1] == '/' || path[1] == '\0')) {
        ibs_buf_puts(&b, home);
        ibs_buf_puts(&b, path + 1);
    } else {
        ibs_buf_puts(&b, path);
    }
    return ibs_buf_detach(&b);
}

/* "~/.aws/config" for a path under home, else the path itself. */
static char *display_name(const char *path, const char *home)
{
    size_t n = home ? strlen(home) : 0;
    struct ibs_buf b = IBS_BUF_INIT;
    if (n > 1 && strncmp(path, home, n) == 0 && path[n] == '/') {
        ibs_buf_putc(&b, '~');
        ibs_buf_puts(&b, path + n);
    } else {
        ibs_buf_puts(&b, path);
    }
    return ibs_buf_detach(&b);
}

/* Resolves one file's path (option, variable, default under home). */
static int file_path(char **out_path, char **out_name, const struct ibs_aws_config_options *opts,
                     const char *given, const char *var, const char *home, const char *def)
{
    const char *p = given && *given ? given : ibs_aws_config_getenv(opts, var);
    int rc = 0;

    *out_path = NULL;
    *out_name = NULL;
    if (p) {
        *out_path = ibs_aws_config_expand_path(p, home);
    } else if (home) {
        struct ibs_buf b = IBS_BUF_INIT;
        ibs_buf_printf(&b, "%s/%s", home, def);
        *out_path = ibs_buf_detach(&b);
    } else {
        /* No home directory: the default file cannot exist; keep its
         * conventional name for messages. */
        struct ibs_buf b = IBS_BUF_INIT;
        ibs_buf_printf(&b, "~/%s", def);
        *out_name = ibs_buf_detach(&b);
        rc = *out_name ? 0 : IBS_ENOMEM;
        goto done;
    }
    if (!*out_path) {
        rc = IBS_ENOMEM;
        goto done;
    }
    *out_name = display_name(*out_path, home);
    if (!*out_name)
        rc = IBS_ENOMEM;
done:
    return rc;
}

static int load_one(struct ibs_aws_config_file **out, const char *path, const char *name)
{
    int rc;
    *out = NULL;
    if (!path)
        return 0;
    rc = ibs_aws_config_file_load(out, path, name);
    if (rc == IBS_ENOTFOUND) {
        ibs_error_clear();
        rc = 0;
    }
    return rc;
}

static bool header_is(const struct ibs_aws_config_section *sec, const char *type, const char *name)
{
    if (type)
        return sec->type && strcmp(sec->type, type) == 0 && strcmp(sec->name, name) == 0;
    return !sec->type && strcmp(sec->name, name) == 0;
}

/* A credentials-file section is the profile whose name is its whole header. */
static bool credentials_section_is(const struct ibs_aws_config_section *sec, const char *profile)
{
    size_t tl;
    if (!sec->type)
        return strcmp(sec->name, profile) == 0;
    tl = strlen(sec->type);
    return strncmp(profile, sec->type, tl) == 0 && is_blank(profile[tl]) &&
           strcmp(profile + tl + 1, sec->name) == 0;
}

static bool config_has_profile_default(const struct ibs_aws_config_file *f)
{
    for (size_t i = 0; i < f->sections.count; i++)
        if (header_is(f->sections.items[i], "profile", "default"))
            return true;
    return false;
}

static bool config_section_is(const struct ibs_aws_config_section *sec, const char *profile,
                              bool profile_default)
{
    if (header_is(sec, "profile", profile))
        return true;
    /* "[default]" names the default profile unless "[profile default]"
     * exists, which the SDKs prefer. */
    return !profile_default && strcmp(profile, "default") == 0 && header_is(sec, NULL, "default");
}

static bool section_matches(bool is_config, const struct ibs_aws_config_section *sec,
                            const char *profile, bool profile_default)
{
    return is_config ? config_section_is(sec, profile, profile_default)
                     : credentials_section_is(sec, profile);
}

static bool file_has_profile(const struct ibs_aws_config_file *f, bool is_config,
                             const char *profile)
{
    bool pd;
    if (!f)
        return false;
    pd = is_config && config_has_profile_default(f);
    for (size_t i = 0; i < f->sections.count; i++)
        if (section_matches(is_config, f->sections.items[i], profile, pd))
            return true;
    return false;
}

static bool file_find(struct ibs_aws_config_ref *out, const struct ibs_aws_config_file *f,
                      bool is_config, const char *profile, const char *key)
{
    const struct ibs_aws_config_prop *found = NULL;
    bool pd;

    if (!f)
        return false;
    pd = is_config && config_has_profile_default(f);
    for (size_t i = 0; i < f->sections.count; i++) {
        const struct ibs_aws_config_section *sec = f->sections.items[i];
        if (!section_matches(is_config, sec, profile, pd))
            continue;
        for (size_t j = 0; j < sec->props.count; j++) {
            const struct ibs_aws_config_prop *p = sec->props.items[j];
            if (strcmp(p->key, key) == 0)
                found = p;
        }
    }
    if (!found)
        return false;
    out->value = found->value;
    out->file = f->name;
    out->line = found->line;
    return true;
}

bool ibs_aws_config_has_profile(const struct ibs_aws_shared_config *cfg, const char *profile)
{
    return cfg && (file_has_profile(cfg->credentials, false, profile) ||
                   file_has_profile(cfg->config, true, profile));
}

bool ibs_aws_config_find(struct ibs_aws_config_ref *out, const struct ibs_aws_shared_config *cfg,
                         const char *profile, const char *key)
{
    return cfg && (file_find(out, cfg->credentials, false, profile, key) ||
                   file_find(out, cfg->config, true, profile, key));
}

const char *ibs_aws_config_get(const struct ibs_aws_shared_config *cfg, const char *profile,
                               const char *key)
{
    struct ibs_aws_config_ref ref;
    return ibs_aws_config_find(&ref, cfg, profile, key) ? ref.value : NULL;
}

bool ibs_aws_config_find_service(struct ibs_aws_config_ref *out,
                                 const struct ibs_aws_shared_config *cfg, const char *profile,
                                 const char *service, const char *key)
{
    const struct ibs_aws_config_prop *found = NULL;
    const char *block = ibs_aws_config_get(cfg, profile, "services");
    const struct ibs_aws_config_file *f = cfg ? cfg->config : NULL;

    if (!block || !f)
        return false;
    for (size_t i = 0; i < f->sections.count; i++) {
        const struct ibs_aws_config_section *sec = f->sections.items[i];
        if (!header_is(sec, "services", block))
            continue;
        for (size_t j = 0; j < sec->props.count; j++) {
            const struct ibs_aws_config_prop *p = sec->props.items[j];
            if (!ascii_ieq(p->key, service))
                continue;
            for (size_t k = 0; k < p->sub.count; k++) {
                const struct ibs_aws_config_prop *s = p->sub.items[k];
                if (strcmp(s->key, key) == 0)
                    found = s;
            }
        }
    }
    if (!found)
        return false;
    out->value = found->value;
    out->file = f->name;
    out->line = found->line;
    return true;
}

void ibs_aws_config_release(struct ibs_aws_shared_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->profile);
    free(cfg->home);
    free(cfg->config_path);
    free(cfg->credentials_path);
    free(cfg->config_name);
    free(cfg->credentials_name);
    ibs_aws_config_file_free(cfg->config);
    ibs_aws_config_file_free(cfg->credentials);
    memset(cfg, 0, sizeof(*cfg));
}

/* The error for a profile the user asked for and no file defines. */
static int profile_not_found(const struct ibs_aws_shared_config *cfg)
{
    struct ibs_buf msg = IBS_BUF_INIT;
    int rc;

    if (!cfg->config && !cfg->credentials)
        ibs_buf_printf(&msg, "profile \"%s\" (from %s) not found: no %s or %s", cfg->profile,
                       cfg->profile_source, cfg->config_name, cfg->credentials_name);
    else
        ibs_buf_printf(&msg, "profile \"%s\" (from %s) not found in %s or %s", cfg->profile,
                       cfg->profile_source, cfg->config_name, cfg->credentials_name);
    if (cfg->config) {
        for (size_t i = 0; i < cfg->config->sections.count; i++) {
            const struct ibs_aws_config_section *sec = cfg->config->sections.items[i];
            if (header_is(sec, NULL, cfg->profile)) {
                ibs_buf_printf(&msg,
                               " (%s:%u has [%s], but the config file names profiles "
                               "[profile %s])",
                               cfg->config->name, sec->line, cfg->profile, cfg->profile);
                break;
            }
        }
    }
    rc = ibs_buf_oom(&msg);
    if (rc == 0)
        rc = ibs_error_set(IBS_ENOTFOUND, "%s", msg.ptr);
    ibs_buf_release(&msg);
    return rc;
}

int ibs_aws_config_load(struct ibs_aws_shared_config *out,
                        const struct ibs_aws_config_options *opts)
{
    const char *profile, *home;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (opts && opts->profile && *opts->profile) {
        profile = opts->profile;
        out->profile_source = "--profile";
    } else if ((profile = ibs_aws_config_getenv(opts, "AWS_PROFILE")) != NULL) {
        out->profile_source = "AWS_PROFILE";
    } else if ((profile = ibs_aws_config_getenv(opts, "AWS_DEFAULT_PROFILE")) != NULL) {
        out->profile_source = "AWS_DEFAULT_PROFILE";
    } else {
        profile = "default";
        out->profile_source = "default";
    }
    out->profile = dup_str(profile);
    if (!out->profile) {
        rc = IBS_ENOMEM;
        goto done;
    }
    home = opts && opts->home && *opts->home ? opts->home : ibs_aws_config_getenv(opts, "HOME");
    if (home) {
        size_t n = strlen(home);
        while (n > 1 && home[n - 1] == '/')
            n--;
        out->home = dup_range(home, n);
        if (!out->home) {
            rc = IBS_ENOMEM;
            goto done;
        }
    }
    rc = file_path(&out->config_path, &out->config_name, opts, opts ? opts->config_file : NULL,
                   "AWS_CONFIG_FILE", out->home, ".aws/config");
    if (rc < 0)
        goto done;
    rc = file_path(&out->credentials_path, &out->credentials_name, opts,
                   opts ? opts->credentials_file : NULL, "AWS_SHARED_CREDENTIALS_FILE", out->home,
                   ".aws/credentials");
    if (rc < 0)
        goto done;
    rc = load_one(&out->config, out->config_path, out->config_name);
    if (rc < 0)
        goto done;
    rc = load_one(&out->credentials, out->credentials_path, out->credentials_name);
    if (rc < 0)
        goto done;
    if (strcmp(out->profile_source, "default") != 0 && !ibs_aws_config_has_profile(out, profile))
        rc = profile_not_found(out);
done:
    return rc;
}

/* ---- settings -------------------------------------------------------- */

/* A setting's value with where it came from, for messages. */
struct origin {
    const char *value;
    const char *var; /* environment variable, or NULL */
    struct ibs_aws_config_ref ref;
};

static bool lookup(struct origin *out, const struct ibs_aws_shared_config *cfg,
                   const struct ibs_aws_config_options *opts, const char *var, const char *key)
{
    memset(out, 0, sizeof(*out));
    if (var && (out->value = ibs_aws_config_getenv(opts, var)) != NULL) {
        out->var = var;
        return true;
    }
    if (key && cfg && ibs_aws_config_find(&out->ref, cfg, cfg->profile, key) && out->ref.value[0]) {
        out->value = out->ref.value;
        return true;
    }
    out->value = NULL;
    return false;
}

static int invalid(const struct origin *o, const struct ibs_aws_shared_config *cfg, const char *key,
                   const char *expected)
{
    if (o->var)
        return ibs_error_set(IBS_EINVALID, "%s: expected %s, got \"%s\"", o->var, expected,
                             o->value);
    return ibs_error_set(IBS_EINVALID, "%s:%u: profile \"%s\": %s: expected %s, got \"%s\"",
                         o->ref.file, o->ref.line, cfg->profile, key, expected, o->value);
}

static int setting_bool(bool *out, const struct ibs_aws_shared_config *cfg,
                        const struct ibs_aws_config_options *opts, const char *var, const char *key)
{
    struct origin o;
    *out = false;
    if (!lookup(&o, cfg, opts, var, key))
        return 0;
    if (ascii_ieq(o.value, "true"))
        *out = true;
    else if (!ascii_ieq(o.value, "false"))
        return invalid(&o, cfg, key, "true or false");
    return 0;
}

static int setting_string(char **out, const struct ibs_aws_shared_config *cfg,
                          const struct ibs_aws_config_options *opts, const char *var,
                          const char *key)
{
    struct origin o;
    *out = NULL;
    if (!lookup(&o, cfg, opts, var, key))
        return 0;
    *out = dup_str(o.value);
    return *out ? 0 : IBS_ENOMEM;
}

/* Region names are DNS labels; anything else would end up in a host name. */
static bool valid_region(const char *r)
{
    if (!*r || strlen(r) > 64)
        return false;
    for (; *r; r++)
        if (!((*r >= 'a' && *r <= 'z') || (*r >= 'A' && *r <= 'Z') || (*r >= '0' && *r <= '9') ||
              *r == '-'))
            return false;
    return true;
}

static int resolve_region(struct ibs_aws_settings *out, const struct ibs_aws_shared_config *cfg,
                          const struct ibs_aws_config_options *opts)
{
    static const char *const vars[] = {"AWS_REGION", "AWS_DEFAULT_REGION"};
    struct origin o;

    memset(&o, 0, sizeof(o));
    if (opts && opts->region && *opts->region) {
        o.value = opts->region;
        o.var = "--region";
        out->region_source = "--region";
    }
    for (size_t i = 0; !o.value && i < sizeof(vars) / sizeof(vars[0]); i++) {
        if ((o.value = ibs_aws_config_getenv(opts, vars[i])) != NULL) {
            o.var = vars[i];
            out->region_source = vars[i];
        }
    }
    if (!o.value && lookup(&o, cfg, opts, NULL, "region"))
        out->region_source = "profile";
    if (!o.value)
        return 0;
    if (!valid_region(o.value)) {
        out->region_source = NULL;
        return invalid(&o, cfg, "region", "a region name such as us-east-1");
    }
    out->region = dup_str(o.value);
    return out->region ? 0 : IBS_ENOMEM;
}

static int resolve_max_attempts(struct ibs_aws_settings *out,
                                const struct ibs_aws_shared_config *cfg,
                                const struct ibs_aws_config_options *opts)
{
    struct origin o;
    char *end;
    long n;

    if (!lookup(&o, cfg, opts, "AWS_MAX_ATTEMPTS", "max_attempts"))
        return 0;
    errno = 0;
    n = strtol(o.value, &end, 10);
    if (errno || *end || end == o.value || n < 1 || n > 100)
        return invalid(&o, cfg, "max_attempts", "an integer from 1 to 100");
    out->max_attempts = (unsigned)n;
    return 0;
}

static int resolve_retry_mode(struct ibs_aws_settings *out, const struct ibs_aws_shared_config *cfg,
                              const struct ibs_aws_config_options *opts)
{
    static const char *const modes[] = {"standard", "adaptive", "legacy"};
    struct origin o;

    if (!lookup(&o, cfg, opts, "AWS_RETRY_MODE", "retry_mode"))
        return 0;
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        if (ascii_ieq(o.value, modes[i])) {
            out->retry_mode = dup_str(modes[i]);
            return out->retry_mode ? 0 : IBS_ENOMEM;
        }
    }
    return invalid(&o, cfg, "retry_mode", "standard, adaptive or legacy");
}

/* "AWS_ENDPOINT_URL_" + the service id upper-cased, blanks and '-' as '_'. */
static char *service_env_name(const char *service)
{
    struct ibs_buf b = IBS_BUF_INIT;
    ibs_buf_puts(&b, "AWS_ENDPOINT_URL_");
    for (const char *c = service; *c; c++) {
        char u = (*c >= 'a' && *c <= 'z') ? (char)(*c - 'a' + 'A') : *c;
        ibs_buf_putc(&b, (u == ' ' || u == '-') ? '_' : u);
    }
    return ibs_buf_detach(&b);
}

int ibs_aws_config_endpoint(char **out, const struct ibs_aws_shared_config *cfg,
                            const struct ibs_aws_config_options *opts, const char *service)
{
    struct ibs_aws_config_ref ref;
    char *var = NULL;
    const char *v = NULL;
    bool ignore;
    int rc;

    *out = NULL;
    rc = setting_bool(&ignore, cfg, opts, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
                      "ignore_configured_endpoint_urls");
    if (rc < 0 || ignore)
        goto done;
    if (service && *service) {
        var = service_env_name(service);
        if (!var) {
            rc = IBS_ENOMEM;
            goto done;
        }
        v = ibs_aws_config_getenv(opts, var);
        if (!v && cfg &&
            ibs_aws_config_find_service(&ref, cfg, cfg->profile, service, "endpoint_url") &&
            ref.value[0])
            v = ref.value;
    }
    if (!v)
        v = ibs_aws_config_getenv(opts, "AWS_ENDPOINT_URL");
    if (!v && cfg && ibs_aws_config_find(&ref, cfg, cfg->profile, "endpoint_url") && ref.value[0])
        v = ref.value;
    if (v) {
        *out = dup_str(v);
        if (!*out)
            rc = IBS_ENOMEM;
    }
done:
    free(var);
    return rc;
}

void ibs_aws_config_settings_release(struct ibs_aws_settings *s)
{
    if (!s)
        return;
    free(s->profile);
    free(s->region);
    free(s->endpoint_url);
    free(s->retry_mode);
    free(s->ca_bundle);
    memset(s, 0, sizeof(*s));
}

int ibs_aws_config_settings(struct ibs_aws_settings *out, const struct ibs_aws_shared_config *cfg,
                            const struct ibs_aws_config_options *opts)
{
    char *ca = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    out->profile = dup_str(cfg->profile);
    if (!out->profile) {
        rc = IBS_ENOMEM;
        goto done;
    }
    rc = resolve_region(out, cfg, opts);
    if (rc < 0)
        goto done;
    rc = ibs_aws_config_endpoint(&out->endpoint_url, cfg, opts, opts ? opts->service : NULL);
    if (rc < 0)
        goto done;
    rc = setting_bool(&out->use_fips_endpoint, cfg, opts, "AWS_USE_FIPS_ENDPOINT",
                      "use_fips_endpoint");
    if (rc < 0)
        goto done;
    rc = setting_bool(&out->use_dualstack_endpoint, cfg, opts, "AWS_USE_DUALSTACK_ENDPOINT",
                      "use_dualstack_endpoint");
    if (rc < 0)
        goto done;
    rc = resolve_max_attempts(out, cfg, opts);
    if (rc < 0)
        goto done;
    rc = resolve_retry_mode(out, cfg, opts);
    if (rc < 0)
        goto done;
    rc = setting_string(&ca, cfg, opts, "AWS_CA_BUNDLE", "ca_bundle");
    if (rc < 0)
        goto done;
    if (ca) {
        out->ca_bundle = ibs_aws_config_expand_path(ca, cfg->home);
        if (!out->ca_bundle)
            rc = IBS_ENOMEM;
    }
done:
    free(ca);
    return rc;
}

int ibs_aws_config_resolve(struct ibs_aws_settings *out, const struct ibs_aws_config_options *opts)
{
    struct ibs_aws_shared_config cfg;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = ibs_aws_config_load(&cfg, opts);
    if (rc == 0)
        rc = ibs_aws_config_settings(out, &cfg, opts);
    ibs_aws_config_release(&cfg);
    return rc;
}
