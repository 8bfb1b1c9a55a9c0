/* JPEG (TurboJPEG) and PNG (libspng) decoding to RGB the way PIL's open + exif_transpose +
 * convert("RGB") sees an image, with reusable buffers and a pixel-count guard. */
#include "datasets/image.h"

#include <errno.h>
#include <fcntl.h>
#include <libexif/exif-data.h>
#include <spng.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

void kt_image_init(kt_image *im) { memset(im, 0, sizeof *im); }

void kt_image_free(kt_image *im) {
    free(im->px);
    memset(im, 0, sizeof *im);
}

static int grow_bytes(uint8_t **p, size_t *cap, size_t n) {
    if (*cap >= n) return 1;
    uint8_t *q = realloc(*p, n);
    if (!q) return 0;
    *p = q;
    *cap = n;
    return 1;
}

kt_status kt_image_reserve(kt_image *im, int w, int h, kt_err *err) {
    if (w <= 0 || h <= 0) return kt_err_set(err, KT_ERR_ARG, "image size %dx%d is not positive", w, h);
    if (!grow_bytes(&im->px, &im->cap, (size_t)w * (size_t)h * 3))
        return kt_err_set(err, KT_ERR_NOMEM, "no memory for a %dx%d RGB image", w, h);
    im->w = w;
    im->h = h;
    return KT_OK;
}

