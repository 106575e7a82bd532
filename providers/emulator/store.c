/*
 * SQLite persistence of the emulated account.
 *
 * One database file per data directory, opened in WAL mode with
 * synchronous=FULL: a transaction that committed is on disk before the call
 * returns, so kill -9 never loses an acknowledged write. The schema version
 * is PRAGMA user_version; a newer database is refused rather than guessed at.
 *
 * Resources are JSON documents with the columns queries need beside them.
 * `seq` (AUTOINCREMENT, so never reused) is the creation sequence that List
 * operations page over. Tags, outgoing references (for
 * ResourceDependencyException), client tokens, resource policies and build
 * counters live in their own tables. The engine serialises all access with
 * its mutex and wraps every call in one transaction (emulator.c).
 */
#include "providers/emulator/internal.h"

#include "util/error.h"
#include "util/json.h"

#include <sqlite3.h>

#include <stdlib.h>
#include <string.h>

#define SCHEMA_VERSION 1

static const char schema_v1[] =
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE resources("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " kind TEXT NOT NULL,"
    " arn TEXT NOT NULL UNIQUE,"
    " name TEXT NOT NULL,"
    " path TEXT NOT NULL,"
    " version TEXT,"
    " build INTEGER,"
    " owner TEXT NOT NULL,"
    " parent TEXT,"
    " created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER,"
    " doc TEXT NOT NULL);"
    "CREATE INDEX resources_by_kind ON resources(kind, seq);"
    "CREATE INDEX resources_by_path ON resources(kind, path, version, build);"
    "CREATE INDEX resources_by_name ON resources(kind, name);"
    "CREATE INDEX resources_by_parent ON resources(parent, seq) WHERE parent IS NOT NULL;"
    "CREATE TABLE builds(kind TEXT NOT NULL, path TEXT NOT NULL, version TEXT NOT NULL,"
    " last INTEGER NOT NULL, PRIMARY KEY(kind, path, version));"
    "CREATE TABLE tags(arn TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY(arn, key));"
    "CREATE TABLE refs(from_arn TEXT NOT NULL, to_arn TEXT NOT NULL,"
    " PRIMARY KEY(from_arn, to_arn));"
    "CREATE INDEX refs_by_target ON refs(to_arn);"
    "CREATE TABLE client_tokens(token TEXT NOT NULL, operation TEXT NOT NULL,"
    " request_hash TEXT NOT NULL, response TEXT NOT NULL, created_ms INTEGER NOT NULL,"
    " PRIMARY KEY(token, operation));"
    "CREATE TABLE policies(arn TEXT PRIMARY KEY, policy TEXT NOT NULL);";

/*
 * Indexes added after schema version 1, created on every open: an index
 * changes no data, so version-1 databases gain them without a migration
 * and older emulators can still open the file. Without ANALYZE statistics
 * SQLite prefers an index that yields ORDER BY seq over one that narrows
 * the search, so "kind = ? AND path = ? ORDER BY seq" (resolving a version
 * ARN, the per-name uniqueness check of Create, the *BuildVersions lists)
 * walked resources_by_kind through every record of the kind;
 * resources_by_kind_path serves both the search and the order.
 */
static const char indexes[] =
    "CREATE INDEX IF NOT EXISTS resources_by_kind_path ON resources(kind, path, seq);";

static int db_error(struct ibs_emulator *emu, const char *what)
{
    return ibs_error_set(IBS_EIO, "%s: %s: %s", emu->db_path, what, sqlite3_errmsg(emu->db));
}

static int exec(struct ibs_emulator *emu, const char *sql)
{
    if (sqlite3_exec(emu->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_error(emu, sql);
    return 0;
}

static int prepare(struct ibs_emulator *emu, sqlite3_stmt **out, const char *sql)
{
    if (sqlite3_prepare_v2(emu->db, sql, -1, out, NULL) != SQLITE_OK)
        return db_error(emu, "prepare");
    return 0;
}

static int bind_text(sqlite3_stmt *st, int idx, const char *s)
{
    int r = s ? sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(st, idx);
    return r == SQLITE_OK ? 0 : ibs_error_oom();
}

/* Runs a statement that returns no rows. */
static int step_done(struct ibs_emulator *emu, sqlite3_stmt *st)
{
    int r = sqlite3_step(st);
    if (r != SQLITE_DONE)
        return r == SQLITE_CONSTRAINT ? ibs_error_set(IBS_EEXISTS, "%s", sqlite3_errmsg(emu->db))
                                      : db_error(emu, "step");
    return 0;
}

static char *column_dup(sqlite3_stmt *st, int col)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    char *p;
    if (!s)
        return NULL;
    p = strdup((const char *)s);
    if (!p)
        ibs_error_oom();
    return p;
}

static int meta_get(struct ibs_emulator *emu, const char *key, void **out, size_t *out_len)
{
    sqlite3_stmt *st = NULL;
    int rc, r;

    *out = NULL;
    if ((rc = prepare(emu, &st, "SELECT value FROM meta WHERE key = ?")))
        return rc;
    if ((rc = bind_text(st, 1, key)))
        goto done;
    r = sqlite3_step(st);
    if (r == SQLITE_DONE) {
        rc = IBS_ENOTFOUND;
        goto done;
    }
    if (r != SQLITE_ROW) {
        rc = db_error(emu, "read meta");
        goto done;
    }
    *out_len = (size_t)sqlite3_column_bytes(st, 0);
    *out = malloc(*out_len + 1);
    if (!*out) {
        rc = ibs_error_oom();
        goto done;
    }
    if (*out_len)
        memcpy(*out, sqlite3_column_blob(st, 0), *out_len);
    ((char *)*out)[*out_len] = '\0';
done:
    sqlite3_finalize(st);
    return rc;
}

static int meta_put(struct ibs_emulator *emu, const char *key, const void *value, size_t len)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prepare(emu, &st, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)")))
        return rc;
    if ((rc = bind_text(st, 1, key)))
        goto done;
    if (sqlite3_bind_blob(st, 2, value, (int)len, SQLITE_TRANSIENT) != SQLITE_OK) {
        rc = ibs_error_oom();
        goto done;
    }
    rc = step_done(emu, st);
done:
    sqlite3_finalize(st);
    return rc;
}

/* Region and account: taken from the database when it has them (an explicit
 * option must agree), else from the option or the default, then stored. */
static int settle_identity(struct ibs_emulator *emu, const char *key, const char *wanted,
                           const char *fallback, char **out)
{
    void *stored = NULL;
    size_t len = 0;
    int rc = meta_get(emu, key, &stored, &len);

    if (rc == 0) {
        if (wanted && strcmp(wanted, stored) != 0) {
            rc = ibs_error_set(IBS_EINVALID, "%s: the data directory holds %s %s, not %s",
                               emu->db_path, key, (char *)stored, wanted);
            goto done;
        }
        *out = stored;
        stored = NULL;
        goto done;
    }
    if (rc != IBS_ENOTFOUND)
        goto done;
    *out = strdup(wanted ? wanted : fallback);
    if (!*out) {
        rc = ibs_error_oom();
        goto done;
    }
    rc = meta_put(emu, key, *out, strlen(*out));
done:
    free(stored);
    return rc;
}

static int load_secret(struct ibs_emulator *emu)
{
    void *stored = NULL;
    size_t len = 0;
    int rc = meta_get(emu, "token_secret", &stored, &len);

    if (rc == 0 && len == IBS_EMULATOR_SECRET_LEN) {
        memcpy(emu->secret, stored, len);
        goto done;
    }
    if (rc && rc != IBS_ENOTFOUND)
        goto done;
    if ((rc = ibs_emulator_random(emu->secret, sizeof(emu->secret))))
        goto done;
    rc = meta_put(emu, "token_secret", emu->secret, sizeof(emu->secret));
done:
    free(stored);
    return rc;
}

static int schema_version(struct ibs_emulator *emu, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prepare(emu, &st, "PRAGMA user_version")))
        return rc;
    if (sqlite3_step(st) != SQLITE_ROW)
        rc = db_error(emu, "PRAGMA user_version");
    else
        *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc;
}

