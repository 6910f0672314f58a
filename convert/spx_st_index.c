/* spx_st_index.c: a set of safetensors shards (one file, or model.safetensors.index.json) seen as
 * one name -> tensor table. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spx_io.h"
#include "spx_safetensors.h"

#define INDEX_MAX_BYTES SPX_ST_HEADER_MAX

typedef struct set_entry {
    const char *name;              /* borrowed from the shard */
    size_t shard;
    const spx_st_tensor *t;
} set_entry;

struct spx_st_set {
    spx_st_file **shards;
    size_t n_shards;
    set_entry *all;                /* sorted by name */
    size_t n_all;
};

typedef struct wm_entry {
    const char *name;              /* borrowed from the cJSON tree */
    const char *file;
} wm_entry;

static int cmp_set_entry(const void *a, const void *b)
{
    return strcmp(((const set_entry *)a)->name, ((const set_entry *)b)->name);
}

static int cmp_wm(const void *a, const void *b)
{
    return strcmp(((const wm_entry *)a)->name, ((const wm_entry *)b)->name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Build the sorted name table over all shards; a name in two shards is an error. */
static int build_table(spx_ctx *ctx, spx_st_set *s, const char *label)
{
    int rc = 0;
    size_t total = 0;
    for (size_t i = 0; i < s->n_shards; i++)
        total += spx_st_count(s->shards[i]);
    s->all = malloc((total + 1) * sizeof *s->all);
    if (!s->all)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", label);
    for (size_t i = 0; i < s->n_shards; i++)
        for (size_t k = 0; k < spx_st_count(s->shards[i]); k++) {
            const spx_st_tensor *t = spx_st_tensor_at(s->shards[i], k);
            s->all[s->n_all++] = (set_entry){t->name, i, t};
        }
    if (s->n_all)
        qsort(s->all, s->n_all, sizeof *s->all, cmp_set_entry);
    for (size_t i = 1; i < s->n_all; i++)
        if (strcmp(s->all[i - 1].name, s->all[i].name) == 0) {
            size_t a = s->all[i - 1].shard, b = s->all[i].shard;
            if (a > b) { size_t t = a; a = b; b = t; }
            SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: tensor '%s' is stored in two shards: %s and %s", label,
                     s->all[i].name, spx_st_path(s->shards[a]), spx_st_path(s->shards[b]));
        }
done:
    return rc;
}

static int valid_shard_name(const char *s)
{
    return s[0] && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static int open_index(spx_ctx *ctx, spx_st_set *s, const char *path)
{
    int rc = 0;
    char *text = NULL, *dir = NULL, *shard_path = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    wm_entry *wm = NULL;
    const char **files = NULL;
    size_t n_wm = 0, n_files = 0;
    SPX_TRY(rc, spx_io_read_file(ctx, path, "index file", INDEX_MAX_BYTES, SPX_E_SAFETENSORS, &text, &len));
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root)
        SPX_FAIL(ctx, rc, SPX_E_JSON, "%s: invalid JSON near byte %zu", path, end ? (size_t)(end - text) : (size_t)0);
    for (const char *p = end; p < text + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            SPX_FAIL(ctx, rc, SPX_E_JSON, "%s: unexpected data after the JSON object at byte %zu", path,
                     (size_t)(p - text));
    if (!cJSON_IsObject(root))
        SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: not a JSON object", path);
    const cJSON *map = NULL, *meta = NULL;
    for (const cJSON *c = root->child; c; c = c->next) {
        const cJSON **slot = strcmp(c->string, "weight_map") == 0 ? &map
                             : strcmp(c->string, "metadata") == 0 ? &meta : NULL;
        if (slot && *slot)
            SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: duplicate key '%s'", path, c->string);
        if (slot)
            *slot = c;
    }
    if (!cJSON_IsObject(map))
        SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: no \"weight_map\" object", path);
    if (meta && !cJSON_IsObject(meta) && !cJSON_IsNull(meta))
        SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: \"metadata\" is not an object", path);
    size_t cnt = (size_t)cJSON_GetArraySize(map);
    wm = malloc((cnt + 1) * sizeof *wm);
    files = malloc((cnt + 1) * sizeof *files);
    if (!wm || !files)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", path);
    for (const cJSON *c = map->child; c; c = c->next) {
        if (!cJSON_IsString(c) || !valid_shard_name(c->valuestring))
            SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: weight_map entry '%s' is not a plain shard file name", path,
                     c->string);
        wm[n_wm++] = (wm_entry){c->string, c->valuestring};
        files[n_files++] = c->valuestring;
    }
    if (n_wm == 0)
        SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: weight_map is empty", path);
    qsort(wm, n_wm, sizeof *wm, cmp_wm);
    for (size_t i = 1; i < n_wm; i++)
        if (strcmp(wm[i - 1].name, wm[i].name) == 0)
            SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: weight_map lists tensor '%s' twice", path, wm[i].name);
    /* distinct shard names, sorted: each shard is opened once, in a deterministic order */
    qsort(files, n_files, sizeof *files, cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < n_files; i++)
        if (u == 0 || strcmp(files[u - 1], files[i]) != 0)
            files[u++] = files[i];
    n_files = u;
    dir = strdup(path);
    if (!dir)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[1] = '\0';
    else
        dir[0] = '\0';
    s->shards = calloc(n_files, sizeof *s->shards);
    if (!s->shards)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n_files; i++) {
        free(shard_path);
        size_t need = strlen(dir) + strlen(files[i]) + 1;
        shard_path = malloc(need);
        if (!shard_path)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
        snprintf(shard_path, need, "%s%s", dir, files[i]);
        rc = spx_st_open(ctx, shard_path, &s->shards[i]);
        if (rc < 0) {
            spx_err_prefix(ctx, "shard of %s: ", path);
            goto done;
        }
        s->n_shards++;
    }
    SPX_TRY(rc, build_table(ctx, s, path));
    /* every listed tensor is in its shard ... */
    for (size_t i = 0; i < n_wm; i++) {
        const spx_st_file *in = NULL;
        long k = spx_st_set_index_of(s, wm[i].name);
        if (k >= 0)
            spx_st_set_tensor(s, (size_t)k, &in);
        if (k < 0)
            SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: tensor '%s' is listed in shard %s but no shard contains it",
                     path, wm[i].name, wm[i].file);
        const char *base = strrchr(spx_st_path(in), '/');
        base = base ? base + 1 : spx_st_path(in);
        if (strcmp(base, wm[i].file) != 0)
            SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: tensor '%s' is listed in shard %s but stored in %s", path,
                     wm[i].name, wm[i].file, spx_st_path(in));
    }
    /* ... and every stored tensor is listed */
    for (size_t i = 0; i < s->n_all; i++) {
        wm_entry key = {s->all[i].name, NULL};
        if (!bsearch(&key, wm, n_wm, sizeof *wm, cmp_wm))
            SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: tensor '%s' of shard %s is not listed in weight_map", path,
                     s->all[i].name, spx_st_path(s->shards[s->all[i].shard]));
    }
