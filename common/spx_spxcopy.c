/* spx_spxcopy.c: copy metadata/tensors between .spx files and add matrices in the best encoding. */
#include "spx_spxcopy.h"

#include <stdlib.h>
#include <string.h>

/* The writer reports into its own context; surface its message in the caller's. */
static int wrc(spx_ctx *ctx, spx_writer *w, int rc)
{
    if (rc < 0 && ctx)
        *ctx = *spx_writer_ctx(w);
    return rc;
}

static size_t meta_width(int type)
{
    switch (type) {
    case SPX_META_U32: case SPX_META_I32: case SPX_META_F32: return 4;
    case SPX_META_U64: case SPX_META_I64: case SPX_META_F64: return 8;
    case SPX_META_BOOL: return 1;
    default: return 0;
    }
}

static int copy_array(spx_ctx *ctx, spx_writer *w, const spx_meta *m)
{
    int rc = 0;
    void *buf = NULL;
    const char **strs = NULL;
    size_t *lens = NULL;
    if (m->elem_type == SPX_META_STR) {
        strs = calloc(m->count ? m->count : 1, sizeof *strs);
        lens = calloc(m->count ? m->count : 1, sizeof *lens);
        if (!strs || !lens)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory copying metadata '%s'", m->key);
        for (uint64_t i = 0; i < m->count; i++) {
            uint32_t len;
            strs[i] = spx_meta_arr_str(m, i, &len);
            lens[i] = len;
        }
        rc = wrc(ctx, w, spx_writer_meta_arr_str(w, m->key, strs, lens, m->count));
        goto done;
    }
    size_t width = meta_width(m->elem_type), bytes;
    if (!width || __builtin_mul_overflow((size_t)m->count, width, &bytes))
        SPX_FAIL(ctx, rc, SPX_E_META, "metadata '%s': cannot copy array of type %d", m->key, m->elem_type);
    buf = malloc(bytes ? bytes : 1);
    if (!buf)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory copying metadata '%s'", m->key);
    /* stored little-endian, possibly unaligned: memcpy gives native values on LE hosts */
    memcpy(buf, m->raw, bytes);
    rc = wrc(ctx, w, spx_writer_meta_arr(w, m->key, m->elem_type, buf, m->count));
done:
    free(buf);
    free(strs);
    free(lens);
    return rc;
}

int spx_meta_copy(spx_ctx *ctx, spx_writer *w, const spx_file *in, int (*skip)(void *ud, const char *key), void *ud)
{
    int rc = 0;
    for (size_t i = 0; i < spx_file_meta_count(in) && rc == 0; i++) {
        const spx_meta *m = spx_file_meta(in, i);
        if (skip && skip(ud, m->key))
            continue;
        switch (m->type) {
        case SPX_META_U32: rc = spx_writer_meta_u32(w, m->key, (uint32_t)m->v.u); break;
        case SPX_META_I32: rc = spx_writer_meta_i32(w, m->key, (int32_t)m->v.i); break;
        case SPX_META_U64: rc = spx_writer_meta_u64(w, m->key, m->v.u); break;
        case SPX_META_I64: rc = spx_writer_meta_i64(w, m->key, m->v.i); break;
        case SPX_META_F32: rc = spx_writer_meta_f32(w, m->key, (float)m->v.f); break;
        case SPX_META_F64: rc = spx_writer_meta_f64(w, m->key, m->v.f); break;
        case SPX_META_BOOL: rc = spx_writer_meta_bool(w, m->key, (int)m->v.u); break;
        case SPX_META_STR: rc = spx_writer_meta_str(w, m->key, m->str, (size_t)m->count); break;
        case SPX_META_ARR: rc = copy_array(ctx, w, m); if (rc < 0) return rc; continue;
        default: return spx_err_set(ctx, SPX_E_META, "metadata '%s': unknown type %d", m->key, m->type);
        }
        rc = wrc(ctx, w, rc);
    }
    return rc;
}

int spx_tensor_copy(spx_ctx *ctx, spx_writer *w, const spx_file *in, const spx_tensor *t)
{
    return wrc(ctx, w, spx_writer_add(w, t, spx_file_data(in, t), (size_t)t->data_size));
}

int spx_encoding_parse(const char *s)
{
    static const struct { const char *name; int enc; } tab[] = {
        {"auto", SPX_ENC_AUTO}, {"dense", SPX_ENC_DENSE}, {"bitmask", SPX_ENC_BITMASK}, {"nm", SPX_ENC_NM},
        {"csr16", SPX_ENC_CSR16}, {"csr32", SPX_ENC_CSR32}, {"csr", SPX_ENC_CSR16},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strcmp(s, tab[i].name) == 0)
            return tab[i].enc;
    return -2;
}

int spx_tensor_add_matrix(spx_ctx *ctx, spx_writer *w, const spx_tensor *like, int dtype, const float *m,
                          uint64_t rows, uint64_t cols, int enc, int nm_n, int nm_m, int *chosen)
{
    int rc = 0;
    void *blob = NULL;
    size_t blob_size = 0;
    spx_tensor t;
    spx_ctx quiet = SPX_CTX_INIT;
    int vdtype = dtype >= 0 ? dtype : like->dtype;
    if (enc == SPX_ENC_AUTO) {
        static const int order[] = {SPX_ENC_DENSE, SPX_ENC_NM, SPX_ENC_BITMASK, SPX_ENC_CSR16, SPX_ENC_CSR32};
        uint64_t best = UINT64_MAX;
        enc = SPX_ENC_DENSE;
        for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
            uint64_t sz;
            if (order[i] == SPX_ENC_NM && nm_m <= 0)
                continue;
            if (spx_encode_size(&quiet, m, rows, cols, order[i], vdtype, nm_n, nm_m, &sz) == 0 && sz < best) {
                best = sz;
                enc = order[i];
            }
        }
    } else if (enc == SPX_ENC_CSR16 && cols > 65536) {
        enc = SPX_ENC_CSR32;
    }
    SPX_TRY(rc, spx_encode(ctx, m, rows, cols, enc, vdtype, enc == SPX_ENC_NM ? nm_n : 0,
                           enc == SPX_ENC_NM ? nm_m : 0, &t, &blob, &blob_size));
    memcpy(t.name, like->name, sizeof t.name);
    t.role = like->role;
    t.layer = like->layer;
    t.expert = like->expert;
    SPX_TRY(rc, wrc(ctx, w, spx_writer_add(w, &t, blob, blob_size)));
    if (chosen)
        *chosen = enc;
done:
    if (rc < 0)
        spx_err_prefix(ctx, "tensor '%s': ", like->name);
    free(blob);
    return rc;
}