int ibs_emulator_store_open(struct ibs_emulator *emu, const char *region, const char *account)
{
    int version = 0;
    int rc;
    bool in_tx = false;

    if (sqlite3_open_v2(emu->db_path, &emu->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = emu->db ? db_error(emu, "open")
                     : ibs_error_set(IBS_EIO, "%s: cannot open database", emu->db_path);
        return rc;
    }
    /* Another process may hold the write lock briefly (a second emulator on
     * the same directory); wait for it instead of failing at once. */
    sqlite3_busy_timeout(emu->db, 5000);
    if ((rc = exec(emu, "PRAGMA journal_mode=WAL")) || (rc = exec(emu, "PRAGMA synchronous=FULL")))
        return rc;
    if ((rc = exec(emu, "BEGIN IMMEDIATE")))
        return rc;
    in_tx = true;
    if ((rc = schema_version(emu, &version)))
        goto done;
    if (version > SCHEMA_VERSION) {
        rc = ibs_error_set(IBS_EINVALID,
                           "%s: database schema version %d is newer than this emulator (%d)",
                           emu->db_path, version, SCHEMA_VERSION);
        goto done;
    }
    if (version == 0) {
        if ((rc = exec(emu, schema_v1)))
            goto done;
        if ((rc = exec(emu, "PRAGMA user_version = 1")))
            goto done;
    }
    if ((rc = exec(emu, indexes)))
        goto done;
    if ((rc = settle_identity(emu, "region", region, "us-east-1", &emu->region)))
        goto done;
    if ((rc = settle_identity(emu, "account", account, "123456789012", &emu->account)))
        goto done;
    if ((rc = load_secret(emu)))
        goto done;
    rc = exec(emu, "COMMIT");
    in_tx = rc != 0;
done:
    if (in_tx)
        sqlite3_exec(emu->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

void ibs_emulator_store_close(struct ibs_emulator *emu)
{
    if (emu->db)
        sqlite3_close(emu->db);
    emu->db = NULL;
}

int ibs_emulator_store_begin(struct ibs_emulator *emu)
{
    /* IMMEDIATE takes the write lock up front, so a read-then-write call
     * cannot fail half-way with SQLITE_BUSY. */
    return exec(emu, "BEGIN IMMEDIATE");
}

int ibs_emulator_store_commit(struct ibs_emulator *emu)
{
    return exec(emu, "COMMIT");
}

void ibs_emulator_store_rollback(struct ibs_emulator *emu)
{
    if (!sqlite3_get_autocommit(emu->db))
        sqlite3_exec(emu->db, "ROLLBACK", NULL, NULL, NULL);
}

int ibs_emulator_store_insert(struct ibs_emulator *emu, struct ibs_emulator_record *rec)
{
    sqlite3_stmt *st = NULL;
    char *doc = NULL;
    int rc;

    if ((rc = ibs_emulator_to_json(&doc, rec->doc, 0)))
        return rc;
    if ((rc = prepare(emu, &st,
                      "INSERT INTO resources(kind, arn, name, path, version, build, owner, parent,"
                      " created_ms, updated_ms, doc) VALUES(?,?,?,?,?,?,?,?,?,?,?)")))
        goto done;
    if ((rc = bind_text(st, 1, ibs_emulator_kind_get(rec->kind)->type)) ||
        (rc = bind_text(st, 2, rec->arn)) || (rc = bind_text(st, 3, rec->name)) ||
        (rc = bind_text(st, 4, rec->path)) || (rc = bind_text(st, 5, rec->version)) ||
        (rc = bind_text(st, 7, rec->owner)) || (rc = bind_text(st, 8, rec->parent)) ||
        (rc = bind_text(st, 11, doc)))
        goto done;
    if (rec->build)
        sqlite3_bind_int64(st, 6, rec->build);
    sqlite3_bind_int64(st, 9, rec->created_ms);
    if (rec->updated_ms)
        sqlite3_bind_int64(st, 10, rec->updated_ms);
    if ((rc = step_done(emu, st)))
        goto done;
    rec->seq = sqlite3_last_insert_rowid(emu->db);
done:
    sqlite3_finalize(st);
    free(doc);
    return rc;
}

int ibs_emulator_store_update(struct ibs_emulator *emu, const struct ibs_emulator_record *rec)
{
    sqlite3_stmt *st = NULL;
    char *doc = NULL;
    int rc;

    if ((rc = ibs_emulator_to_json(&doc, rec->doc, 0)))
        return rc;
    if ((rc = prepare(emu, &st, "UPDATE resources SET doc = ?, updated_ms = ? WHERE arn = ?")))
        goto done;
    if ((rc = bind_text(st, 1, doc)) || (rc = bind_text(st, 3, rec->arn)))
        goto done;
    sqlite3_bind_int64(st, 2, rec->updated_ms);
    rc = step_done(emu, st);
done:
    sqlite3_finalize(st);
    free(doc);
    return rc;
}

static int delete_where_arn(struct ibs_emulator *emu, const char *sql, const char *arn)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prepare(emu, &st, sql)))
        return rc;
    if (!(rc = bind_text(st, 1, arn)))
        rc = step_done(emu, st);
    sqlite3_finalize(st);
    return rc;
}

