/*
 * A small directed graph over node indices 0..n-1, used to order resources
 * and plan actions: an edge dependent -> dependency means "the dependency
 * comes first". Ordering is Kahn's algorithm with a stable tie-break (lowest
 * index first), so plans are deterministic; cycles are found iteratively
 * (no recursion, whatever the graph's depth).
 */
#ifndef IBS_RECONCILE_GRAPH_H
#define IBS_RECONCILE_GRAPH_H

#include <stddef.h>

struct ibs_graph_node {
    size_t *deps; /* indices this node depends on */
    size_t ndeps;
    size_t cap;
};

struct ibs_graph {
    struct ibs_graph_node *nodes;
    size_t n;
};

/* Creates a graph of `n` nodes without edges. */
int ibs_graph_init(struct ibs_graph *g, size_t n);
void ibs_graph_release(struct ibs_graph *g);

/* Records that `dependent` depends on `dependency`. Duplicate edges are
 * ignored. IBS_EINVALID for an index out of range. */
int ibs_graph_add_edge(struct ibs_graph *g, size_t dependent, size_t dependency);

/*
 * Writes a topological order (dependencies before dependents) to *out, a heap
 * array of g->n indices owned by the caller. IBS_ECONFLICT when the graph has
 * a cycle (*out is NULL then).
 */
int ibs_graph_toposort(size_t **out, const struct ibs_graph *g);

/*
 * Finds every cycle, one per set of nodes involved: calls `fn(ctx, cycle,
 * len)` with the node indices of each cycle in dependency order (cycle[0]
 * depends on cycle[1], ..., cycle[len-1] depends on cycle[0]). Returns the
 * number of cycles found (>= 0), or a negative error code.
 */
int ibs_graph_cycles(const struct ibs_graph *g,
                     int (*fn)(void *ctx, const size_t *cycle, size_t len), void *ctx);

#endif
