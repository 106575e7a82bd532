/* Dependency graph: stable topological order and cycle reports; see graph.h. */
#include "reconcile/graph.h"

#include "util/error.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int ibs_graph_init(struct ibs_graph *g, size_t n)
{
    g->n = 0;
    g->nodes = calloc(n ? n : 1, sizeof(*g->nodes));
    if (!g->nodes)
        return ibs_error_oom();
    g->n = n;
    return 0;
}

void ibs_graph_release(struct ibs_graph *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->nodes[i].deps);
    free(g->nodes);
    g->nodes = NULL;
    g->n = 0;
}

int ibs_graph_add_edge(struct ibs_graph *g, size_t dependent, size_t dependency)
{
    struct ibs_graph_node *node;

    if (dependent >= g->n || dependency >= g->n)
        return ibs_error_set(IBS_EINVALID, "graph edge %zu -> %zu out of range", dependent,
                             dependency);
    node = &g->nodes[dependent];
    for (size_t i = 0; i < node->ndeps; i++)
        if (node->deps[i] == dependency)
            return 0;
    if (node->ndeps == node->cap) {
        size_t ncap = node->cap ? node->cap * 2 : 4;
        size_t *p = realloc(node->deps, ncap * sizeof(*p));
        if (!p)
            return ibs_error_oom();
        node->deps = p;
        node->cap = ncap;
    }
    node->deps[node->ndeps++] = dependency;
    return 0;
}

/* A binary min-heap of indices, so that among ready nodes the lowest index
 * is emitted first and the order does not depend on edge insertion order. */
struct heap {
    size_t *a;
    size_t n;
};

static void heap_push(struct heap *h, size_t v)
{
    size_t i = h->n++;
    h->a[i] = v;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h->a[p] <= h->a[i])
            break;
        size_t t = h->a[p];
        h->a[p] = h->a[i];
        h->a[i] = t;
        i = p;
    }
}

static size_t heap_pop(struct heap *h)
{
    size_t top = h->a[0], i = 0;
    h->a[0] = h->a[--h->n];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && h->a[l] < h->a[m])
            m = l;
        if (r < h->n && h->a[r] < h->a[m])
            m = r;
        if (m == i)
            break;
        size_t t = h->a[m];
        h->a[m] = h->a[i];
        h->a[i] = t;
        i = m;
    }
    return top;
}

int ibs_graph_toposort(size_t **out, const struct ibs_graph *g)
{
    size_t *pending = NULL;   /* unresolved dependencies per node */
    size_t *rev_start = NULL; /* CSR of reverse edges */
    size_t *rev = NULL;
    size_t *order = NULL;
    struct heap h = {NULL, 0};
    size_t nedges = 0, emitted = 0;
    int rc = 0;

    *out = NULL;
    for (size_t i = 0; i < g->n; i++)
        nedges += g->nodes[i].ndeps;
    pending = calloc(g->n + 1, sizeof(size_t));
    rev_start = calloc(g->n + 2, sizeof(size_t));
    rev = malloc((nedges ? nedges : 1) * sizeof(size_t));
    order = malloc((g->n ? g->n : 1) * sizeof(size_t));
    h.a = malloc((g->n ? g->n : 1) * sizeof(size_t));
    if (!pending || !rev_start || !rev || !order || !h.a) {
        rc = ibs_error_oom();
        goto done;
    }
    for (size_t i = 0; i < g->n; i++) {
        pending[i] = g->nodes[i].ndeps;
        for (size_t j = 0; j < g->nodes[i].ndeps; j++)
            rev_start[g->nodes[i].deps[j] + 2]++;
    }
    for (size_t i = 2; i < g->n + 2; i++)
        rev_start[i] += rev_start[i - 1];
    for (size_t i = 0; i < g->n; i++)
        for (size_t j = 0; j < g->nodes[i].ndeps; j++)
            rev[rev_start[g->nodes[i].deps[j] + 1]++] = i;
    for (size_t i = 0; i < g->n; i++)
        if (!pending[i])
            heap_push(&h, i);
    while (h.n) {
        size_t v = heap_pop(&h);
        order[emitted++] = v;
        for (size_t k = rev_start[v]; k < rev_start[v + 1]; k++)
            if (--pending[rev[k]] == 0)
                heap_push(&h, rev[k]);
    }
    if (emitted != g->n) {
        rc = ibs_error_set(IBS_ECONFLICT, "the dependency graph has a cycle");
        goto done;
    }
    *out = order;
    order = NULL;
done:
    free(pending);
    free(rev_start);
    free(rev);
    free(order);
    free(h.a);
    return rc;
}

enum { WHITE, GREY, BLACK };

int ibs_graph_cycles(const struct ibs_graph *g,
                     int (*fn)(void *ctx, const size_t *cycle, size_t len), void *ctx)
{
    unsigned char *color = NULL;
    bool *reported = NULL;
    size_t *stack = NULL, *edge = NULL, *cycle = NULL;
    int found = 0;
    int rc = 0;

    color = calloc(g->n ? g->n : 1, 1);
    reported = calloc(g->n ? g->n : 1, sizeof(bool));
    stack = malloc((g->n ? g->n : 1) * sizeof(size_t));
    edge = malloc((g->n ? g->n : 1) * sizeof(size_t));
    cycle = malloc((g->n ? g->n : 1) * sizeof(size_t));
    if (!color || !reported || !stack || !edge || !cycle) {
        rc = ibs_error_oom();
        goto done;
    }
    for (size_t root = 0; root < g->n; root++) {
        size_t sp = 0;
        if (color[root] != WHITE)
            continue;
        stack[sp] = root;
        edge[sp] = 0;
        sp++;
        color[root] = GREY;
        while (sp) {
            size_t v = stack[sp - 1];
            if (edge[sp - 1] == g->nodes[v].ndeps) {
                color[v] = BLACK;
                sp--;
                continue;
            }
            size_t w = g->nodes[v].deps[edge[sp - 1]++];
            if (color[w] == WHITE) {
                color[w] = GREY;
                stack[sp] = w;
                edge[sp] = 0;
                sp++;
            } else if (color[w] == GREY) {
                /* Back edge: the cycle is the stack from w to v. */
                size_t start = sp;
                size_t len = 0;
                bool seen = false;
                while (start > 0 && stack[start - 1] != w)
                    start--;
                start--;
                for (size_t k = start; k < sp; k++) {
                    cycle[len++] = stack[k];
                    seen = seen || reported[stack[k]];
                }
                if (seen)
                    continue;
                for (size_t k = 0; k < len; k++)
                    reported[cycle[k]] = true;
                found++;
                if (fn && (rc = fn(ctx, cycle, len)) < 0)
                    goto done;
            }
        }
    }
    rc = found;
done:
    free(color);
    free(reported);
    free(stack);
    free(edge);
    free(cycle);
    return rc;
}
