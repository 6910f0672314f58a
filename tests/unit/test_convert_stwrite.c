/* test_convert_stwrite.c: the safetensors writer, checked by an independent header parser
 * (cJSON on the raw bytes, with the reference reader's rules: N % 8 == 0, space padding, data
 * offsets contiguous from 0 in header order, sizes == prod(shape) * dtype size, no trailing bytes). */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "spx_error.h"
#include "spx_st_write.h"
#include "spx_test.h"

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    *len = 0;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) {
            buf = malloc((size_t)n + 1);
            if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else if (buf) {
                *len = (size_t)n;
            }
        }
    }
    fclose(f);
    return buf;
}

static size_t dtype_size(const char *d)
{
    static const char *const n1[] = {"BOOL", "U8", "I8"}, *const n2[] = {"F16", "BF16", "I16", "U16"},
                             *const n4[] = {"F32", "I32", "U32"}, *const n8[] = {"F64", "I64", "U64"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(d, n1[i]) || !strcmp(d, n4[i]) || !strcmp(d, n8[i]))
            return !strcmp(d, n1[i]) ? 1 : !strcmp(d, n4[i]) ? 4 : 8;
    for (int i = 0; i < 4; i++)
        if (!strcmp(d, n2[i]))
            return 2;
    return 0;
}

/* Independent validation; returns the parsed header (caller deletes) or NULL after CHECK failures.
 * *data receives a pointer to the data section inside buf. */
static cJSON *check_file(const unsigned char *buf, size_t len, const unsigned char **data)
{
    CHECK(len >= 8);
    if (len < 8)
        return NULL;
    uint64_t n = 0;
    for (int k = 0; k < 8; k++)
        n |= (uint64_t)buf[k] << (8 * k);
    CHECK_MSG(n % 8 == 0, "header length %llu not a multiple of 8", (unsigned long long)n);
    CHECK(n <= len - 8);
    if (n > len - 8)
        return NULL;
    const char *h = (const char *)buf + 8;
    size_t end = (size_t)n;
    while (end > 0 && h[end - 1] == ' ')
        end--;
    CHECK(end > 0 && h[end - 1] == '}');
    CHECK((size_t)n - end < 8);
    cJSON *j = cJSON_ParseWithLength(h, (size_t)n);
    CHECK(j && cJSON_IsObject(j));
    if (!j)
        return NULL;
    uint64_t expect = 0;
    const char *prev = NULL;
    for (cJSON *t = j->child; t; t = t->next) {
        if (!strcmp(t->string, "__metadata__")) {
            CHECK(t == j->child);
            for (cJSON *m = t->child; m; m = m->next)
                CHECK(cJSON_IsString(m));
            continue;
        }
        if (prev)
            CHECK_MSG(strcmp(prev, t->string) < 0, "%s after %s: not sorted", t->string, prev);
        prev = t->string;
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
        cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape");
        cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
        CHECK(cJSON_IsString(dt) && cJSON_IsArray(sh) && cJSON_IsArray(off) && cJSON_GetArraySize(off) == 2);
        if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
            continue;
        double bytes = (double)dtype_size(dt->valuestring);
        CHECK(bytes > 0);
        for (cJSON *d = sh->child; d; d = d->next)
            bytes *= d->valuedouble;
        double b = cJSON_GetArrayItem(off, 0)->valuedouble, e = cJSON_GetArrayItem(off, 1)->valuedouble;
        CHECK_MSG(b == (double)expect, "%s: begin %.0f want %llu", t->string, b, (unsigned long long)expect);
        CHECK_MSG(e - b == bytes, "%s: %.0f bytes want %.0f", t->string, e - b, bytes);
        expect = (uint64_t)e;
    }
    CHECK_MSG(8 + n + expect == len, "file %zu bytes, header+data %llu", len, (unsigned long long)(8 + n + expect));
    *data = buf + 8 + n;
    return j;
}

static int count_tmp_files(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp."))
            n++;
    closedir(d);
    return n;
}

