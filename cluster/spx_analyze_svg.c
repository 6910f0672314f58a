/* spx_analyze_svg.c: atomic output files and the per-layer SVG figure of `spx analyze`. */
#include "spx_analyze.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spx_analyze_int.h"
#include "spx_wasserstein.h"

int spx_an_file_open(spx_ctx *ctx, const char *path, spx_an_file *f)
{
    int rc = 0, fd = -1;
    size_t pl = strlen(path);
    memset(f, 0, sizeof *f);
    f->path = malloc(pl + 1);
    f->tmp = malloc(pl + 12);
    if (!f->path || !f->tmp)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", path);
    memcpy(f->path, path, pl + 1);
    memcpy(f->tmp, path, pl);
    memcpy(f->tmp + pl, ".tmp.XXXXXX", 12);
    fd = mkstemp(f->tmp);
    if (fd < 0) {
        free(f->tmp);
        f->tmp = NULL;
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: cannot create a temporary file next to it: %s", path, strerror(errno));
    }
    if (fchmod(fd, 0644) != 0 || !(f->fp = fdopen(fd, "wb")))
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: cannot open: %s", f->tmp, strerror(errno));
    fd = -1;
done:
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        spx_an_file_abort(f);
    return rc;
}

int spx_an_file_write(spx_ctx *ctx, spx_an_file *f, const void *data, size_t len)
{
    if (len > 0 && fwrite(data, 1, len, f->fp) != len)
        return spx_err_set(ctx, SPX_E_IO, "%s: write failed: %s", f->tmp, strerror(errno));
    return 0;
}

int spx_an_file_commit(spx_ctx *ctx, spx_an_file *f)
{
    int rc = 0;
    FILE *fp = f->fp;
    f->fp = NULL;
    if (fflush(fp) != 0 || ferror(fp)) {
        fclose(fp);
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: write failed: %s", f->tmp, strerror(errno));
    }
    if (fclose(fp) != 0)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: close failed: %s", f->tmp, strerror(errno));
    if (rename(f->tmp, f->path) != 0)
        SPX_FAIL(ctx, rc, SPX_E_IO, "cannot rename %s to %s: %s", f->tmp, f->path, strerror(errno));
    free(f->tmp);
    f->tmp = NULL;
done:
    spx_an_file_abort(f);
    return rc;
}

void spx_an_file_abort(spx_an_file *f)
{
    if (!f)
        return;
    if (f->fp)
        fclose(f->fp);
    if (f->tmp)
        unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    memset(f, 0, sizeof *f);
}

/* ---- SVG ------------------------------------------------------------------------------------ */

typedef struct svg {
    spx_an_file f;
    spx_ctx *ctx;
    int rc;
} svg;