int ibs_emulator_store_delete(struct ibs_emulator *emu, const char *arn)
{
    int rc;

    if ((rc = delete_where_arn(emu, "DELETE FROM resources WHERE arn = ?", arn)) ||
        (rc = delete_where_arn(emu, "DELETE FROM tags WHERE arn = ?", arn)) ||
        (rc = delete_where_arn(emu, "DELETE FROM policies WHERE arn = ?", arn)) ||
        (rc = delete_where_arn(emu, "DELETE FROM refs WHERE from_arn = ?", arn)))
        return rc;
    return 0;
}

#define RECORD_COLUMNS                                                                             \
    "seq, kind, arn, name, path, version, build, owner, parent, created_ms, updated_ms, doc"
/* The same without the document (NULL in its place), for scans. */
#define RECORD_COLUMNS_NO_DOC                                                                      \
    "seq, kind, arn, name, path, version, build, owner, parent, created_ms, updated_ms, NULL"

/* Reads the row at `st`; its document when `with_doc`, else rec->doc is NULL. */
static int read_record(struct ibs_emulator_record **out, struct ibs_emulator *emu, sqlite3_stmt *st,
                       bool with_doc)
{
    struct ibs_emulator_record *rec = calloc(1, sizeof(*rec));
    const struct ibs_emulator_kind *kind;
    const char *type = (const char *)sqlite3_column_text(st, 1);
    const char *doc = with_doc ? (const char *)sqlite3_column_text(st, 11) : NULL;
    int rc = 0;

    *out = NULL;
    if (!rec)
        return ibs_error_oom();
    kind = type ? ibs_emulator_kind_by_type(type, strlen(type)) : NULL;
    if (!kind || (with_doc && !doc)) {
        rc = ibs_error_set(IBS_EIO, "%s: corrupt resource row %lld", emu->db_path,
                           (long long)sqlite3_column_int64(st, 0));
        goto done;
    }
    rec->seq = sqlite3_column_int64(st, 0);
    rec->kind = kind->id;
    rec->build = sqlite3_column_int64(st, 6);
    rec->created_ms = sqlite3_column_int64(st, 9);
    rec->updated_ms = sqlite3_column_int64(st, 10);
    rec->arn = column_dup(st, 2);
    rec->name = column_dup(st, 3);
    rec->path = column_dup(st, 4);
    rec->version = column_dup(st, 5);
    rec->owner = column_dup(st, 7);
    rec->parent = column_dup(st, 8);
    if (!rec->arn || !rec->name || !rec->path || !rec->owner ||
        (sqlite3_column_type(st, 5) != SQLITE_NULL && !rec->version) ||
        (sqlite3_column_type(st, 8) != SQLITE_NULL && !rec->parent)) {
        rc = IBS_ENOMEM;
        goto done;
    }
    if (with_doc && (rc = ibs_json_parse(&rec->doc, doc, strlen(doc))))
        goto done;
    *out = rec;
    rec = NULL;
done:
    ibs_emulator_record_free(rec);
    return rc;
}

