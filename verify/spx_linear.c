/* spx_linear.c: linear layers: dense fp32 over OpenBLAS, or packed sparse / half kernels (KMAT). */
#include "spx_linear.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spx_ckd.h"

/* Dense F32 data can be used straight from the map only on a little-endian host (the format is
 * little-endian) and when the pointer is float-aligned (the format guarantees 64). */
static int usable_in_place(const spx_tensor *t, const void *data)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return t->encoding == SPX_ENC_DENSE && t->dtype == SPX_DTYPE_F32 && ((uintptr_t)data % sizeof(float)) == 0;
#else
    (void)t;
    (void)data;
    return 0;
#endif
}

int spx_tensor_load_f32(spx_ctx *ctx, const spx_file *f, const spx_tensor *t, uint64_t numel,
                        int copy, const float **ptr, float **owned)
{
    int rc = 0;
    uint64_t have = 0;
    float *buf = NULL;
    size_t bytes;
    const void *data;
    *ptr = NULL;
    *owned = NULL;
    SPX_TRY(rc, spx_tensor_numel(ctx, t, &have));
    if (have != numel)
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "%s: tensor '%s' has %llu elements, the model needs %llu",
                 spx_file_path(f), t->name, (unsigned long long)have, (unsigned long long)numel);
    if (numel > SIZE_MAX || spx_ckd_mul_size((size_t)numel, sizeof(float), &bytes))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "%s: tensor '%s' too large for this host", spx_file_path(f), t->name);
    data = spx_file_data(f, t);
    if (!data)
        SPX_FAIL(ctx, rc, SPX_E_INTERNAL, "%s: no data for tensor '%s'", spx_file_path(f), t->name);
    if (!copy && usable_in_place(t, data)) {
        *ptr = (const float *)data;
        goto done;
    }
    buf = malloc(bytes ? bytes : 1);
    if (!buf)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory for tensor '%s' (%zu bytes)", spx_file_path(f), t->name, bytes);
    if (usable_in_place(t, data))
        memcpy(buf, data, bytes);
    else
        SPX_TRY(rc, spx_decode_f32(ctx, t, data, buf));
    *ptr = buf;
    *owned = buf;
    buf = NULL;
done:
    free(buf);
    return rc;
}

/* KMAT: km in the AUTO layout; kp in PANEL when km is a sparse layout (batches). A sparse-encoded
 * tensor gets both packed at once on the kernel pool (part 0: km, part 1: kp; loading an expanded
 * model is mostly packing), and kp is dropped again when AUTO chose DENSE for km (a nearly dense
 * "sparse" tensor). Each part has its own spx_ctx; km's error wins. */
typedef struct pack_job {
    const spx_tensor *t;
    const void *data;
    spx_kmat *m[2];
    int rc[2];
    spx_ctx ctx[2];
} pack_job;

static void pack_task(void *arg, unsigned part, unsigned nparts)
{
    pack_job *j = arg;
    (void)nparts;
    j->rc[part] = spx_kmat_from_tensor(&j->ctx[part], j->t, j->data, part ? SPX_KL_PANEL : SPX_KL_AUTO, &j->m[part]);
}

static int load_kmat(spx_ctx *ctx, const spx_file *f, const spx_tensor *t, spx_linear *l)
{
    int rc = 0;
    pack_job j = {t, spx_file_data(f, t), {NULL, NULL}, {0, 0}, {SPX_CTX_INIT, SPX_CTX_INIT}};
    if (!j.data)
        SPX_FAIL(ctx, rc, SPX_E_INTERNAL, "%s: no data for tensor '%s'", spx_file_path(f), t->name);
    if (t->encoding != SPX_ENC_DENSE && spx_kern_threads() > 1) {
        spx_kern_pool_run(2, pack_task, &j);
    } else {
        pack_task(&j, 0, 1);
        if (j.rc[0] == 0 && spx_kmat_layout(j.m[0]) != SPX_KL_DENSE)
            pack_task(&j, 1, 1);
    }
    for (int i = 0; i < 2; i++)
        if (j.rc[i] < 0) {
            rc = j.rc[i];
            spx_err_set(ctx, rc, "%s", j.ctx[i].msg);
            goto fail;
        }
    l->km = j.m[0];
    l->kp = spx_kmat_layout(j.m[0]) != SPX_KL_DENSE ? j.m[1] : NULL;
    if (!l->kp)
        spx_kmat_free(j.m[1]);
    j.m[0] = j.m[1] = NULL;
    l->kind = SPX_LINEAR_KMAT;
    /* the kmats own their memory: the mapped blob is not read again, so its pages need not stay
     * resident (an expanded model would otherwise hold every expert twice: map + packed) */
    spx_file_release(f, t);
    goto done;
fail:
    spx_kmat_free(j.m[0]);
    spx_kmat_free(j.m[1]);
    spx_err_prefix(ctx, "%s: ", spx_file_path(f));
done:
    return rc;
}

