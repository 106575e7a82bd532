/*
 * Text and Markdown renderings of a plan; see render.h. Values are shown as
 * compact JSON, placeholders as the ARN known at plan time or "(known after
 * apply)", and multi-line documents line by line with a minimal line diff.
 */
#include "reconcile/render.h"

#include "reconcile/diff.h"
#include "reconcile/request.h"
#include "util/error.h"
#include "util/json.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INLINE 120

static const char *marker(enum ibs_action_type t)
{
    switch (t) {
    case IBS_ACTION_CREATE:
        return "+";
    case IBS_ACTION_NEW_VERSION:
        return "+/-";
    case IBS_ACTION_UPDATE:
        return "~";
    case IBS_ACTION_TAG:
        return "~";
    case IBS_ACTION_DELETE:
        return "-";
    default:
        return "?";
    }
}

static const char *color(enum ibs_action_type t, unsigned flags)
{
    if (!(flags & IBS_RENDER_COLOR))
        return "";
    switch (t) {
    case IBS_ACTION_CREATE:
        return "\033[32m";
    case IBS_ACTION_NEW_VERSION:
        return "\033[36m";
    case IBS_ACTION_DELETE:
        return "\033[31m";
    default:
        return "\033[33m";
    }
}

static const char *reset(unsigned flags)
{
    return flags & IBS_RENDER_COLOR ? "\033[0m" : "";
}

static bool is_multiline(const struct ibs_value *v)
{
    return v && v->type == IBS_VALUE_STRING && memchr(v->str, '\n', v->len) != NULL;
}

/* What a rendering reads: the plan, and an index of its symbols (one per
 * resource: looked up for every placeholder shown). */
struct view {
    const struct ibs_plan *plan;
    struct ibs_value_index *symix;
};

static int view_init(struct view *vw, const struct ibs_plan *plan)
{
    vw->plan = plan;
    vw->symix = NULL;
    return plan->symbols ? ibs_value_index_new(&vw->symix, plan->symbols) : 0;
}

/* Compact JSON of `v` with placeholders shown as ARNs where known. */
static int show_value(struct ibs_buf *out, const struct view *vw, const struct ibs_value *v)
{
    const char *sym;

    if (!v)
        return ibs_buf_puts(out, "(none)");
    if (ibs_request_is_ref(v, &sym)) {
        const struct ibs_value *arn =
            vw->symix ? ibs_value_index_get(vw->symix, vw->plan->symbols, sym) : NULL;
        if (arn && arn->type == IBS_VALUE_STRING)
            return ibs_buf_printf(out, "\"%s\"", arn->str);
        return ibs_buf_printf(out, "(known after apply: %s)", sym);
    }
    if (v->type == IBS_VALUE_LIST || v->type == IBS_VALUE_MAP) {
        /* Containers may hold placeholders: render members one by one. */
        bool map = v->type == IBS_VALUE_MAP;
        ibs_buf_putc(out, map ? '{' : '[');
        for (size_t i = 0; i < v->count; i++) {
            if (i)
                ibs_buf_puts(out, ", ");
            if (map) {
                ibs_buf_puts(out, v->u.members[i].key);
                ibs_buf_puts(out, ": ");
            }
            show_value(out, vw, map ? v->u.members[i].value : v->u.items[i]);
        }
        ibs_buf_putc(out, map ? '}' : ']');
        return ibs_buf_oom(out);
    }
    return ibs_json_write(out, v, 0);
}

/* Splits a string into lines (borrowed pointers into s, lengths). */
struct lines {
    const char **p;
    size_t *len;
    size_t n;
};

static int split(struct lines *l, const struct ibs_value *v)
{
    const char *s = v ? v->str : "";
    size_t len = v ? v->len : 0;
    size_t cap = 1;

    for (size_t i = 0; i < len; i++)
        cap += s[i] == '\n';
    l->p = malloc(cap * sizeof(*l->p));
    l->len = malloc(cap * sizeof(*l->len));
    l->n = 0;
    if (!l->p || !l->len)
        return ibs_error_oom();
    for (size_t start = 0; start < len;) {
        const char *nl = memchr(s + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - s) : len;
        l->p[l->n] = s + start;
        l->len[l->n++] = end - start;
        start = end + 1;
    }
    return 0;
}

static void lines_free(struct lines *l)
{
    free(l->p);
    free(l->len);
}

static bool line_eq(const struct lines *a, size_t i, const struct lines *b, size_t j)
{
    return a->len[i] == b->len[j] && memcmp(a->p[i], b->p[j], a->len[i]) == 0;
}