static void test_single(const char *dir)
{
    spx_ctx ctx = SPX_CTX_INIT;
    const char *path = spx_test_path(dir, "a.safetensors");
    float w[6] = {1, 2, 3, 4, 5, -6};
    int32_t scalar = -7;
    uint16_t bf[4] = {0x3F80, 0x4000, 0xC040, 0};
    double d64[4] = {0.5, 1.5, 2.5, 3.5};
    /* declared unsorted; sorted order: a.bias, b.scalar, z"q\\n<e-acute>, z.empty, z.weight */
    spx_st_spec specs[5] = {
        {"z.weight", "F32", 2, {2, 3}},
        {"b.scalar", "I32", 0, {0}},
        {"a.bias", "F64", 2, {2, 2}},
        {"z.empty", "U8", 2, {3, 0}},
        {"z\"q\\n\xC3\xA9", "BF16", 1, {4}},
    };
    spx_st_kv meta[2] = {{"format", "pt"}, {"note", "quote\" backslash\\ newline\n \xE2\x96\x81"}};
    spx_st_writer *w_ = NULL;
    CHECK_RC(spx_st_writer_open(&ctx, path, specs, 5, meta, 2, &w_), 0);
    if (!w_)
        return;
    CHECK(!spx_test_exists(path));   /* nothing at the target before finish */
    size_t idx = 99;
    uint64_t rem = 0;
    const char *nx = spx_st_writer_next(w_, &idx, &rem);
    CHECK(nx && !strcmp(nx, "a.bias") && idx == 2 && rem == 32);
    /* a wrong name is rejected and names the expected tensor */
    CHECK_RC(spx_st_writer_add(&ctx, w_, "z.weight", w, sizeof w), SPX_E_ARG);
    CHECK(strstr(ctx.msg, "a.bias") != NULL);
    /* stream a.bias in uneven chunks */
    CHECK_RC(spx_st_writer_write(&ctx, w_, d64, 5), 0);
    CHECK_RC(spx_st_writer_write(&ctx, w_, (const unsigned char *)d64 + 5, 0), 0);
    CHECK_RC(spx_st_writer_write(&ctx, w_, (const unsigned char *)d64 + 5, 27), 0);
    CHECK_RC(spx_st_writer_add(&ctx, w_, "b.scalar", &scalar, 3), SPX_E_ARG);   /* wrong size */
    CHECK_RC(spx_st_writer_add(&ctx, w_, "b.scalar", &scalar, 4), 0);
    CHECK_RC(spx_st_writer_add(&ctx, w_, "z.empty", NULL, 0), 0);   /* zero-byte tensors by name */
    nx = spx_st_writer_next(w_, &idx, &rem);
    CHECK(nx && !strcmp(nx, specs[4].name) && idx == 4);   /* '"' (0x22) sorts before '.' */
    CHECK_RC(spx_st_writer_write(&ctx, w_, bf, 4), 0);          /* half of it */
    CHECK_RC(spx_st_writer_finish(&ctx, w_), SPX_E_ARG);   /* incomplete */
    CHECK(strstr(ctx.msg, "incomplete") != NULL);
    spx_st_writer_free(w_);
    CHECK(!spx_test_exists(path));
    CHECK(count_tmp_files(dir) == 0);
}

