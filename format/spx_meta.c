/* spx_meta.c: metadata section parser (spec section 6) and typed getters.
 *
 * The parser checks every length against the bytes left in the section before using it and
 * before allocating for it, so a hostile section costs at most O(meta_size) memory:
 *   items   <= (meta_size - 4) / 5 entries
 *   arena    = meta_size + 2 * count bytes (keys and STR values, each plus a NUL)
 *   offs     = one u64 per ARR-of-STR element, each of which took >= 4 section bytes */
#include <stdlib.h>

#include "spx_ckd.h"
#include "spx_format_int.h"

typedef struct parser {
    spx_ctx *ctx;
    const char *label;
    const unsigned char *p;
    uint64_t size, base, pos;
    uint32_t idx;             /* entry being parsed */
    const char *key;          /* its key (in the arena) or NULL before the key is known */
    char *arena;
    size_t arena_used;
    uint64_t *offs;
    size_t noffs, capoffs;
} parser;

static int perr(parser *ps, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(parser *ps, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    spx_err_setv(ps->ctx, code, fmt, ap);
    va_end(ap);
    if (ps->key)
        spx_err_prefix(ps->ctx, "%s: metadata entry %u '%s' (byte %llu): ", ps->label, ps->idx, ps->key,
                       (unsigned long long)(ps->base + ps->pos));
    else
        spx_err_prefix(ps->ctx, "%s: metadata entry %u (byte %llu): ", ps->label, ps->idx,
                       (unsigned long long)(ps->base + ps->pos));
    return code;
}

static int need(parser *ps, uint64_t n, const char *what)
{
    if (ps->size - ps->pos < n)
        return perr(ps, SPX_E_META, "%s needs %llu bytes but only %llu remain in the metadata section",
                    what, (unsigned long long)n, (unsigned long long)(ps->size - ps->pos));
    return 0;
}

/* A STR body at ps->pos (after its u32 length has been read): UTF-8, no NUL. */
static int check_str(parser *ps, uint32_t len, uint64_t elem)
{
    const unsigned char *s = ps->p + ps->pos;
    int rc = need(ps, len, "string");
    if (rc < 0)
        return rc;
    if (memchr(s, 0, len))
        return perr(ps, SPX_E_META, "string %llu contains a NUL byte", (unsigned long long)elem);
    if (!spx_utf8_valid(s, len))
        return perr(ps, SPX_E_META, "string %llu is not valid UTF-8", (unsigned long long)elem);
    return 0;
}

static int parse_array(parser *ps, spx_meta *m)
{
    int rc;
    uint8_t et;
    uint64_t cnt;
    if ((rc = need(ps, 9, "array header")) < 0)
        return rc;
    et = ps->p[ps->pos];
    cnt = spx_rd64(ps->p + ps->pos + 1);
    if (et >= SPX_META_ARR)
        return perr(ps, SPX_E_META, "array element type %u is not a scalar or STR type", et);
    ps->pos += 9;
    m->elem_type = et;
    m->count = cnt;
    m->raw = ps->p + ps->pos;
    if (et != SPX_META_STR) {
        size_t es = spx_meta_scalar_size(et);
        if (cnt > (ps->size - ps->pos) / es)
            return perr(ps, SPX_E_META, "array of %llu %s elements runs past the end of the section",
                        (unsigned long long)cnt, spx_meta_type_name(et));
        if (et == SPX_META_BOOL)
            for (uint64_t i = 0; i < cnt; i++)
                if (m->raw[i] > 1)
                    return perr(ps, SPX_E_META, "BOOL element %llu is %u, not 0 or 1", (unsigned long long)i, m->raw[i]);
        ps->pos += cnt * es;
        return 0;
    }
    if (cnt > (ps->size - ps->pos) / 4)
        return perr(ps, SPX_E_META, "array of %llu strings cannot fit in the %llu bytes left",
                    (unsigned long long)cnt, (unsigned long long)(ps->size - ps->pos));
    if (ps->noffs + cnt > ps->capoffs) {
        size_t nc = ps->capoffs ? ps->capoffs : 64;
        while (nc < ps->noffs + cnt)
            nc *= 2;
        uint64_t *no = realloc(ps->offs, nc * sizeof *no);
        if (!no)
            return perr(ps, SPX_E_NOMEM, "out of memory for %llu string offsets", (unsigned long long)cnt);
        ps->offs = no;
        ps->capoffs = nc;
    }
    /* str_off is fixed up to point into offs once parsing is over (offs may move): keep the index */
    m->v.u = ps->noffs;
    for (uint64_t i = 0; i < cnt; i++) {
        uint32_t len;
        if ((rc = need(ps, 4, "string length")) < 0)
            return rc;
        ps->offs[ps->noffs++] = (uint64_t)(ps->p + ps->pos - m->raw);
        len = spx_rd32(ps->p + ps->pos);
        ps->pos += 4;
        if ((rc = check_str(ps, len, i)) < 0)
            return rc;
        ps->pos += len;
    }
    return 0;
}

static int parse_value(parser *ps, spx_meta *m)
{
    int rc;
    size_t es = spx_meta_scalar_size(m->type);
    const unsigned char *q = ps->p + ps->pos;
    if (m->type == SPX_META_ARR)
        return parse_array(ps, m);
    if (m->type == SPX_META_STR) {
        uint32_t len;
        if ((rc = need(ps, 4, "string length")) < 0)
            return rc;
        len = spx_rd32(q);
        ps->pos += 4;
        if ((rc = check_str(ps, len, 0)) < 0)
            return rc;
        m->count = len;
        memcpy(ps->arena + ps->arena_used, ps->p + ps->pos, len);
        m->str = ps->arena + ps->arena_used;
        ps->arena_used += len;
        ps->arena[ps->arena_used++] = '\0';
        ps->pos += len;
        return 0;
    }
    if ((rc = need(ps, es, spx_meta_type_name(m->type))) < 0)
        return rc;
    switch (m->type) {
    case SPX_META_U32: m->v.u = spx_rd32(q); break;
    case SPX_META_I32: m->v.i = (int32_t)spx_rd32(q); break;
    case SPX_META_U64: m->v.u = spx_rd64(q); break;
    case SPX_META_I64: m->v.i = (int64_t)spx_rd64(q); break;
    case SPX_META_F32: {
        uint32_t u = spx_rd32(q);
        float f;
        memcpy(&f, &u, 4);
        m->v.f = f;
        break;
    }
    case SPX_META_F64: {
        uint64_t u = spx_rd64(q);
        memcpy(&m->v.f, &u, 8);
        break;
    }
    default: /* BOOL */
        if (*q > 1)
            return perr(ps, SPX_E_META, "BOOL value is %u, not 0 or 1", *q);
        m->v.u = *q;
        break;
    }
    ps->pos += es;
    return 0;
}

#define PFAIL(expr) do { rc = (expr); goto done; } while (0)

int spx_meta_parse(spx_ctx *ctx, const char *label, const unsigned char *p, uint64_t size,
                   uint64_t base, spx_meta_table *out)
{
    parser ps = {ctx, label, p, size, base, 0, 0, NULL, NULL, 0, NULL, 0, 0};
    spx_meta *items = NULL;
    uint32_t count;
    int rc = 0;
    memset(out, 0, sizeof *out);
    if (size < 4 || size > SPX_META_MAX_BYTES)
        return spx_err_set(ctx, SPX_E_META, "%s: metadata section (byte %llu) has size %llu, not in 4..%u",
                           label, (unsigned long long)base, (unsigned long long)size, SPX_META_MAX_BYTES);
    count = spx_rd32(p);
    ps.pos = 4;
    if (count > (size - 4) / SPX_META_MIN_ENTRY)
        SPX_FAIL(ctx, rc, SPX_E_META, "%s: metadata entry count %u (byte %llu) cannot fit in a %llu-byte section",
                 label, count, (unsigned long long)base, (unsigned long long)size);
    items = calloc(count ? count : 1, sizeof *items);
    ps.arena = malloc((size_t)size + 2 * (size_t)count);
    if (!items || !ps.arena)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory for %u metadata entries", label, count);
    for (uint32_t i = 0; i < count; i++) {
        spx_meta *m = &items[i];
        const char *why;
        uint16_t kl;
        ps.idx = i;
        ps.key = NULL;
        SPX_TRY(rc, need(&ps, 2, "key length"));
        kl = spx_rd16(p + ps.pos);
        if (kl == 0 || kl > SPX_META_MAX_KEY)
            PFAIL(perr(&ps, SPX_E_META, "key length %u is not in 1..%d", kl, SPX_META_MAX_KEY));
        ps.pos += 2;
        SPX_TRY(rc, need(&ps, kl, "key"));
        if ((why = spx_key_problem((const char *)p + ps.pos, kl)))
            PFAIL(perr(&ps, SPX_E_META, "%s: '%.*s'", why, (int)kl, (const char *)p + ps.pos));
        char *key = ps.arena + ps.arena_used;
        memcpy(key, p + ps.pos, kl);
        key[kl] = '\0';
        ps.arena_used += (size_t)kl + 1;
        ps.pos += kl;
        m->key = key;
        ps.key = key;
        if (i > 0) {
            int c = strcmp(items[i - 1].key, key);
            if (c == 0)
                PFAIL(perr(&ps, SPX_E_DUP_KEY, "duplicate key"));
            if (c > 0)
                PFAIL(perr(&ps, SPX_E_META, "key is not after '%s' (keys must be strictly ascending)",
                                       items[i - 1].key));
        }
        SPX_TRY(rc, need(&ps, 1, "type"));
        m->type = p[ps.pos++];
        if (m->type >= SPX_META_TYPE_COUNT)
            PFAIL(perr(&ps, SPX_E_META, "unknown value type %u", m->type));
        SPX_TRY(rc, parse_value(&ps, m));
    }
    if (ps.pos != size)
        SPX_FAIL(ctx, rc, SPX_E_META, "%s: metadata section has %llu unused bytes after its %u entries (byte %llu)",
                 label, (unsigned long long)(size - ps.pos), count, (unsigned long long)(base + ps.pos));
    for (uint32_t i = 0; i < count; i++)
        if (items[i].type == SPX_META_ARR && items[i].elem_type == SPX_META_STR) {
            items[i].str_off = ps.offs + items[i].v.u;
            items[i].v.u = 0;
        }
    out->items = items;
    out->n = count;
    out->arena = ps.arena;
    out->offs = ps.offs;
    items = NULL;
    ps.arena = NULL;
    ps.offs = NULL;
done:
    free(items);
    free(ps.arena);
    free(ps.offs);
    return rc;
}

void spx_meta_table_free(spx_meta_table *m)
{
    if (!m)
        return;
    free(m->items);
    free(m->arena);
    free(m->offs);
    memset(m, 0, sizeof *m);
}

/* ---- getters ------------------------------------------------------------------------------- */

static int lookup(spx_ctx *ctx, const spx_file *f, const char *key, const spx_meta **m)
{
    *m = spx_file_meta_find(f, key);
    if (!*m)
        return spx_err_set(ctx, SPX_E_MISSING, "%s: metadata key '%s' is missing", spx_file_path(f), key);
    return 0;
}

static int wrong_type(spx_ctx *ctx, const spx_file *f, const spx_meta *m, const char *want)
{
    return spx_err_set(ctx, SPX_E_META, "%s: metadata key '%s' has type %s, expected %s", spx_file_path(f),
                       m->key, spx_meta_type_name(m->type), want);
}

/* Integer value as (negative?, magnitude) so every range check is exact. */
static int get_int(spx_ctx *ctx, const spx_file *f, const char *key, int *neg, uint64_t *mag, const spx_meta **m)
{
    int rc = lookup(ctx, f, key, m);
    if (rc < 0)
        return rc;
    switch ((*m)->type) {
    case SPX_META_U32: case SPX_META_U64:
        *neg = 0;
        *mag = (*m)->v.u;
        return 0;
    case SPX_META_I32: case SPX_META_I64:
        *neg = (*m)->v.i < 0;
        *mag = *neg ? (uint64_t)0 - (uint64_t)(*m)->v.i : (uint64_t)(*m)->v.i;
        return 0;
    default:
        return wrong_type(ctx, f, *m, "an integer");
    }
}

static int out_of_range(spx_ctx *ctx, const spx_file *f, const spx_meta *m, int neg, uint64_t mag, const char *ty)
{
    return spx_err_set(ctx, SPX_E_META, "%s: metadata key '%s' value %s%llu does not fit in %s", spx_file_path(f),
                       m->key, neg ? "-" : "", (unsigned long long)mag, ty);
}

int spx_meta_get_u32(spx_ctx *ctx, const spx_file *f, const char *key, uint32_t *out)
{
    const spx_meta *m;
    int neg = 0;
    uint64_t mag = 0;
    int rc = get_int(ctx, f, key, &neg, &mag, &m);
    if (rc < 0)
        return rc;
    if (neg || mag > UINT32_MAX)
        return out_of_range(ctx, f, m, neg, mag, "u32");
    *out = (uint32_t)mag;
    return 0;
}

int spx_meta_get_u64(spx_ctx *ctx, const spx_file *f, const char *key, uint64_t *out)
{
    const spx_meta *m;
    int neg = 0;
    uint64_t mag = 0;
    int rc = get_int(ctx, f, key, &neg, &mag, &m);
    if (rc < 0)
        return rc;
    if (neg)
        return out_of_range(ctx, f, m, neg, mag, "u64");
    *out = mag;
    return 0;
}

int spx_meta_get_i64(spx_ctx *ctx, const spx_file *f, const char *key, int64_t *out)
{
    const spx_meta *m;
    int neg;
    uint64_t mag;
    int rc = get_int(ctx, f, key, &neg, &mag, &m);
    if (rc < 0)
        return rc;
    if (!neg && mag > (uint64_t)INT64_MAX)
        return out_of_range(ctx, f, m, neg, mag, "i64");
    *out = neg ? m->v.i : (int64_t)mag;
    return 0;
}

int spx_meta_get_f64(spx_ctx *ctx, const spx_file *f, const char *key, double *out)
{
    const spx_meta *m;
    int rc = lookup(ctx, f, key, &m);
    if (rc < 0)
        return rc;
    if (m->type != SPX_META_F32 && m->type != SPX_META_F64)
        return wrong_type(ctx, f, m, "F32 or F64");
    *out = m->v.f;
    return 0;
}

int spx_meta_get_bool(spx_ctx *ctx, const spx_file *f, const char *key, int *out)
{
    const spx_meta *m;
    int rc = lookup(ctx, f, key, &m);
    if (rc < 0)
        return rc;
    if (m->type != SPX_META_BOOL)
        return wrong_type(ctx, f, m, "BOOL");
    *out = (int)m->v.u;
    return 0;
}

int spx_meta_get_str(spx_ctx *ctx, const spx_file *f, const char *key, const char **out, size_t *len)
{
    const spx_meta *m;
    int rc = lookup(ctx, f, key, &m);
    if (rc < 0)
        return rc;
    if (m->type != SPX_META_STR)
        return wrong_type(ctx, f, m, "STR");
    *out = m->str;
    if (len)
        *len = (size_t)m->count;
    return 0;
}

double spx_meta_arr_f64(const spx_meta *m, uint64_t i)
{
    size_t es;
    const unsigned char *q;
    if (m->type != SPX_META_ARR || i >= m->count || !(es = spx_meta_scalar_size(m->elem_type)))
        return 0.0;
    q = m->raw + i * es;
    switch (m->elem_type) {
    case SPX_META_U32: return (double)spx_rd32(q);
    case SPX_META_I32: return (double)(int32_t)spx_rd32(q);
    case SPX_META_U64: return (double)spx_rd64(q);
    case SPX_META_I64: return (double)(int64_t)spx_rd64(q);
    case SPX_META_F32: {
        uint32_t u = spx_rd32(q);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    case SPX_META_F64: {
        uint64_t u = spx_rd64(q);
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    default: return *q; /* BOOL */
    }
}

int64_t spx_meta_arr_i64(const spx_meta *m, uint64_t i)
{
    size_t es;
    const unsigned char *q;
    if (m->type != SPX_META_ARR || i >= m->count || !(es = spx_meta_scalar_size(m->elem_type)))
        return 0;
    q = m->raw + i * es;
    switch (m->elem_type) {
    case SPX_META_U32: return spx_rd32(q);
    case SPX_META_I32: return (int32_t)spx_rd32(q);
    case SPX_META_U64: case SPX_META_I64: return (int64_t)spx_rd64(q);
    case SPX_META_BOOL: return *q;
    default: { /* floats truncate toward zero; NaN and out-of-range give 0 */
        double d = spx_meta_arr_f64(m, i);
        return (d > -9.2e18 && d < 9.2e18) ? (int64_t)d : 0;
    }
    }
}

const char *spx_meta_arr_str(const spx_meta *m, uint64_t i, uint32_t *len)
{
    if (m->type != SPX_META_ARR || m->elem_type != SPX_META_STR || i >= m->count) {
        if (len)
            *len = 0;
        return NULL;
    }
    const unsigned char *q = m->raw + m->str_off[i];
    if (len)
        *len = spx_rd32(q);
    return (const char *)q + 4;
}
