/*
 * Replay driver: runs a fuzz target's LLVMFuzzerTestOneInput on inputs
 * without libFuzzer, so corpora are regression tests with any compiler.
 *
 *     replay [--generated] PATH...
 *
 * Each PATH is a file or a directory whose regular files are replayed in
 * name order. --generated also feeds built-in large hostile inputs (deep
 * nesting, an alias bomb, a long scalar, a wide mapping) that are too big to
 * keep in the repository. A crash or abort in the target fails the run.
 */
#include "tests/fuzz/fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static size_t runs;

static int run_buffer(const char *data, size_t len)
{
    LLVMFuzzerTestOneInput((const uint8_t *)data, len);
    runs++;
    return 0;
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    long size;
    int rc = 1;

    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto done;
    /* One spare byte so that an empty file still gets a valid pointer. */
    data = malloc((size_t)size + 1);
    if (!data || fread(data, 1, (size_t)size, f) != (size_t)size)
        goto done;
    rc = run_buffer(data, (size_t)size);
done:
    if (rc)
        fprintf(stderr, "replay: cannot read %s\n", path);
    free(data);
    fclose(f);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    if (!d) {
        fprintf(stderr, "replay: cannot open directory %s\n", dir);
        return 1;
    }
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            char **p = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*p));
            if (!p) {
                rc = 1;
                goto done;
            }
            names = p;
        }
        if (!(names[n] = malloc(strlen(dir) + strlen(e->d_name) + 2))) {
            rc = 1;
            goto done;
        }
        sprintf(names[n++], "%s/%s", dir, e->d_name);
    }
    if (n)
        qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
            rc |= run_file(names[i]);
    }
done:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    closedir(d);
    return rc;
}

struct text {
    char *ptr;
    size_t len;
    size_t cap;
    int oom;
};

/* Appends `count` copies of `s`, growing the buffer geometrically. */
static void repeat(struct text *t, const char *s, size_t count)
{
    size_t n = strlen(s);

    if (t->oom)
        return;
    if (t->len + n * count + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        char *p;
        while (cap < t->len + n * count + 1)
            cap *= 2;
        p = realloc(t->ptr, cap);
        if (!p) {
            t->oom = 1;
            return;
        }
        t->ptr = p;
        t->cap = cap;
    }
    for (size_t i = 0; i < count; i++, t->len += n)
        memcpy(t->ptr + t->len, s, n);
    t->ptr[t->len] = '\0';
}

/* Runs the buffer's content as one input and empties the buffer. */
static int run_text(struct text *t)
{
    if (t->oom) {
        fprintf(stderr, "replay: out of memory\n");
        return 1;
    }
    run_buffer(t->ptr, t->len);
    t->len = 0;
    return 0;
}

static int run_generated(void)
{
    static const char levels[] = "abcdefghijklmnopqrstuvwxyz";
    struct text t = {NULL, 0, 0, 0};
    char line[256];
    int rc = 0;

    /* 10,000 levels of flow nesting, then 2,000 of block nesting. */
    repeat(&t, "[", 10000);
    repeat(&t, "]", 10000);
    rc |= run_text(&t);
    for (size_t i = 0; i < 2000; i++) {
        repeat(&t, " ", i);
        repeat(&t, "- \n", 1);
    }
    rc |= run_text(&t);
    /* A billion-laughs alias bomb: 26 levels of ten aliases each. */
    repeat(&t, "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n", 1);
    for (size_t i = 1; i < sizeof(levels) - 1; i++) {
        char p = levels[i - 1], c = levels[i];
        snprintf(line, sizeof(line), "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n",
                 c, c, p, p, p, p, p, p, p, p, p, p);
        repeat(&t, line, 1);
    }
    rc |= run_text(&t);
    /* A 2 MB plain scalar, then a mapping with 100,000 keys. */
    repeat(&t, "key: ", 1);
    repeat(&t, "x", 2 * 1024 * 1024);
    rc |= run_text(&t);
    for (size_t i = 0; i < 100000; i++) {
        snprintf(line, sizeof(line), "key%zu: %zu\n", i, i);
        repeat(&t, line, 1);
    }
    rc |= run_text(&t);
    free(t.ptr);
    return rc;
}

int main(int argc, char **argv)
{
    int rc = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (strcmp(argv[i], "--generated") == 0)
            rc |= run_generated();
        else if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
            rc |= run_dir(argv[i]);
        else
            rc |= run_file(argv[i]);
    }
    printf("replay: %zu inputs\n", runs);
    return rc;
}