/* The same declaration written fully; content checked byte by byte. */
static void test_roundtrip(const char *dir)
{
    spx_ctx ctx = SPX_CTX_INIT;
    const char *path = spx_test_path(dir, "b.safetensors");
    float w[6] = {1, 2, 3, 4, 5, -6};
    int32_t scalar = -7;
    uint16_t bf[4] = {0x3F80, 0x4000, 0xC040, 0};
    double d64[4] = {0.5, 1.5, 2.5, 3.5};
    spx_st_spec specs[5] = {
        {"z.weight", "F32", 2, {2, 3}},
        {"b.scalar", "I32", 0, {0}},
        {"a.bias", "F64", 2, {2, 2}},
        {"z.empty", "U8", 2, {3, 0}},
        {"z\"q\\n\xC3\xA9", "BF16", 1, {4}},
    };
    const void *datas[5] = {w, &scalar, d64, NULL, bf};
    size_t sizes[5] = {sizeof w, 4, sizeof d64, 0, sizeof bf};
    spx_st_kv meta[2] = {{"note", "quote\" backslash\\ newline\n \xE2\x96\x81"}, {"format", "pt"}};
    spx_st_writer *wr = NULL;
    CHECK_RC(spx_st_writer_open(&ctx, path, specs, 5, meta, 2, &wr), 0);
    if (!wr)
        return;
    size_t idx;
    while (spx_st_writer_next(wr, &idx, NULL))
        CHECK_RC(spx_st_writer_add(&ctx, wr, specs[idx].name, datas[idx], sizes[idx]), 0);
    CHECK(spx_st_writer_shard_count(wr) == 1);
    CHECK(spx_st_writer_data_bytes(wr) == 6 * 4 + 4 + 32 + 0 + 8);
    uint64_t fbytes = spx_st_writer_file_bytes(wr);
    CHECK_RC(spx_st_writer_finish(&ctx, wr), 0);
    CHECK_RC(spx_st_writer_write(&ctx, wr, w, 1), SPX_E_ARG);   /* spent */
    spx_st_writer_free(wr);
    CHECK(count_tmp_files(dir) == 0);

    size_t len;
    unsigned char *buf = slurp(path, &len);
    CHECK(buf != NULL);
    if (!buf)
        return;
    CHECK(len == fbytes);
    const unsigned char *data = NULL;
    cJSON *j = check_file(buf, len, &data);
    if (j) {
        cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "__metadata__");
        cJSON *note = cJSON_GetObjectItemCaseSensitive(m, "note");
        CHECK(cJSON_IsString(note) && !strcmp(note->valuestring, meta[0].value));
        CHECK(cJSON_GetArraySize(j) == 6);
        for (int i = 0; i < 5; i++) {
            cJSON *t = cJSON_GetObjectItemCaseSensitive(j, specs[i].name);
            CHECK_MSG(t != NULL, "tensor %s missing", specs[i].name);
            if (!t)
                continue;
            cJSON *sh = cJSON_GetObjectItemCaseSensitive(t, "shape");
            CHECK(cJSON_GetArraySize(sh) == (int)specs[i].ndim);
            cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype");
            CHECK(!strcmp(dt->valuestring, specs[i].dtype));
            size_t b = (size_t)cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(t, "data_offsets"), 0)->valuedouble;
            if (sizes[i])
                CHECK_MSG(memcmp(data + b, datas[i], sizes[i]) == 0, "tensor %s bytes differ", specs[i].name);
        }
        cJSON_Delete(j);
    }
    free(buf);
}