/* A unified-style diff of two documents: the common head and tail are
 * trimmed, and the middle shown as removed then added lines with up to
 * three lines of context. */
static int doc_diff(struct ibs_buf *out, const struct ibs_value *before,
                    const struct ibs_value *after, const char *indent)
{
    struct lines a = {0}, b = {0};
    size_t head = 0, tail = 0;
    int rc;

    if ((rc = split(&a, before)) || (rc = split(&b, after)))
        goto done;
    while (head < a.n && head < b.n && line_eq(&a, head, &b, head))
        head++;
    while (tail < a.n - head && tail < b.n - head &&
           line_eq(&a, a.n - 1 - tail, &b, b.n - 1 - tail))
        tail++;
    ibs_buf_printf(out, "%s@@ -%zu,%zu +%zu,%zu @@\n", indent, head + 1, a.n - head - tail,
                   head + 1, b.n - head - tail);
    for (size_t i = head > 3 ? head - 3 : 0; i < head; i++)
        ibs_buf_printf(out, "%s  %.*s\n", indent, (int)a.len[i], a.p[i]);
    for (size_t i = head; i < a.n - tail; i++)
        ibs_buf_printf(out, "%s- %.*s\n", indent, (int)a.len[i], a.p[i]);
    for (size_t i = head; i < b.n - tail; i++)
        ibs_buf_printf(out, "%s+ %.*s\n", indent, (int)b.len[i], b.p[i]);
    for (size_t i = a.n - tail, k = 0; i < a.n && k < 3; i++, k++)
        ibs_buf_printf(out, "%s  %.*s\n", indent, (int)a.len[i], a.p[i]);
    rc = ibs_buf_oom(out);
done:
    lines_free(&a);
    lines_free(&b);
    return rc;
}

static int show_member(struct ibs_buf *out, const struct view *vw, const char *sign,
                       const char *key, const struct ibs_value *v, const char *indent)
{
    if (is_multiline(v)) {
        struct lines l = {0};
        int rc = split(&l, v);
        if (!rc) {
            ibs_buf_puts(out, indent);
            ibs_buf_puts(out, sign);
            ibs_buf_putc(out, ' ');
            ibs_buf_puts(out, key);
            ibs_buf_puts(out, ": <<EOT\n");
            for (size_t i = 0; i < l.n; i++) {
                ibs_buf_puts(out, indent);
                ibs_buf_puts(out, "      ");
                ibs_buf_put(out, l.p[i], l.len[i]);
                ibs_buf_putc(out, '\n');
            }
            ibs_buf_puts(out, indent);
            ibs_buf_puts(out, "    EOT\n");
        }
        lines_free(&l);
        return rc ? rc : ibs_buf_oom(out);
    }
    ibs_buf_puts(out, indent);
    ibs_buf_puts(out, sign);
    ibs_buf_putc(out, ' ');
    ibs_buf_puts(out, key);
    ibs_buf_puts(out, ": ");
    show_value(out, vw, v);
    ibs_buf_putc(out, '\n');
    return ibs_buf_oom(out);
}

static int show_diff(struct ibs_buf *out, const struct view *vw, const struct ibs_field_diff *d,
                     const char *indent)
{
    if (is_multiline(d->before) || is_multiline(d->after)) {
        ibs_buf_printf(out, "%s~ %s:\n", indent, d->path);
        return doc_diff(out, d->before, d->after, indent);
    }
    if (!d->before)
        return show_member(out, vw, "+", d->path, d->after, indent);
    if (!d->after)
        return show_member(out, vw, "-", d->path, d->before, indent);
    ibs_buf_printf(out, "%s~ %s: ", indent, d->path);
    show_value(out, vw, d->before);
    ibs_buf_puts(out, " -> ");
    show_value(out, vw, d->after);
    ibs_buf_putc(out, '\n');
    return ibs_buf_oom(out);
}

static int action_title(struct ibs_buf *out, const struct ibs_action *a)
{
    ibs_buf_printf(out, "%s/%s", ibs_model_kind_info(a->kind)->name, a->name);
    if (a->version)
        ibs_buf_printf(out, "@%s", a->version);
    return ibs_buf_oom(out);
}

