/*
 * Compares ibsync's SigV4 signer with the AWS SDK for JavaScript's: signs
 * every request of cases.json (once with long-term keys, once with the
 * session token) and checks the signature and the Authorization header
 * against the JSON lines that sign.js printed for the same inputs.
 *
 * Usage: sigv4_interop CASES.json NODE-OUTPUT.jsonl
 * Prints one line per request and "N passed, N failed"; exits non-zero on
 * any difference, on a request missing from either side, or on no request.
 */
#include "providers/aws/sigv4.h"

#include "util/error.h"

#include <cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADERS 16

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long size;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (text = malloc((size_t)size + 1)) != NULL) {
        if (fread(text, 1, (size_t)size, f) != (size_t)size) {
            free(text);
            text = NULL;
        } else {
            text[size] = '\0';
        }
    }
    fclose(f);
    return text;
}

static const char *str_member(const cJSON *obj, const char *name)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

/* The node line named `name` among the parsed lines, or NULL. */
static const cJSON *find_line(cJSON *const *lines, size_t nlines, const char *name)
{
    for (size_t i = 0; i < nlines; i++) {
        const char *n = str_member(lines[i], "name");
        if (n && strcmp(n, name) == 0)
            return lines[i];
    }
    return NULL;
}

/* Signs one case; returns 1 when it matches the node line, 0 otherwise. */
static int check_case(const cJSON *spec, const cJSON *c, bool with_token, cJSON *const *lines,
                      size_t nlines)
{
    struct ibs_sigv4_header headers[MAX_HEADERS];
    struct ibs_sigv4_request req = {0};
    struct ibs_sigv4_credentials creds = {0};
    struct ibs_sigv4_params params = {0};
    struct ibs_sigv4_result res;
    const cJSON *creds_json = cJSON_GetObjectItemCaseSensitive(spec, "credentials");
    const cJSON *hdrs = cJSON_GetObjectItemCaseSensitive(c, "headers");
    const cJSON *h, *line;
    const char *want_sig, *want_auth, *body;
    char name[256];
    int ok = 0;

    snprintf(name, sizeof(name), "%s%s", str_member(c, "name"), with_token ? "+token" : "");
    req.method = str_member(c, "method");
    req.path = str_member(c, "path");
    req.query = str_member(c, "query");
    body = str_member(c, "body");
    req.payload = body;
    req.payload_len = body ? strlen(body) : 0;
    cJSON_ArrayForEach(h, hdrs)
    {
        if (req.nheaders == MAX_HEADERS || cJSON_GetArraySize(h) != 2) {
            printf("FAIL %s: bad headers in cases.json\n", name);
            return 0;
        }
        headers[req.nheaders].name = cJSON_GetArrayItem(h, 0)->valuestring;
        headers[req.nheaders].value = cJSON_GetArrayItem(h, 1)->valuestring;
        req.nheaders++;
    }
    req.headers = headers;
    creds.access_key_id = str_member(creds_json, "accessKeyId");
    creds.secret_access_key = str_member(creds_json, "secretAccessKey");
    creds.session_token = with_token ? str_member(creds_json, "sessionToken") : NULL;
    params.region = str_member(spec, "region");
    params.service = str_member(spec, "service");
    params.time = (int64_t)cJSON_GetObjectItemCaseSensitive(spec, "time")->valuedouble;
    params.normalize_path = true;
    params.double_encode_path = true;
    params.content_sha256_header =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "contentSha256"));

    if (!(line = find_line(lines, nlines, name))) {
        printf("FAIL %s: no line from sign.js\n", name);
        return 0;
    }
    want_sig = str_member(line, "signature");
    want_auth = str_member(line, "authorization");
    if (ibs_sigv4_sign(&res, &req, &creds, &params)) {
        printf("FAIL %s: %s\n", name, ibs_error_last()->message);
        return 0;
    }
    if (!want_sig || strcmp(want_sig, res.signature) != 0)
        printf("FAIL %s: signature %s, node %s\ncanonical request:\n%s\n", name, res.signature,
               want_sig ? want_sig : "(none)", res.canonical_request);
    else if (!want_auth || strcmp(want_auth, res.authorization) != 0)
        printf("FAIL %s: Authorization\n  ours %s\n  node %s\n", name, res.authorization,
               want_auth ? want_auth : "(none)");
    else
        ok = 1;
    if (ok)
        printf("ok   %s %s\n", name, res.signature);
    ibs_sigv4_result_release(&res);
    return ok;
}

int main(int argc, char **argv)
{
    cJSON *spec = NULL, *lines[64];
    const cJSON *cases, *c;
    char *spec_text = NULL, *node_text = NULL, *p, *save = NULL;
    size_t nlines = 0, passed = 0, failed = 0;
    int status = 1;

    if (argc != 3) {
        fprintf(stderr, "usage: %s CASES.json NODE-OUTPUT.jsonl\n", argv[0]);
        return 2;
    }
    if (!(spec_text = read_file(argv[1])) || !(node_text = read_file(argv[2]))) {
        fprintf(stderr, "sigv4_interop: cannot read %s or %s\n", argv[1], argv[2]);
        goto done;
    }
    if (!(spec = cJSON_Parse(spec_text)) ||
        !cJSON_IsArray(cases = cJSON_GetObjectItemCaseSensitive(spec, "cases"))) {
        fprintf(stderr, "sigv4_interop: %s is not a cases file\n", argv[1]);
        goto done;
    }
    for (p = strtok_r(node_text, "\n", &save); p; p = strtok_r(NULL, "\n", &save)) {
        if (nlines == sizeof(lines) / sizeof(lines[0]) || !(lines[nlines] = cJSON_Parse(p))) {
            fprintf(stderr, "sigv4_interop: bad or too many lines in %s\n", argv[2]);
            goto done;
        }
        nlines++;
    }
    cJSON_ArrayForEach(c, cases)
    {
        for (int t = 0; t < 2; t++) {
            if (check_case(spec, c, t == 1, lines, nlines))
                passed++;
            else
                failed++;
        }
    }
    if (passed + failed != nlines) {
        printf("FAIL sign.js printed %zu lines for %zu requests\n", nlines, passed + failed);
        failed++;
    }
    printf("%zu passed, %zu failed\n", passed, failed);
    status = (failed || !passed) ? 1 : 0;
done:
    for (size_t i = 0; i < nlines; i++)
        cJSON_Delete(lines[i]);
    cJSON_Delete(spec);
    free(spec_text);
    free(node_text);
    return status;
}