static void out(svg *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void out(svg *s, const char *fmt, ...)
{
    if (s->rc < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (vfprintf(s->f.fp, fmt, ap) < 0)
        s->rc = spx_err_set(s->ctx, SPX_E_IO, "%s: write failed: %s", s->f.tmp, strerror(errno));
    va_end(ap);
}

/* One plot frame: data box at (x0, y0) of size w x h mapping [xa, xb] x [0, ymax]. */
typedef struct frame {
    double x0, y0, w, h, xa, xb, ymax;
} frame;

static double fx(const frame *f, double x) { return f->x0 + (x - f->xa) / (f->xb - f->xa) * f->w; }
static double fy(const frame *f, double y) { return f->y0 + f->h - y / f->ymax * f->h; }

static void axes(svg *s, const frame *f, const char *xlabel, const char *ylabel)
{
    out(s, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" stroke=\"#333\"/>\n", f->x0,
        f->y0, f->w, f->h);
    for (int i = 0; i <= 4; i++) {
        double xv = f->xa + (f->xb - f->xa) * i / 4.0, yv = f->ymax * i / 4.0;
        out(s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333\"/>\n", fx(f, xv), f->y0 + f->h,
            fx(f, xv), f->y0 + f->h + 4);
        out(s, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%.3g</text>\n", fx(f, xv), f->y0 + f->h + 16, xv);
        out(s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#333\"/>\n", f->x0 - 4, fy(f, yv),
            f->x0, fy(f, yv));
        out(s, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%.3g</text>\n", f->x0 - 6, fy(f, yv) + 4, yv);
    }
    out(s, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%s</text>\n", f->x0 + f->w / 2, f->y0 + f->h + 34,
        xlabel);
    out(s, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" transform=\"rotate(-90 %.2f %.2f)\">%s</text>\n",
        f->x0 - 44, f->y0 + f->h / 2, f->x0 - 44, f->y0 + f->h / 2, ylabel);
}

static void bar(svg *s, const frame *f, double xa, double xb, double y, const char *fill)
{
    double yy = y > f->ymax ? f->ymax : y;
    out(s, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"/>\n", fx(f, xa), fy(f, yy),
        fx(f, xb) - fx(f, xa), f->y0 + f->h - fy(f, yy), fill);
}

#define DIST_BINS 40

int spx_analyze_write_svg(spx_ctx *ctx, const spx_analyze_layer *L, double threshold, uint64_t tokens,
                          const char *path)
{
    svg s;
    uint64_t counts[DIST_BINS];
    memset(&s, 0, sizeof s);
    s.ctx = ctx;
    s.rc = spx_an_file_open(ctx, path, &s.f);
    if (s.rc < 0)
        return s.rc;
    /* left: per-neuron distances */
    double xmax = L->max > threshold ? L->max : threshold;
    xmax = xmax > 0 ? xmax * 1.05 : 1.0;
    uint64_t cmax = 1;
    memset(counts, 0, sizeof counts);
    for (uint64_t j = 0; j < L->rows; j++) {
        long b = (long)(L->w1[j] / xmax * DIST_BINS);
        counts[b < 0 ? 0 : (b >= DIST_BINS ? DIST_BINS - 1 : b)]++;
    }
    for (int b = 0; b < DIST_BINS; b++)
        cmax = counts[b] > cmax ? counts[b] : cmax;
    out(&s, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"960\" height=\"400\" "
            "viewBox=\"0 0 960 400\" font-family=\"sans-serif\" font-size=\"11\">\n"
            "<rect width=\"960\" height=\"400\" fill=\"white\"/>\n");
    out(&s, "<text x=\"480\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">%s: W1 of normalized neuron outputs "
            "to N(0,1), %llu neurons x %llu tokens</text>\n", L->name, (unsigned long long)L->rows,
        (unsigned long long)tokens);
    out(&s, "<text x=\"480\" y=\"38\" text-anchor=\"middle\">mean %.4g, median %.4g, max %.4g (neuron %llu); "
            "%llu above %.3g; %llu constant</text>\n", L->mean, L->median, L->max, (unsigned long long)L->argmax,
        (unsigned long long)L->n_above, threshold, (unsigned long long)L->n_constant);
    frame f1 = {70, 72, 380, 260, 0, xmax, (double)cmax * 1.05};
    for (int b = 0; b < DIST_BINS; b++)
        if (counts[b])
            bar(&s, &f1, xmax * b / DIST_BINS, xmax * (b + 1) / DIST_BINS, (double)counts[b], "#4a7ab8");
    out(&s, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#c0392b\" stroke-dasharray=\"5,3\"/>\n",
        fx(&f1, threshold), f1.y0, fx(&f1, threshold), f1.y0 + f1.h);
    axes(&s, &f1, "W1 distance to N(0,1)", "neurons");
    out(&s, "<text x=\"%.2f\" y=\"62\" text-anchor=\"middle\">distances of all neurons (dashed: threshold)</text>\n",
        f1.x0 + f1.w / 2);
    /* right: the most entangled neuron's normalized outputs against the Gaussian density */
    double lo = L->hist_lo, hi = L->hist_hi;
    if (!(hi > lo)) {
        lo = -4.0;
        hi = 4.0;
    }
    double bw = (hi - lo) / SPX_AN_HIST_BINS, dmax = spx_w1_norm_pdf(0.0);
    for (int b = 0; b < SPX_AN_HIST_BINS; b++) {
        double d = tokens ? (double)L->hist[b] / ((double)tokens * bw) : 0.0;
        dmax = d > dmax ? d : dmax;
    }
    frame f2 = {540, 72, 380, 260, lo, hi, dmax * 1.05};
    for (int b = 0; b < SPX_AN_HIST_BINS; b++)
        if (L->hist[b])
            bar(&s, &f2, lo + bw * b, lo + bw * (b + 1), (double)L->hist[b] / ((double)tokens * bw), "#e08a3c");
    out(&s, "<polyline fill=\"none\" stroke=\"#222\" stroke-width=\"1.5\" points=\"");
    for (int i = 0; i <= 200; i++) {
        double z = lo + (hi - lo) * i / 200.0;
        out(&s, "%s%.2f,%.2f", i ? " " : "", fx(&f2, z), fy(&f2, spx_w1_norm_pdf(z)));
    }
    out(&s, "\"/>\n");
    axes(&s, &f2, "normalized output z = (y - mean) / std", "density");
    out(&s, "<text x=\"%.2f\" y=\"62\" text-anchor=\"middle\">most entangled: neuron %llu, W1 %.4g "
            "(raw mean %.4g, std %.4g)</text>\n", f2.x0 + f2.w / 2, (unsigned long long)L->argmax, L->max,
        L->top_mean, L->top_std);
    out(&s, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\" fill=\"#555\">curve: N(0,1) density; outside "
            "the range: %llu below, %llu above</text>\n", f2.x0 + f2.w - 6, f2.y0 + 14, (unsigned long long)L->hist_below,
        (unsigned long long)L->hist_above);
    out(&s, "</svg>\n");
    if (s.rc < 0) {
        spx_an_file_abort(&s.f);
        return s.rc;
    }
    return spx_an_file_commit(ctx, &s.f);
}
