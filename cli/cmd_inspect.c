/* cmd_inspect.c: `spx inspect FILE [--json] [--check]`: header, metadata and tensor table of a
 * .spx file; --check verifies every checksum, gap and encoding invariant. The JSON schema is
 * documented in specs/spx-inspect-json.md. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "spx_nonfinite.h"
#include "cli.h"
#include "spx_format.h"

#define PREVIEW_BYTES 60     /* long strings show their length and this many bytes */
#define JSON_STR_FULL 256    /* JSON carries strings up to this length in full */
#define ARR_SHOWN 8          /* text: array elements shown */
#define JSON_ARR_SHOWN 16    /* JSON: array elements included */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: spx inspect FILE [--json] [--check]\n\n"
            "Print the header, metadata and tensor table of a .spx file.\n"
            "Opening validates the header, table and metadata (checksums included).\n\n"
            "options:\n"
            "  --json    print one JSON object instead (schema: specs/spx-inspect-json.md)\n"
            "  --check   also verify every tensor's data checksum, the zero gaps and every\n"
            "            sparse-encoding invariant, and that every weight is finite (a NaN/Inf\n"
            "            names the tensor and index); prints only \"check: OK (N tensors, M bytes)\"\n"
            "            (with --json: the full object plus a \"check\" member)\n"
            "  --help    this text\n\n"
            "Exit status: 0 valid, 1 invalid or unreadable file, 2 usage error.\n");
}

/* Longest prefix of s (len bytes) that is at most `max` bytes and does not split a UTF-8 character. */
static size_t utf8_prefix(const char *s, size_t len, size_t max)
{
    size_t n = len < max ? len : max;
    if (n < len)
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    return n;
}

