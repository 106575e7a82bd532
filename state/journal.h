/*
 * The apply journal: an append-only, fsync'd log of what an apply did, so
 * that an apply killed at any point (SIGKILL, power loss) can be finished by
 * running it again without repeating or losing an action.
 *
 * DIR/journal/<key as file name>.jsonl holds one JSON object per line. Each
 * append is a single write(2) of the whole line followed by fdatasync(2)
 * before the call returns, so a crash can only leave a torn last line, which
 * replay ignores (and counts) and the next open cuts off. A finished apply
 * archives the file to DIR/journal/archive/<name>-<UTC time>.jsonl; the
 * newest IBS_JOURNAL_ARCHIVE_KEEP archives of a key are kept.
 *
 * One process writes a key's journal at a time: the caller holds the key's
 * state lock (state/lock.h). Within that process appends may come from any
 * number of threads; they are serialised, and "seq" follows file order.
 */
#ifndef IBS_STATE_JOURNAL_H
#define IBS_STATE_JOURNAL_H

#include "util/value.h"
#include "util/vec.h"

#include <stddef.h>

/* Archived journals kept per key. */
#define IBS_JOURNAL_ARCHIVE_KEEP 20

struct ibs_journal;

/*
 * Opens (creating if needed, with DIR/journal/) the journal of `key` under
 * `state_dir` for appending. An existing journal is continued: a torn last
 * line is cut off, and sequence numbers go on from the last record's.
 * IBS_EINVALID when a line other than the last is corrupt (see replay).
 * On success *out is owned by the caller (ibs_journal_close).
 */
int ibs_journal_open(struct ibs_journal **out, const char *state_dir, const char *key);

/*
 * Appends `record` (a map; borrowed) as one line, with two members put in
 * front: "seq" (1, 2, ... in file order) and "time" (UTC,
 * "2026-11-23T10:00:00.123Z"). The line is on disk when this returns.
 * IBS_EINVALID when record is not a map or has "seq" or "time" members;
 * IBS_EIO when the write or sync fails, after which every later append fails
 * too (the file's durable state is unknown). Thread-safe.
 */
int ibs_journal_append(struct ibs_journal *j, const struct ibs_value *record);

/*
 * Reads every complete record of the journal of `key` into `out` (appended
 * as struct ibs_value * maps in file order, owned by the caller: free each
 * with ibs_value_free). A torn last line (no newline, or not a JSON object)
 * is skipped and counted in *out_torn (0 or 1; out_torn may be NULL).
 * IBS_ENOTFOUND when there is no journal (none yet, or archived).
 * IBS_EINVALID when any other line is not a JSON object, with a message
 * naming the file and the line number. On failure `out` holds the items it
 * held before (its array may have been reallocated: release it as usual).
 */
int ibs_journal_replay(struct ibs_vec *out, const char *state_dir, const char *key,
                       size_t *out_torn);

/*
 * Ends the journal once its apply is complete: moves the file to
 * DIR/journal/archive/<name>-<YYYYMMDDTHHMMSS.nnnnnnnnnZ>.jsonl (an empty
 * journal is just removed) and deletes all but the newest
 * IBS_JOURNAL_ARCHIVE_KEEP archives of this key. A later append starts a
 * new journal file. Not to be called while other threads append.
 */
int ibs_journal_archive(struct ibs_journal *j);

/* Closes the journal (appended lines are already on disk). Accepts NULL. */
void ibs_journal_close(struct ibs_journal *j);

#endif
