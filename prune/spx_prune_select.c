/* spx_prune_select.c: introselect on floats and on (score, index) pairs; N:M group ranking. */
#include "spx_prune_select.h"

#include <stdlib.h>

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static float med3f(float a, float b, float c)
{
    if (a < b)
        return b < c ? b : (a < c ? c : a);
    return a < c ? a : (b < c ? c : b);
}

float spx_prune_kth_float(float *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n;   /* the answer is in a[lo..hi) */
    int budget = 64;          /* partition rounds before the sort fallback */
    for (size_t m = n; m > 1; m >>= 1)
        budget += 2;
    while (hi - lo > 16 && budget-- > 0) {
        float piv = med3f(a[lo], a[lo + (hi - lo) / 2], a[hi - 1]);
        /* 3-way partition: [lo, lt) < piv, [lt, gt) == piv, [gt, hi) > piv.
         * Handles long runs of equal values (e.g. zeroed columns) in linear time. */
        size_t lt = lo, i = lo, gt = hi;
        while (i < gt) {
            float v = a[i];
            if (v < piv) {
                a[i++] = a[lt];
                a[lt++] = v;
            } else if (v > piv) {
                a[i] = a[--gt];
                a[gt] = v;
            } else {
                i++;
            }
        }
        if (k < lt)
            hi = lt;
        else if (k >= gt)
            lo = gt;
        else
            return piv;
    }
    qsort(a + lo, hi - lo, sizeof *a, cmp_float);
    return a[k];
}

static int pair_less(const spx_prune_pair *x, const spx_prune_pair *y)
{
    return x->s < y->s || (x->s == y->s && x->i < y->i);
}

static int cmp_pair(const void *a, const void *b)
{
    const spx_prune_pair *x = a, *y = b;
    return pair_less(y, x) - pair_less(x, y);
}

void spx_prune_select_pairs(spx_prune_pair *p, size_t n, size_t k)
{
    size_t lo = 0, hi = n;   /* the boundary k lies in [lo, hi] */
    int budget = 64;
    if (k == 0 || k >= n)
        return;
    for (size_t m = n; m > 1; m >>= 1)
        budget += 2;
    while (hi - lo > 16 && budget-- > 0) {
        /* median of three as pivot, moved to hi-1; keys are distinct (unique index) */
        size_t mid = lo + (hi - lo) / 2;
        spx_prune_pair t;
        if (pair_less(&p[mid], &p[lo])) { t = p[mid]; p[mid] = p[lo]; p[lo] = t; }
        if (pair_less(&p[hi - 1], &p[lo])) { t = p[hi - 1]; p[hi - 1] = p[lo]; p[lo] = t; }
        if (pair_less(&p[mid], &p[hi - 1])) { t = p[mid]; p[mid] = p[hi - 1]; p[hi - 1] = t; }
        spx_prune_pair piv = p[hi - 1];
        size_t s = lo;
        for (size_t i = lo; i < hi - 1; i++) {
            if (pair_less(&p[i], &piv)) {
                t = p[i]; p[i] = p[s]; p[s] = t;
                s++;
            }
        }
        t = p[s]; p[s] = p[hi - 1]; p[hi - 1] = t;   /* pivot at its final rank s */
        if (k == s || k == s + 1)
            return;   /* p[0..k) already the k smallest */
        if (k < s)
            hi = s;
        else
            lo = s + 1;
    }
    qsort(p + lo, hi - lo, sizeof *p, cmp_pair);
}

void spx_prune_nm_group(const double *s, int m, int keep, uint8_t *keepmask)
{
    int prune = m - keep;
    for (int j = 0; j < m; j++) {
        /* rank of j in ascending (s, index) order */
        int rank = 0;
        for (int l = 0; l < m; l++)
            rank += s[l] < s[j] || (s[l] == s[j] && l < j);
        keepmask[j] = (uint8_t)(rank >= prune);
    }
}