static void test_errors(const char *dir)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_st_writer *w = NULL;
    const char *path = spx_test_path(dir, "bad.safetensors");
    spx_st_spec dup[2] = {{"x", "F32", 1, {2}}, {"x", "F16", 1, {2}}};
    CHECK_RC(spx_st_writer_open(&ctx, path, dup, 2, NULL, 0, &w), SPX_E_ARG);
    CHECK(w == NULL && strstr(ctx.msg, "twice"));
    spx_st_spec bad_dt[1] = {{"x", "F4", 1, {2}}};
    CHECK_RC(spx_st_writer_open(&ctx, path, bad_dt, 1, NULL, 0, &w), SPX_E_ARG);
    spx_st_spec reserved[1] = {{"__metadata__", "F32", 1, {2}}};
    CHECK_RC(spx_st_writer_open(&ctx, path, reserved, 1, NULL, 0, &w), SPX_E_ARG);
    spx_st_spec empty[1] = {{"", "F32", 1, {2}}};
    CHECK_RC(spx_st_writer_open(&ctx, path, empty, 1, NULL, 0, &w), SPX_E_ARG);
    spx_st_spec bad_utf8[1] = {{"x\xFF", "F32", 1, {2}}};
    CHECK_RC(spx_st_writer_open(&ctx, path, bad_utf8, 1, NULL, 0, &w), SPX_E_ARG);
    spx_st_spec ndim[1] = {{"x", "F32", 9, {1, 1, 1, 1, 1, 1, 1, 1}}};
    CHECK_RC(spx_st_writer_open(&ctx, path, ndim, 1, NULL, 0, &w), SPX_E_ARG);
    spx_st_spec huge[1] = {{"x", "F32", 2, {1ull << 62, 1ull << 62}}};
    CHECK_RC(spx_st_writer_open(&ctx, path, huge, 1, NULL, 0, &w), SPX_E_OVERFLOW);
    spx_st_spec big2[2] = {{"x", "U8", 1, {UINT64_MAX / 2 + 1}}, {"y", "U8", 1, {UINT64_MAX / 2 + 1}}};
    CHECK_RC(spx_st_writer_open(&ctx, path, big2, 2, NULL, 0, &w), SPX_E_OVERFLOW);
    spx_st_spec one[1] = {{"x", "F32", 1, {2}}};
    spx_st_kv dupk[2] = {{"k", "1"}, {"k", "2"}};
    CHECK_RC(spx_st_writer_open(&ctx, path, one, 1, dupk, 2, &w), SPX_E_ARG);
    CHECK_RC(spx_st_writer_open(&ctx, spx_test_path(dir, "no/such/dir/x.safetensors"), one, 1, NULL, 0, &w), SPX_E_IO);
    CHECK(w == NULL);
    /* too many bytes for the current tensor */
    float v[3] = {1, 2, 3};
    CHECK_RC(spx_st_writer_open(&ctx, path, one, 1, NULL, 0, &w), 0);
    if (w) {
        CHECK_RC(spx_st_writer_write(&ctx, w, v, 12), SPX_E_ARG);
        CHECK(strstr(ctx.msg, "remain") != NULL);
        CHECK_RC(spx_st_writer_write(&ctx, w, v, 8), 0);
        CHECK_RC(spx_st_writer_write(&ctx, w, v, 1), SPX_E_ARG);   /* past the last tensor */
        spx_st_writer_free(w);   /* not finished: no file */
        w = NULL;
    }
    CHECK(!spx_test_exists(path));
    /* no tensors at all: a valid file with header "{}" + 6 spaces */
    CHECK_RC(spx_st_writer_open(&ctx, path, NULL, 0, NULL, 0, &w), 0);
    if (w) {
        CHECK_RC(spx_st_writer_finish(&ctx, w), 0);
        spx_st_writer_free(w);
        size_t len;
        unsigned char *buf = slurp(path, &len);
        CHECK(buf && len == 16 && buf[0] == 8 && !memcmp(buf + 8, "{}      ", 8));
        free(buf);
    }
    spx_st_writer_free(NULL);
    CHECK(count_tmp_files(dir) == 0);
}

/* fill callbacks for the drivers */
static int fill_ok(spx_ctx *ctx, void *ud, size_t index, const spx_st_spec *spec, spx_st_writer *w)
{
    (void)ud;
    unsigned char buf[400];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(index * 7 + i);
    size_t n = (size_t)spec->shape[0] * 4;
    if (n > sizeof buf)
        return spx_err_set(ctx, SPX_E_INTERNAL, "test tensor too big");
    return spx_st_writer_add(ctx, w, spec->name, buf, n);
}

static int fill_short(spx_ctx *ctx, void *ud, size_t index, const spx_st_spec *spec, spx_st_writer *w)
{
    (void)ud;
    (void)index;
    unsigned char buf[4] = {0};
    return spx_st_writer_write(ctx, w, buf, spec->shape[0] > 1 ? 4 : 0);
}

