/*
 * credential_process: runs the profile's command with /bin/sh -c (as the
 * AWS CLI does, so quoting and ~ behave the same), reads its stdout and
 * stderr through pipes with poll() until both close, then waits for it, all
 * under one deadline. The child gets its own process group so that a
 * timeout kills whatever the shell started too.
 *
 * stdout must hold {"Version": 1, "AccessKeyId", "SecretAccessKey",
 * "SessionToken"?, "Expiration"?}. stderr is captured, not passed through:
 * on failure its start is quoted in the error message. stdout (holding the
 * secrets) is wiped after parsing.
 */
#define _GNU_SOURCE /* pipe2() */

#include "providers/aws/credentials.h"

#include "util/buf.h"
#include "util/error.h"
#include "util/json.h"
#include "util/value.h"

#include <openssl/crypto.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_TIMEOUT_MS 60000
/* The AWS SDK for Java's limit; real outputs are ~1-2 KiB. */
#define MAX_STDOUT (64 * 1024)
#define MAX_STDERR (64 * 1024)
/* How much of stderr an error message quotes. */
#define STDERR_SHOWN 200

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* The first STDERR_SHOWN bytes of stderr on one line, for a message. */
static void quote_stderr(char *out, size_t size, const struct ibs_buf *err)
{
    size_t n = 0, i = 0;
    while (i < err->size && (err->ptr[i] == ' ' || err->ptr[i] == '\n' || err->ptr[i] == '\t'))
        i++;
    for (; i < err->size && n + 4 < size && n < STDERR_SHOWN; i++) {
        unsigned char c = (unsigned char)err->ptr[i];
        out[n++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    while (n > 0 && out[n - 1] == ' ')
        n--;
    if (i < err->size && n + 4 < size) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* Reads what is available on `*fd` into `b`; closes it at end of file. */
static int drain(int *fd, struct ibs_buf *b, size_t limit, bool *too_much)
{
    char chunk[4096];
    ssize_t n = read(*fd, chunk, sizeof(chunk));
    int rc = 0;

    if (n < 0) {
        if (errno != EINTR && errno != EAGAIN)
            close_fd(fd);
        goto done;
    }
    if (n == 0) {
        close_fd(fd);
        goto done;
    }
    if (b->size + (size_t)n > limit) {
        *too_much = true;
        goto done;
    }
    rc = ibs_buf_put(b, chunk, (size_t)n);
done:
    OPENSSL_cleanse(chunk, sizeof(chunk));
    return rc;
}

/* Kills the child's process group and reaps the child. */
static void kill_and_reap(pid_t pid)
{
    int status;
    kill(-pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
}

static int check_version(const char *json, size_t len)
{
    struct ibs_value *doc = NULL;
    const struct ibs_value *v;
    int rc = 0;

    /* Parse errors are reported by ibs_aws_credentials_parse_json(). */
    if (ibs_json_parse(&doc, json, len) < 0 || doc->type != IBS_VALUE_MAP)
        goto done;
    v = ibs_value_map_get(doc, "Version");
    if (!v)
        rc = ibs_error_set(IBS_EINVALID, "output has no \"Version\" (expected 1)");
    else if (v->type != IBS_VALUE_INT || v->num.i != 1)
        rc = ibs_error_set(IBS_EINVALID, "unsupported \"Version\" %.20s (expected 1)",
                           v->str ? v->str : ibs_value_type_name(v->type));
done:
    if (doc) {
        for (size_t i = 0; i < doc->count && doc->type == IBS_VALUE_MAP; i++)
            if (doc->u.members[i].value->str)
                OPENSSL_cleanse(doc->u.members[i].value->str, doc->u.members[i].value->len);
    }
    ibs_value_free(doc);
    return rc;
}

int ibs_aws_credentials_process(struct ibs_aws_credentials *out, const char *command,
                                long timeout_ms)
{
    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    struct ibs_buf so = IBS_BUF_INIT, se = IBS_BUF_INIT;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    bool fa_ok = false, attr_ok = false, too_much = false, reaped = false;
    char *argv[] = {"sh", "-c", (char *)command, NULL};
    char shown[STDERR_SHOWN + 8];
    pid_t pid = -1;
    int64_t deadline;
    int status = 0, err, rc = 0;

    ibs_aws_credentials_init(out);
    if (timeout_ms <= 0)
        timeout_ms = DEFAULT_TIMEOUT_MS;
    if (!command || !*command) {
        rc = ibs_error_set(IBS_EINVALID, "empty command");
        goto done;
    }
    if (pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
        rc = ibs_error_set(IBS_EIO, "cannot create a pipe: %s", strerror(errno));
        goto done;
    }
    if ((err = posix_spawn_file_actions_init(&fa)) != 0) {
        rc = ibs_error_set(IBS_ENOMEM, "posix_spawn_file_actions_init: %s", strerror(err));
        goto done;
    }
    fa_ok = true;
    if ((err = posix_spawnattr_init(&attr)) != 0) {
        rc = ibs_error_set(IBS_ENOMEM, "posix_spawnattr_init: %s", strerror(err));
        goto done;
    }
    attr_ok = true;
    /* dup2 clears FD_CLOEXEC on the target, so only fds 1 and 2 survive. */
    if ((err = posix_spawn_file_actions_adddup2(&fa, outp[1], STDOUT_FILENO)) != 0 ||
        (err = posix_spawn_file_actions_adddup2(&fa, errp[1], STDERR_FILENO)) != 0 ||
        (err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP)) != 0 ||
        (err = posix_spawnattr_setpgroup(&attr, 0)) != 0) {
        rc = ibs_error_set(IBS_ERROR, "cannot prepare the command: %s", strerror(err));
        goto done;
    }
    err = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, environ);
    if (err != 0) {
        pid = -1;
        rc = ibs_error_set(IBS_EIO, "cannot run /bin/sh: %s", strerror(err));
        goto done;
    }
    close_fd(&outp[1]);
    close_fd(&errp[1]);

    deadline = mono_ms() + timeout_ms;
    while (outp[0] >= 0 || errp[0] >= 0) {
        struct pollfd fds[2] = {{outp[0], POLLIN, 0}, {errp[0], POLLIN, 0}};
        int64_t left = deadline - mono_ms();
        int n;
        if (left <= 0)
            break;
        n = poll(fds, 2, (int)(left > 1000 ? 1000 : left));
        if (n < 0 && errno != EINTR) {
            rc = ibs_error_set(IBS_EIO, "poll: %s", strerror(errno));
            goto done;
        }
        if (n <= 0)
            continue;
        if (fds[0].revents && (rc = drain(&outp[0], &so, MAX_STDOUT, &too_much)) < 0)
            goto done;
        if (fds[1].revents && (rc = drain(&errp[0], &se, MAX_STDERR, &too_much)) < 0)
            goto done;
        if (too_much) {
            rc = ibs_error_set(IBS_EINVALID, "the command wrote more than %d bytes", MAX_STDOUT);
            goto done;
        }
    }
    /* Both pipes closed (or time is up): wait for the exit, same deadline. */
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            reaped = true;
            break;
        }
        if (w < 0 && errno != EINTR) {
            rc = ibs_error_set(IBS_EIO, "waitpid: %s", strerror(errno));
            reaped = true;
            goto done;
        }
        if (mono_ms() >= deadline)
            break;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (!reaped) {
        rc = ibs_error_set(IBS_ETIMEOUT, "the command did not finish within %ld ms", timeout_ms);
        goto done;
    }
    quote_stderr(shown, sizeof(shown), &se);
    if (WIFSIGNALED(status)) {
        rc = ibs_error_set(IBS_EAUTH, "the command was killed by signal %d%s%s%s", WTERMSIG(status),
                           shown[0] ? ": \"" : "", shown, shown[0] ? "\"" : "");
        goto done;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rc = ibs_error_set(IBS_EAUTH, "the command exited with status %d%s%s%s",
                           WIFEXITED(status) ? WEXITSTATUS(status) : -1, shown[0] ? ": \"" : "",
                           shown, shown[0] ? "\"" : "");
        goto done;
    }
    rc = check_version(so.ptr, so.size);
    if (rc < 0)
        goto done;
    rc = ibs_aws_credentials_parse_json(out, so.ptr, so.size, "SessionToken", "process");
done:
    if (pid > 0 && !reaped)
        kill_and_reap(pid);
    close_fd(&outp[0]);
    close_fd(&outp[1]);
    close_fd(&errp[0]);
    close_fd(&errp[1]);
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (attr_ok)
        posix_spawnattr_destroy(&attr);
    if (rc < 0 && so.size > 0) {
        /* Whatever the command printed on stdout might be a secret that
         * also went to stderr: keep it out of the message. */
        struct ibs_aws_credentials tmp;
        char *msg = strdup(ibs_error_last()->message);
        int parsed =
            ibs_aws_credentials_parse_json(&tmp, so.ptr, so.size, "SessionToken", "process");
        ibs_error_set(rc, "%s", msg ? msg : "credential process failed");
        if (parsed == 0) {
            const char *secrets[] = {tmp.secret_access_key, tmp.session_token};
            ibs_aws_credentials_redact_error(secrets, 2);
        }
        ibs_aws_credentials_release(&tmp);
        free(msg);
    }
    OPENSSL_cleanse(so.ptr, so.size);
    ibs_buf_release(&so);
    ibs_buf_release(&se);
    return rc;
}
