/*
 * Exclusive per-key locks in the state directory, so that two applies of the
 * same stack/account/region never run at once.
 *
 * A lock is flock(2) on DIR/locks/<key as file name>.lock. The kernel drops
 * it when the holding process exits for any reason (even SIGKILL), so there
 * are no stale locks to clean up. The holder writes who it is into the file;
 * a process that finds the lock taken reads that back for its error message.
 *
 * flock locks belong to an open file description, so two ibs_lock handles in
 * one process conflict like two processes do. A child forked while a lock is
 * held shares it (same description) until the child exits; the lock file is
 * opened close-on-exec, so exec'd programs do not.
 */
#ifndef IBS_STATE_LOCK_H
#define IBS_STATE_LOCK_H

struct ibs_lock;

/*
 * Takes the lock for `key` (any string, e.g. "golden-ami@123456789012/us-east-1")
 * under `state_dir`, creating DIR/locks/ if needed, and records the holder
 * (pid, host name, user, start time, `holder_description` such as
 * "ibsync apply"; NULL means "ibsync"). With `wait_ms` 0 a taken lock fails at once; otherwise it
 * is polled until it is free or `wait_ms` milliseconds have passed.
 *
 * When someone else holds it: IBS_ELOCKED with a message naming the holder,
 *   stack "golden-ami" (123456789012/us-east-1) is locked by pid 4242 on host
 *   build-7 since 2026-11-23T10:00:00Z (ibsync apply)
 * (keys of the form STACK@SCOPE are shown like this, others as lock "KEY").
 *
 * On success *out is owned by the caller and freed with ibs_lock_release().
 */
int ibs_lock_acquire(struct ibs_lock **out, const char *state_dir, const char *key,
                     const char *holder_description, long wait_ms);

/* Releases the lock and frees the handle. Accepts NULL. */
void ibs_lock_release(struct ibs_lock *lock);

#endif