int ibs_emulator_store_get(struct ibs_emulator_record **out, struct ibs_emulator *emu,
                           const char *arn)
{
    sqlite3_stmt *st = NULL;
    int rc, r;

    *out = NULL;
    if ((rc = prepare(emu, &st, "SELECT " RECORD_COLUMNS " FROM resources WHERE arn = ?")))
        return rc;
    if ((rc = bind_text(st, 1, arn)))
        goto done;
    r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        rc = read_record(out, emu, st, true);
    else if (r == SQLITE_DONE)
        rc = ibs_error_set(IBS_ENOTFOUND, "%s does not exist", arn);
    else
        rc = db_error(emu, "read resource");
done:
    sqlite3_finalize(st);
    return rc;
}

int ibs_emulator_store_scan(struct ibs_vec *out, struct ibs_emulator *emu,
                            enum ibs_emulator_kind_id kind, const char *path, const char *parent,
                            bool with_docs)
{
    struct ibs_buf sql = IBS_BUF_INIT;
    sqlite3_stmt *st = NULL;
    struct ibs_emulator_record *rec = NULL;
    int rc, r;

    /*
     * One statement per combination of restrictions rather than
     * "(?2 IS NULL OR path = ?2)": SQLite plans a statement before the
     * parameters are bound, so that form can only use the (kind, seq) index
     * and reads every record of the kind. These search resources_by_kind,
     * resources_by_kind_path or resources_by_parent (EXPLAIN QUERY PLAN).
     */
    ibs_buf_printf(&sql, "SELECT %s FROM resources WHERE kind = ?1%s%s ORDER BY seq",
                   with_docs ? RECORD_COLUMNS : RECORD_COLUMNS_NO_DOC, path ? " AND path = ?2" : "",
                   parent ? " AND parent = ?3" : "");
    if ((rc = ibs_buf_oom(&sql)))
        return rc;
    if ((rc = prepare(emu, &st, sql.ptr)))
        goto done;
    if ((rc = bind_text(st, 1, ibs_emulator_kind_get(kind)->type)) ||
        (path && (rc = bind_text(st, 2, path))) || (parent && (rc = bind_text(st, 3, parent))))
        goto done;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if ((rc = read_record(&rec, emu, st, with_docs)))
            goto done;
        if ((rc = ibs_vec_push(out, rec))) {
            ibs_emulator_record_free(rec);
            goto done;
        }
    }
    if (r != SQLITE_DONE)
        rc = db_error(emu, "scan resources");