int spx_linear_load(spx_ctx *ctx, const spx_file *f, const spx_tensor *t, const spx_tensor *b,
                    uint32_t rows, uint32_t cols, int copy, spx_linear *l)
{
    int rc = 0;
    memset(l, 0, sizeof *l);
    if (t->ndim != 2 || t->dims[0] != rows || t->dims[1] != cols)
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "%s: tensor '%s' has shape [%llu, %llu] (ndim %u), expected [%u, %u]",
                 spx_file_path(f), t->name, (unsigned long long)t->dims[0],
                 (unsigned long long)(t->ndim > 1 ? t->dims[1] : 0), (unsigned)t->ndim, rows, cols);
    if (b && (b->ndim != 1 || b->dims[0] != rows))
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "%s: bias '%s' has shape [%llu] (ndim %u), expected [%u]",
                 spx_file_path(f), b->name, (unsigned long long)b->dims[0], (unsigned)b->ndim, rows);
    l->kind = SPX_LINEAR_DENSE;
    l->rows = rows;
    l->cols = cols;
    if (copy == SPX_LINEAR_KERNELS && !(t->encoding == SPX_ENC_DENSE && t->dtype == SPX_DTYPE_F32))
        SPX_TRY(rc, load_kmat(ctx, f, t, l));
    else
        SPX_TRY(rc, spx_tensor_load_f32(ctx, f, t, (uint64_t)rows * cols, copy == SPX_LINEAR_COPY, &l->w, &l->owned));
    l->nnz = t->nnz;
    if (b)
        SPX_TRY(rc, spx_tensor_load_f32(ctx, f, b, rows, copy == SPX_LINEAR_COPY, &l->bias, &l->bias_owned));
done:
    if (rc < 0)
        spx_linear_release(l);
    return rc;
}

void spx_linear_init_owned(spx_linear *l, uint32_t rows, uint32_t cols, float *w, float *bias)
{
    memset(l, 0, sizeof *l);
    l->kind = SPX_LINEAR_DENSE;
    l->rows = rows;
    l->cols = cols;
    l->w = w;
    l->owned = w;
    l->bias = bias;
    l->bias_owned = bias;
    l->nnz = 0;
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        l->nnz += w[i] != 0.0f;
}

void spx_linear_release(spx_linear *l)
{
    if (!l)
        return;
    free(l->owned);
    free(l->bias_owned);
    spx_kmat_free(l->km);
    spx_kmat_free(l->kp);
    memset(l, 0, sizeof *l);
}

int spx_linear_set_threads(int n)
{
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c < 1 ? 1 : c > SPX_KERN_MAX_THREADS ? SPX_KERN_MAX_THREADS : (int)c;
    }
    n = spx_kern_set_threads(n);
    openblas_set_num_threads(n);
    return n;
}

int spx_linear_present(const spx_linear *l)
{
    return l->w != NULL || l->km != NULL;
}

/* Owned fp32 [rows x cols] copy of a KMAT layer's weights. */
static int unpack_owned(spx_ctx *ctx, const spx_linear *l, float **out)
{
    size_t bytes;
    *out = NULL;
    if (spx_ckd_mul3_size(l->rows, l->cols, sizeof(float), &bytes))
        return spx_err_set(ctx, SPX_E_OVERFLOW, "linear [%u x %u]: fp32 size overflows", l->rows, l->cols);
    *out = malloc(bytes ? bytes : 1);
    if (!*out)
        return spx_err_set(ctx, SPX_E_NOMEM, "out of memory for an fp32 [%u x %u] weight (%zu bytes)", l->rows, l->cols,
                           bytes);
    spx_kmat_unpack_f32(l->km, *out);
    return 0;
}

