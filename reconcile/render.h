/*
 * Rendering plans for people: a Terraform-like text plan for terminals and
 * CI logs, and a Markdown rendering for pull-request comments. The JSON form
 * is ibs_plan_to_value() written with util/json.h. Rendering appends to a
 * buffer; printing is the caller's business.
 */
#ifndef IBS_RECONCILE_RENDER_H
#define IBS_RECONCILE_RENDER_H

#include "reconcile/plan.h"
#include "util/buf.h"

/* The marker line that starts every Markdown plan, so that a CI job can find
 * and update its earlier comment: "<!-- ibsync-plan stack=NAME -->". */
#define IBS_RENDER_MARKDOWN_MARKER "<!-- ibsync-plan"

enum {
    IBS_RENDER_COLOR = 1 << 0, /* ANSI colours for terminals */
};

/* Appends the text plan. */
int ibs_render_text(struct ibs_buf *out, const struct ibs_plan *plan, unsigned flags);

/*
 * Where streamed text goes: `write` gets the text in order, in pieces of up
 * to about 64 KiB (borrowed for the call), and returns 0 or a negative error
 * that stops the rendering.
 */
struct ibs_render_sink {
    int (*write)(void *ctx, const char *data, size_t len);
    void *ctx;
};

/*
 * The text plan of ibs_render_text(), handed to `sink` piece by piece
 * instead of held whole: a plan of 10,000 creates is 11 MB of text. Returns
 * the sink's error, or IBS_ENOMEM.
 */
int ibs_render_text_stream(const struct ibs_render_sink *sink, const struct ibs_plan *plan,
                           unsigned flags);

/* Appends the Markdown plan (summary table, destructive actions first,
 * details in collapsible sections, the commit and source, the marker). */
int ibs_render_markdown(struct ibs_buf *out, const struct ibs_plan *plan);

/* The one-line summary: "Plan: 3 to create, 1 new version, ...". */
int ibs_render_summary(struct ibs_buf *out, const struct ibs_plan *plan);

/* The marker for a stack: the first line of ibs_render_markdown(). */
int ibs_render_markdown_marker(struct ibs_buf *out, const char *stack);

#endif