done:
    sqlite3_finalize(st);
    ibs_buf_release(&sql);
    return rc;
}

int ibs_emulator_store_load_doc(struct ibs_emulator *emu, struct ibs_emulator_record *rec)
{
    sqlite3_stmt *st = NULL;
    const char *doc;
    int rc, r;

    if (rec->doc)
        return 0;
    if ((rc = prepare(emu, &st, "SELECT doc FROM resources WHERE seq = ?")))
        return rc;
    sqlite3_bind_int64(st, 1, rec->seq);
    r = sqlite3_step(st);
    if (r == SQLITE_DONE) {
        rc = ibs_error_set(IBS_ENOTFOUND, "%s does not exist", rec->arn);
        goto done;
    }
    if (r != SQLITE_ROW) {
        rc = db_error(emu, "read resource");
        goto done;
    }
    if (!(doc = (const char *)sqlite3_column_text(st, 0))) {
        rc = ibs_error_set(IBS_EIO, "%s: corrupt resource row %lld", emu->db_path,
                           (long long)rec->seq);
        goto done;
    }
    rc = ibs_json_parse(&rec->doc, doc, strlen(doc));
done:
    sqlite3_finalize(st);
    return rc;
}

int ibs_emulator_store_next_build(int64_t *out, struct ibs_emulator *emu,
                                  enum ibs_emulator_kind_id kind, const char *path,
                                  const char *version)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prepare(emu, &st,
                      "INSERT INTO builds(kind, path, version, last) VALUES(?1, ?2, ?3, 1)"
                      " ON CONFLICT(kind, path, version) DO UPDATE SET last = last + 1"
                      " RETURNING last")))
        return rc;
    if ((rc = bind_text(st, 1, ibs_emulator_kind_get(kind)->type)) ||
        (rc = bind_text(st, 2, path)) || (rc = bind_text(st, 3, version)))
        goto done;
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = db_error(emu, "allocate build number");
        goto done;
    }
    *out = sqlite3_column_int64(st, 0);
    if (sqlite3_step(st) != SQLITE_DONE)
        rc = db_error(emu, "allocate build number");
done:
    sqlite3_finalize(st);
    return rc;
}