done:
    cJSON_Delete(root);
    free(text);
    free(dir);
    free(shard_path);
    free(wm);
    free(files);
    return rc;
}

int spx_st_set_open(spx_ctx *ctx, const char *path, spx_st_set **out)
{
    int rc = 0;
    spx_st_set *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    if (ends_with(path, ".json")) {
        SPX_TRY(rc, open_index(ctx, s, path));
    } else {
        s->shards = calloc(1, sizeof *s->shards);
        if (!s->shards)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
        SPX_TRY(rc, spx_st_open(ctx, path, &s->shards[0]));
        s->n_shards = 1;
        SPX_TRY(rc, build_table(ctx, s, path));
    }
    *out = s;
    s = NULL;
done:
    spx_st_set_free(s);
    return rc;
}

void spx_st_set_free(spx_st_set *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_shards; i++)
        spx_st_free(s->shards[i]);
    free(s->shards);
    free(s->all);
    free(s);
}

size_t spx_st_set_shard_count(const spx_st_set *s) { return s->n_shards; }

const spx_st_file *spx_st_set_shard(const spx_st_set *s, size_t i)
{
    return i < s->n_shards ? s->shards[i] : NULL;
}

size_t spx_st_set_count(const spx_st_set *s) { return s->n_all; }

const spx_st_tensor *spx_st_set_tensor(const spx_st_set *s, size_t i, const spx_st_file **file)
{
    if (i >= s->n_all)
        return NULL;
    if (file)
        *file = s->shards[s->all[i].shard];
    return s->all[i].t;
}

long spx_st_set_index_of(const spx_st_set *s, const char *name)
{
    size_t lo = 0, hi = s->n_all;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->all[mid].name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}