kt_img_format kt_image_sniff(const uint8_t *data, size_t len) {
    if (len >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return KT_IMG_JPEG;
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (len >= 8 && memcmp(data, png_sig, 8) == 0) return KT_IMG_PNG;
    return KT_IMG_UNKNOWN;
}

kt_status kt_decoder_init(kt_decoder *d, kt_err *err) {
    memset(d, 0, sizeof *d);
    d->tj = tjInitDecompress();
    if (!d->tj) return kt_err_set(err, KT_ERR_NOMEM, "cannot create a TurboJPEG decompressor: %s", tjGetErrorStr2(NULL));
    return KT_OK;
}

/* TurboJPEG 2.1's tjDecompressHeader3 returns on an error without aborting its libjpeg
 * decompressor, which stays mid-header: the next image given to the same handle is then read as
 * the rest of the bad one ("Unsupported marker type 0x.."), so one corrupt upload or dataset file
 * would fail a good one after it. A handle that failed is replaced (after its message is read). */
static void jpeg_reset(kt_decoder *d) {
    if (d->tj) tjDestroy(d->tj);
    d->tj = tjInitDecompress();
}

static kt_status jpeg_handle(kt_decoder *d, kt_err *err) {
    if (!d->tj && !(d->tj = tjInitDecompress()))
        return kt_err_set(err, KT_ERR_NOMEM, "cannot create a TurboJPEG decompressor: %s", tjGetErrorStr2(NULL));
    return KT_OK;
}

static kt_status jpeg_header_error(kt_decoder *d, kt_err *err) {
    kt_status st = kt_err_set(err, KT_ERR_FORMAT, "unreadable JPEG header: %s", tjGetErrorStr2(d->tj));
    jpeg_reset(d);
    return st;
}

void kt_decoder_free(kt_decoder *d) {
    if (d->tj) tjDestroy(d->tj);
    free(d->file);
    free(d->tmp);
    memset(d, 0, sizeof *d);
}

kt_status kt_decoder_read_file(kt_decoder *d, const char *path, const uint8_t **data, size_t *len, kt_err *err) {
    *data = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return kt_err_set(err, errno == ENOENT ? KT_ERR_NOTFOUND : KT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return kt_err_set(err, KT_ERR_IO, "%s is not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    if (!grow_bytes(&d->file, &d->file_cap, n + 1)) {
        close(fd);
        return kt_err_set(err, KT_ERR_NOMEM, "no memory to read %s (%zu bytes)", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, d->file + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) return kt_err_set(err, KT_ERR_IO, "short read on %s (%zu of %zu bytes)", path, got, n);
    *data = d->file;
    *len = n;
    return KT_OK;
}

/* ---- JPEG markers: EXIF block, Adobe marker (CMYK inversion), first scan, completeness ------- */

typedef struct jpeg_info {
    const uint8_t *exif; /* APP1 payload starting "Exif\0\0" */
    size_t exif_len;
    int adobe;           /* APP14 "Adobe" present: CMYK samples are stored inverted */
    size_t sos;          /* offset of the first SOS marker, 0 if none */
} jpeg_info;

static void jpeg_markers(const uint8_t *d, size_t n, jpeg_info *ji) {
    memset(ji, 0, sizeof *ji);
    size_t pos = 2;
    while (pos + 4 <= n) {
        if (d[pos] != 0xFF) return; /* not at a marker: let the decoder report the corruption */
        uint8_t m = d[pos + 1];
        if (m == 0xFF) { /* fill byte */
            pos++;
            continue;
        }
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {
            pos += 2;
            continue;
        }
        if (m == 0xDA) {
            ji->sos = pos;
            return;
        }
        size_t seg = ((size_t)d[pos + 2] << 8) | d[pos + 3];
        if (seg < 2) return;
        const uint8_t *p = d + pos + 4;
        size_t avail = pos + 2 + seg <= n ? seg - 2 : n - (pos + 4);
        if (m == 0xE1 && !ji->exif && avail >= 6 && memcmp(p, "Exif\0\0", 6) == 0) {
            ji->exif = p;
            ji->exif_len = avail;
        }
        if (m == 0xEE && avail >= 5 && memcmp(p, "Adobe", 5) == 0) ji->adobe = 1;
        pos += 2 + seg;
    }
}

/* Entropy-coded data byte-stuffs 0xFF, so FF D9 only occurs as a real EOI marker: the file is
 * complete when an EOI follows the last SOS (bytes after the EOI are allowed, as PIL allows). */
static int jpeg_complete(const uint8_t *d, size_t n, size_t sos) {
    if (!sos || n < 4) return 0;
    size_t eoi = 0;
    for (size_t i = n - 2;; i--) {
        if (d[i] == 0xFF && d[i + 1] == 0xD9) {
            eoi = i;
            break;
        }
        if (i <= sos) return 0;
    }
    for (size_t j = eoi + 2; j + 1 < n; j++)
        if (d[j] == 0xFF && d[j + 1] == 0xDA) return 0;
    return eoi > sos;
}

/* IFD0 Orientation (0x0112) of an EXIF block that starts with "Exif\0\0"; 1 when absent. */
static int exif_orientation(const uint8_t *data, size_t len) {
    ExifData *ed = exif_data_new();
    if (!ed) return 1;
    /* Loading must not "fix" the block (that would add default tags). */
    exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    exif_data_load_data(ed, data, (unsigned)(len > 0xFFFFFFF0u ? 0xFFFFFFF0u : len));
    int o = 1;
    ExifEntry *e = exif_content_get_entry(ed->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
    if (e && e->format == EXIF_FORMAT_SHORT && e->components >= 1 && e->data && e->size >= 2)
        o = exif_get_short(e->data, exif_data_get_byte_order(ed));
    exif_data_unref(ed);
    return o >= 1 && o <= 8 ? o : 1;
}

/* PNG eXIf chunks hold the TIFF block without the "Exif\0\0" prefix libexif expects. */
static int exif_orientation_tiff(const uint8_t *tiff, size_t len) {
    if (len < 8 || len > (64u << 20)) return 1;
    uint8_t *buf = malloc(len + 6);
    if (!buf) return 1;
    memcpy(buf, "Exif\0\0", 6);
    memcpy(buf + 6, tiff, len);
    int o = exif_orientation(buf, len + 6);
    free(buf);
    return o;
}

/* dst (oh, ow, 3) = src (h, w, 3) transposed as PIL's exif_transpose does for orientation o. */
static void apply_orientation(const uint8_t *src, int w, int h, int o, uint8_t *dst) {
    /* (ix, iy) = (ax*ox + bx*oy + cx, ay*ox + by*oy + cy) */
    int ax = 0, bx = 0, cx = 0, ay = 0, by = 0, cy = 0;
    switch (o) {
    case 2: ax = -1, cx = w - 1, by = 1; break;
    case 3: ax = -1, cx = w - 1, by = -1, cy = h - 1; break;
    case 4: ax = 1, by = -1, cy = h - 1; break;
    case 5: bx = 1, ay = 1; break;
    case 6: bx = 1, ay = -1, cy = h - 1; break;
    case 7: bx = -1, cx = w - 1, ay = -1, cy = h - 1; break;
    case 8: bx = -1, cx = w - 1, ay = 1; break;
    default: ax = 1, by = 1; break;
    }
    int ow = o >= 5 ? h : w, oh = o >= 5 ? w : h;
    ptrdiff_t step = ((ptrdiff_t)ax + (ptrdiff_t)ay * w) * 3;
    for (int oy = 0; oy < oh; oy++) {
        const uint8_t *s = src + ((ptrdiff_t)(bx * oy + cx) + (ptrdiff_t)(by * oy + cy) * w) * 3;
        uint8_t *dr = dst + (size_t)oy * ow * 3;
        for (int ox = 0; ox < ow; ox++, s += step) {
            dr[ox * 3 + 0] = s[0];
            dr[ox * 3 + 1] = s[1];
            dr[ox * 3 + 2] = s[2];
        }
    }
}

static kt_status check_pixels(int w, int h, const kt_decode_opts *o, const char *what, kt_err *err) {
    int64_t lim = o && o->max_pixels > 0 ? o->max_pixels : KT_IMAGE_MAX_PIXELS_DEFAULT;
    if (w <= 0 || h <= 0) return kt_err_set(err, KT_ERR_FORMAT, "%s header gives an empty size %dx%d", what, w, h);
    if ((int64_t)w * h > lim)
        return kt_err_set(err, KT_ERR_FORMAT,
                          "%s is %dx%d = %.1f Mpx, over the limit of %.1f Mpx (decompression-bomb guard; raise "
                          "max_pixels if the image is genuine)",
                          what, w, h, (double)w * h / 1e6, (double)lim / 1e6);
    return KT_OK;
}

static kt_status unknown_format(const uint8_t *data, size_t len, kt_err *err) {
    if (len == 0) return kt_err_set(err, KT_ERR_FORMAT, "empty file (0 bytes), not an image");
    char hex[3 * 8 + 1] = "";
    for (size_t i = 0; i < len && i < 8; i++) snprintf(hex + 3 * i, 4, "%02x ", data[i]);
    hex[strlen(hex) - 1] = '\0';
    return kt_err_set(err, KT_ERR_FORMAT, "not a JPEG or PNG image (%zu bytes starting %s)", len, hex);
}

/* ---- JPEG --------------------------------------------------------------------------------- */

static kt_status decode_jpeg(kt_decoder *d, const uint8_t *data, size_t len, const kt_decode_opts *o,
                             kt_image *out, kt_err *err) {
    jpeg_info ji;
    jpeg_markers(data, len, &ji);
    int w, h, subsamp, cs;
    kt_status st = jpeg_handle(d, err);
    if (st != KT_OK) return st;
    if (tjDecompressHeader3(d->tj, data, (unsigned long)len, &w, &h, &subsamp, &cs) != 0)
        return jpeg_header_error(d, err);
    st = check_pixels(w, h, o, "JPEG", err);
    if (st != KT_OK) return st;
    int orient = (o && o->ignore_exif) || !ji.exif ? 1 : exif_orientation(ji.exif, ji.exif_len);
    int sw = w, sh = h;
    if (o && (o->min_w > 0 || o->min_h > 0)) {
        static const int dens[3] = {8, 4, 2};
        for (int i = 0; i < 3; i++) {
            tjscalingfactor f = {1, dens[i]};
            int tw = TJSCALED(w, f), th = TJSCALED(h, f);
            int vw = orient >= 5 ? th : tw, vh = orient >= 5 ? tw : th;
            if (vw >= o->min_w && vh >= o->min_h) {
                sw = tw;
                sh = th;
                break;
            }
        }
    }
    int cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK;
    int direct = !cmyk && orient == 1;
    uint8_t *buf;
    if (direct) {
        if ((st = kt_image_reserve(out, sw, sh, err)) != KT_OK) return st;
        buf = out->px;
    } else {
        if (!grow_bytes(&d->tmp, &d->tmp_cap, (size_t)sw * sh * (cmyk ? 4 : 3)))
            return kt_err_set(err, KT_ERR_NOMEM, "no memory to decode a %dx%d JPEG", sw, sh);
        buf = d->tmp;
    }
    if (tjDecompress2(d->tj, data, (unsigned long)len, buf, sw, 0, sh, cmyk ? TJPF_CMYK : TJPF_RGB, 0) != 0) {
        /* libjpeg warnings (extraneous bytes, ...) leave a usable image, and PIL accepts them;
         * a warning on data that ends before its EOI is a truncated file, which PIL refuses. */
        int fatal = tjGetErrorCode(d->tj) == TJERR_FATAL;
        if (fatal || !jpeg_complete(data, len, ji.sos)) {
            st = kt_err_set(err, KT_ERR_FORMAT, "%s JPEG (%zu bytes): %s", fatal ? "corrupt" : "truncated", len,
                            tjGetErrorStr2(d->tj));
            jpeg_reset(d); /* tjDecompress2 aborts on its errors; a fresh handle costs little here */
            return st;
        }
    }
    if (cmyk) {
        /* Pillow: Adobe CMYK is stored inverted ("CMYK;I"), then cmyk2rgb computes
         * (255-K) - (C*(255-K))/255 with its MULDIV255 rounding. In place: 3 <= 4 bytes. */
        size_t n = (size_t)sw * sh;
        for (size_t i = 0; i < n; i++) {
            int c = buf[i * 4], m = buf[i * 4 + 1], y = buf[i * 4 + 2], k = buf[i * 4 + 3];
            if (ji.adobe) c = 255 - c, m = 255 - m, y = 255 - y, k = 255 - k;
            int nk = 255 - k, t;
            int v[3] = {c, m, y};
            for (int j = 0; j < 3; j++) {
                t = v[j] * nk + 128;
                int r = nk - (((t >> 8) + t) >> 8);
                buf[i * 3 + j] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
            }
        }
    }
    if (!direct) {
        int ow = orient >= 5 ? sh : sw, oh = orient >= 5 ? sw : sh;
        if ((st = kt_image_reserve(out, ow, oh, err)) != KT_OK) return st;
        apply_orientation(buf, sw, sh, orient, out->px);
    }
    return KT_OK;
}

/* ---- PNG ---------------------------------------------------------------------------------- */

static kt_status png_open(const uint8_t *data, size_t len, const kt_decode_opts *o, spng_ctx **ctxp,
                          struct spng_ihdr *ihdr, kt_err *err) {
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx) return kt_err_set(err, KT_ERR_NOMEM, "cannot create a PNG decoder");
    /* Bound what a hostile file can make libspng allocate for chunks. */
    spng_set_chunk_limits(ctx, 64u << 20, 64u << 20);
    int r = spng_set_png_buffer(ctx, data, len);
    if (!r) r = spng_get_ihdr(ctx, ihdr);
    if (r) {
        spng_ctx_free(ctx);
        return kt_err_set(err, KT_ERR_FORMAT, "unreadable PNG header: %s", spng_strerror(r));
    }
    kt_status st = check_pixels(ihdr->width > INT32_MAX ? -1 : (int)ihdr->width,
                                ihdr->height > INT32_MAX ? -1 : (int)ihdr->height, o, "PNG", err);
    if (st != KT_OK) {
        spng_ctx_free(ctx);
        return st;
    }
    *ctxp = ctx;
    return KT_OK;
}

/* Orientation from the first eXIf chunk, wherever it lies. The chunks are walked here rather than
 * asked of libspng, which reports an eXIf that follows the image data only once the pixels are
 * decoded: the probe would then give the stored size while the decoder turns the image (PIL's
 * exif_transpose honours the chunk in either place). */
static int png_orientation(const uint8_t *data, size_t len, const kt_decode_opts *o) {
    if (o && o->ignore_exif) return 1;
    size_t pos = 8; /* after the signature: length (4, big-endian), type (4), data, CRC (4) */
    while (len >= 12 && pos <= len - 12) {
        size_t n = ((size_t)data[pos] << 24) | ((size_t)data[pos + 1] << 16) | ((size_t)data[pos + 2] << 8) | data[pos + 3];
        if (n > len - pos - 12) return 1;
        if (memcmp(data + pos + 4, "eXIf", 4) == 0) return exif_orientation_tiff(data + pos + 8, n);
        if (memcmp(data + pos + 4, "IEND", 4) == 0) return 1;
        pos += 12 + n;
    }
    return 1;
}

static kt_status decode_png(kt_decoder *d, const uint8_t *data, size_t len, const kt_decode_opts *o, kt_image *out,
                            kt_err *err) {
    spng_ctx *ctx;
    struct spng_ihdr ihdr;
    kt_status st = png_open(data, len, o, &ctx, &ihdr, err);
    if (st != KT_OK) return st;
    int w = (int)ihdr.width, h = (int)ihdr.height;
    size_t size = 0;
    int r = spng_decoded_image_size(ctx, SPNG_FMT_RGB8, &size);
    if (!r && size != (size_t)w * h * 3) r = SPNG_EINTERNAL;
    if (!r && (st = kt_image_reserve(out, w, h, err)) != KT_OK) {
        spng_ctx_free(ctx);
        return st;
    }
    /* SPNG_FMT_RGB8 expands grey and palette and drops alpha, as PIL's convert("RGB") does. */
    if (!r) r = spng_decode_image(ctx, out->px, size, SPNG_FMT_RGB8, 0);
    if (r) {
        spng_ctx_free(ctx);
        return kt_err_set(err, KT_ERR_FORMAT, "corrupt or truncated PNG (%zu bytes): %s", len, spng_strerror(r));
    }
    spng_ctx_free(ctx);
    int orient = png_orientation(data, len, o);
    if (orient != 1) {
        if (!grow_bytes(&d->tmp, &d->tmp_cap, size))
            return kt_err_set(err, KT_ERR_NOMEM, "no memory to orient a %dx%d PNG", w, h);
        memcpy(d->tmp, out->px, size);
        if ((st = kt_image_reserve(out, orient >= 5 ? h : w, orient >= 5 ? w : h, err)) != KT_OK) return st;
        apply_orientation(d->tmp, w, h, orient, out->px);
    }
    return KT_OK;
}

/* ---- public entry points -------------------------------------------------------------------- */

kt_status kt_image_decode(kt_decoder *d, const uint8_t *data, size_t len, const kt_decode_opts *opts,
                          kt_image *out, kt_err *err) {
    switch (kt_image_sniff(data, len)) {
    case KT_IMG_JPEG: return decode_jpeg(d, data, len, opts, out, err);
    case KT_IMG_PNG: return decode_png(d, data, len, opts, out, err);
    default: return unknown_format(data, len, err);
    }
}

kt_status kt_image_load(kt_decoder *d, const char *path, const kt_decode_opts *opts, kt_image *out, kt_err *err) {
    const uint8_t *data;
    size_t len;
    kt_status st = kt_decoder_read_file(d, path, &data, &len, err);
    if (st == KT_OK) st = kt_image_decode(d, data, len, opts, out, err);
    if (st != KT_OK && st != KT_ERR_NOTFOUND && st != KT_ERR_IO) kt_err_prefix(err, "%s: ", path);
    return st;
}

kt_status kt_image_probe(kt_decoder *d, const uint8_t *data, size_t len, const kt_decode_opts *opts,
                         kt_image_header *hdr, kt_err *err) {
    memset(hdr, 0, sizeof *hdr);
    hdr->format = kt_image_sniff(data, len);
    hdr->orientation = 1;
    kt_status st;
    if (hdr->format == KT_IMG_JPEG) {
        jpeg_info ji;
        jpeg_markers(data, len, &ji);
        int w, h, subsamp, cs;
        if ((st = jpeg_handle(d, err)) != KT_OK) return st;
        if (tjDecompressHeader3(d->tj, data, (unsigned long)len, &w, &h, &subsamp, &cs) != 0)
            return jpeg_header_error(d, err);
        if ((st = check_pixels(w, h, opts, "JPEG", err)) != KT_OK) return st;
        if (!(opts && opts->ignore_exif) && ji.exif) hdr->orientation = exif_orientation(ji.exif, ji.exif_len);
        hdr->w = hdr->orientation >= 5 ? h : w;
        hdr->h = hdr->orientation >= 5 ? w : h;
        hdr->complete = jpeg_complete(data, len, ji.sos);
        return KT_OK;
    }
    if (hdr->format == KT_IMG_PNG) {
        spng_ctx *ctx;
        struct spng_ihdr ihdr;
        if ((st = png_open(data, len, opts, &ctx, &ihdr, err)) != KT_OK) return st;
        spng_ctx_free(ctx);
        hdr->orientation = png_orientation(data, len, opts);
        int w = (int)ihdr.width, h = (int)ihdr.height;
        hdr->w = hdr->orientation >= 5 ? h : w;
        hdr->h = hdr->orientation >= 5 ? w : h;
        /* The last chunk of a whole PNG is IEND (tolerate a few trailing bytes). */
        size_t from = len > 64 ? len - 64 : 0;
        for (size_t i = from; i + 4 <= len && !hdr->complete; i++)
            if (memcmp(data + i, "IEND", 4) == 0) hdr->complete = 1;
        return KT_OK;
    }
    return unknown_format(data, len, err);
}