int ibs_emulator_store_tags_get(struct ibs_value **out, struct ibs_emulator *emu, const char *arn)
{
    sqlite3_stmt *st = NULL;
    struct ibs_value *map = ibs_value_new_map();
    int rc, r;

    *out = NULL;
    if (!map)
        return IBS_ENOMEM;
    if ((rc = prepare(emu, &st, "SELECT key, value FROM tags WHERE arn = ? ORDER BY key")))
        goto done;
    if ((rc = bind_text(st, 1, arn)))
        goto done;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *value = (const char *)sqlite3_column_text(st, 1);
        if ((rc = ibs_emulator_set_str(map, (const char *)sqlite3_column_text(st, 0),
                                       value ? value : "")))
            goto done;
    }
    if (r != SQLITE_DONE) {
        rc = db_error(emu, "read tags");
        goto done;
    }
    *out = map;
    map = NULL;
done:
    sqlite3_finalize(st);
    ibs_value_free(map);
    return rc;
}

int ibs_emulator_store_tags_put(struct ibs_emulator *emu, const char *arn,
                                const struct ibs_value *tags)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (!tags || tags->type != IBS_VALUE_MAP || tags->count == 0)
        return 0;
    if ((rc = prepare(emu, &st, "INSERT OR REPLACE INTO tags(arn, key, value) VALUES(?, ?, ?)")))
        return rc;
    for (size_t i = 0; i < tags->count; i++) {
        const struct ibs_value *v = tags->u.members[i].value;
        sqlite3_reset(st);
        if ((rc = bind_text(st, 1, arn)) || (rc = bind_text(st, 2, tags->u.members[i].key)) ||
            (rc = bind_text(st, 3, v->str ? v->str : "")))
            goto done;
        if ((rc = step_done(emu, st)))
            goto done;
    }
done:
    sqlite3_finalize(st);
    return rc;
}

int ibs_emulator_store_tags_remove(struct ibs_emulator *emu, const char *arn,
                                   const struct ibs_value *keys)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (!keys || keys->type != IBS_VALUE_LIST || keys->count == 0)
        return 0;
    if ((rc = prepare(emu, &st, "DELETE FROM tags WHERE arn = ? AND key = ?")))
        return rc;
    for (size_t i = 0; i < keys->count; i++) {
        const struct ibs_value *k = keys->u.items[i];
        if (k->type != IBS_VALUE_STRING)
            continue;
        sqlite3_reset(st);
        if ((rc = bind_text(st, 1, arn)) || (rc = bind_text(st, 2, k->str)))
            goto done;
        if ((rc = step_done(emu, st)))
            goto done;
    }
done:
    sqlite3_finalize(st);
    return rc;
}

int ibs_emulator_store_refs_set(struct ibs_emulator *emu, const char *from,
                                const struct ibs_vec *to)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = delete_where_arn(emu, "DELETE FROM refs WHERE from_arn = ?", from)))
        return rc;
    if (!to || to->count == 0)
        return 0;
    if ((rc = prepare(emu, &st, "INSERT OR IGNORE INTO refs(from_arn, to_arn) VALUES(?, ?)")))
        return rc;
    for (size_t i = 0; i < to->count; i++) {
        sqlite3_reset(st);
        if ((rc = bind_text(st, 1, from)) || (rc = bind_text(st, 2, to->items[i])))
            goto done;
        if ((rc = step_done(emu, st)))
            goto done;
    }
done:
    sqlite3_finalize(st);
    return rc;
}

int ibs_emulator_store_refs_find(struct ibs_vec *out_from, struct ibs_vec *out_to,
                                 struct ibs_emulator *emu, const char *prefix)
{
    size_t len = strlen(prefix);
    char *upper = NULL;
    sqlite3_stmt *st = NULL;
    int rc, r;

