/* fuzz_st_index.c: the sharded safetensors index (model.safetensors.index.json) parser.
 *
 * spx_st_set_open only reads an index from a file, so each input is written to
 * <tmpdir>/model.safetensors.index.json; the directory also holds fixed shards the index can name:
 *   model-00001-of-00002.safetensors  tensors "a" (F32 [2]) and "b" (F16 [1,2])
 *   model-00002-of-00002.safetensors  tensor "c" (BF16 scalar)
 *   dup.safetensors                   tensor "a" again (a name stored in two shards)
 *   bad.safetensors                   not a safetensors file
 * Oracles for a set that opens: every tensor is found at its sorted position by name, names are
 * strictly ascending, and each names its shard. */
#include <string.h>
#include <unistd.h>

#include "fuzz_target.h"
#include "spx_safetensors.h"

static char dir[256];
static char index_path[320];

static const char *const shard_names[4] = {
    "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "dup.safetensors", "bad.safetensors"};

static void put_file(const char *name, const void *a, size_t na, const void *b, size_t nb)
{
    char path[320];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp) {
        perror(path);
        abort();
    }
    fwrite(a, 1, na, fp);
    if (nb)
        fwrite(b, 1, nb, fp);
    fclose(fp);
}

/* u64 LE header length, the header padded with spaces to a multiple of 8, then `nd` data bytes */
static void put_shard(const char *name, const char *json, size_t nd)
{
    unsigned char buf[512];
    size_t n = strlen(json), padded = (n + 7) / 8 * 8;
    memset(buf, 0, sizeof buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(padded >> (8 * i));
    memcpy(buf + 8, json, n);
    memset(buf + 8 + n, ' ', padded - n);
    for (size_t i = 0; i < nd; i++)
        buf[8 + padded + i] = (unsigned char)(0x3c + i);
    put_file(name, buf, 8 + padded + nd, NULL, 0);
}

static void cleanup(void)
{
    char path[320];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, shard_names[i]);
        unlink(path);
    }
    unlink(index_path);
    rmdir(dir);
}

static void setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/spx-fuzz-index-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror(dir);
        abort();
    }
    snprintf(index_path, sizeof index_path, "%s/model.safetensors.index.json", dir);
    put_shard(shard_names[0],
              "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
              "\"b\":{\"dtype\":\"F16\",\"shape\":[1,2],\"data_offsets\":[8,12]}}", 12);
    put_shard(shard_names[1], "{\"__metadata__\":{\"format\":\"pt\"},\"c\":{\"dtype\":\"BF16\",\"shape\":[],"
              "\"data_offsets\":[0,2]}}", 2);
    put_shard(shard_names[2], "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    put_file(shard_names[3], "not a safetensors file", 22, NULL, 0);
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_st_set *s = NULL;
    if (!dir[0])
        setup();
    put_file("model.safetensors.index.json", data, size, NULL, 0);
    int rc = spx_st_set_open(&ctx, index_path, &s);
    FUZZ_ASSERT(rc <= 0 && (rc == 0) == (s != NULL), "return code %d vs *out", rc);
    if (rc < 0) {
        FUZZ_ASSERT(ctx.code == rc && ctx.msg[0], "failure without a message");
        return 0;
    }
    const char *prev = NULL;
    for (size_t i = 0; i < spx_st_set_count(s); i++) {
        const spx_st_file *sh = NULL;
        const spx_st_tensor *t = spx_st_set_tensor(s, i, &sh);
        FUZZ_ASSERT(t && sh, "tensor %zu without a shard", i);
        FUZZ_ASSERT(spx_st_set_index_of(s, t->name) == (long)i, "'%s' not found at %zu", t->name, i);
        FUZZ_ASSERT(!prev || strcmp(prev, t->name) < 0, "names not strictly ascending at '%s'", t->name);
        prev = t->name;
    }
    FUZZ_ASSERT(spx_st_set_index_of(s, "no such tensor") == -1, "absent name found");
    for (size_t i = 0; i < spx_st_set_shard_count(s); i++)
        FUZZ_ASSERT(spx_st_set_shard(s, i) != NULL, "shard %zu is NULL", i);
    spx_st_set_free(s);
    return 0;
}