static int action_body(struct ibs_buf *out, const struct view *vw, const struct ibs_action *a,
                       const char *indent)
{
    if (a->type == IBS_ACTION_CREATE && a->request) {
        for (size_t i = 0; i < a->request->count; i++) {
            const struct ibs_member *m = &a->request->u.members[i];
            if (strcmp(m->key, "name") == 0)
                continue;
            show_member(out, vw, "+", m->key, m->value, indent);
        }
    }
    for (size_t i = 0; i < a->diffs.count; i++)
        show_diff(out, vw, a->diffs.items[i], indent);
    if (a->type != IBS_ACTION_CREATE && a->type != IBS_ACTION_DELETE) {
        for (size_t i = 0; a->tags && i < a->tags->count; i++) {
            char key[300];
            /* The content hash moves with every change: not worth a line. */
            if (strcmp(a->tags->u.members[i].key, "ibsync:hash") == 0)
                continue;
            snprintf(key, sizeof(key), "tags.%s", a->tags->u.members[i].key);
            show_member(out, vw, "~", key, a->tags->u.members[i].value, indent);
        }
        for (size_t i = 0; i < a->untag.count; i++)
            ibs_buf_printf(out, "%s- tags.%s\n", indent, (char *)a->untag.items[i]);
    }
    return ibs_buf_oom(out);
}

int ibs_render_summary(struct ibs_buf *out, const struct ibs_plan *plan)
{
    size_t c[IBS_ACTION_TYPE_COUNT];

    ibs_plan_count(plan, c);
    if (!plan->actions.count && !plan->conflicts.count)
        return ibs_buf_puts(out, "No changes. The account matches the desired state.");
    ibs_buf_printf(out,
                   "Plan: %zu to create, %zu new version%s, %zu to update, %zu to tag, %zu to "
                   "delete.",
                   c[IBS_ACTION_CREATE], c[IBS_ACTION_NEW_VERSION],
                   c[IBS_ACTION_NEW_VERSION] == 1 ? "" : "s", c[IBS_ACTION_UPDATE],
                   c[IBS_ACTION_TAG], c[IBS_ACTION_DELETE]);
    if (plan->conflicts.count)
        ibs_buf_printf(out, " %zu conflict%s.", plan->conflicts.count,
                       plan->conflicts.count == 1 ? "" : "s");
    return ibs_buf_oom(out);
}

static void header(struct ibs_buf *out, const struct ibs_plan *plan)
{
    ibs_buf_printf(out, "stack \"%s\"", plan->stack);
    if (plan->account || plan->region)
        ibs_buf_printf(out, " in %s/%s", plan->account ? plan->account : "?",
                       plan->region ? plan->region : "?");
    if (plan->source)
        ibs_buf_printf(out, " from %s", plan->source);
    if (plan->commit && (!plan->source || !strstr(plan->source, "commit")))
        ibs_buf_printf(out, " (commit %.12s)", plan->commit);
}

/* Hands what `out` holds to the sink (if any) once it holds `at_least` bytes. */
static int drain(struct ibs_buf *out, const struct ibs_render_sink *sink, size_t at_least)
{
    int rc = ibs_buf_oom(out);

    if (rc || !sink || out->size < at_least || !out->size)
        return rc;
    rc = sink->write(sink->ctx, out->ptr, out->size);
    ibs_buf_clear(out);
    return rc;
}

static int render_text(struct ibs_buf *out, const struct ibs_render_sink *sink,
                       const struct ibs_plan *plan, unsigned flags)
{
    struct view vw;
    int rc;

    if ((rc = view_init(&vw, plan)))
        return rc;
    ibs_buf_puts(out, "ibsync plan for ");
    header(out, plan);
    ibs_buf_puts(out, "\n\n");
    for (size_t i = 0; i < plan->conflicts.count; i++) {
        const struct ibs_plan_conflict *c = plan->conflicts.items[i];
        ibs_buf_printf(out, "  ! conflict: %s\n", c->message);
    }
    if (plan->conflicts.count)
        ibs_buf_putc(out, '\n');
    for (size_t i = 0; i < plan->actions.count; i++) {
        const struct ibs_action *a = plan->actions.items[i];
        ibs_buf_printf(out, "  %s%s ", color(a->type, flags), marker(a->type));
        action_title(out, a);
        if (a->replaces)
            ibs_buf_printf(out, " (replaces %s)", a->replaces);
        ibs_buf_printf(out, "%s  # %s: %s\n", reset(flags), ibs_action_type_name(a->type),
                       a->reason);
        action_body(out, &vw, a, "      ");
        ibs_buf_putc(out, '\n');
        if ((rc = drain(out, sink, 64 * 1024)))
            goto done;
    }
    ibs_render_summary(out, plan);
    ibs_buf_putc(out, '\n');
    rc = drain(out, sink, 0);
done:
    ibs_value_index_free(vw.symix);
    return rc;
}

