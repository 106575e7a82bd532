/*
 * Saved plans: `ibsync plan -o plan.bin` writes one, `ibsync apply plan.bin`
 * applies exactly what was reviewed. The file is text:
 *
 *     IBSYNC-PLAN 1
 *     { ...the plan as canonical JSON: sorted keys, indented... }
 *     checksum <40 hex: ibs_digest_hex() of the JSON text>
 *
 * so that a truncated, edited or foreign file is refused instead of applied,
 * and a plan from a newer ibsync is refused with a message saying so.
 */
#ifndef IBS_STATE_PLANFILE_H
#define IBS_STATE_PLANFILE_H

#include "util/value.h"

/* The format this ibsync writes and reads. */
#define IBS_PLANFILE_VERSION 1

/*
 * Writes `plan` (borrowed; any value, normally the map of
 * ibs_plan_to_value) to `path`, atomically (state/fsutil.h): the file is
 * either the old one or the complete new one. IBS_EIO / IBS_ENOTFOUND
 * (missing directory) on failure.
 */
int ibs_planfile_write(const char *path, const struct ibs_value *plan);

/*
 * Reads and verifies a plan file. On success *out is the plan, owned by the
 * caller (ibs_value_free). IBS_ENOTFOUND when the file does not exist;
 * IBS_EINVALID, with a message naming `path`, when it is
 *   - not a plan file:       "plan.bin is not an ibsync plan"
 *   - another format:        "plan.bin was written by plan format 2; this ibsync reads format 1"
 *   - truncated or edited:   "plan.bin is corrupt: checksum mismatch" (or: the checksum line is
 *                            missing or damaged)
 */
int ibs_planfile_read(struct ibs_value **out, const char *path);

#endif