static void test_sharded(const char *dir)
{
    spx_ctx ctx = SPX_CTX_INIT;
    char names[10][16];
    spx_st_spec specs[10];
    /* 9 tensors of 100 bytes and one of 400 (larger than the 250-byte limit) */
    for (int i = 0; i < 10; i++) {
        snprintf(names[i], sizeof names[i], "t%02d", 9 - i);
        specs[i].name = names[i];
        specs[i].dtype = "F32";
        specs[i].ndim = 1;
        specs[i].shape[0] = (9 - i) == 4 ? 100 : 25;
    }
    spx_st_kv meta[1] = {{"format", "pt"}};
    uint32_t n_shards = 0;
    uint64_t fbytes = 0;
    CHECK_RC(spx_st_write_sharded(&ctx, dir, "model", 250, specs, 10, meta, 1, fill_ok, NULL, &n_shards, &fbytes), 0);
    /* t00 t01 | t02 t03 | t04 (400) | t05 t06 | t07 t08 | t09 */
    CHECK_MSG(n_shards == 6, "%u shards", n_shards);
    static const int per_shard[6] = {2, 2, 1, 2, 2, 1};
    uint64_t total_files = 0, total_data = 0;
    for (uint32_t s = 0; s < n_shards && s < 6; s++) {
        char fn[64];
        snprintf(fn, sizeof fn, "model-%05u-of-%05u.safetensors", s + 1, n_shards);
        size_t len;
        unsigned char *buf = slurp(spx_test_path(dir, fn), &len);
        CHECK_MSG(buf != NULL, "%s missing", fn);
        if (!buf)
            continue;
        total_files += len;
        const unsigned char *data;
        cJSON *j = check_file(buf, len, &data);
        if (j) {
            CHECK_MSG(cJSON_GetArraySize(j) == per_shard[s] + 1, "%s has %d entries", fn, cJSON_GetArraySize(j));
            for (cJSON *t = j->child; t; t = t->next) {
                if (!strcmp(t->string, "__metadata__"))
                    continue;
                int idx = 9 - atoi(t->string + 1);
                size_t b = (size_t)cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(t, "data_offsets"), 0)->valuedouble;
                CHECK(data[b] == (unsigned char)(idx * 7) && data[b + 99] == (unsigned char)(idx * 7 + 99));
                total_data += specs[idx].shape[0] * 4;
            }
            cJSON_Delete(j);
        }
        free(buf);
    }
    CHECK(total_files == fbytes);
    CHECK(total_data == 1300);
    size_t len;
    char *idx = (char *)slurp(spx_test_path(dir, "model.safetensors.index.json"), &len);
    CHECK(idx != NULL);
    if (idx) {
        cJSON *j = cJSON_ParseWithLength(idx, len);
        CHECK(j != NULL);
        cJSON *ts = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "metadata"), "total_size");
        CHECK(cJSON_IsNumber(ts) && ts->valuedouble == 1300);
        cJSON *wm = cJSON_GetObjectItemCaseSensitive(j, "weight_map");
        CHECK(cJSON_GetArraySize(wm) == 10);
        cJSON *t4 = cJSON_GetObjectItemCaseSensitive(wm, "t04");
        CHECK(cJSON_IsString(t4) && !strcmp(t4->valuestring, "model-00003-of-00006.safetensors"));
        cJSON_Delete(j);
        free(idx);
    }
    /* a callback that writes too little is caught, and nothing is left behind */
    const char *sub = spx_test_path(dir, "short.safetensors");
    CHECK_RC(spx_st_write_file(&ctx, sub, specs, 10, NULL, 0, fill_short, NULL, NULL), SPX_E_ARG);
    CHECK(strstr(ctx.msg, "incomplete") != NULL);
    CHECK(!spx_test_exists(sub));
    CHECK_RC(spx_st_write_sharded(&ctx, dir, "m2", 0, specs, 10, NULL, 0, fill_ok, NULL, NULL, NULL), SPX_E_ARG);
    CHECK(count_tmp_files(dir) == 0);
}

/* spx_st_write_blob: atomic small files */
static void test_blob(const char *dir)
{
    spx_ctx ctx = SPX_CTX_INIT;
    const char *p = spx_test_path(dir, "blob.txt");
    CHECK_RC(spx_st_write_blob(&ctx, p, "hello\n", 6), 0);
    CHECK_RC(spx_st_write_blob(&ctx, p, "bye\n", 4), 0);   /* replaces */
    size_t len;
    unsigned char *b = slurp(p, &len);
    CHECK(b && len == 4 && !memcmp(b, "bye\n", 4));
    free(b);
    CHECK_RC(spx_st_write_blob(&ctx, spx_test_path(dir, "nodir/x"), "x", 1), SPX_E_IO);
    CHECK(spx_st_dtype_bytes("BF16") == 2 && spx_st_dtype_bytes("F64") == 8 && spx_st_dtype_bytes("F4") == 0);
}

int spx_test_main(void)
{
    const char *dir = spx_test_tmpdir();
    test_single(dir);
    test_roundtrip(dir);
    test_errors(dir);
    test_sharded(dir);
    test_blob(dir);
    return 0;
}