static void print_escaped(const char *s, size_t len)
{
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void print_str_value(const char *s, size_t len)
{
    if (len <= PREVIEW_BYTES) {
        print_escaped(s, len);
        return;
    }
    printf("%zu bytes: ", len);
    print_escaped(s, utf8_prefix(s, len, PREVIEW_BYTES));
    fputs("...", stdout);
}

static void print_arr_elem(const spx_meta *m, uint64_t i)
{
    uint32_t l;
    const char *s;
    switch (m->elem_type) {
    case SPX_META_STR:
        s = spx_meta_arr_str(m, i, &l);
        print_str_value(s, l);
        break;
    case SPX_META_F32: printf("%.9g", spx_meta_arr_f64(m, i)); break;
    case SPX_META_F64: printf("%.17g", spx_meta_arr_f64(m, i)); break;
    case SPX_META_U64: printf("%" PRIu64, (uint64_t)spx_meta_arr_i64(m, i)); break;
    case SPX_META_BOOL: fputs(spx_meta_arr_i64(m, i) ? "true" : "false", stdout); break;
    default: printf("%" PRId64, spx_meta_arr_i64(m, i)); break;
    }
}

static void print_meta(const spx_meta *m, int width)
{
    printf("  %-*s %-5s ", width, m->key, m->type == SPX_META_ARR ? "ARR" : spx_meta_type_name(m->type));
    switch (m->type) {
    case SPX_META_U32: case SPX_META_U64: printf("%" PRIu64, m->v.u); break;
    case SPX_META_I32: case SPX_META_I64: printf("%" PRId64, m->v.i); break;
    case SPX_META_F32: printf("%.9g", m->v.f); break;
    case SPX_META_F64: printf("%.17g", m->v.f); break;
    case SPX_META_BOOL: fputs(m->v.u ? "true" : "false", stdout); break;
    case SPX_META_STR: print_str_value(m->str, (size_t)m->count); break;
    default:
        printf("%s[%" PRIu64 "]", spx_meta_type_name(m->elem_type), m->count);
        for (uint64_t i = 0; i < m->count && i < ARR_SHOWN; i++) {
            fputs(i ? ", " : " ", stdout);
            print_arr_elem(m, i);
        }
        if (m->count > ARR_SHOWN)
            fputs(", ...", stdout);
        break;
    }
    putchar('\n');
}

static void dims_str(const spx_tensor *t, char *buf, size_t cap)
{
    size_t n = 0;
    n += (size_t)snprintf(buf, cap, "[");
    for (int k = 0; k < t->ndim && n < cap; k++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRIu64, k ? ", " : "", t->dims[k]);
    if (n < cap)
        snprintf(buf + n, cap - n, "]");
}

static void enc_str(const spx_tensor *t, char *buf, size_t cap)
{
    if (t->encoding == SPX_ENC_NM)
        snprintf(buf, cap, "nm %u:%u", t->nm_n, t->nm_m);
    else
        snprintf(buf, cap, "%s", spx_encoding_name(t->encoding));
}

static double density(const spx_tensor *t)
{
    double numel = 1.0;
    for (int k = 0; k < t->ndim; k++)
        numel *= (double)t->dims[k];
    return (double)t->nnz / numel;
}

/* "experts" section of expanded files: per block the expert count of each router, its PCA
 * dimension and the calibration cluster sizes (spx.expand.cluster_sizes.{l}.up / .down). */
static void print_experts(const spx_file *f)
{
    spx_ctx ctx = SPX_CTX_INIT;
    uint32_t k = 0, nb = 0;
    const char *arch = NULL, *routing = "?";
    size_t len;
    char key[SPX_NAME_MAX + 64];
    if (spx_meta_get_u32(&ctx, f, "spx.expand.experts", &k) < 0 ||
        spx_meta_get_str(&ctx, f, "general.architecture", &arch, &len) < 0)
        return;
    snprintf(key, sizeof key, "%s.block_count", arch);
    if (spx_meta_get_u32(&ctx, f, key, &nb) < 0)
        return;
    if (spx_meta_get_str(&ctx, f, "spx.expand.routing", &routing, &len) < 0)
        routing = "?";
    printf("\nexperts (spx.expand.experts = %u, routing %s):\n", k, routing);
    for (uint32_t l = 0; l < nb; l++) {
        static const char *const which[2] = {"up", "down"};
        const spx_tensor *c;
        snprintf(key, sizeof key, "blk.%u.ffn_up.router.centroids", l);
        if (!spx_file_find(f, key))
            continue;
        printf("  blk.%u", l);
        for (int w = 0; w < 2; w++) {
            const spx_meta *m;
            snprintf(key, sizeof key, "blk.%u.ffn_%s.router.centroids", l, which[w]);
            c = spx_file_find(f, key);
            snprintf(key, sizeof key, "blk.%u.ffn_%s.router.proj", l, which[w]);
            printf("  %s: K %" PRIu64 ", pca %" PRIu64, which[w], c ? c->dims[0] : 0,
                   spx_file_find(f, key) ? spx_file_find(f, key)->dims[0] : 0);
            snprintf(key, sizeof key, "spx.expand.cluster_sizes.%u.%s", l, which[w]);
            m = spx_file_meta_find(f, key);
            if (m && m->type == SPX_META_ARR && m->elem_type <= SPX_META_I64) {
                fputs(", sizes", stdout);
                for (uint64_t i = 0; i < m->count; i++)
                    printf(" %" PRId64, spx_meta_arr_i64(m, i));
            }
        }
        putchar('\n');
    }
}

static void print_text(const spx_file *f)
{
    const spx_header *h = spx_file_header(f);
    uint32_t nt = spx_file_tensor_count(f);
    size_t nm = spx_file_meta_count(f);
    int kw = 8, nw = 4;
    char dims[128], enc[32];
    printf("file        %s\n", spx_file_path(f));
    printf("version     %u.%u\n", h->major, h->minor);
    fputs("writer      ", stdout);
    print_escaped(h->writer, strlen(h->writer));
    printf("\nfile_size   %" PRIu64 "\n", h->file_size);
    printf("alignment   %u\n", h->alignment);
    printf("features    required 0x%016" PRIx64 "  optional 0x%016" PRIx64 "\n", h->required_features,
           h->optional_features);
    printf("table       %u tensors at byte %" PRIu64 " (crc32 0x%08x)\n", nt, h->table_offset, h->table_crc32);
    printf("metadata    %zu entries, %" PRIu64 " bytes at byte %" PRIu64 " (crc32 0x%08x)\n", nm, h->meta_size,
           h->meta_offset, h->meta_crc32);
    printf("header_crc  0x%08x\n", h->header_crc32);

    for (size_t i = 0; i < nm; i++)
        if ((int)strlen(spx_file_meta(f, i)->key) > kw)
            kw = (int)strlen(spx_file_meta(f, i)->key);
    printf("\nmetadata (%zu):\n", nm);
    for (size_t i = 0; i < nm; i++)
        print_meta(spx_file_meta(f, i), kw);

    for (uint32_t i = 0; i < nt; i++)
        if ((int)strlen(spx_file_tensor(f, i)->name) > nw)
            nw = (int)strlen(spx_file_tensor(f, i)->name);
    printf("\ntensors (%u):\n", nt);
    printf("  %5s  %-*s %-5s %-9s %-20s %12s %8s %12s %12s %10s\n", "#", nw, "name", "dtype", "encoding", "dims",
           "nnz", "density", "bytes", "offset", "crc32");
    for (uint32_t i = 0; i < nt; i++) {
        const spx_tensor *t = spx_file_tensor(f, i);
        dims_str(t, dims, sizeof dims);
        enc_str(t, enc, sizeof enc);
        printf("  %5u  %-*s %-5s %-9s %-20s %12" PRIu64 " %8.4f %12" PRIu64 " %12" PRIu64 " 0x%08x\n", i, nw, t->name,
               spx_dtype_name(t->dtype), enc, dims, t->nnz, density(t), t->data_size, t->data_offset, t->data_crc32);
    }
    print_experts(f);
}

/* ---- JSON ---------------------------------------------------------------------------------- */

/* Integers above 2^53 do not survive a JSON double: they are emitted as decimal strings. */
static cJSON *json_u64(uint64_t v)
{
    char buf[32];
    if (v <= (1ull << 53))
        return cJSON_CreateNumber((double)v);
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cJSON_CreateString(buf);
}

static cJSON *json_i64(int64_t v)
{
    char buf[32];
    if (v <= (1ll << 53) && v >= -(1ll << 53))
        return cJSON_CreateNumber((double)v);
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return cJSON_CreateString(buf);
}

/* Strings are valid UTF-8 without NUL (the reader checked), so a bounded copy is a C string. */
static cJSON *json_str_n(const char *s, size_t len)
{
    char *tmp = malloc(len + 1);
    cJSON *j;
    if (!tmp)
        return NULL;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    j = cJSON_CreateString(tmp);
    free(tmp);
    return j;
}

static void json_add_str(cJSON *o, const char *s, size_t len)
{
    cJSON_AddItemToObject(o, "length", json_u64(len));
    if (len <= JSON_STR_FULL) {
        cJSON_AddItemToObject(o, "value", json_str_n(s, len));
    } else {
        cJSON_AddItemToObject(o, "preview", json_str_n(s, utf8_prefix(s, len, PREVIEW_BYTES)));
        cJSON_AddBoolToObject(o, "truncated", 1);
    }
}

static cJSON *json_arr_elem(const spx_meta *m, uint64_t i)
{
    uint32_t l;
    const char *s;
    switch (m->elem_type) {
    case SPX_META_STR:
        s = spx_meta_arr_str(m, i, &l);
        return json_str_n(s, l);
    case SPX_META_F32: case SPX_META_F64: return cJSON_CreateNumber(spx_meta_arr_f64(m, i));
    case SPX_META_U64: return json_u64((uint64_t)spx_meta_arr_i64(m, i));
    case SPX_META_BOOL: return cJSON_CreateBool(spx_meta_arr_i64(m, i) != 0);
    default: return json_i64(spx_meta_arr_i64(m, i));
    }
}

static cJSON *json_meta(const spx_meta *m)
{
    cJSON *o = cJSON_CreateObject(), *a;
    cJSON_AddStringToObject(o, "key", m->key);
    cJSON_AddStringToObject(o, "type", spx_meta_type_name(m->type));
    switch (m->type) {
    case SPX_META_U32: case SPX_META_U64: cJSON_AddItemToObject(o, "value", json_u64(m->v.u)); break;
    case SPX_META_I32: case SPX_META_I64: cJSON_AddItemToObject(o, "value", json_i64(m->v.i)); break;
    case SPX_META_F32: case SPX_META_F64: cJSON_AddNumberToObject(o, "value", m->v.f); break;
    case SPX_META_BOOL: cJSON_AddBoolToObject(o, "value", m->v.u != 0); break;
    case SPX_META_STR: json_add_str(o, m->str, (size_t)m->count); break;
    default:
        cJSON_AddStringToObject(o, "elem_type", spx_meta_type_name(m->elem_type));
        cJSON_AddItemToObject(o, "count", json_u64(m->count));
        a = cJSON_AddArrayToObject(o, "values");
        for (uint64_t i = 0; i < m->count && i < JSON_ARR_SHOWN; i++)
            cJSON_AddItemToArray(a, json_arr_elem(m, i));
        cJSON_AddBoolToObject(o, "truncated", m->count > JSON_ARR_SHOWN);
        break;
    }
    return o;
}

static cJSON *json_index(uint32_t v)
{
    return v == SPX_NO_INDEX ? cJSON_CreateNull() : cJSON_CreateNumber(v);
}

static cJSON *json_tensor(const spx_tensor *t, uint32_t i)
{
    cJSON *o = cJSON_CreateObject(), *d;
    uint64_t numel = 1;
    cJSON_AddNumberToObject(o, "index", i);
    cJSON_AddStringToObject(o, "name", t->name);
    cJSON_AddStringToObject(o, "dtype", spx_dtype_name(t->dtype));
    cJSON_AddStringToObject(o, "encoding", spx_encoding_name(t->encoding));
    cJSON_AddNumberToObject(o, "nm_n", t->nm_n);
    cJSON_AddNumberToObject(o, "nm_m", t->nm_m);
    cJSON_AddStringToObject(o, "role", spx_role_name(t->role));
    cJSON_AddItemToObject(o, "layer", json_index(t->layer));
    cJSON_AddItemToObject(o, "expert", json_index(t->expert));
    d = cJSON_AddArrayToObject(o, "dims");
    for (int k = 0; k < t->ndim; k++) {
        cJSON_AddItemToArray(d, json_u64(t->dims[k]));
        numel *= t->dims[k]; /* the reader checked that this does not overflow */
    }
    cJSON_AddItemToObject(o, "numel", json_u64(numel));
    cJSON_AddItemToObject(o, "nnz", json_u64(t->nnz));
    cJSON_AddNumberToObject(o, "density", density(t));
    cJSON_AddItemToObject(o, "data_offset", json_u64(t->data_offset));
    cJSON_AddItemToObject(o, "data_size", json_u64(t->data_size));
    cJSON_AddNumberToObject(o, "data_crc32", t->data_crc32);
    return o;
}

static int print_json(const spx_file *f, int checked)
{
    const spx_header *h = spx_file_header(f);
    cJSON *root = cJSON_CreateObject(), *hj, *arr;
    char *txt;
    cJSON_AddStringToObject(root, "format", "spx");
    cJSON_AddNumberToObject(root, "inspect_schema", 1);
    cJSON_AddStringToObject(root, "file", spx_file_path(f));
    hj = cJSON_AddObjectToObject(root, "header");
    cJSON_AddNumberToObject(hj, "major", h->major);
    cJSON_AddNumberToObject(hj, "minor", h->minor);
    cJSON_AddNumberToObject(hj, "header_size", h->header_size);
    cJSON_AddItemToObject(hj, "required_features", json_u64(h->required_features));
    cJSON_AddItemToObject(hj, "optional_features", json_u64(h->optional_features));
    cJSON_AddItemToObject(hj, "file_size", json_u64(h->file_size));
    cJSON_AddNumberToObject(hj, "alignment", h->alignment);
    cJSON_AddNumberToObject(hj, "tensor_count", h->tensor_count);
    cJSON_AddItemToObject(hj, "table_offset", json_u64(h->table_offset));
    cJSON_AddItemToObject(hj, "meta_offset", json_u64(h->meta_offset));
    cJSON_AddItemToObject(hj, "meta_size", json_u64(h->meta_size));
    cJSON_AddNumberToObject(hj, "table_crc32", h->table_crc32);
    cJSON_AddNumberToObject(hj, "meta_crc32", h->meta_crc32);
    /* the writer field is informational and may hold any bytes: keep printable ASCII only */
    char wr[sizeof h->writer];
    size_t n = 0;
    for (const char *p = h->writer; *p; p++)
        if (*p >= 0x20 && *p < 0x7f)
            wr[n++] = *p;
    wr[n] = '\0';
    cJSON_AddStringToObject(hj, "writer", wr);
    cJSON_AddNumberToObject(hj, "header_crc32", h->header_crc32);
    arr = cJSON_AddArrayToObject(root, "metadata");
    for (size_t i = 0; i < spx_file_meta_count(f); i++)
        cJSON_AddItemToArray(arr, json_meta(spx_file_meta(f, i)));
    arr = cJSON_AddArrayToObject(root, "tensors");
    for (uint32_t i = 0; i < spx_file_tensor_count(f); i++)
        cJSON_AddItemToArray(arr, json_tensor(spx_file_tensor(f, i), i));
    if (checked) {
        cJSON *c = cJSON_AddObjectToObject(root, "check");
        cJSON_AddBoolToObject(c, "ok", 1);
        cJSON_AddNumberToObject(c, "tensors", spx_file_tensor_count(f));
        cJSON_AddItemToObject(c, "bytes", json_u64(h->file_size));
    }
    txt = cJSON_Print(root);
    cJSON_Delete(root);
    if (!txt) {
        fprintf(stderr, "spx inspect: error: out of memory while formatting JSON (SPX_E_NOMEM)\n");
        return SPX_EXIT_DATA;
    }
    puts(txt);
    cJSON_free(txt);
    return SPX_EXIT_OK;
}

int spx_cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0, check = 0, rc;
    spx_ctx ctx = SPX_CTX_INIT;
    spx_file *f = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return SPX_EXIT_OK;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (!strcmp(argv[i], "--check")) {
            check = 1;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return spx_cli_usage_error("inspect", "unknown option '%s'", argv[i]);
        } else if (path) {
            return spx_cli_usage_error("inspect", "only one FILE may be given ('%s' and '%s')", path, argv[i]);
        } else {
            path = argv[i];
        }
    }
    if (!path)
        return spx_cli_usage_error("inspect", "missing FILE");
    if (spx_file_open(&ctx, path, check ? SPX_OPEN_VERIFY_DATA : 0, &f) < 0)
        return spx_cli_fail("inspect", &ctx);
    if (check && spx_nonfinite_check_file(&ctx, f) < 0) {   /* NaN/Inf weights: named tensor + index */
        spx_file_free(f);
        return spx_cli_fail("inspect", &ctx);
    }
    if (json) {
        rc = print_json(f, check);
    } else if (check) {
        printf("check: OK (%u tensors, %" PRIu64 " bytes)\n", spx_file_tensor_count(f), spx_file_header(f)->file_size);
        rc = SPX_EXIT_OK;
    } else {
        print_text(f);
        rc = SPX_EXIT_OK;
    }
    spx_file_free(f);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "spx inspect: error: writing to standard output failed (SPX_E_IO)\n");
        rc = SPX_EXIT_DATA;
    }
    return rc;
}