int spx_linear_to_f32(spx_ctx *ctx, spx_linear *l)
{
    int rc = 0;
    float *w = NULL;
    if (l->kind != SPX_LINEAR_KMAT)
        return 0;
    SPX_TRY(rc, unpack_owned(ctx, l, &w));
    spx_kmat_free(l->km);
    spx_kmat_free(l->kp);
    l->km = l->kp = NULL;
    l->kind = SPX_LINEAR_DENSE;
    l->w = l->owned = w;
done:
    return rc;
}

int spx_linear_weights_differ(spx_ctx *ctx, const spx_linear *a, const spx_linear *b, int *differ)
{
    int rc = 0;
    float *wa = NULL, *wb = NULL;
    const float *pa = a->w, *pb = b->w;
    *differ = 1;
    if (!spx_linear_present(a) || !spx_linear_present(b) || a->rows != b->rows || a->cols != b->cols)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "linear comparison: layers absent or of different shapes ([%u x %u], [%u x %u])",
                 a->rows, a->cols, b->rows, b->cols);
    if (a->kind == SPX_LINEAR_KMAT) {
        SPX_TRY(rc, unpack_owned(ctx, a, &wa));
        pa = wa;
    }
    if (b->kind == SPX_LINEAR_KMAT) {
        SPX_TRY(rc, unpack_owned(ctx, b, &wb));
        pb = wb;
    }
    *differ = !a->bias != !b->bias || memcmp(pa, pb, (size_t)a->rows * a->cols * sizeof(float)) != 0 ||
              (a->bias && memcmp(a->bias, b->bias, a->rows * sizeof(float)) != 0);
done:
    free(wa);
    free(wb);
    return rc;
}

/* Dense F16/BF16 KMAT on a long batch: fp32 weights in a scratch buffer, then sgemm. Returns 0
 * when the scratch cannot be allocated (the caller runs the kernels instead). */
static int sgemm_converted(const spx_linear *l, const float *X, size_t n, float *Y)
{
    float *w = malloc((size_t)l->rows * l->cols * sizeof *w);
    if (!w)
        return 0;
    spx_kmat_unpack_f32(l->km, w);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)n, (blasint)l->rows, (blasint)l->cols, 1.0f, X,
                (blasint)l->cols, w, (blasint)l->cols, 0.0f, Y, (blasint)l->rows);
    free(w);
    return 1;
}

/* y[r] += bias[r] for r in [r0, r1): one token's outputs */
static void add_bias(const spx_linear *l, float *y, uint32_t r0, uint32_t r1)
{
    for (uint32_t r = r0; r < r1; r++)
        y[r] += l->bias[r];
}

void spx_linear_forward(const spx_linear *l, const float *X, size_t n, float *Y)
{
    const blasint rows = (blasint)l->rows, cols = (blasint)l->cols;
    if (n == 0)
        return;
    if (l->kind == SPX_LINEAR_KMAT) {
        if (n == 1)
            spx_kmat_matvec(l->km, X, Y);
        else if (l->kp)
            spx_kmat_matmul(l->kp, X, n, Y);
        else if (n < SPX_LINEAR_SGEMM_MIN_N || !sgemm_converted(l, X, n, Y))
            spx_kmat_matmul(l->km, X, n, Y);
    } else if (n == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, l->w, cols, X, 1, 0.0f, Y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)n, rows, cols, 1.0f, X, cols,
                    l->w, cols, 0.0f, Y, rows);
    for (size_t i = 0; l->bias && i < n; i++)
        add_bias(l, Y + i * l->rows, 0, l->rows);
}

int spx_linear_rows_native(const spx_linear *l)
{
    return l->kind == SPX_LINEAR_KMAT && spx_kmat_rows_native(l->km);
}

void spx_linear_forward_rows(const spx_linear *l, const float *x, float *y, uint32_t r0, uint32_t r1)
{
    spx_kmat_matvec_rows(l->km, x, y, r0, r1);
    if (l->bias)
        add_bias(l, y, r0, r1 < l->rows ? r1 : l->rows);
}