int ibs_render_text(struct ibs_buf *out, const struct ibs_plan *plan, unsigned flags)
{
    return render_text(out, NULL, plan, flags);
}

int ibs_render_text_stream(const struct ibs_render_sink *sink, const struct ibs_plan *plan,
                           unsigned flags)
{
    struct ibs_buf out = IBS_BUF_INIT;
    int rc = render_text(&out, sink, plan, flags);
    ibs_buf_release(&out);
    return rc;
}

int ibs_render_markdown_marker(struct ibs_buf *out, const char *stack)
{
    return ibs_buf_printf(out, "%s stack=%s -->", IBS_RENDER_MARKDOWN_MARKER, stack);
}

int ibs_render_markdown(struct ibs_buf *out, const struct ibs_plan *plan)
{
    size_t per_kind[IBS_KIND_COUNT][IBS_ACTION_TYPE_COUNT];
    size_t destructive = 0;
    struct view vw;
    int rc;

    if ((rc = view_init(&vw, plan)))
        return rc;
    memset(per_kind, 0, sizeof(per_kind));
    for (size_t i = 0; i < plan->actions.count; i++) {
        const struct ibs_action *a = plan->actions.items[i];
        per_kind[a->kind][a->type]++;
        destructive += a->type == IBS_ACTION_DELETE;
    }
    ibs_render_markdown_marker(out, plan->stack);
    ibs_buf_printf(out, "\n### ibsync plan: `%s`\n\n", plan->stack);
    if (plan->commit)
        ibs_buf_printf(out, "Commit `%.12s`", plan->commit);
    if (plan->source)
        ibs_buf_printf(out, "%s`%s`", plan->commit ? " · source " : "Source ", plan->source);
    if (plan->account || plan->region)
        ibs_buf_printf(out, " · account `%s` · region `%s`", plan->account ? plan->account : "?",
                       plan->region ? plan->region : "?");
    ibs_buf_puts(out, "\n\n**");
    ibs_render_summary(out, plan);
    ibs_buf_puts(out, "**\n\n");
    if (plan->actions.count) {
        ibs_buf_puts(out, "| Kind | Create | New version | Update | Tag | Delete |\n"
                          "| --- | ---: | ---: | ---: | ---: | ---: |\n");
        for (int k = 0; k < IBS_KIND_COUNT; k++) {
            size_t *c = per_kind[k];
            if (!(c[0] + c[1] + c[2] + c[3] + c[4]))
                continue;
            ibs_buf_printf(out, "| %s | %zu | %zu | %zu | %zu | %zu |\n",
                           ibs_model_kind_info((enum ibs_kind)k)->name, c[0], c[1], c[2], c[3],
                           c[4]);
        }
        ibs_buf_putc(out, '\n');
    }
    if (plan->conflicts.count) {
        ibs_buf_puts(out, "#### :no_entry: Conflicts\n\n");
        for (size_t i = 0; i < plan->conflicts.count; i++)
            ibs_buf_printf(out, "- %s\n",
                           ((struct ibs_plan_conflict *)plan->conflicts.items[i])->message);
        ibs_buf_putc(out, '\n');
    }
    if (destructive) {
        ibs_buf_puts(out, "#### :warning: Destructive actions\n\n");
        for (size_t i = 0; i < plan->actions.count; i++) {
            const struct ibs_action *a = plan->actions.items[i];
            if (a->type != IBS_ACTION_DELETE)
                continue;
            ibs_buf_puts(out, "- **delete** `");
            action_title(out, a);
            ibs_buf_printf(out, "` — %s\n", a->reason);
        }
        ibs_buf_putc(out, '\n');
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < plan->actions.count; i++) {
            const struct ibs_action *a = plan->actions.items[i];
            if ((a->type == IBS_ACTION_DELETE) != (pass == 0))
                continue;
            ibs_buf_printf(out, "<details><summary><code>%s ", marker(a->type));
            action_title(out, a);
            ibs_buf_printf(out, "</code> %s: %s</summary>\n\n```diff\n",
                           ibs_action_type_name(a->type), a->reason);
            action_body(out, &vw, a, "");
            ibs_buf_puts(out, "```\n\n</details>\n");
        }
    }
    ibs_value_index_free(vw.symix);
    return ibs_buf_oom(out);
}