    /*
     * The strings starting with `prefix` are those in [prefix, upper), upper
     * being `prefix` with its last byte incremented (BINARY collation
     * compares bytes), which refs_by_target searches. ARN prefixes are
     * ASCII; for anything else, where the increment could make invalid
     * UTF-8, a scan with substr() stays correct.
     */
    if (len && (unsigned char)prefix[len - 1] < 0x7f) {
        if (!(upper = strdup(prefix)))
            return ibs_error_oom();
        upper[len - 1]++;
    }
    rc = prepare(emu, &st,
                 upper ? "SELECT from_arn, to_arn FROM refs WHERE to_arn >= ?1 AND to_arn < ?2"
                         " ORDER BY from_arn"
                       : "SELECT from_arn, to_arn FROM refs"
                         " WHERE substr(to_arn, 1, length(?1)) = ?1 ORDER BY from_arn");
    if (rc)
        goto done;
    if ((rc = bind_text(st, 1, prefix)) || (upper && (rc = bind_text(st, 2, upper))))
        goto done;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        char *from = column_dup(st, 0);
        char *to = column_dup(st, 1);
        if (!from || !to || ibs_vec_push(out_from, from)) {
            free(from);
            free(to);
            rc = ibs_error_oom();
            goto done;
        }
        if (ibs_vec_push(out_to, to)) {
            free(to);
            free(ibs_vec_pop(out_from));
            rc = ibs_error_oom();
            goto done;
        }
    }
    if (r != SQLITE_DONE)
        rc = db_error(emu, "read references");
done:
    sqlite3_finalize(st);
    free(upper);
    return rc;
}

int ibs_emulator_store_token_get(char **out_hash, char **out_response, struct ibs_emulator *emu,
                                 const char *token, const char *operation)
{
    sqlite3_stmt *st = NULL;
    int rc, r;

    *out_hash = NULL;
    *out_response = NULL;
    if ((rc = prepare(emu, &st,
                      "SELECT request_hash, response FROM client_tokens"
                      " WHERE token = ? AND operation = ?")))
        return rc;
    if ((rc = bind_text(st, 1, token)) || (rc = bind_text(st, 2, operation)))
        goto done;
    r = sqlite3_step(st);
    if (r == SQLITE_DONE) {
        rc = IBS_ENOTFOUND;
        goto done;
    }
    if (r != SQLITE_ROW) {
        rc = db_error(emu, "read client token");
        goto done;
    }
    *out_hash = column_dup(st, 0);
    *out_response = column_dup(st, 1);
    if (!*out_hash || !*out_response) {
        free(*out_hash);
        free(*out_response);
        *out_hash = *out_response = NULL;
        rc = IBS_ENOMEM;
    }
done:
    sqlite3_finalize(st);
    return rc;
}

int ibs_emulator_store_token_put(struct ibs_emulator *emu, const char *token, const char *operation,
                                 const char *hash, const char *response, int64_t now_ms)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prepare(emu, &st,
                      "INSERT INTO client_tokens(token, operation, request_hash, response,"
                      " created_ms) VALUES(?, ?, ?, ?, ?)")))
        return rc;
    if ((rc = bind_text(st, 1, token)) || (rc = bind_text(st, 2, operation)) ||
        (rc = bind_text(st, 3, hash)) || (rc = bind_text(st, 4, response)))
        goto done;
    sqlite3_bind_int64(st, 5, now_ms);
    rc = step_done(emu, st);
done:
    sqlite3_finalize(st);
    return rc;
}

int ibs_emulator_store_policy_get(char **out, struct ibs_emulator *emu, const char *arn)
{
    sqlite3_stmt *st = NULL;
    int rc, r;

    *out = NULL;
    if ((rc = prepare(emu, &st, "SELECT policy FROM policies WHERE arn = ?")))
        return rc;
    if ((rc = bind_text(st, 1, arn)))
        goto done;
    r = sqlite3_step(st);
    if (r == SQLITE_DONE)
        rc = IBS_ENOTFOUND;
    else if (r != SQLITE_ROW)
        rc = db_error(emu, "read policy");
    else if (!(*out = column_dup(st, 0)))
        rc = IBS_ENOMEM;
done:
    sqlite3_finalize(st);
    return rc;
}

int ibs_emulator_store_policy_put(struct ibs_emulator *emu, const char *arn, const char *policy)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if ((rc = prepare(emu, &st, "INSERT OR REPLACE INTO policies(arn, policy) VALUES(?, ?)")))
        return rc;
    if (!(rc = bind_text(st, 1, arn)) && !(rc = bind_text(st, 2, policy)))
        rc = step_done(emu, st);
    sqlite3_finalize(st);
    return rc;
}
